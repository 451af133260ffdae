package org.suivi.demo.logic

import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.withTimeout
import org.suivi.core.SyncProgress
import org.suivi.core.SyncSummary

/**
 * Sync that survives real life: what the background worker runs (unique work with a network
 * constraint, a periodic run and one soon after each save; see `SyncWorker`), and the decision
 * after each run, made here so it is tested on the JVM:
 * - **done**, with what the server refused or this phone set aside, in words for the agent;
 * - **retry later** when the link or the server is the trouble (offline, a stalled link past the
 *   deadline, a busy server): the scheduler backs off (`backoffSeconds`), nothing is lost;
 * - **stop and tell the agent** when retrying cannot help: revoked (enroll again), upgrade
 *   required, wrong key, full storage, a bug.
 */
class BackgroundSync(
    private val repository: CaseRepository,
    @Volatile var lang: Lang = Lang.FR,
    /** A run longer than this is a stalled link: stopped, retried later. */
    private val deadlineMillis: Long = DEADLINE_MILLIS,
) {
    sealed class Decision {
        /** Synced; `setAside` says, one line a case, what did not go through. */
        data class Done(val summary: SyncSummary, val setAside: List<String>) : Decision()
        data class RetryLater(val why: UiError) : Decision()
        data class Stop(val why: UiError) : Decision()
    }

    companion object {
        const val DEADLINE_MILLIS = 10 * 60_000L
        /** A periodic run this often (hours), and one this soon after a save (seconds). */
        const val PERIOD_HOURS = 6L
        const val AFTER_SAVE_SECONDS = 60L
        private const val FIRST_BACKOFF_SECONDS = 30L
        private const val MAX_BACKOFF_SECONDS = 5 * 3600L

        /** The wait before retry number `attempt` (0 first): 30 s doubling, at most 5 h. */
        fun backoffSeconds(attempt: Int): Long =
            if (attempt >= 20) MAX_BACKOFF_SECONDS else minOf(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS shl attempt)
    }

    suspend fun run(onProgress: (SyncProgress) -> Unit = {}): Decision {
        val summary = try {
            withTimeout(deadlineMillis) { repository.sync(onProgress) }
        } catch (e: TimeoutCancellationException) {
            return Decision.RetryLater(UiError(Messages.text("offline", lang), next = UiError.Next.RETRY_LATER))
        } catch (e: kotlinx.coroutines.CancellationException) {
            throw e
        } catch (e: Throwable) {
            val error = e.toUiError(lang)
            return if (error.next == UiError.Next.RETRY_LATER) Decision.RetryLater(error) else Decision.Stop(error)
        }
        return Decision.Done(summary, setAside())
    }

    /** What the server refused and what this phone set aside, a line a case, in words. */
    suspend fun setAside(): List<String> {
        val lines = mutableListOf<String>()
        for (refused in repository.refusedCases()) {
            lines += "${nameOf(refused.caseId)} : ${Messages.text("refusal.${refused.reason}", lang).takeIf { Messages.has("refusal.${refused.reason}") } ?: Messages.text("refusal.other", lang)}"
        }
        for (aside in repository.quarantinedCases()) {
            lines += "${nameOf(aside.caseId)} : ${Messages.text("quarantined", lang)}"
        }
        return lines
    }

    private suspend fun nameOf(caseId: String): String = runCatching {
        repository.case(caseId).summary.let { "${it.firstName} ${it.lastName}" }
    }.getOrElse { if (it is kotlinx.coroutines.CancellationException) throw it else caseId.take(8) }
}
