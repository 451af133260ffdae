// Forms published from the server, seen from the app: a version an admin publishes on a running
// suivi-server reaches the phone at its next sync, the form screen renders it with no app
// update, new records use it, and an old record keeps its own version until moved.
package org.suivi.ffi

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.core.SuiviException
import org.suivi.demo.testing.TestServer
import org.suivi.demo.testing.child
import org.suivi.demo.testing.newStore
import java.io.File

/** Identification version 2: `household_size` (required) and a new work sector, fishing. */
val IDENTIFICATION_V2 = File("tests/fixtures/identification.v2.json")

class FormsTest {
    @Test
    fun `a form published on the server reaches the phone at its next sync and new records use it`() {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            server.addUser("nadia", "admin", "sikasso")
            val (agent, _) = newStore("amina")
            agent.enroll(server.url, server.enrollmentCode("amina"), null)
            val old = agent.createCase(child("Awa", "Koné", "Misséni"))
            agent.sync(null, null)
            assertEquals(1u, agent.form("identification", "fr").version)

            server.admin("form", "publish", IDENTIFICATION_V2.absolutePath, "--by", "nadia")
            val report = agent.sync(null, null)
            assertEquals(1uL, report.formsReceived)
            assertTrue(report.formsRefused.isEmpty())

            // The form screen renders the new version: its new question and its new choice.
            val form = agent.form("identification", "en")
            assertEquals(2u, form.version)
            assertTrue(form.fields.any { it.id == "household_size" && it.required && it.label == "People in the household" })
            val sectors = form.fields.first { it.id == "work_sector" }.choices.map { it.id }
            assertTrue("$sectors", "fishing" in sectors)
            val held = agent.forms("fr").filter { it.id == "identification" }.map { it.version to it.retired }
            assertEquals(listOf(1u to false, 2u to false), held)

            // New records use it, and must answer what it requires.
            val e = expectThrows<SuiviException.Validation> { agent.createCase(child("Mariam", "Diarra", "Zégoua")) }
            assertTrue("${e.problems}", e.problems.any { it.field == "household_size" && it.key == "required" })
            val new = agent.createCase(child("Mariam", "Diarra", "Zégoua") + mapOf("household_size" to "5", "work_sector" to "fishing"))
            assertEquals(2u, agent.caseDetail(new).identificationForm)

            // The old record keeps version 1: shown with it, edited with it.
            assertEquals(1u, agent.caseDetail(old).identificationForm)
            assertTrue(agent.formVersion("identification", 1u, "fr").fields.none { it.id == "household_size" })
            // Its edit screen shows version 1's fields; a new record's shows version 2's.
            assertTrue("household_size" !in agent.visibleFieldsInVersion("identification", 1u, mapOf("works" to "non")))
            assertTrue("household_size" in agent.visibleFields("identification", mapOf("works" to "non")))
            assertEquals(listOf("village"), agent.editCase(old, mapOf("village" to "Kadiolo")))
            assertEquals(1u, agent.caseDetail(old).identificationForm)
            // Until the agent moves it, answering the new question.
            agent.moveCaseForm(old, mapOf("household_size" to "3"))
            val moved = agent.caseDetail(old)
            assertEquals(2u, moved.identificationForm)
            assertEquals("3", moved.identification["household_size"])

            val up = agent.sync(null, null)
            assertEquals(2uL, up.casesUp)
            assertEquals(0uL, up.refused)
        }
    }
}
