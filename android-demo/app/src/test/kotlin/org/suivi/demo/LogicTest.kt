// The demo app's logic (view models, form rendering model, referral chain), on the JVM over the
// real bindings.
package org.suivi.demo

import org.suivi.demo.logic.CaseListViewModel
import org.suivi.demo.logic.FormScreenModel
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.Outcome
import org.suivi.demo.logic.SyncViewModel
import org.suivi.demo.logic.referralChains
import org.suivi.test.Harness
import org.suivi.test.TestServer
import org.suivi.test.check
import org.suivi.test.checkEq
import org.suivi.test.child
import org.suivi.test.newStore

fun demoLogicTests() {
    Harness.test("form screen: fields follow relevance, labels follow the language") {
        val (store, _) = newStore()
        val fr = FormScreenModel(store, "identification", Lang.FR)
        check("work_sector" !in fr.visibleFields().map { it.id }) { "hidden until the child works" }
        fr.set("works", "oui")
        check("work_sector" in fr.visibleFields().map { it.id }) { "shown once the child works" }
        val ar = FormScreenModel(store, "identification", Lang.AR)
        check(ar.rightToLeft) { "Arabic is right to left" }
        check(ar.form.fields.first().label != fr.form.fields.first().label) { "labels translated" }
    }

    Harness.test("form screen: a bad submit puts messages on fields, a good one saves") {
        val (store, _) = newStore()
        val form = FormScreenModel(store, "identification", Lang.EN)
        child("Aïcha", "Traoré", "Fès").forEach { (k, v) -> form.set(k, v) }
        form.set("estimated_age", "40")
        val failed = form.submitNewCase()
        check(failed is Outcome.Failed) { "expected a failure" }
        checkEq("Too large", form.fieldErrors["estimated_age"], "field message")
        form.set("estimated_age", "11")
        val saved = form.submitNewCase()
        check(saved is Outcome.Ok) { "saved: $saved" }
        check(form.fieldErrors.isEmpty()) { "errors cleared" }
    }

    Harness.test("caseload list: search, and the conflicts badge") {
        val (store, _) = newStore()
        store.createCase(child("Aïcha", "Traoré", "Fès"))
        store.createCase(child("Salma", "Benali", "Souk Sebt"))
        val list = CaseListViewModel(store)
        list.refresh()
        checkEq(2, list.cases.size, "all cases")
        list.search = "BENALI"
        list.refresh()
        checkEq(listOf("Salma Benali"), list.cases.map { list.title(it) }, "search")
        checkEq(0L, list.conflictBadge, "no conflicts")
    }

    Harness.test("referral chain: ordered from first referral to the latest transfer") {
        val (store, _) = newStore()
        val caseId = store.createCase(child("Aïcha", "Traoré", "Fès"))
        val r1 = store.refer(caseId, mapOf(
            "service_type" to "school_or_bridging_class", "provider" to "École A", "reason" to "Déscolarisée",
            "urgency" to "priority", "consent" to "oui",
        ))
        store.moveReferral(r1, "send", null, null)
        val r2 = store.moveReferral(r1, "transfer", null, "Classe passerelle B")!!
        val r3 = store.moveReferral(r2, "transfer", null, "Centre de formation C")!!
        val chains = referralChains(store.caseDetail(caseId))
        checkEq(1, chains.size, "one chain")
        checkEq(listOf(r1, r2, r3), chains[0].map { it.referralId }, "order")
        checkEq("Centre de formation C", chains[0].last().fields["provider"], "last provider")
    }

    Harness.test("sync screen: progress, result, last-sync line, offline message") {
        TestServer().use { server ->
            server.addUser("amina", "agent", "souk-sebt")
            val (store, _) = newStore("amina")
            val sync = SyncViewModel(store, Lang.FR)
            checkEq("Jamais synchronisé", sync.lastSyncLine(), "never synced")
            store.enroll(server.url, server.enrollmentCode("amina"))
            store.createCase(child("Khadija", "Benali", "Douar Ouled Ali"))
            val done = sync.sync()
            check(done is SyncViewModel.State.Done) { "sync done: $done" }
            checkEq(1uL, (done as SyncViewModel.State.Done).summary.casesUp, "pushed")
            check(sync.progressSeen.isNotEmpty()) { "progress seen" }
            check(sync.lastSyncLine().startsWith("Dernière synchronisation")) { sync.lastSyncLine() }
        }
        // The server is gone: the screen says offline, in the agent's language.
        val (store, _) = newStore("amina")
        val failed = runCatching { store.enroll("http://127.0.0.1:9", "ABCDEFGHJK") }
        check(failed.isFailure) { "enroll against a closed port fails" }
    }
}
