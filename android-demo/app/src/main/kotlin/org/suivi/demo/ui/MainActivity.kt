package org.suivi.demo.ui

import android.app.Activity
import android.content.Intent
import android.os.Bundle
import android.text.Editable
import android.text.TextWatcher
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ListView
import android.widget.TextView
import org.suivi.demo.R
import org.suivi.demo.logic.CaseListViewModel
import org.suivi.demo.logic.SyncViewModel
import java.util.concurrent.Executors

/** The caseload: search, list, sync with progress and last-sync status, conflicts badge. */
class MainActivity : Activity() {
    private val background = Executors.newSingleThreadExecutor()
    private lateinit var list: CaseListViewModel
    private lateinit var sync: SyncViewModel
    private lateinit var adapter: ArrayAdapter<String>
    private lateinit var status: TextView
    private lateinit var badge: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val store = Session.store(this)
        list = CaseListViewModel(store, Session.lang())
        sync = SyncViewModel(store, Session.lang())
        val search = EditText(this).apply { hint = getString(R.string.search_hint) }
        badge = TextView(this)
        status = TextView(this)
        adapter = ArrayAdapter(this, android.R.layout.simple_list_item_1, mutableListOf())
        val listView = ListView(this).apply {
            adapter = this@MainActivity.adapter
            setOnItemClickListener { _, _, position, _ ->
                startActivity(Intent(this@MainActivity, CaseActivity::class.java).putExtra("case_id", list.cases[position].caseId))
            }
        }
        val newCase = Button(this).apply {
            text = getString(R.string.new_case)
            setOnClickListener { startActivity(Intent(this@MainActivity, FormActivity::class.java).putExtra("form", "identification")) }
        }
        val syncButton = Button(this).apply {
            text = getString(R.string.sync)
            setOnClickListener {
                background.execute {
                    sync.sync()
                    runOnUiThread { render() }
                }
            }
        }
        search.addTextChangedListener(object : TextWatcher {
            override fun afterTextChanged(s: Editable?) {
                list.search = s?.toString().orEmpty()
                render()
            }
            override fun beforeTextChanged(s: CharSequence?, start: Int, count: Int, after: Int) {}
            override fun onTextChanged(s: CharSequence?, start: Int, before: Int, count: Int) {}
        })
        setContentView(LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            addView(search); addView(badge); addView(status); addView(newCase); addView(syncButton); addView(listView)
        })
    }

    override fun onResume() {
        super.onResume()
        render()
    }

    private fun render() {
        list.refresh()
        adapter.clear()
        adapter.addAll(list.cases.map { "${list.title(it)} · ${it.village.orEmpty()} · ${it.riskLevel.orEmpty()}" })
        badge.text = getString(R.string.conflicts, list.conflictBadge.toInt())
        status.text = when (val s = sync.state) {
            is SyncViewModel.State.Running -> "↓ ${s.casesDown} · ${s.bytesDown / 1024} KB"
            is SyncViewModel.State.Failed -> s.error.message
            else -> sync.lastSyncLine()
        }
    }
}
