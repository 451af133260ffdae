// The Kotlin bindings on the JVM, against the host build of the same library the app ships.
// Shared test support (a real suivi-server, misbehaving loopback servers) lives in the demo
// app's test sources: tests/kotlin.sh compiles both together.
package org.suivi.ffi

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.core.CaseQuery
import org.suivi.core.CaseStore
import org.suivi.core.SuiviException
import org.suivi.core.SyncListener
import org.suivi.core.SyncProgress
import org.suivi.demo.testing.KEY
import org.suivi.demo.testing.TestServer
import org.suivi.demo.testing.child
import org.suivi.demo.testing.newStore
import java.util.concurrent.CopyOnWriteArrayList

inline fun <reified E : Throwable> expectThrows(block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionError("expected ${E::class.simpleName}, got $e", e)
    }
    throw AssertionError("expected ${E::class.simpleName}, nothing was thrown")
}

val ALL = CaseQuery(null, null, null, null, null, null)

class BindingsTest {
    @Test
    fun `agent flow - case, referral chain, follow-up, history, search`() {
        val (store, _) = newStore()
        val caseId = store.createCase(child("Aïcha", "Traoré", "Fès"))
        assertEquals(listOf("village"), store.editCase(caseId, mapOf("village" to "Kignan")))
        val referral = store.refer(caseId, mapOf(
            "service_type" to "health", "provider" to "CSCOM Kignan", "reason" to "Blessure à la main",
            "urgency" to "urgent", "consent" to "oui",
        ))
        store.moveReferral(referral, "send", "remis à l'infirmier", null)
        store.moveReferral(referral, "accept", null, null)
        val next = store.moveReferral(referral, "transfer", "vers le centre de référence", "CSRef Sikasso")
        assertNotNull("a transfer returns the next referral", next)
        store.addFollowup(caseId, mapOf(
            "visit_date" to "2026-11-02", "visit_type" to "home", "attends_school" to "yes",
            "still_working" to "non", "risk_level_now" to "medium", "next_visit_due" to "2026-12-01",
        ))
        val detail = store.caseDetail(caseId)
        assertEquals("Kignan", detail.identification["village"])
        assertEquals(2, detail.referrals.size)
        val first = detail.referrals.first { it.referralId == referral }
        assertEquals("transferred", first.status)
        assertEquals(listOf("send", "accept", "transfer"), first.steps.map { it.transition })
        assertEquals(1, detail.followups.size)
        assertEquals("medium", detail.summary.riskLevel)
        val edit = store.history(caseId).first { it.action == "case.edit" }
        assertEquals("amina", edit.user)
        val village = edit.changes.first { it.path == "identification.village" }
        assertEquals("\"Fès\"", village.oldValue)
        assertEquals("\"Kignan\"", village.newValue)
        // The same history told in words, as the console and the command tell it.
        val story = store.story(caseId, "fr", "Africa/Bamako")
        assertEquals("Enfant identifié : Aïcha Traoré", story.first().headline)
        assertTrue(story.any { it.headline.contains("Transférée vers CSRef Sikasso") })
        assertTrue(story.first { it.headline == "Identification modifiée" }.details
            .contains("Village / douar / quartier : Fès → Kignan"))
        assertTrue(story.none { it.headline.contains("referral.") })
        assertTrue("to the minute", story.all { it.at.count { c -> c == ':' } == 1 })
        val found = store.listCases(CaseQuery("traore", null, null, null, null, null))
        assertEquals("search folds accents", listOf(caseId), found.map { it.caseId })
    }

    @Test
    fun `a wrong key is a typed exception and the data stays readable`() {
        val (store, path) = newStore()
        store.createCase(child("Mariam", "Diarra", "Zégoua"))
        store.close()
        expectThrows<SuiviException.WrongKey> { CaseStore.open(path.path, "x'" + "00".repeat(32) + "'") }
        expectThrows<SuiviException.WrongKey> { CaseStore.open(path.path, "not the key") }
        assertEquals(1, CaseStore.open(path.path, KEY).listCases(ALL).size)
    }

    @Test
    fun `invalid data lists every problem with field ids and saves nothing`() {
        val (store, _) = newStore()
        val bad = child("", "Traoré", "Fès") + mapOf("estimated_age" to "douze", "sex" to "robot")
        val e = expectThrows<SuiviException.Validation> { store.createCase(bad) }
        val fields = e.problems.map { it.field to it.key }.toSet()
        assertTrue("$fields", ("estimated_age" to "type.integer") in fields)
        val e2 = expectThrows<SuiviException.Validation> { store.createCase(child("", "Traoré", "Fès")) }
        // An empty input is an absent value: a required field says so.
        assertTrue("${e2.problems}", e2.problems.any { it.field == "child_first_name" && it.key == "required" })
        assertEquals("nothing saved", 0, store.listCases(ALL).size)
    }

    @Test
    fun `sync against a real suivi-server - agent up, supervisor down, progress reported`() {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            server.addUser("fatima", "supervisor", "sikasso")
            val (agent, _) = newStore("amina")
            agent.enroll(server.url, server.enrollmentCode("amina"), null)
            val caseId = agent.createCase(child("Fatoumata", "Coulibaly", "Misséni"))
            val up = agent.sync(null, null)
            assertEquals(1uL, up.casesUp)
            assertEquals(1uL, up.roundTrips)
            val (supervisor, _) = newStore("fatima")
            supervisor.enroll(server.url, server.enrollmentCode("fatima"), null)
            val seen = CopyOnWriteArrayList<SyncProgress>()
            val down = supervisor.sync(object : SyncListener {
                override fun onProgress(progress: SyncProgress) { seen.add(progress) }
            }, null)
            assertEquals(1uL, down.casesDown)
            assertTrue("progress was reported", seen.isNotEmpty())
            assertEquals("Coulibaly", supervisor.caseDetail(caseId).summary.lastName)
            assertNotNull("last sync recorded", supervisor.lastSync())
        }
    }

    @Test
    fun `a conflict made on two phones is listed with its authors and settled from the app`() {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            server.addUser("fatima", "supervisor", "sikasso")
            val (agent, _) = newStore("amina")
            agent.enroll(server.url, server.enrollmentCode("amina"), null)
            val (supervisor, _) = newStore("fatima")
            supervisor.enroll(server.url, server.enrollmentCode("fatima"), null)
            val caseId = agent.createCase(child("Mariam", "Diarra", "Kignan"))
            agent.sync(null, null)
            supervisor.sync(null, null)
            // Both offline, both change the village.
            agent.editCase(caseId, mapOf("village" to "Kaniko"))
            supervisor.editCase(caseId, mapOf("village" to "Kafiné"))
            agent.sync(null, null)
            supervisor.sync(null, null)
            val conflict = supervisor.caseDetail(caseId).conflicts.single()
            assertEquals("identification.village", conflict.path)
            assertEquals(2, conflict.sources.size)
            assertEquals(setOf("amina", "fatima"), conflict.sources.map { it.user }.toSet())
            // A field with no conflict is not found; a value the field refuses (an empty village,
            // which the form requires) is a validation error on that field; nothing changes.
            expectThrows<SuiviException.NotFound> {
                supervisor.resolveConflict(caseId, "identification.commune", "X")
            }
            val refused = expectThrows<SuiviException.Validation> {
                supervisor.resolveConflict(caseId, "identification.village", "")
            }
            assertEquals(listOf("village"), refused.problems.map { it.field })
            assertEquals(1, supervisor.caseDetail(caseId).conflicts.size)
            supervisor.resolveConflict(caseId, "identification.village", "Ninkina")
            assertTrue(supervisor.caseDetail(caseId).conflicts.isEmpty())
            supervisor.sync(null, null)
            agent.sync(null, null)
            val settled = agent.caseDetail(caseId)
            assertTrue("gone on the other phone too", settled.conflicts.isEmpty())
            assertEquals("Ninkina", settled.identification["village"])
        }
    }

    @Test
    fun `a case merged on the server is read-only on the phone and its visit shows on the survivor`() {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            server.addUser("fatima", "supervisor", "sikasso")
            val (agent, _) = newStore("amina")
            agent.enroll(server.url, server.enrollmentCode("amina"), null)
            val kept = agent.createCase(child("Mohamed", "El-Idrissi", "Kignan"))
            val merged = agent.createCase(child("Muhammad", "El Idrissi", "Kignan"))
            agent.addFollowup(merged, mapOf(
                "visit_date" to "2026-11-02", "visit_type" to "home", "attends_school" to "yes",
                "still_working" to "non", "risk_level_now" to "medium", "next_visit_due" to "2026-12-01",
            ))
            agent.sync(null, null)
            server.admin("case", "merge", kept, merged, "--by", "fatima")
            agent.sync(null, null)
            assertEquals(kept, agent.caseDetail(merged).mergedInto)
            val refused = expectThrows<SuiviException.CaseMerged> {
                agent.editCase(merged, mapOf("village" to "Kaniko"))
            }
            assertEquals(kept, refused.into)
            assertEquals(0uL, agent.unsyncedCaseCount())
            val survivor = agent.caseDetail(kept)
            val link = survivor.mergedCases.single()
            assertEquals(merged, link.caseId)
            assertTrue(link.held)
            assertEquals(1, link.followups.size)
            val merge = agent.history(merged).single { it.action == "case.merge_away" }
            assertEquals("fatima", merge.verifiedUser)
            assertEquals("console-fatima", merge.verifiedDevice)
        }
    }

    @Test
    fun `a supervisor reassigns from the phone offline and the case moves at the next sync`() {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            server.addUser("karim", "agent", "sikasso")
            server.addUser("fatima", "supervisor", "sikasso")
            val (amina, _) = newStore("amina")
            amina.enroll(server.url, server.enrollmentCode("amina"), null)
            val (karim, _) = newStore("karim")
            karim.enroll(server.url, server.enrollmentCode("karim"), null)
            val (fatima, _) = newStore("fatima")
            fatima.enroll(server.url, server.enrollmentCode("fatima"), null)
            val caseId = amina.createCase(child("Awa", "Sangaré", "Zégoua"))
            amina.sync(null, null)
            fatima.sync(null, null)
            expectThrows<SuiviException.Forbidden> { amina.reassignCase(caseId, "karim") }
            // Offline on Fatima's phone: written now, applied when it reaches the server.
            assertTrue(fatima.reassignCase(caseId, "karim"))
            karim.sync(null, null)
            assertTrue("not moved before the sync", karim.listCases(ALL).isEmpty())
            fatima.sync(null, null)
            karim.sync(null, null)
            assertEquals(listOf(caseId), karim.listCases(ALL).map { it.caseId })
            amina.sync(null, null)
            assertTrue("gone from Amina's phone", amina.listCases(ALL).isEmpty())
        }
    }
}
