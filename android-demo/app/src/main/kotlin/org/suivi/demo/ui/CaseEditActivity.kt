package org.suivi.demo.ui

import android.os.Bundle
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.lifecycle.lifecycleScope
import kotlinx.coroutines.launch
import org.suivi.demo.R
import org.suivi.demo.logic.CaseEditModel
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.Outcome

/**
 * Editing a case's identification with its own form version, and moving it to a newer one when
 * one is held: the behaviour is `CaseEditModel`'s (tested on the JVM); this draws a text box per
 * field with its label, the errors under them, and the questions a move asks. (Android only.)
 */
class CaseEditActivity : ComponentActivity() {
    override fun onStart() {
        super.onStart()
        if (!unlocked()) return
        val caseId = intent.getStringExtra("case_id") ?: return finish()
        val repository = app.repository ?: return finish()
        val lang = app.lang()
        lifecycleScope.launch {
            val model = CaseEditModel.load(repository, caseId, lang)
            val body = LinearLayout(this@CaseEditActivity).apply { orientation = LinearLayout.VERTICAL }
            val errors = HashMap<String, TextView>()
            for (field in model.form.fields) {
                body.addView(TextView(this@CaseEditActivity).apply { text = field.label })
                body.addView(EditText(this@CaseEditActivity).apply {
                    setText(model.inputs[field.id].orEmpty())
                    addTextChangedListener(Watcher { model.inputs[field.id] = it })
                })
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
                val answers = HashMap<String, String>()
                for (field in model.moveAsks()) {
                    body.addView(TextView(this@CaseEditActivity).apply { text = field.label + " *" })
                    body.addView(EditText(this@CaseEditActivity).apply { addTextChangedListener(Watcher { answers[field.id] = it }) })
                }
                body.addView(Button(this@CaseEditActivity).apply {
                    text = Messages.text("case.move", lang)
                    setOnClickListener {
                        lifecycleScope.launch {
                            when (val moved = model.moveToNewest(answers)) {
                                is Outcome.Ok -> finish()
                                is Outcome.Failed -> message.text = (moved.error.fieldErrors.values + moved.error.message).joinToString("\n")
                            }
                        }
                    }
                })
            }
            show(ScrollView(this@CaseEditActivity).apply { addView(body) })
        }
    }
}
