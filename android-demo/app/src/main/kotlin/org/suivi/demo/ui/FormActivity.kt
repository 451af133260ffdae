package org.suivi.demo.ui

import android.content.Intent
import android.os.Bundle
import android.view.View
import android.widget.Button
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import androidx.activity.viewModels
import androidx.lifecycle.ViewModel
import androidx.lifecycle.viewModelScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.launch
import org.suivi.core.FieldInfo
import org.suivi.demo.R
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.FormScreenModel
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.Outcome
import org.suivi.demo.logic.UiError
import org.suivi.demo.logic.attempt

/**
 * The form, its typed answers, which fields are relevant and the save's outcome, kept across
 * rotation. Only the latest answer's relevance check lands; one save at a time.
 */
class FormViewModel : ViewModel() {
    @Volatile var model: FormScreenModel? = null
    @Volatile var error: UiError? = null
    @Volatile var saving = false
    @Volatile var saved: String? = null
    var listener: (() -> Unit)? = null
    private var relevance: Job? = null

    fun load(repository: CaseRepository, formId: String, caseId: String?, lang: Lang) {
        if (model?.lang == lang) return
        viewModelScope.launch {
            when (val loaded = attempt(lang) { FormScreenModel.load(repository, formId, lang, caseId).also { it.visibleFields() } }) {
                is Outcome.Ok -> model = loaded.value
                is Outcome.Failed -> error = loaded.error
            }
            listener?.invoke()
        }
    }

    fun answer(fieldId: String, value: String) {
        val model = model ?: return
        model.inputs[fieldId] = value
        relevance?.cancel()
        relevance = viewModelScope.launch {
            // Kept as a draft at each answer: the process may be killed at any moment.
            attempt(model.lang) { model.keepDraft(); model.visibleFields() }
            listener?.invoke()
        }
    }

    /** The agent throws the half-filled form away: in the app's scope, since the screen closes. */
    fun discard(app: SuiviApp) {
        val model = model ?: return
        relevance?.cancel()
        app.scope.launch { attempt(model.lang) { model.discard() } }
    }

    fun save(caseId: String) {
        val model = model ?: return
        if (saving) return
        saving = true
        listener?.invoke()
        viewModelScope.launch {
            val outcome = when (model.form.id) {
                "referral" -> model.submitReferral(caseId)
                "followup" -> model.submitFollowUp(caseId)
                else -> model.submitNewCase()
            }
            saving = false
            when (outcome) {
                is Outcome.Ok -> saved = outcome.value
                is Outcome.Failed -> error = outcome.error
            }
            listener?.invoke()
        }
    }
}

/**
 * Any form (identification, referral, follow-up) drawn from its definition: labels and choices
 * in the agent's language, never raw ids; a field made relevant by an answer appears as soon as
 * the answer is typed, without redrawing the field being typed in; errors shown on their
 * fields. (Android only.)
 */
class FormActivity : ChildScreen() {
    private val state: FormViewModel by viewModels()
    private lateinit var body: LinearLayout
    private val rows = mutableMapOf<String, Pair<View, TextView>>()
    private var save: Button? = null
    private var message: TextView? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val formId = intent.getStringExtra("form") ?: "identification"
        val caseId = intent.getStringExtra("case_id")?.ifEmpty { null }
        val repository = app.repository ?: run {
            // Restored after the process was killed: open the store (and ask the PIN) first,
            // then come back here, where the draft brings the answers back.
            startActivity(Intent(this, StartActivity::class.java).putExtra("resume_form", formId).putExtra("case_id", caseId))
            finish()
            return
        }
        body = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        show(ScrollView(this).apply { addView(body) })
        state.load(repository, formId, caseId, app.lang())
    }

    override fun onStart() {
        super.onStart()
        if (!unlocked()) return
        state.listener = { render() }
        render()
    }

    override fun onStop() {
        state.listener = null
        super.onStop()
    }

    private fun render() {
        state.saved?.let { caseId ->
            if (state.model?.form?.id == "identification") {
                startActivity(Intent(this, CaseActivity::class.java).putExtra("case_id", caseId))
            }
            finish()
            return
        }
        val model = state.model
        if (model == null) {
            state.error?.let { error -> body.removeAllViews(); body.addView(TextView(this).apply { text = error.message }) }
            return
        }
        if (rows.isEmpty()) build(model)
        val shown = model.visible.map { it.id }.toSet()
        for ((id, row) in rows) {
            row.first.visibility = if (id in shown) View.VISIBLE else View.GONE
            val error = model.fieldErrors[id]
            row.second.text = error.orEmpty()
            row.second.visibility = if (error != null && id in shown) View.VISIBLE else View.GONE
        }
        save?.isEnabled = !state.saving
        message?.text = state.error?.takeIf { model.fieldErrors.isEmpty() }?.message
            ?: if (model.restored) Messages.text("draft.restored", model.lang) else ""
    }

    /** One row per field of the form, built once; relevance only shows and hides them. */
    private fun build(model: FormScreenModel) {
        window.decorView.layoutDirection = if (model.rightToLeft) View.LAYOUT_DIRECTION_RTL else View.LAYOUT_DIRECTION_LTR
        body.removeAllViews()
        body.addView(TextView(this).apply { text = model.form.title; textSize = 20f })
        for (field in model.form.fields) {
            val error = TextView(this).apply { setTextColor(0xFFB00020.toInt()) }
            val row = LinearLayout(this).apply {
                orientation = LinearLayout.VERTICAL
                addView(TextView(this@FormActivity).apply { text = field.label + if (field.required) " *" else "" })
                addView(input(model, field))
                addView(error)
            }
            rows[field.id] = row to error
            body.addView(row)
        }
        message = TextView(this).also { body.addView(it) }
        body.addView(Button(this).apply {
            text = Messages.text("draft.discard", model.lang)
            setOnClickListener {
                state.discard(app)
                finish()
            }
        })
        save = Button(this).apply {
            text = getString(R.string.save)
            setOnClickListener {
                currentFocus?.clearFocus()
                state.save(intent.getStringExtra("case_id").orEmpty())
            }
        }.also { body.addView(it) }
    }

    private fun input(model: FormScreenModel, field: FieldInfo): View =
        fieldInput(field, model.inputs[field.id].orEmpty(), model.lang) { value ->
            if (value != model.inputs[field.id].orEmpty()) state.answer(field.id, value)
        }
}
