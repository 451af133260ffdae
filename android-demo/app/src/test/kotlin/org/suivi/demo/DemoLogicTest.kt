// The demo app's logic (view models, form rendering model, referral chain), on the JVM over the
// real bindings.
package org.suivi.demo

import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.core.SuiviException
import org.suivi.demo.logic.CaseListViewModel
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.UiError
import org.suivi.demo.logic.toUiError
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.FormScreenModel
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.Outcome
import org.suivi.demo.logic.referralChains
import org.suivi.demo.testing.TestServer
import org.suivi.demo.testing.agentAndSupervisor
import org.suivi.demo.testing.conflictOn
import org.suivi.demo.testing.child
import org.suivi.demo.testing.newStore

class DemoLogicTest {
    @Test
    fun `form screen - a field made relevant by an answer appears as it is typed`() = runBlocking {
        val repo = CaseRepository(newStore().first)
        val fr = FormScreenModel.load(repo, "identification", Lang.FR)
        assertFalse("hidden until the child works", "work_sector" in fr.visibleFields().map { it.id })
        val shown = fr.answer("works", "oui")
        assertTrue("shown once the child works, before any save", "work_sector" in shown.map { it.id })
        val ar = FormScreenModel.load(repo, "identification", Lang.AR)
        assertTrue("Arabic is right to left", ar.rightToLeft)
        assertNotEquals("labels translated", fr.form.fields.first().label, ar.form.fields.first().label)
    }

    @Test
    fun `form screen - a bad submit puts messages on fields, a good one saves`() = runBlocking {
        val repo = CaseRepository(newStore().first)
        val form = FormScreenModel.load(repo, "identification", Lang.EN)
        child("Aïcha", "Traoré", "Fès").forEach { (k, v) -> form.answer(k, v) }
        form.answer("estimated_age", "40")
        val failed = form.submitNewCase()
        assertTrue("expected a failure: $failed", failed is Outcome.Failed)
        assertEquals("the bound it broke", "Too large: 17 at most", form.fieldErrors["estimated_age"])
        form.answer("estimated_age", "11")
        val saved = form.submitNewCase()
        assertTrue("saved: $saved", saved is Outcome.Ok)
        assertTrue("errors cleared", form.fieldErrors.isEmpty())
    }

    @Test
    fun `caseload list - search and the conflicts badge`() = runBlocking {
        val (store, _) = newStore()
        store.createCase(child("Aïcha", "Traoré", "Fès"))
        store.createCase(child("Salma", "Benali", "Souk Sebt"))
        val list = CaseListViewModel(CaseRepository(store))
        list.refresh()
        assertEquals(2, list.cases.size)
        list.search = "BENALI"
        list.refresh()
        assertEquals(listOf("Salma Benali"), list.cases.map { list.title(it) })
        assertEquals(
            "a row in words, the risk by its label, the child's stage",
            "Salma Benali · Souk Sebt · Élevé · identifié",
            list.row(list.cases.single()),
        )
        assertEquals(
            "a row a first sync sent ahead says its case is on its way (no stage yet)",
            "Salma Benali · Souk Sebt · Élevé · en cours d'arrivée",
            list.row(list.cases.single().copy(arriving = true, stage = null)),
        )
        assertEquals(
            "a closure proposed is said",
            "Salma Benali · Souk Sebt · Élevé · identifié — clôture proposée",
            list.row(list.cases.single().copy(closure = "proposed")),
        )
        // Typed as an agent types it: family name first, another spelling, a hyphen.
        list.search = "Bennali-Salma"
        list.refresh()
        assertEquals(listOf("Salma Benali"), list.cases.map { list.title(it) })
        assertEquals(0L, list.conflictBadge)
    }

    @Test
    fun `caseload list - the conflicts badge counts a conflict two phones made`() = runBlocking {
        TestServer().use { server ->
            val (agent, supervisor) = agentAndSupervisor(server)
            agent.createCase(child("Salma", "Benali", "Souk Sebt"))
            val caseId = agent.createCase(child("Mariam", "Diarra", "Kignan"))
            conflictOn(agent, supervisor, caseId, "village", "Kaniko", "Kafiné")
            for (store in listOf(agent, supervisor)) {
                val list = CaseListViewModel(CaseRepository(store))
                list.refresh()
                assertEquals("one case in conflict on ${store.user()}'s phone", 1L, list.conflictBadge)
                assertEquals(mapOf(caseId to 1L), list.cases.filter { it.conflictCount > 0 }.associate { it.caseId to it.conflictCount })
            }
        }
    }

    @Test
    fun `referral chain - ordered from the first referral to the latest transfer`() {
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
        assertEquals(1, chains.size)
        assertEquals(listOf(r1, r2, r3), chains[0].map { it.referralId })
        assertEquals("Centre de formation C", chains[0].last().fields["provider"])
    }

    @Test
    fun `every error kind and referral status reads as text in French, English and Arabic`() {
        val errors = listOf(
            SuiviException.Offline("timeout"), SuiviException.WrongKey(), SuiviException.Revoked(),
            SuiviException.NotEnrolled(), SuiviException.UpgradeRequired(),
            SuiviException.IllegalTransition("complete", "draft"), SuiviException.Forbidden("code"),
            SuiviException.NotFound("case"), SuiviException.StorageFull(), SuiviException.Storage("io"),
            SuiviException.Cancelled(), SuiviException.InvalidInput("pem"), SuiviException.Internal(),
            SuiviException.Other("x"), SuiviException.CaseMerged("0123456789abcdef0123456789abcdef"),
            SuiviException.CaseArriving("0123456789abcdef0123456789abcdef"),
        )
        val statuses = listOf("draft", "sent", "accepted", "declined", "in_service", "completed", "closed", "transferred")
        for (lang in Lang.values()) {
            for (e in errors) {
                val message = e.toUiError(lang).message
                assertTrue("$e in $lang: '$message'", message.isNotBlank() && !message.matches(Regex("[a-z_.]+")))
            }
            for (s in statuses) assertNotEquals("status.$s in $lang", "status.$s", Messages.text("status.$s", lang))
        }
        assertEquals(UiError.Next.ENROLL_AGAIN, SuiviException.Revoked().toUiError(Lang.FR).next)
        assertEquals(UiError.Next.RESET_KEY, SuiviException.WrongKey().toUiError(Lang.FR).next)
        assertEquals(UiError.Next.REPORT_BUG, SuiviException.Internal().toUiError(Lang.FR).next)
    }
}
