// The Kotlin bindings on the JVM, against the host build of the same library the app ships.
package org.suivi.test

import org.suivi.core.CaseQuery
import org.suivi.core.CaseStore
import org.suivi.core.SuiviException
import org.suivi.core.SyncListener
import org.suivi.core.SyncProgress
import java.io.File

const val KEY = "x'2DD29CA851E7B56E4697B0E1F08507293D761A05CE4D1B628663F411A8086D99'"

fun child(first: String, last: String, village: String) = mapOf(
    "child_first_name" to first, "child_last_name" to last, "sex" to "female", "dob_known" to "non",
    "estimated_age" to "12", "province" to "Sikasso", "commune" to "Kignan", "village" to village,
    "school_status" to "dropped_out", "works" to "oui", "work_sector" to "artisanal_gold_mining",
    "hazardous_conditions" to "mercury,underground_work", "risk_level" to "high", "consent_to_share" to "oui",
)

fun newStore(user: String = "amina"): Pair<CaseStore, File> {
    val path = File(tempDir(), "$user.db")
    return CaseStore.create(path.path, KEY, user, "$user-phone") to path
}

fun bindingsTests() {
    Harness.test("agent flow: case, referral chain, follow-up, history, search") {
        val (store, _) = newStore()
        val caseId = store.createCase(child("Aïcha", "Traoré", "Fès"))
        checkEq(listOf("village"), store.editCase(caseId, mapOf("village" to "Kignan")), "changed fields")
        val referral = store.refer(caseId, mapOf(
            "service_type" to "health", "provider" to "CSCOM Kignan", "reason" to "Blessure à la main",
            "urgency" to "urgent", "consent" to "oui",
        ))
        store.moveReferral(referral, "send", "remis à l'infirmier", null)
        store.moveReferral(referral, "accept", null, null)
        val next = store.moveReferral(referral, "transfer", "vers le centre de référence", "CSRef Sikasso")
        check(next != null) { "a transfer returns the next referral" }
        store.addFollowup(caseId, mapOf(
            "visit_date" to "2026-11-02", "visit_type" to "home", "attends_school" to "yes",
            "still_working" to "non", "risk_level_now" to "medium", "next_visit_due" to "2026-12-01",
        ))
        val detail = store.caseDetail(caseId)
        checkEq("Kignan", detail.identification["village"], "village")
        checkEq(2, detail.referrals.size, "referrals")
        val first = detail.referrals.first { it.referralId == referral }
        checkEq("transferred", first.status, "status")
        checkEq(listOf("send", "accept", "transfer"), first.steps.map { it.transition }, "steps")
        checkEq(1, detail.followups.size, "visits")
        checkEq("medium", detail.summary.riskLevel, "risk now")
        val history = store.history(caseId)
        val edit = history.first { it.action == "case.edit" }
        checkEq("amina", edit.user, "who")
        val village = edit.changes.first { it.path == "identification.village" }
        checkEq("\"Fès\"", village.oldValue, "old")
        checkEq("\"Kignan\"", village.newValue, "new")
        val found = store.listCases(CaseQuery("traore", null, null, null, null, null))
        checkEq(listOf(caseId), found.map { it.caseId }, "search folds accents")
    }

    Harness.test("wrong key is a typed exception and the data stays readable") {
        val (store, path) = newStore()
        store.createCase(child("Mariam", "Diarra", "Zégoua"))
        store.destroy()
        expectThrows<SuiviException.WrongKey> { CaseStore.open(path.path, "x'" + "00".repeat(32) + "'") }
        expectThrows<SuiviException.WrongKey> { CaseStore.open(path.path, "not the key") }
        val reopened = CaseStore.open(path.path, KEY)
        checkEq(1, reopened.listCases(CaseQuery(null, null, null, null, null, null)).size, "cases")
    }

    Harness.test("invalid data lists every problem with field ids and saves nothing") {
        val (store, _) = newStore()
        val bad = child("", "Traoré", "Fès") + mapOf("estimated_age" to "douze", "sex" to "robot")
        val e = expectThrows<SuiviException.Validation> { store.createCase(bad) }
        val fields = e.problems.map { it.field to it.key }.toSet()
        check(("estimated_age" to "type.integer") in fields) { "$fields" }
        val e2 = expectThrows<SuiviException.Validation> { store.createCase(child("", "Traoré", "Fès")) }
        // An empty input is an absent value: a required field says so.
        check(e2.problems.any { it.field == "child_first_name" && it.key == "required" }) { "${e2.problems}" }
        checkEq(0, store.listCases(CaseQuery(null, null, null, null, null, null)).size, "nothing saved")
    }

    Harness.test("unknown case and illegal transition are typed exceptions") {
        val (store, _) = newStore()
        expectThrows<SuiviException.NotFound> { store.caseDetail("0123456789abcdef0123456789abcdef") }
        val caseId = store.createCase(child("Oumou", "Sangaré", "Kadiolo"))
        val referral = store.refer(caseId, mapOf(
            "service_type" to "birth_registration", "provider" to "Mairie", "reason" to "Pas d'acte",
            "urgency" to "routine", "consent" to "oui",
        ))
        expectThrows<SuiviException.Forbidden> { store.moveReferral(referral, "complete", null, null) }
    }

    Harness.test("server unreachable is Offline and loses nothing") {
        val (store, _) = newStore()
        val e = expectThrows<SuiviException.Offline> { store.enroll("http://127.0.0.1:9", "ABCDEFGHJK") }
        check(e.reason.isNotEmpty()) { "a reason" }
    }

    Harness.test("sync against a real suivi-server: agent up, supervisor down, progress reported") {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            server.addUser("fatima", "supervisor", "sikasso")
            val (agent, _) = newStore("amina")
            agent.enroll(server.url, server.enrollmentCode("amina"))
            val caseId = agent.createCase(child("Fatoumata", "Coulibaly", "Misséni"))
            val up = agent.sync(null)
            checkEq(1uL, up.casesUp, "cases up")
            checkEq(1uL, up.roundTrips, "round trips")
            val (supervisor, _) = newStore("fatima")
            supervisor.enroll(server.url, server.enrollmentCode("fatima"))
            val seen = mutableListOf<SyncProgress>()
            val down = supervisor.sync(object : SyncListener {
                override fun onProgress(progress: SyncProgress) { seen.add(progress) }
            })
            checkEq(1uL, down.casesDown, "cases down")
            check(seen.isNotEmpty()) { "progress was reported" }
            checkEq("Coulibaly", supervisor.caseDetail(caseId).summary.lastName, "merged case")
            check(supervisor.lastSync() != null) { "last sync recorded" }
            // A code issued for someone else is refused.
            val (other, _) = newStore("karim")
            expectThrows<SuiviException.Forbidden> { other.enroll(server.url, server.enrollmentCode("amina")) }
        }
    }
}
