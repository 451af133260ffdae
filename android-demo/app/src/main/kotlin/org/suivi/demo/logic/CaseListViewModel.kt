package org.suivi.demo.logic

import org.suivi.core.CaseQuery
import org.suivi.core.CaseSummary

/**
 * The caseload screen: a search box, filters, the list, and the conflicts badge. `refresh`
 * reads through the store's read connection on the IO dispatcher; the UI cancels a refresh
 * still running when the agent types again, so only the latest search lands.
 */
class CaseListViewModel(private val repository: CaseRepository, @Volatile var lang: Lang = Lang.FR) {
    @Volatile var search: String = ""
    @Volatile var onlyOverdueOn: String? = null
    @Volatile var riskLevel: String? = null

    /** `risks`: each risk level's label in the reader's language, for the rows. */
    class Screen(
        val cases: List<CaseSummary>,
        val conflictBadge: Long,
        val error: UiError?,
        val risks: Map<String, String> = emptyMap(),
    )

    @Volatile var screen: Screen = Screen(emptyList(), 0, null)
        private set

    val cases: List<CaseSummary> get() = screen.cases
    val conflictBadge: Long get() = screen.conflictBadge

    suspend fun refresh(): Screen {
        val query = CaseQuery(
            text = search.ifBlank { null },
            village = null,
            riskLevel = riskLevel,
            referralStatus = null,
            overdueOn = onlyOverdueOn,
            limit = 500u,
        )
        val next = try {
            val risks = repository.form("identification", lang).fields.firstOrNull { it.id == "risk_level" }
                ?.choices?.associate { it.id to it.label } ?: emptyMap()
            Screen(repository.list(query), repository.conflictedCaseCount(), null, risks)
        } catch (e: kotlinx.coroutines.CancellationException) {
            throw e
        } catch (e: Throwable) {
            Screen(screen.cases, screen.conflictBadge, e.toUiError(lang), screen.risks)
        }
        screen = next
        return next
    }

    /** A list row's title, as the agent reads it. */
    fun title(case: CaseSummary): String = "${case.firstName} ${case.lastName}"

    /**
     * A list row in words: the child, the village, the risk by its label, the next visit's day,
     * the child's stage and the closure (core's words), and whether the case is still arriving
     * with a first sync (read-only until it has).
     */
    fun row(case: CaseSummary): String = listOfNotNull(
        title(case),
        case.village,
        case.riskLevel?.let { screen.risks[it] ?: it },
        case.nextFollowupDue?.let { org.suivi.core.dateInWords(it, lang.tag) },
        org.suivi.core.outcomeInWords(case, lang.tag)?.let { o -> listOfNotNull(o.stage, o.closure).joinToString(" — ") },
        Messages.text("arriving", lang).takeIf { case.arriving },
    ).joinToString(" · ")
}
