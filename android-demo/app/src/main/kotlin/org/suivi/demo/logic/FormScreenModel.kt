package org.suivi.demo.logic

import org.suivi.core.CaseStore
import org.suivi.core.FieldInfo
import org.suivi.core.FormInfo

/**
 * A form screen rendered from the form definition (a new form version needs no app release):
 * the fields to show given the answers so far, the inputs, and the errors after a submit.
 */
class FormScreenModel(private val store: CaseStore, formId: String, val lang: Lang) {
    val form: FormInfo = store.form(formId, lang.tag)
    val inputs: MutableMap<String, String> = linkedMapOf()
    var fieldErrors: Map<String, String> = emptyMap()
        private set

    val rightToLeft: Boolean get() = form.rightToLeft

    /** The fields to draw now, in form order: relevance is decided by core. */
    fun visibleFields(): List<FieldInfo> {
        val visible = store.visibleFields(form.id, inputs.filterValues { it.isNotBlank() }).toSet()
        return form.fields.filter { it.id in visible }
    }

    fun set(fieldId: String, value: String) {
        inputs[fieldId] = value
    }

    /** Only the answers of fields still shown are submitted. */
    private fun answers(): Map<String, String> {
        val shown = visibleFields().map { it.id }.toSet()
        return inputs.filter { (k, v) -> k in shown && v.isNotBlank() }
    }

    /** Saves a new case from this identification form; errors land on their fields. */
    fun submitNewCase(): Outcome<String> = record { store.createCase(answers()) }

    fun submitReferral(caseId: String): Outcome<String> = record { store.refer(caseId, answers()) }

    fun submitFollowUp(caseId: String): Outcome<String> = record { store.addFollowup(caseId, answers()) }

    private fun record(save: () -> String): Outcome<String> {
        val outcome = attempt(lang, save)
        fieldErrors = (outcome as? Outcome.Failed)?.error?.fieldErrors ?: emptyMap()
        return outcome
    }
}
