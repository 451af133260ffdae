package org.suivi.demo.logic

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.launch
import org.suivi.core.SyncSummary
import java.util.concurrent.CopyOnWriteArrayList

/**
 * The sync button: progress while it runs, the last result, and the last-sync line. The state
 * is written from the syncing thread and read from the UI thread: it is one immutable value
 * behind a volatile field, and observers are told of each new value (the UI posts it to the
 * main thread).
 */
class SyncViewModel(
    private val repository: CaseRepository,
    private val scope: CoroutineScope,
    @Volatile var lang: Lang = Lang.FR,
) {
    sealed class State {
        object Idle : State()
        /** `caseload`: the cases a first sync announced (0 otherwise); `casesDown` of them arrived. */
        data class Running(
            val pages: Long,
            val casesDown: Long,
            val bytesDown: Long,
            val caseload: Long = 0,
        ) : State() {
            /** How far a first sync is, in words ("312 dossiers arrivés sur 1000"); null otherwise. */
            fun howFar(lang: Lang): String? = if (caseload > 0) {
                "${minOf(casesDown, caseload)} ${Messages.text("sync.of_caseload", lang)} $caseload"
            } else {
                null
            }
        }
        /** `setAside`: what the server refused or this phone set aside, a line a case, in words. */
        data class Done(val summary: SyncSummary, val setAside: List<String> = emptyList()) : State()
        data class Failed(val error: UiError) : State()
        object Cancelled : State()
    }

    @Volatile var state: State = State.Idle
        private set
    private val observers = CopyOnWriteArrayList<(State) -> Unit>()
    @Volatile private var job: Job? = null

    /** Tells `observer` the state now and each new one; returns what stops it (a screen going away). */
    fun observe(observer: (State) -> Unit): () -> Unit {
        observers.add(observer)
        observer(state)
        return { observers.remove(observer) }
    }

    private fun set(next: State) {
        state = next
        observers.forEach { it(next) }
    }

    val running: Boolean get() = job?.isActive == true

    /** Starts a sync unless one runs; returns its job. */
    @Synchronized
    fun start(): Job {
        job?.takeIf { it.isActive }?.let { return it }
        set(State.Running(0, 0, 0))
        val started = scope.launch {
            val next = try {
                val summary = repository.sync { p ->
                    set(State.Running(p.roundTrips.toLong(), p.casesDown.toLong(), p.bytesDown.toLong(), p.caseload.toLong()))
                }
                State.Done(summary, BackgroundSync(repository, lang).setAside())
            } catch (e: CancellationException) {
                State.Cancelled
            } catch (e: Throwable) {
                State.Failed(e.toUiError(lang))
            }
            set(next)
        }
        job = started
        return started
    }

    /** Cancels the running sync: it stops at once; pages committed before stay. */
    fun cancel() {
        job?.cancel()
    }

    suspend fun lastSyncLine(): String {
        val last = repository.lastSync() ?: return Messages.text("never_synced", lang)
        return "${Messages.text("last_sync", lang)} : ${last.take(16).replace('T', ' ')}"
    }
}
