package org.suivi.demo.logic

import org.suivi.core.CaseSummary
import org.suivi.core.ClosureInfo
import org.suivi.core.ClosureReason
import org.suivi.core.OutcomeInWords
import org.suivi.core.closureReasons
import org.suivi.core.outcomeInWords

/**
 * A case's outcome and closure on the phone: the stage core derives and the next step (on the
 * case screen and in the list), the closure's steps with who took them, and the steps this
 * phone's user may take: an agent proposes closure with a reason, a supervisor's phone approves
 * or returns it (offline if need be), a closed case is reopened. Words and rules are core's.
 */
class ClosureModel(
    private val repository: CaseRepository,
    private val lang: Lang,
    private val zone: String = java.time.ZoneId.systemDefault().id,
) {
    /** The stage, classification and next step of a list row; none for a row listed ahead. */
    fun outcome(row: CaseSummary): OutcomeInWords? = outcomeInWords(row, lang.tag)

    /** One line for the list: "sorti du travail · retiré du travail — clôture proposée". */
    fun line(row: CaseSummary): String? {
        val words = outcome(row) ?: return null
        val stage = listOfNotNull(words.stage, words.classification).joinToString(" · ")
        return listOfNotNull(stage, words.closure).joinToString(" — ")
    }

    suspend fun closure(caseId: String): ClosureInfo = repository.closure(caseId, lang, zone)

    /** What a reason picker offers. */
    fun reasons(): List<ClosureReason> = closureReasons(lang.tag)

    suspend fun propose(caseId: String, reason: ClosureReason, note: String?): Outcome<Unit> =
        attempt(lang) { repository.proposeClosure(caseId, reason.code, note?.takeIf { it.isNotBlank() }) }

    /** A supervisor's phone: approve, or return with a note (a return without one is refused). */
    suspend fun decide(caseId: String, approve: Boolean, note: String?): Outcome<Unit> {
        if (!approve && note.isNullOrBlank()) {
            return Outcome.Failed(UiError(Messages.text("error", lang), mapOf("note" to Messages.text("required", lang))))
        }
        return attempt(lang) { repository.decideClosure(caseId, approve, note?.takeIf { it.isNotBlank() }) }
    }

    suspend fun reopen(caseId: String, note: String?): Outcome<Unit> =
        attempt(lang) { repository.reopenCase(caseId, note?.takeIf { it.isNotBlank() }) }
}
