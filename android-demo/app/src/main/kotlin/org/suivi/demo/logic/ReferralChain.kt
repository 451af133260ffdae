package org.suivi.demo.logic

import org.suivi.core.CaseDetail
import org.suivi.core.ReferralInfo

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
