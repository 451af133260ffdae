package org.suivi.demo.ui

import android.os.Bundle
import android.widget.Button
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import androidx.activity.viewModels
import androidx.lifecycle.ViewModel
import androidx.lifecycle.lifecycleScope
import kotlinx.coroutines.launch
import org.suivi.demo.R
import org.suivi.demo.logic.CaseEditModel
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.Outcome
import org.suivi.demo.logic.attempt

/** The edit in progress, kept across rotation and the lock screen. */
class CaseEditViewModel : ViewModel() {
    var model: CaseEditModel? = null
    val moveAnswers = HashMap<String, String>()
}

/**
 * Editing a case's identification with its own form version, and moving it to a newer one when
 * one is held: the behaviour is `CaseEditModel`'s (tested on the JVM); this draws each field's
 * input (`fieldInput`: choices by label, a calendar, the GPS) with its label, the errors under
 * them, and the questions a move asks. Loaded once; what
 * the agent typed survives the screen going off and the PIN. (Android only.)
 */
class CaseEditActivity : ChildScreen() {
    private val state: CaseEditViewModel by viewModels()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val caseId = intent.getStringExtra("case_id") ?: return finish()
        val repository = app.repository ?: return finish()
        val lang = app.lang()
        lifecycleScope.launch {
            val body = LinearLayout(this@CaseEditActivity).apply { orientation = LinearLayout.VERTICAL }
            show(ScrollView(this@CaseEditActivity).apply { addView(body) })
            val loaded = state.model?.let { Outcome.Ok(it) }
                ?: attempt(lang) { CaseEditModel.load(repository, caseId, lang) }
            val model = when (loaded) {
                is Outcome.Ok -> loaded.value.also { state.model = it }
                is Outcome.Failed -> {
                    body.addView(TextView(this@CaseEditActivity).apply { text = loaded.error.message })
                    return@launch
                }
            }
            val errors = HashMap<String, TextView>()
            for (field in model.form.fields) {
                body.addView(TextView(this@CaseEditActivity).apply { text = field.label + if (field.required) " *" else "" })
                body.addView(fieldInput(field, model.inputs[field.id].orEmpty(), lang) { model.inputs[field.id] = it })
                errors[field.id] = TextView(this@CaseEditActivity).apply { setTextColor(0xFFB00020.toInt()) }.also { body.addView(it) }
            }
            val message = TextView(this@CaseEditActivity).also { body.addView(it) }
            body.addView(Button(this@CaseEditActivity).apply {
                text = getString(R.string.save)
                setOnClickListener {
                    lifecycleScope.launch {
                        when (val saved = model.save()) {
                            is Outcome.Ok -> finish()
                            is Outcome.Failed -> {
                                errors.forEach { (id, view) -> view.text = model.fieldErrors[id].orEmpty() }
                                message.text = saved.error.message
                            }
                        }
                    }
                }
            })
            if (model.canMove) {
                // The newest version's questions the record lacks, then the move.
                val asks = when (val asked = attempt(lang) { model.moveAsks() }) {
                    is Outcome.Ok -> asked.value
                    is Outcome.Failed -> emptyList()
                }
                for (field in asks) {
                    body.addView(TextView(this@CaseEditActivity).apply { text = field.label + " *" })
                    body.addView(fieldInput(field, state.moveAnswers[field.id].orEmpty(), lang) { state.moveAnswers[field.id] = it })
                }
                body.addView(Button(this@CaseEditActivity).apply {
                    text = Messages.text("case.move", lang)
                    setOnClickListener {
                        lifecycleScope.launch {
                            when (val moved = model.moveToNewest(state.moveAnswers)) {
                                is Outcome.Ok -> finish()
                                is Outcome.Failed -> message.text = (moved.error.fieldErrors.values + moved.error.message).joinToString("\n")
                            }
                        }
                    }
                })
            }
        }
    }

    override fun onStart() {
        super.onStart()
        unlocked()
    }
}
