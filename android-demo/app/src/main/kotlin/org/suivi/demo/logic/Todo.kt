package org.suivi.demo.logic

import org.suivi.core.CaseSummary
import org.suivi.core.dateInWords
import java.time.LocalDate
import java.time.temporal.ChronoUnit

/**
 * The agent's "to do" screen, and the count the main screen shows: visits overdue or due within
 * a week (most overdue first), referrals waiting on the agent (a draft to send, a declined one to
 * transfer or close), cases with a conflict to settle. Narrowed by risk and village as the
 * caseload is; which rows belong is core's (`CaseStore.todo`), the words are here: the child, the
 * village, the risk by its label, when a visit is due ("en retard de 6 jours"), the referral's
 * service and status.
 */
class TodoModel(
    private val repository: CaseRepository,
    @Volatile var lang: Lang = Lang.FR,
    private val today: () -> LocalDate = { LocalDate.now() },
) {
    @Volatile var riskLevel: String? = null
    @Volatile var village: String? = null

    enum class Kind { VISIT, REFERRAL, CONFLICT }

    data class Row(val kind: Kind, val caseId: String, val title: String, val detail: String, val late: Boolean)

    data class Screen(val rows: List<Row>, val count: Int, val error: UiError?)

    @Volatile var screen: Screen = Screen(emptyList(), 0, null)
        private set

    suspend fun refresh(): Screen {
        val next = try {
            val day = today()
            val todo = repository.todo(day.toString(), riskLevel, village?.ifBlank { null })
            val risks = choiceLabels("identification", "risk_level")
            val services = choiceLabels("referral", "service_type")
            fun where(c: CaseSummary): String =
                listOfNotNull(c.village, c.riskLevel?.let { risks[it] ?: it }).joinToString(" · ")
            val rows = todo.visits.map { c ->
                val due = LocalDate.parse(c.nextFollowupDue)
                Row(Kind.VISIT, c.caseId, "${c.firstName} ${c.lastName}", listOf(where(c), dueText(due, day)).filter { it.isNotEmpty() }.joinToString(" — "), due < day)
            } + todo.referrals.map { w ->
                val service = w.serviceType?.let { services[it] ?: it }
                val what = listOfNotNull(service, w.provider).joinToString(" · ")
                Row(Kind.REFERRAL, w.case.caseId, "${w.case.firstName} ${w.case.lastName}", "$what — ${Messages.text("status.${w.status}", lang)}", false)
            } + todo.conflicts.map { c ->
                Row(Kind.CONFLICT, c.caseId, "${c.firstName} ${c.lastName}", listOf(where(c), Messages.text("todo.conflict", lang)).filter { it.isNotEmpty() }.joinToString(" — "), false)
            }
            Screen(rows, rows.size, null)
        } catch (e: kotlinx.coroutines.CancellationException) {
            throw e
        } catch (e: Throwable) {
            Screen(screen.rows, screen.count, e.toUiError(lang))
        }
        screen = next
        return next
    }

    /** When a visit is due, as the agent says it, with the day in words. */
    fun dueText(due: LocalDate, day: LocalDate): String {
        val days = ChronoUnit.DAYS.between(day, due)
        val relative = when {
            days < 0 -> Messages.text("due.late", lang).replace("{n}", (-days).toString())
            days == 0L -> Messages.text("due.today", lang)
            else -> Messages.text("due.in", lang).replace("{n}", days.toString())
        }
        return "$relative (${dateInWords(due.toString(), lang.tag)})"
    }

    private suspend fun choiceLabels(formId: String, fieldId: String): Map<String, String> =
        repository.form(formId, lang).fields.firstOrNull { it.id == fieldId }?.choices?.associate { it.id to it.label } ?: emptyMap()
}
