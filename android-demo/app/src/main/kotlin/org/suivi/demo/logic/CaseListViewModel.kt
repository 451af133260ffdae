package org.suivi.demo.logic

import org.suivi.core.CaseQuery
import org.suivi.core.CaseStore
import org.suivi.core.CaseSummary

/** The caseload screen: a search box, filters, the list, and the conflicts badge. */
class CaseListViewModel(private val store: CaseStore, var lang: Lang = Lang.FR) {
    var search: String = ""
    var onlyOverdueOn: String? = null
    var riskLevel: String? = null

    var cases: List<CaseSummary> = emptyList()
        private set
    var conflictBadge: Long = 0
        private set
    var error: UiError? = null
        private set

    fun refresh() {
        val query = CaseQuery(
            text = search.ifBlank { null },
            village = null,
            riskLevel = riskLevel,
            referralStatus = null,
            overdueOn = onlyOverdueOn,
            limit = 500u,
        )
        when (val r = attempt(lang) { store.listCases(query) to store.conflictedCaseCount() }) {
            is Outcome.Ok -> {
                cases = r.value.first
                conflictBadge = r.value.second.toLong()
                error = null
            }
            is Outcome.Failed -> error = r.error
        }
    }

    /** A list row's title, as the agent reads it. */
    fun title(case: CaseSummary): String = "${case.firstName} ${case.lastName}"
}
