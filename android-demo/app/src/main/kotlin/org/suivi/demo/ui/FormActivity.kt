package org.suivi.demo.ui

import android.content.Intent
import android.os.Bundle
import android.text.InputType
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.CheckBox
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.Spinner
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.activity.viewModels
import androidx.lifecycle.ViewModel
import androidx.lifecycle.lifecycleScope
import kotlinx.coroutines.launch
import org.suivi.core.FieldInfo
import org.suivi.demo.R
import org.suivi.demo.logic.FormScreenModel
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.Outcome

/** The form and its typed answers, kept across rotation. */
class FormViewModel : ViewModel() {
    var model: FormScreenModel? = null
}

/**
 * Any form (identification, referral, follow-up) drawn from its definition: labels and choices
 * in the agent's language, never raw ids; a field made relevant by an answer appears as soon as
 * the answer is typed; errors shown on their fields. (Android only.)
 */
class FormActivity : ComponentActivity() {
    private val state: FormViewModel by viewModels()
    private lateinit var body: LinearLayout
    private var drawn: List<String> = emptyList()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val repository = app.repository ?: return finish()
        body = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        setContentView(ScrollView(this).apply { addView(body) })
        lifecycleScope.launch {
            val model = state.model
                ?: FormScreenModel.load(repository, intent.getStringExtra("form") ?: "identification", app.lang())
                    .also { state.model = it }
            window.decorView.layoutDirection = if (model.rightToLeft) View.LAYOUT_DIRECTION_RTL else View.LAYOUT_DIRECTION_LTR
            draw(model, model.visibleFields())
        }
    }

    /** Called on each answer: redraws only when the set of relevant fields changed. */
    private fun answered(model: FormScreenModel, fieldId: String, value: String) {
        lifecycleScope.launch {
            val visible = model.answer(fieldId, value)
            if (visible.map { it.id } != drawn) draw(model, visible)
        }
    }

    private fun draw(model: FormScreenModel, fields: List<FieldInfo>) {
        drawn = fields.map { it.id }
        body.removeAllViews()
        body.addView(TextView(this).apply { text = model.form.title; textSize = 20f })
        for (field in fields) {
            body.addView(TextView(this).apply { text = field.label + if (field.required) " *" else "" })
            body.addView(input(model, field))
            model.fieldErrors[field.id]?.let { error ->
                body.addView(TextView(this).apply { text = error; setTextColor(0xFFB00020.toInt()) })
            }
        }
        body.addView(Button(this).apply {
            text = getString(R.string.save)
            setOnClickListener { save(model) }
        })
    }

    private fun input(model: FormScreenModel, field: FieldInfo): View {
        val current = model.inputs[field.id].orEmpty()
        return when (field.fieldType) {
            "select_one", "boolean" -> {
                // Labels shown, ids stored; an empty first entry means "no answer".
                val options = if (field.fieldType == "boolean") {
                    listOf("oui" to Messages.text("yes", model.lang), "non" to Messages.text("no", model.lang))
                } else {
                    field.choices.map { it.id to it.label }
                }
                Spinner(this).apply {
                    adapter = ArrayAdapter(this@FormActivity, android.R.layout.simple_spinner_dropdown_item, listOf("") + options.map { it.second })
                    setSelection(options.indexOfFirst { it.first == current } + 1)
                    onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
                        override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) {
                            val value = if (position == 0) "" else options[position - 1].first
                            if (value != model.inputs[field.id].orEmpty()) answered(model, field.id, value)
                        }
                        override fun onNothingSelected(parent: AdapterView<*>?) {}
                    }
                }
            }
            "select_multiple" -> LinearLayout(this).apply {
                orientation = LinearLayout.VERTICAL
                val chosen = current.split(',').filter { it.isNotBlank() }.toMutableSet()
                for (choice in field.choices) {
                    addView(CheckBox(this@FormActivity).apply {
                        text = choice.label
                        isChecked = choice.id in chosen
                        setOnCheckedChangeListener { _, checked ->
                            if (checked) chosen.add(choice.id) else chosen.remove(choice.id)
                            answered(model, field.id, field.choices.map { it.id }.filter { it in chosen }.joinToString(","))
                        }
                    })
                }
            }
            else -> EditText(this).apply {
                setText(current)
                inputType = when (field.fieldType) {
                    "integer" -> InputType.TYPE_CLASS_NUMBER
                    "decimal" -> InputType.TYPE_CLASS_NUMBER or InputType.TYPE_NUMBER_FLAG_DECIMAL
                    "phone" -> InputType.TYPE_CLASS_PHONE
                    "date" -> InputType.TYPE_CLASS_DATETIME or InputType.TYPE_DATETIME_VARIATION_DATE
                    else -> if (field.multiline) InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_MULTI_LINE else InputType.TYPE_CLASS_TEXT
                }
                addTextChangedListener(Watcher { answered(model, field.id, it) })
            }
        }
    }

    private fun save(model: FormScreenModel) {
        lifecycleScope.launch {
            val caseId = intent.getStringExtra("case_id").orEmpty()
            val outcome = when (model.form.id) {
                "referral" -> model.submitReferral(caseId)
                "followup" -> model.submitFollowUp(caseId)
                else -> model.submitNewCase()
            }
            when (outcome) {
                is Outcome.Ok -> {
                    if (model.form.id == "identification") {
                        startActivity(Intent(this@FormActivity, CaseActivity::class.java).putExtra("case_id", outcome.value))
                    }
                    finish()
                }
                is Outcome.Failed -> draw(model, model.visible)
            }
        }
    }
}
