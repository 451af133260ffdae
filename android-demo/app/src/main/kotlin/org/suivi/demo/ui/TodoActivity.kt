package org.suivi.demo.ui

import android.content.Intent
import android.os.Bundle
import android.widget.ArrayAdapter
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ListView
import android.widget.Spinner
import android.widget.TextView
import android.widget.AdapterView
import android.view.View
import androidx.lifecycle.lifecycleScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import org.suivi.demo.logic.Outcome
import org.suivi.demo.logic.attempt
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.TodoModel

/**
 * "To do": visits due and overdue, referrals waiting on the agent, conflicts, with a risk
 * choice and a village box; a row opens its case. The rows and their words are `TodoModel`'s.
 * (Android only.)
 */
class TodoActivity : ChildScreen() {
    private lateinit var model: TodoModel
    private lateinit var adapter: ArrayAdapter<String>
    private lateinit var status: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val repository = app.repository ?: return finish()
        val lang = app.lang()
        model = TodoModel(repository, lang)
        title = Messages.text("todo.title", lang)
        status = TextView(this)
        adapter = ArrayAdapter(this, android.R.layout.simple_list_item_1, mutableListOf())
        val risk = Spinner(this)
        val village = EditText(this).apply { hint = Messages.text("todo.village", lang) }
        village.addTextChangedListener(Watcher { text -> model.village = text; refresh() })
        val list = ListView(this).apply {
            adapter = this@TodoActivity.adapter
            setOnItemClickListener { _, _, position, _ ->
                val row = model.screen.rows.getOrNull(position) ?: return@setOnItemClickListener
                startActivity(Intent(this@TodoActivity, CaseActivity::class.java).putExtra("case_id", row.caseId))
            }
        }
        lifecycleScope.launch {
            // The risk levels the identification form offers, by their labels; the first is "all".
            val choices = when (val form = attempt(lang) { repository.form("identification", lang) }) {
                is Outcome.Ok -> form.value.fields.firstOrNull { it.id == "risk_level" }?.choices.orEmpty()
                is Outcome.Failed -> emptyList()
            }
            risk.adapter = ArrayAdapter(this@TodoActivity, android.R.layout.simple_spinner_item,
                listOf(Messages.text("todo.any_risk", lang)) + choices.map { it.label })
            risk.onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
                override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) {
                    model.riskLevel = choices.getOrNull(position - 1)?.id
                    refresh()
                }
                override fun onNothingSelected(parent: AdapterView<*>?) = Unit
            }
        }
        show(LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            listOf(risk, village, status, list).forEach { addView(it) }
        })
    }

    override fun onStart() {
        super.onStart()
        if (!unlocked()) return
        refresh()
    }

    private var refreshing: Job? = null

    /** Only the latest filter's lists land: a refresh still running is cancelled. */
    private fun refresh() {
        refreshing?.cancel()
        refreshing = lifecycleScope.launch {
            delay(200)
            val screen = model.refresh()
            adapter.clear()
            // Two lines a row: the child, then what is due and where.
            adapter.addAll(screen.rows.map { "${it.title}\n${it.detail}" })
            status.text = screen.error?.message ?: "${Messages.text("todo.title", app.lang())} : ${screen.count}"
        }
    }
}
