package org.suivi.demo.logic

import kotlinx.coroutines.sync.withLock
import org.suivi.core.FieldInfo
import org.suivi.core.FormInfo

/**
 * A form screen rendered from the form definition (a new form version needs no app release):
 * the fields to show given the answers so far, re-evaluated as each answer is typed, the inputs,
 * and the errors after a submit. Each answer is kept at once as a draft in the encrypted store
 * (`caseId`: the case the form adds to, none for a new case), so a form Android kills half-way
 * opens again with its answers; a save or `discard` ends the draft.
 */
class FormScreenModel private constructor(
    private val repository: CaseRepository,
    val form: FormInfo,
    val lang: Lang,
    val caseId: String?,
) {
    companion object {
        /** The form, with the answers of its draft if one was kept. */
        suspend fun load(repository: CaseRepository, formId: String, lang: Lang, caseId: String? = null): FormScreenModel {
            val model = FormScreenModel(repository, repository.form(formId, lang), lang, caseId)
            repository.draft(formId, caseId)?.let { draft ->
                model.inputs.putAll(draft.inputs)
                model.restored = true
            }
            return model
        }
    }

    val inputs: MutableMap<String, String> = java.util.Collections.synchronizedMap(linkedMapOf())
    @Volatile var fieldErrors: Map<String, String> = emptyMap()
        private set
    @Volatile var visible: List<FieldInfo> = emptyList()
        private set
    /** Whether the answers came back from a draft (the screen says so). */
    @Volatile var restored: Boolean = false
        private set

    /**
     * Drafts are kept, discarded and ended one at a time; once the record is saved or the form
     * discarded, a keep still on its way (a relevance check typed a moment before) writes
     * nothing, so a discarded child's answers never come back.
     */
    private val drafting = kotlinx.coroutines.sync.Mutex()
    @Volatile private var ended = false

    val rightToLeft: Boolean get() = form.rightToLeft

    /** The fields to draw now, in form order: relevance is decided by core. */
    suspend fun visibleFields(): List<FieldInfo> {
        val shown = repository.visibleFields(form.id, inputs.filterValues { it.isNotBlank() }).toSet()
        visible = form.fields.filter { it.id in shown }
        return visible
    }

    /**
     * Records an answer, keeps the draft, and returns the fields to draw now: one made relevant
     * appears at once.
     */
    suspend fun answer(fieldId: String, value: String): List<FieldInfo> {
        inputs[fieldId] = value
        keepDraft()
        return visibleFields()
    }

    /** Keeps the answers typed so far; a failure to keep them never stops the typing. */
    suspend fun keepDraft() {
        val snapshot = synchronized(inputs) { inputs.toMap() }
        drafting.withLock {
            if (ended) return
            runCatching { repository.saveDraft(form.id, caseId, snapshot) }
                .onFailure { if (it is kotlinx.coroutines.CancellationException) throw it }
        }
    }

    /** Throws the answers away, here and in the store. */
    suspend fun discard() {
        inputs.clear()
        fieldErrors = emptyMap()
        restored = false
        endDraft()
    }

    private suspend fun endDraft() {
        drafting.withLock {
            ended = true
            repository.discardDraft(form.id, caseId)
        }
    }

    /** Only the answers of fields still shown are submitted. */
    private suspend fun answers(): Map<String, String> {
        val shown = visibleFields().map { it.id }.toSet()
        return inputs.filter { (k, v) -> k in shown && v.isNotBlank() }
    }

    /** Saves a new case from this identification form; errors land on their fields. */
    suspend fun submitNewCase(): Outcome<String> = record { repository.createCase(it) }

    suspend fun submitReferral(caseId: String): Outcome<String> = record { repository.refer(caseId, it) }

    suspend fun submitFollowUp(caseId: String): Outcome<String> = record { repository.addFollowUp(caseId, it) }

    private suspend fun record(save: suspend (Map<String, String>) -> String): Outcome<String> {
        val outcome = try {
            Outcome.Ok(save(answers()))
        } catch (e: org.suivi.core.SuiviException.Validation) {
            Outcome.Failed(e.onFields(form, lang))
        } catch (e: kotlinx.coroutines.CancellationException) {
            throw e
        } catch (e: Throwable) {
            Outcome.Failed(e.toUiError(lang))
        }
        fieldErrors = (outcome as? Outcome.Failed)?.error?.fieldErrors ?: emptyMap()
        // Saved: the draft has done its work (a failure to drop it is only a stale draft).
        if (outcome is Outcome.Ok) runCatching { endDraft() }
        return outcome
    }
}
