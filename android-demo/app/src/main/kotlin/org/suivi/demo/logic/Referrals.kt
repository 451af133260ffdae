package org.suivi.demo.logic

import org.suivi.core.CaseDetail
import org.suivi.core.ReferralInfo
import org.suivi.core.ReferralMove
import org.suivi.core.dateInWords
import org.suivi.core.referralMoves

/**
 * A case's referral chains, each ordered from the first referral to the latest transfer: who
 * referred the child to which service, and what happened next.
 */
fun referralChains(case: CaseDetail): List<List<ReferralInfo>> {
    val byId = case.referrals.associateBy { it.referralId }
    return case.referrals
        .filter { it.previousReferral == null || it.previousReferral !in byId }
        .map { first ->
            generateSequence(first) { r -> r.nextReferral?.let { byId[it] } }.toList()
        }
}

/**
 * One referral as the case screen shows it: the service and provider by their labels (from the
 * referral's own form version), the status in words, each step with its note, and the moves
 * core allows from its status.
 */
data class ReferralLine(
    val referral: ReferralInfo,
    val title: String,
    val status: String,
    val steps: List<String>,
    val moves: List<ReferralMove>,
)

/**
 * The referrals of a case, and the moves an agent makes on them from the phone: send, accept,
 * decline, start, complete, transfer to a new provider, close, each with its note. The moves
 * offered are core's (`referralMoves`), never a list kept here.
 */
class ReferralModel(private val repository: CaseRepository, private val lang: Lang) {
    suspend fun chains(caseId: String): List<List<ReferralLine>> {
        val case = repository.case(caseId)
        val forms = HashMap<UInt, org.suivi.core.FormInfo>()
        return referralChains(case).map { chain ->
            chain.map { r ->
                val form = forms.getOrPut(r.formVersion) { repository.formVersion("referral", r.formVersion, lang) }
                fun label(field: String): String? {
                    val value = r.fields[field] ?: return null
                    return form.fields.firstOrNull { it.id == field }?.choices?.firstOrNull { it.id == value }?.label ?: value
                }
                ReferralLine(
                    referral = r,
                    title = listOfNotNull(label("service_type"), label("provider")).joinToString(" · "),
                    status = statusText(r.status),
                    steps = r.steps.map { s ->
                        val note = s.note?.takeIf { it.isNotBlank() }?.let { " « $it »" }.orEmpty()
                        "${dateInWords(s.at, lang.tag)}, ${s.actor} : ${statusText(s.from)} → ${statusText(s.to)}$note"
                    },
                    moves = referralMoves(r.status, lang.tag),
                )
            }
        }
    }

    /**
     * Makes `move` on a referral, with the agent's note; a transfer names the next provider and
     * its outcome is the next referral's id. Refused moves come back in words.
     */
    suspend fun move(referral: ReferralInfo, move: ReferralMove, note: String?, nextProvider: String?): Outcome<String?> {
        if (move.namesProvider && nextProvider.isNullOrBlank()) {
            return Outcome.Failed(UiError(Messages.text("error", lang), mapOf("provider" to Messages.text("required", lang))))
        }
        return attempt(lang) {
            repository.moveReferral(referral.referralId, move.transition, note?.takeIf { it.isNotBlank() }, nextProvider)
        }
    }

    private fun statusText(code: String): String = Messages.text("status.$code", lang)
}
