// The agent's "to do" screen against a real suivi-server: visits by due date in words, a
// referral waiting on the agent, a conflict two phones made, the count, and the filters.
package org.suivi.demo

import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.TodoModel
import org.suivi.demo.testing.TestServer
import org.suivi.demo.testing.agentAndSupervisor
import org.suivi.demo.testing.conflictOn
import org.suivi.demo.testing.child
import org.suivi.demo.testing.newStore
import java.time.LocalDate

class TodoTest {
    private val today = LocalDate.of(2026, 12, 7)

    private fun visit(due: String, risk: String) = mapOf(
        "visit_date" to "2026-11-20", "visit_type" to "home", "attends_school" to "yes",
        "still_working" to "non", "risk_level_now" to risk, "next_visit_due" to due,
    )

    @Test
    fun `to do - visits by due date, a waiting referral and a conflict, counted and filtered`() = runBlocking {
        TestServer().use { server ->
            val (agent, supervisor) = agentAndSupervisor(server)
            val awa = agent.createCase(child("Awa", "Traoré", "Kalaké"))
            agent.addFollowup(awa, visit("2026-12-01", "high"))
            val moussa = agent.createCase(child("Moussa", "Diarra", "Douar Ouled Ali"))
            agent.addFollowup(moussa, visit("2026-12-10", "low"))
            val salma = agent.createCase(child("Salma", "Benali", "Kalaké"))
            agent.addFollowup(salma, visit("2027-01-20", "high"))
            agent.refer(salma, mapOf(
                "service_type" to "health", "provider" to "CSCOM Kignan", "reason" to "Toux",
                "urgency" to "priority", "consent" to "oui",
            ))
            // A conflict on Moussa's village, made on two phones.
            conflictOn(agent, supervisor, moussa, "village", "Kaniko", "Kafiné")

            val todo = TodoModel(CaseRepository(agent), Lang.FR) { today }
            val screen = todo.refresh()
            assertEquals(null, screen.error)
            val kinds = screen.rows.map { it.kind to it.caseId }
            assertEquals(
                listOf(
                    TodoModel.Kind.VISIT to awa, TodoModel.Kind.VISIT to moussa,
                    TodoModel.Kind.REFERRAL to salma, TodoModel.Kind.CONFLICT to moussa,
                ),
                kinds,
            )
            assertEquals(4, screen.count)
            val late = screen.rows[0]
            assertEquals("Awa Traoré", late.title)
            assertEquals("Kalaké · Élevé — en retard de 6 jour(s) (1 décembre 2026)", late.detail)
            assertTrue(late.late)
            assertTrue("due soon, not late: ${screen.rows[1]}", screen.rows[1].detail.endsWith("dans 3 jour(s) (10 décembre 2026)") && !screen.rows[1].late)
            assertEquals("Santé · CSCOM Kignan — brouillon", screen.rows[2].detail)
            assertTrue(screen.rows[3].detail, screen.rows[3].detail.endsWith("deux valeurs à départager"))

            // Narrowed as the caseload is: by risk, by a village's beginning.
            todo.riskLevel = "high"
            assertEquals(listOf(awa, salma), todo.refresh().rows.map { it.caseId })
            todo.riskLevel = null
            todo.village = "kala"
            assertEquals(listOf(awa, salma), todo.refresh().rows.map { it.caseId })

            // In Arabic, the same rows in Arabic words.
            val ar = TodoModel(CaseRepository(agent), Lang.AR) { today }
            val first = ar.refresh().rows.first()
            assertTrue(first.detail, first.detail.contains("متأخرة 6 يوم") && first.detail.contains("ديسمبر"))
        }
    }
}
