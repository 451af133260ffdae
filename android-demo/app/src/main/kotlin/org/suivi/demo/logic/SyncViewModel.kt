package org.suivi.demo.logic

import org.suivi.core.CaseStore
import org.suivi.core.SyncListener
import org.suivi.core.SyncProgress
import org.suivi.core.SyncSummary

/** The sync button: progress while it runs, the last result, and the last-sync line. */
class SyncViewModel(private val store: CaseStore, var lang: Lang = Lang.FR) {
    sealed class State {
        object Idle : State()
        data class Running(val casesDown: Long, val bytesDown: Long) : State()
        data class Done(val summary: SyncSummary) : State()
        data class Failed(val error: UiError) : State()
    }

    var state: State = State.Idle
        private set
    val progressSeen = mutableListOf<SyncProgress>()

    /** Runs a sync on the calling thread (the UI calls it from a background executor). */
    fun sync(): State {
        state = State.Running(0, 0)
        val listener = object : SyncListener {
            override fun onProgress(progress: SyncProgress) {
                progressSeen.add(progress)
                state = State.Running(progress.casesDown.toLong(), progress.bytesDown.toLong())
            }
        }
        state = when (val r = attempt(lang) { store.sync(listener) }) {
            is Outcome.Ok -> State.Done(r.value)
            is Outcome.Failed -> State.Failed(r.error)
        }
        return state
    }

    fun lastSyncLine(): String {
        val last = store.lastSync() ?: return Messages.text("never_synced", lang)
        return "${Messages.text("last_sync", lang)} : ${last.take(16).replace('T', ' ')}"
    }
}
