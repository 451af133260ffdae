// A case's outcome and closure on the phone against a real suivi-server: the stage and the
// next step in words, an agent's proposal made offline, the supervisor's phone returning then
// approving it, the case leaving the agent's due list, and a reopening.
package org.suivi.demo

import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.ClosureModel
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.Outcome
import org.suivi.demo.testing.TestServer
import org.suivi.demo.testing.agentAndSupervisor
import org.suivi.demo.testing.child

class ClosureTest {
    private fun visit(date: String, due: String) = mapOf(
        "visit_date" to date, "visit_type" to "home", "attends_school" to "yes",
        "still_working" to "non", "risk_level_now" to "low", "next_visit_due" to due,
    )

    @Test
    fun `closure - an agent proposes from the phone, the supervisor's phone returns then approves`() = runBlocking {
        TestServer().use { server ->
            val (aminaStore, fatimaStore) = agentAndSupervisor(server)
            val amina = CaseRepository(aminaStore)
            val fatima = CaseRepository(fatimaStore)
            val caseId = amina.createCase(child("Awa", "Coulibaly", "Kignan"))
            amina.addFollowUp(caseId, visit("2026-09-01", "2026-10-10"))
            amina.addFollowUp(caseId, visit("2026-10-11", "2026-11-20"))
            val aminaModel = ClosureModel(amina, Lang.FR, "Africa/Bamako")
            val row = amina.case(caseId).summary
            val words = aminaModel.outcome(row)!!
            assertEquals("sorti du travail", words.stage)
            assertEquals("retiré du travail", words.classification)
            assertTrue("not yet acknowledged", words.provisional)
            assertEquals("Proposer la clôture", words.nextStep)
            assertTrue(aminaModel.closure(caseId).mayPropose)

            // Offline, she proposes it for a reason picked in her words.
            val reason = aminaModel.reasons().first { it.code == "exited_stable" }
            assertEquals("sorti du travail, situation stable", reason.label)
            assertTrue(aminaModel.propose(caseId, reason, "à l'école depuis septembre") is Outcome.Ok)
            val proposed = aminaModel.closure(caseId)
            assertEquals("clôture proposée", proposed.label)
            assertFalse("an agent's phone does not decide", proposed.mayDecide)
            assertEquals("sorti du travail · retiré du travail — clôture proposée", aminaModel.line(amina.case(caseId).summary))
            val refused = aminaModel.decide(caseId, true, null)
            assertTrue("$refused", refused is Outcome.Failed)
            amina.sync { }

            // Fatima's phone: a return needs a note; she returns it, then approves the next.
            fatima.sync { }
            val fatimaModel = ClosureModel(fatima, Lang.FR, "Africa/Bamako")
            assertTrue(fatimaModel.closure(caseId).mayDecide)
            val noNote = fatimaModel.decide(caseId, false, " ")
            assertEquals("Obligatoire", (noNote as Outcome.Failed).error.fieldErrors["note"])
            assertTrue(fatimaModel.decide(caseId, false, "encore une visite") is Outcome.Ok)
            fatima.sync { }
            amina.sync { }
            val returned = aminaModel.closure(caseId)
            assertEquals("clôture renvoyée", returned.label)
            assertEquals("encore une visite", returned.steps.last().note)
            assertEquals("fatima", returned.steps.last().actor)
            assertTrue("returned, she may propose again", returned.mayPropose)
            assertTrue(amina.todo("2026-12-07", null, null).visits.any { it.caseId == caseId })
            assertTrue(aminaModel.propose(caseId, reason, null) is Outcome.Ok)
            amina.sync { }
            fatima.sync { }
            assertTrue(fatimaModel.decide(caseId, true, null) is Outcome.Ok)
            fatima.sync { }
            amina.sync { }

            val closed = aminaModel.closure(caseId)
            assertEquals("clôturé", closed.label)
            assertEquals(
                listOf("clôture proposée", "renvoyée à l'agent", "clôture proposée", "clôture approuvée"),
                closed.steps.map { it.step },
            )
            assertTrue("written in words, to the minute: ${closed.steps.first().at}", closed.steps.first().at.contains(" à "))
            assertNull("a closed case has no next step", aminaModel.outcome(amina.case(caseId).summary)!!.nextStep)
            assertFalse("out of the due list", amina.todo("2026-12-07", null, null).visits.any { it.caseId == caseId })
            assertTrue(closed.mayReopen)
            assertTrue(aminaModel.reopen(caseId, "revue au marché") is Outcome.Ok)
            assertTrue("due again", amina.todo("2026-12-07", null, null).visits.any { it.caseId == caseId })
        }
    }
}
