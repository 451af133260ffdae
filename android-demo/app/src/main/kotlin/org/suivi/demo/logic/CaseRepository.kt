package org.suivi.demo.logic

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.suspendCancellableCoroutine
import kotlinx.coroutines.isActive
import kotlinx.coroutines.withContext
import org.suivi.core.ClosureInfo
import org.suivi.core.CaseDetail
import org.suivi.core.CaseQuery
import org.suivi.core.CaseStore
import org.suivi.core.CaseSummary
import org.suivi.core.ConflictChoice
import org.suivi.core.DraftInfo
import org.suivi.core.FormInfo
import org.suivi.core.HistoryItem
import org.suivi.core.QuarantinedCase
import org.suivi.core.RefusedCase
import org.suivi.core.ShownValue
import org.suivi.core.SuiviException
import org.suivi.core.SyncCancel
import org.suivi.core.SyncListener
import org.suivi.core.SyncProgress
import org.suivi.core.SyncSummary
import org.suivi.core.TodoInfo

/**
 * Every store call the screens make, as suspend functions that run on `io` (Dispatchers.IO on a
 * phone): the bindings block, so nothing here may run on the main thread. Reads use the store's
 * read connection and never wait for a sync or a save. After each write and each sync the count
 * of unsynced cases goes to `unsynced` (kept outside the encrypted store, see `AppFiles`).
 */
class CaseRepository(
    val store: CaseStore,
    private val unsynced: UnsyncedCount? = null,
    private val io: CoroutineDispatcher = Dispatchers.IO,
    /** Called after each save (not after a sync): the app asks for a sync soon (`SyncWorker`). */
    private val afterSave: (() -> Unit)? = null,
) {
    suspend fun list(query: CaseQuery): List<CaseSummary> = withContext(io) { store.listCases(query) }

    /** What the agent has to do on `today` (YYYY-MM-DD), narrowed as the caseload is. */
    suspend fun todo(today: String, riskLevel: String?, village: String?): TodoInfo =
        withContext(io) { store.todo(today, riskLevel, village) }

    suspend fun conflictedCaseCount(): Long = withContext(io) { store.conflictedCaseCount().toLong() }

    /**
     * A case's screen. One listed ahead of its history (a first sync still running) is fetched
     * at once, so the agent need not wait for the sync to reach it.
     */
    suspend fun case(caseId: String): CaseDetail = withContext(io) {
        try {
            store.caseDetail(caseId)
        } catch (e: SuiviException.CaseArriving) {
            store.fetchCase(caseId)
            store.caseDetail(caseId)
        }
    }

    /** The case's identification by its labels and in words, in the reader's language. */
    suspend fun identificationInWords(caseId: String, lang: Lang): List<ShownValue> =
        withContext(io) { store.identificationInWords(caseId, lang.tag) }

    suspend fun history(caseId: String): List<HistoryItem> = withContext(io) { store.history(caseId) }

    suspend fun form(formId: String, lang: Lang): FormInfo = withContext(io) { store.form(formId, lang.tag) }

    /** One version of a form: a record is shown with the version it was written with. */
    suspend fun formVersion(formId: String, version: UInt, lang: Lang): FormInfo =
        withContext(io) { store.formVersion(formId, version, lang.tag) }

    suspend fun visibleFields(formId: String, inputs: Map<String, String>): List<String> =
        withContext(io) { store.visibleFields(formId, inputs) }

    suspend fun createCase(inputs: Map<String, String>): String = save { store.createCase(inputs) }

    suspend fun refer(caseId: String, inputs: Map<String, String>): String = save { store.refer(caseId, inputs) }

    suspend fun addFollowUp(caseId: String, inputs: Map<String, String>): String =
        save { store.addFollowup(caseId, inputs) }

    suspend fun moveReferral(referralId: String, transition: String, note: String?, nextProvider: String?): String? =
        save { store.moveReferral(referralId, transition, note, nextProvider) }

    /** Changes identification fields with the case's own form version; what changed. */
    suspend fun editCase(caseId: String, inputs: Map<String, String>): List<String> =
        save { store.editCase(caseId, inputs) }

    /** Moves a case to the newest identification version, with the answers it requires. */
    suspend fun moveCaseForm(caseId: String, inputs: Map<String, String>): List<String> =
        save { store.moveCaseForm(caseId, inputs) }

    /** A case's conflicts for the picker, in the reader's words, times on `zone`'s clock. */
    suspend fun conflictChoices(caseId: String, lang: Lang, zone: String): List<ConflictChoice> =
        withContext(io) { store.conflictChoices(caseId, lang.tag, zone) }

    /** Settles a conflict with one of its values, as the form takes it. */
    /** A case's closure in the reader's words, times on `zone`'s clock, and what may be done. */
    suspend fun closure(caseId: String, lang: Lang, zone: String): ClosureInfo =
        withContext(io) { store.closure(caseId, lang.tag, zone) }

    suspend fun proposeClosure(caseId: String, reason: String, note: String?) =
        save { store.proposeClosure(caseId, reason, note) }

    suspend fun decideClosure(caseId: String, approve: Boolean, note: String?) =
        save { store.decideClosure(caseId, approve, note) }

    suspend fun reopenCase(caseId: String, note: String?) = save { store.reopenCase(caseId, note) }

    suspend fun resolveConflict(caseId: String, path: String, value: String) =
        save { store.resolveConflict(caseId, path, value) }

    suspend fun saveDraft(formId: String, caseId: String?, inputs: Map<String, String>) =
        withContext(io) { store.saveDraft(formId, caseId, inputs) }

    suspend fun draft(formId: String, caseId: String?): DraftInfo? = withContext(io) { store.draft(formId, caseId) }

    suspend fun drafts(): List<DraftInfo> = withContext(io) { store.drafts() }

    suspend fun discardDraft(formId: String, caseId: String?): Boolean =
        withContext(io) { store.discardDraft(formId, caseId) }

    suspend fun refusedCases(): List<RefusedCase> = withContext(io) { store.refusedCases() }

    suspend fun quarantinedCases(): List<QuarantinedCase> = withContext(io) { store.quarantinedCases() }

    suspend fun lastSync(): String? = withContext(io) { store.lastSync() }

    /**
     * Syncs; `onProgress` is called on the syncing thread after each committed page. Cancelling
     * the calling coroutine cancels the sync at once, even while it waits on the network: it
     * ends with `SuiviException.Cancelled` inside and `CancellationException` here, and every
     * page committed before stays.
     */
    suspend fun sync(onProgress: (SyncProgress) -> Unit): SyncSummary {
        // Waited for on an IO thread, a tenth of a second at a time, so a cancelled caller
        // stops waiting at once.
        withContext(io) {
            while (!syncing.tryAcquire(100, java.util.concurrent.TimeUnit.MILLISECONDS)) {
                if (!isActive) throw CancellationException("sync cancelled while waiting")
            }
        }
        try {
            return syncNow(onProgress)
        } finally {
            syncing.release()
        }
    }

    /**
     * One sync at a time: the Sync button, the periodic run and the one after a save may all
     * start together, and two runs would interleave their pages. (A semaphore, not the coroutine
     * library's `Mutex`: it is released from whichever thread the sync ends on.)
     */
    private val syncing = java.util.concurrent.Semaphore(1)

    private suspend fun syncNow(onProgress: (SyncProgress) -> Unit): SyncSummary = coroutineScope {
        val cancel = SyncCancel()
        // Suspends until this scope is cancelled (or the sync ends and stops it).
        val watcher = launch(start = CoroutineStart.UNDISPATCHED) {
            try {
                suspendCancellableCoroutine<Unit> { }
            } finally {
                cancel.cancel()
            }
        }
        try {
            val listener = object : SyncListener {
                override fun onProgress(progress: SyncProgress) = onProgress(progress)
            }
            write { store.sync(listener, cancel) }
        } catch (e: SuiviException.Cancelled) {
            throw CancellationException("sync cancelled")
        } finally {
            watcher.cancel()
        }
    }

    /** A save of the agent's: written, then a sync asked for soon. */
    private suspend fun <T> save(call: () -> T): T = write(call).also { afterSave?.invoke() }

    private suspend fun <T> write(call: () -> T): T = withContext(io) {
        try {
            call()
        } finally {
            unsynced?.let { counter -> runCatching { counter.record(store.unsyncedCaseCount().toLong()) } }
        }
    }
}
