// Referrals from the phone against a real suivi-server: the moves core allows, made with their
// notes, a transfer to a new provider, and two phones moving one referral while one is offline.
package org.suivi.demo

import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.Outcome
import org.suivi.demo.logic.ReferralLine
import org.suivi.demo.logic.ReferralModel
import org.suivi.demo.testing.TestServer
import org.suivi.demo.testing.agentAndSupervisor
import org.suivi.demo.testing.child
import org.suivi.demo.testing.newStore

class ReferralsTest {
    private val toHealth = mapOf(
        "service_type" to "health", "provider" to "CSCOM Kignan", "reason" to "Blessure à la main",
        "urgency" to "urgent", "consent" to "oui",
    )

    private fun ReferralLine.moveNamed(transition: String) =
        moves.firstOrNull { it.transition == transition } ?: throw AssertionError("$transition not offered: ${moves.map { it.transition }}")

    @Test
    fun `referrals - an agent sends, a supervisor's phone accepts offline, both read accepted`() = runBlocking {
        TestServer().use { server ->
            val (aminaStore, fatimaStore) = agentAndSupervisor(server)
            val amina = CaseRepository(aminaStore)
            val fatima = CaseRepository(fatimaStore)

            val caseId = amina.createCase(child("Awa", "Coulibaly", "Kignan"))
            amina.refer(caseId, toHealth)
            val aminaReferrals = ReferralModel(amina, Lang.FR)
            val draft = aminaReferrals.chains(caseId).single().single()
            assertEquals("Santé · CSCOM Kignan", draft.title)
            assertEquals("brouillon", draft.status)
            assertEquals("a draft is sent or closed", listOf("send", "close"), draft.moves.map { it.transition })
            assertEquals("Envoyer", draft.moveNamed("send").label)
            val sent = aminaReferrals.move(draft.referral, draft.moveNamed("send"), "remis à l'infirmier", null)
            assertTrue("$sent", sent is Outcome.Ok)
            amina.sync { }

            // Fatima's phone takes the team's case, then accepts offline (no sync in between).
            fatima.sync { }
            val fatimaReferrals = ReferralModel(fatima, Lang.AR)
            val arrived = fatimaReferrals.chains(caseId).single().single()
            assertEquals("مُرسلة", arrived.status)
            assertTrue("the step and its note: ${arrived.steps}", arrived.steps.single().contains("« remis à l'infirmier »"))
            val accepted = fatimaReferrals.move(arrived.referral, arrived.moveNamed("accept"), null, null)
            assertTrue("$accepted", accepted is Outcome.Ok)
            assertEquals("مقبولة", fatimaReferrals.chains(caseId).single().single().status)

            fatima.sync { }
            amina.sync { }
            for ((repo, who) in listOf(amina to "amina", fatima to "fatima")) {
                val line = ReferralModel(repo, Lang.FR).chains(caseId).single().single()
                assertEquals("accepted on $who's phone", "acceptée", line.status)
                assertEquals(listOf("start", "close", "transfer"), line.moves.map { it.transition })
            }
        }
    }

    @Test
    fun `referrals - a transfer names the next provider, the chain reads in order and a finished one offers nothing`() = runBlocking {
        val repo = CaseRepository(newStore().first)
        val caseId = repo.createCase(child("Moussa", "Traoré", "Kignan"))
        repo.refer(caseId, toHealth)
        val model = ReferralModel(repo, Lang.EN)
        var line = model.chains(caseId).single().single()
        model.move(line.referral, line.moveNamed("send"), null, null)
        line = model.chains(caseId).single().single()
        // A transfer without a provider is refused before it reaches the store, on the field.
        val noProvider = model.move(line.referral, line.moveNamed("transfer"), "pas de place", " ")
        assertTrue("$noProvider", noProvider is Outcome.Failed)
        assertEquals("Required", (noProvider as Outcome.Failed).error.fieldErrors["provider"])
        val transferred = model.move(line.referral, line.moveNamed("transfer"), "pas de place", "CSRef Sikasso")
        val next = ((transferred as Outcome.Ok).value) ?: throw AssertionError("a transfer returns the next referral")
        val chain = model.chains(caseId).single()
        assertEquals(listOf("transferred", "sent"), chain.map { it.referral.status })
        assertEquals(next, chain[1].referral.referralId)
        assertEquals("Health · CSRef Sikasso", chain[1].title)
        assertTrue("finished: nothing offered", chain[0].moves.isEmpty())
        // A move core does not allow from this status is refused in words, and nothing moves.
        val illegal = model.move(chain[0].referral, line.moveNamed("accept"), null, null)
        assertEquals("This status change is not allowed", (illegal as Outcome.Failed).error.message)
        assertEquals("transferred", model.chains(caseId).single()[0].referral.status)
    }
}
