// Editing a case and settling a conflict from the phone, against a real suivi-server: the
// record's own form version, moving to a newer one asking what it requires, and a picker that
// lists each value by its label with its author, phone and time.
package org.suivi.demo

import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.demo.logic.CaseEditModel
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.ConflictPicker
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.Outcome
import org.suivi.demo.testing.TestServer
import org.suivi.demo.testing.agentAndSupervisor
import org.suivi.demo.testing.conflictOn
import org.suivi.demo.testing.child
import org.suivi.demo.testing.newStore
import java.io.File

class EditAndSettleTest {
    @Test
    fun `settle - each value by its label, author, phone and time, kept on one phone and gone on both`() = runBlocking {
        TestServer().use { server ->
            val (agent, supervisor) = agentAndSupervisor(server)
            val caseId = agent.createCase(child("Mariam", "Diarra", "Kignan"))
            // Both offline: the risk level set two ways.
            conflictOn(agent, supervisor, caseId, "risk_level", "low", "medium")

            val repo = CaseRepository(agent)
            val picker = ConflictPicker(repo, Lang.FR, "Africa/Bamako")
            val choice = picker.choices(caseId).single()
            assertEquals("identification.risk_level", choice.path)
            assertEquals("Niveau de risque", choice.label)
            val byAuthor = choice.options.associateBy { it.author }
            assertEquals(setOf("amina", "fatima"), byAuthor.keys)
            assertEquals("Faible", byAuthor["amina"]!!.value)
            assertEquals("Moyen", byAuthor["fatima"]!!.value)
            assertTrue("the server vouched for both", choice.options.all { it.verified && it.phone != null })
            val line = picker.line(byAuthor["fatima"]!!)
            assertTrue(line, line.startsWith("Moyen — ✔ fatima (") && Regex("\\d{4}").containsMatchIn(line))
            assertTrue("no raw code in the picker: $line", !line.contains("medium"))

            val kept = picker.keep(caseId, choice, byAuthor["fatima"]!!)
            assertTrue("$kept", kept is Outcome.Ok)
            assertTrue(picker.choices(caseId).isEmpty())
            agent.sync(null, null)
            supervisor.sync(null, null)
            for (store in listOf(agent, supervisor)) {
                val detail = store.caseDetail(caseId)
                assertTrue("settled on ${store.user()}'s phone", detail.conflicts.isEmpty())
                assertEquals("medium", detail.identification["risk_level"])
            }
        }
    }

    @Test
    fun `edit - with the record's own version, then moved to the newest asking what it requires`() = runBlocking {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            server.addUser("nadia", "admin", "sikasso")
            val (store, _) = newStore("amina")
            store.enroll(server.url, server.enrollmentCode("amina"), null)
            val repo = CaseRepository(store)
            val caseId = repo.createCase(child("Awa", "Koné", "Misséni"))
            store.sync(null, null)
            server.admin("form", "publish", File("tests/fixtures/identification.v2.json").absolutePath, "--by", "nadia")
            store.sync(null, null)

            val edit = CaseEditModel.load(repo, caseId, Lang.FR)
            assertEquals("the record's own version", 1u, edit.form.version)
            assertEquals("Misséni", edit.inputs["village"])
            edit.inputs["village"] = "Kadiolo"
            edit.inputs["estimated_age"] = "40"
            val refused = edit.save()
            assertTrue("$refused", refused is Outcome.Failed)
            assertEquals("Trop grand : 17 au plus", edit.fieldErrors["estimated_age"])
            edit.inputs["estimated_age"] = "12"
            assertEquals(Outcome.Ok(listOf("village")), edit.save())
            assertEquals(1u, store.caseDetail(caseId).identificationForm)

            assertTrue(edit.canMove)
            val asks = edit.moveAsks()
            assertEquals(listOf("household_size"), asks.map { it.id })
            val unanswered = edit.moveToNewest(emptyMap())
            assertTrue("$unanswered", unanswered is Outcome.Failed)
            assertEquals("Obligatoire", edit.fieldErrors["household_size"])
            assertTrue(edit.moveToNewest(mapOf("household_size" to "4")) is Outcome.Ok)
            assertEquals(2u, store.caseDetail(caseId).identificationForm)
            assertFalse(CaseEditModel.load(repo, caseId, Lang.FR).canMove)
        }
    }
}
