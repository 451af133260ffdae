package org.suivi.demo.ui

import android.content.Intent
import android.os.Bundle
import android.view.View
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ListView
import android.widget.ProgressBar
import android.widget.TextView
import androidx.activity.viewModels
import androidx.lifecycle.ViewModel
import androidx.lifecycle.lifecycleScope
import androidx.lifecycle.viewModelScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import org.suivi.demo.R
import org.suivi.demo.logic.CaseListViewModel
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.Outcome
import org.suivi.demo.logic.TodoModel
import org.suivi.demo.logic.attempt
import org.suivi.demo.logic.SyncViewModel
import org.suivi.demo.logic.UiError

/** The caseload screen's state, kept across rotation; a sync outlives the activity. */
class MainViewModel : ViewModel() {
    var list: CaseListViewModel? = null
    var sync: SyncViewModel? = null
    var todo: TodoModel? = null

    fun attach(repository: CaseRepository, app: SuiviApp) {
        if (list == null) {
            list = CaseListViewModel(repository, app.lang())
            sync = SyncViewModel(repository, viewModelScope, app.lang())
            todo = TodoModel(repository, app.lang())
        }
        // The per-app language may have changed since (the activity is recreated, not this).
        list?.lang = app.lang()
        sync?.lang = app.lang()
        todo?.lang = app.lang()
    }
}

/**
 * The caseload: search, list, sync with progress drawn as pages arrive, a cancel button, the
 * last-sync line and the conflicts badge. Every store call runs on the IO dispatcher.
 * (Android only.)
 */
class MainActivity : ChildScreen() {
    private val state: MainViewModel by viewModels()
    private lateinit var adapter: ArrayAdapter<String>
    private lateinit var status: TextView
    private lateinit var badge: TextView
    private lateinit var todoButton: Button
    private lateinit var progress: ProgressBar
    private lateinit var syncButton: Button
    private lateinit var cancelButton: Button
    private var refreshJob: Job? = null
    private var stopObserving: (() -> Unit)? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val repository = app.repository ?: run {
            // The process was restarted on this screen: open the store first.
            startActivity(Intent(this, StartActivity::class.java))
            finish()
            return
        }
        state.attach(repository, app)
        // Android 13 and later show the app's notifications (the background sync's, what to act
        // on after it) only once the agent allows them.
        if (android.os.Build.VERSION.SDK_INT >= 33 &&
            checkSelfPermission(android.Manifest.permission.POST_NOTIFICATIONS) != android.content.pm.PackageManager.PERMISSION_GRANTED
        ) {
            registerForActivityResult(androidx.activity.result.contract.ActivityResultContracts.RequestPermission()) { }
                .launch(android.Manifest.permission.POST_NOTIFICATIONS)
        }
        val list = state.list!!
        val sync = state.sync!!
        val search = EditText(this).apply { hint = getString(R.string.search_hint); setText(list.search) }
        badge = TextView(this)
        status = TextView(this)
        progress = ProgressBar(this, null, android.R.attr.progressBarStyleHorizontal).apply { isIndeterminate = true }
        adapter = ArrayAdapter(this, android.R.layout.simple_list_item_1, mutableListOf())
        val listView = ListView(this).apply {
            adapter = this@MainActivity.adapter
            setOnItemClickListener { _, _, position, _ ->
                val case = list.cases.getOrNull(position) ?: return@setOnItemClickListener
                startActivity(Intent(this@MainActivity, CaseActivity::class.java).putExtra("case_id", case.caseId))
            }
        }
        val newCase = Button(this).apply {
            text = getString(R.string.new_case)
            setOnClickListener { startActivity(Intent(this@MainActivity, FormActivity::class.java).putExtra("form", "identification")) }
        }
        todoButton = Button(this).apply {
            text = Messages.text("todo.title", app.lang())
            setOnClickListener { startActivity(Intent(this@MainActivity, TodoActivity::class.java)) }
        }
        syncButton = Button(this).apply { text = getString(R.string.sync); setOnClickListener { sync.start() } }
        cancelButton = Button(this).apply { text = getString(R.string.cancel); setOnClickListener { sync.cancel() } }
        // Each keystroke restarts the search after a short pause: only the latest one lands.
        search.addTextChangedListener(Watcher { text ->
            list.search = text
            refreshList(pause = 250)
        })
        show(LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            listOf(search, badge, status, progress, todoButton, newCase, syncButton, cancelButton, listView).forEach { addView(it) }
        })
    }

    override fun onStart() {
        super.onStart()
        if (!unlocked()) return
        val sync = state.sync ?: return
        stopObserving = sync.observe { s -> runOnUiThread { drawSync(s) } }
        refreshList(pause = 0)
    }

    override fun onStop() {
        stopObserving?.invoke()
        stopObserving = null
        super.onStop()
    }

    private fun refreshList(pause: Long) {
        val list = state.list ?: return
        refreshJob?.cancel()
        refreshJob = lifecycleScope.launch {
            delay(pause)
            val screen = list.refresh()
            adapter.clear()
            adapter.addAll(screen.cases.map { list.row(it) })
            badge.text = getString(R.string.conflicts, screen.conflictBadge.toInt())
            screen.error?.let { status.text = it.message }
            state.todo?.let { todo ->
                val count = todo.refresh().count
                todoButton.text = "${Messages.text("todo.title", app.lang())} ($count)"
            }
        }
    }

    private fun drawSync(s: SyncViewModel.State) {
        val running = s is SyncViewModel.State.Running
        progress.visibility = if (running) View.VISIBLE else View.GONE
        cancelButton.visibility = if (running) View.VISIBLE else View.GONE
        syncButton.isEnabled = !running
        when (s) {
            is SyncViewModel.State.Running -> status.text = s.howFar(app.lang())
                ?: getString(R.string.sync_progress, s.casesDown.toInt(), (s.bytesDown / 1024).toInt())
            is SyncViewModel.State.Failed -> {
                status.text = s.error.message
                if (s.error.next == UiError.Next.ENROLL_AGAIN) {
                    startActivity(Intent(this, StartActivity::class.java))
                    finish()
                }
            }
            else -> lifecycleScope.launch {
                val lang = app.lang()
                status.text = when (val line = attempt(lang) { state.sync?.lastSyncLine().orEmpty() }) {
                    is Outcome.Ok -> line.value
                    is Outcome.Failed -> line.error.message
                }
                // What did not go through, case by case, for the agent to act on.
                if (s is SyncViewModel.State.Done && s.setAside.isNotEmpty()) {
                    status.append("\n" + s.setAside.joinToString("\n"))
                }
                if (s is SyncViewModel.State.Done) refreshList(pause = 0)
            }
        }
    }
}
