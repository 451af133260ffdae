package org.suivi.demo.ui

import android.app.Activity
import android.os.Bundle
import android.text.InputType
import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import org.suivi.demo.R
import org.suivi.demo.logic.FormScreenModel
import org.suivi.demo.logic.Outcome

/**
 * Any form (identification, referral, follow-up) drawn from its definition: one input per
 * visible field, choices listed by id and label, errors shown on their fields.
 */
class FormActivity : Activity() {
    private lateinit var model: FormScreenModel
    private lateinit var body: LinearLayout

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        model = FormScreenModel(Session.store(this), intent.getStringExtra("form") ?: "identification", Session.lang())
        body = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        window.decorView.layoutDirection = if (model.rightToLeft) View.LAYOUT_DIRECTION_RTL else View.LAYOUT_DIRECTION_LTR
        setContentView(ScrollView(this).apply { addView(body) })
        render()
    }

    private fun render() {
        body.removeAllViews()
        body.addView(TextView(this).apply { text = model.form.title; textSize = 20f })
        for (field in model.visibleFields()) {
            body.addView(TextView(this).apply { text = field.label + if (field.required) " *" else "" })
            if (field.choices.isNotEmpty()) {
                body.addView(TextView(this).apply { text = field.choices.joinToString("\n") { "${it.id} — ${it.label}" } })
            }
            body.addView(EditText(this).apply {
                setText(model.inputs[field.id].orEmpty())
                inputType = when (field.fieldType) {
                    "integer" -> InputType.TYPE_CLASS_NUMBER
                    "decimal" -> InputType.TYPE_CLASS_NUMBER or InputType.TYPE_NUMBER_FLAG_DECIMAL
                    "phone" -> InputType.TYPE_CLASS_PHONE
                    "date" -> InputType.TYPE_CLASS_DATETIME or InputType.TYPE_DATETIME_VARIATION_DATE
                    else -> if (field.multiline) InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_MULTI_LINE else InputType.TYPE_CLASS_TEXT
                }
                error = model.fieldErrors[field.id]
                setOnFocusChangeListener { _, focused -> if (!focused) model.set(field.id, text.toString()) }
            })
        }
        body.addView(Button(this).apply {
            text = getString(R.string.save)
            setOnClickListener {
                currentFocus?.clearFocus()
                val caseId = intent.getStringExtra("case_id")
                val outcome = when (model.form.id) {
                    "referral" -> model.submitReferral(caseId.orEmpty())
                    "followup" -> model.submitFollowUp(caseId.orEmpty())
                    else -> model.submitNewCase()
                }
                if (outcome is Outcome.Ok) finish() else render()
            }
        })
    }
}
