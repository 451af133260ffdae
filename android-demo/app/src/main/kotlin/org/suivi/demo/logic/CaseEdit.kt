package org.suivi.demo.logic

import org.suivi.core.ConflictChoice
import org.suivi.core.ConflictOption
import org.suivi.core.FieldInfo
import org.suivi.core.FormInfo

/**
 * Editing a case's identification with the form version its record follows (an older version's
 * record is never checked against a newer one behind the agent's back). When a newer version is
 * published, `moveAsks` lists what it requires that the record lacks, and `moveToNewest` moves
 * the record once those are answered.
 */
class CaseEditModel private constructor(
    private val repository: CaseRepository,
    val caseId: String,
    val form: FormInfo,
    val newest: FormInfo,
    private val recorded: Map<String, String>,
    val lang: Lang,
) {
    companion object {
        suspend fun load(repository: CaseRepository, caseId: String, lang: Lang): CaseEditModel {
            val detail = repository.case(caseId)
            return CaseEditModel(
                repository,
                caseId,
                repository.formVersion("identification", detail.identificationForm, lang),
                repository.form("identification", lang),
                detail.identification,
                lang,
            )
        }
    }

    /** Prefilled with what the record holds; the agent changes some. */
    val inputs: MutableMap<String, String> = java.util.Collections.synchronizedMap(LinkedHashMap(recorded))
    @Volatile var fieldErrors: Map<String, String> = emptyMap()
        private set

    /** Whether a newer version of the form is held than the one the record follows. */
    val canMove: Boolean get() = newest.version > form.version

    /** What the newest version requires that the record does not hold: what moving asks. */
    suspend fun moveAsks(): List<FieldInfo> {
        if (!canMove) return emptyList()
        val shown = repository.visibleFields("identification", inputs.filterValues { it.isNotBlank() }).toSet()
        return newest.fields.filter { it.required && it.id in shown && inputs[it.id].isNullOrBlank() }
    }

    /** Saves what changed (an emptied answer clears its field); the fields that changed. */
    suspend fun save(): Outcome<List<String>> = checked(form) {
        val changed = inputs.filter { (k, v) -> recorded[k].orEmpty() != v }
        repository.editCase(caseId, changed)
    }

    /** Moves the record to the newest version with the answers it asked for (`answers`). */
    suspend fun moveToNewest(answers: Map<String, String>): Outcome<List<String>> = checked(newest) {
        repository.moveCaseForm(caseId, answers.filterValues { it.isNotBlank() })
    }

    private suspend fun checked(against: FormInfo, call: suspend () -> List<String>): Outcome<List<String>> {
        val outcome = try {
            Outcome.Ok(call())
        } catch (e: org.suivi.core.SuiviException.Validation) {
            Outcome.Failed(e.onFields(against, lang))
        } catch (e: kotlinx.coroutines.CancellationException) {
            throw e
        } catch (e: Throwable) {
            Outcome.Failed(e.toUiError(lang))
        }
        fieldErrors = (outcome as? Outcome.Failed)?.error?.fieldErrors ?: emptyMap()
        return outcome
    }
}

/**
 * Settling what two phones set at once: each value by its label, who wrote it (checked by the
 * server or not), from which phone and when; keeping one settles it here, and the other phones
 * see it settled at their next sync.
 */
class ConflictPicker(
    private val repository: CaseRepository,
    private val lang: Lang,
    private val zone: String = java.time.ZoneId.systemDefault().id,
) {
    suspend fun choices(caseId: String): List<ConflictChoice> = repository.conflictChoices(caseId, lang, zone)

    /** One value as the picker lists it: "Kaniko — ✔ amina (dev-…), 7 décembre 2026 à 10:42". */
    fun line(option: ConflictOption): String {
        val who = listOfNotNull(
            option.author?.let { (if (option.verified) "✔ " else "") + it },
            option.phone?.let { "(${it.take(12)})" },
        ).joinToString(" ")
        return listOf(option.value, listOf(who, option.at).filter { it.isNotBlank() }.joinToString(", "))
            .filter { it.isNotBlank() }
            .joinToString(" — ")
    }

    suspend fun keep(caseId: String, choice: ConflictChoice, option: ConflictOption): Outcome<Unit> =
        attempt(lang) { repository.resolveConflict(caseId, choice.path, option.input) }
}
