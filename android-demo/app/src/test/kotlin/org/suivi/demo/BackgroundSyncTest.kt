// The background sync's decisions against a real suivi-server and a link that misbehaves: a
// stalled link and a busy server are retried later, an upgraded server and a revoked phone stop
// and tell the agent, and what the server refused is listed in words.
package org.suivi.demo

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.demo.logic.BackgroundSync
import org.suivi.demo.logic.BackgroundSync.Decision
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.UiError
import org.suivi.demo.testing.StallingProxy
import org.suivi.demo.testing.TestServer
import org.suivi.demo.testing.child
import org.suivi.demo.testing.newStore
import org.suivi.demo.testing.until

class BackgroundSyncTest {
    @Test
    fun `background sync - stalled, busy, upgraded, then done`() = runBlocking {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            StallingProxy(server.port).use { link ->
                val (store, _) = newStore("amina")
                store.enroll(link.url, server.enrollmentCode("amina"), null)
                val repo = CaseRepository(store)
                repo.createCase(child("Awa", "Traoré", "Kignan"))
                val sync = BackgroundSync(repo, Lang.FR, deadlineMillis = 2_000)

                link.stall = true
                val stalled = sync.run()
                assertTrue("a stalled link is retried later: $stalled", stalled is Decision.RetryLater)
                link.stall = false

                link.answer = 503 to """{"error":"busy","message":"busy"}"""
                val busy = sync.run()
                assertTrue("a busy server is retried later: $busy", busy is Decision.RetryLater)
                assertEquals("Hors connexion : rien n'est perdu", (busy as Decision.RetryLater).why.message)

                link.answer = 426 to """{"error":"upgrade_required","message":"update the app"}"""
                val upgraded = sync.run()
                assertTrue("an upgrade stops and tells: $upgraded", upgraded is Decision.Stop)
                assertEquals(UiError.Next.UPDATE_APP, (upgraded as Decision.Stop).why.next)

                link.answer = null
                assertEquals("nothing lost meanwhile", 1uL, store.unsyncedCaseCount())
                val done = sync.run()
                assertTrue("$done", done is Decision.Done)
                assertEquals(1uL, (done as Decision.Done).summary.casesUp)
                assertTrue(done.setAside.isEmpty())
            }
        }
    }

    @Test
    fun `background sync - a revoked phone stops, and refused cases are told in words`() = runBlocking {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            val (store, _) = newStore("amina")
            store.enroll(server.url, server.enrollmentCode("amina"), null)
            val device = store.enrollment()!!.deviceId
            server.admin("device", "quota", device, "--new-cases-per-day", "1")
            val repo = CaseRepository(store)
            repo.createCase(child("Awa", "Traoré", "Kignan"))
            repo.createCase(child("Moussa", "Diarra", "Kignan"))
            val sync = BackgroundSync(repo, Lang.FR)
            val done = sync.run()
            assertTrue("$done", done is Decision.Done)
            val aside = (done as Decision.Done).setAside
            assertEquals("one case over the day's quota: $aside", 1, aside.size)
            assertTrue(aside.single(), aside.single().endsWith("le nombre de nouveaux dossiers du jour est atteint ; il partira demain"))
            assertTrue(aside.single(), aside.single().startsWith("Awa Traoré") || aside.single().startsWith("Moussa Diarra"))

            server.revoke(device)
            val revoked = sync.run()
            assertTrue("$revoked", revoked is Decision.Stop)
            assertEquals(UiError.Next.ENROLL_AGAIN, (revoked as Decision.Stop).why.next)
        }
    }

    @Test
    fun `background sync - each save asks for a sync soon, a sync does not ask for another`() = runBlocking {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            val (store, _) = newStore("amina")
            store.enroll(server.url, server.enrollmentCode("amina"), null)
            val asked = java.util.concurrent.atomic.AtomicInteger()
            val repo = CaseRepository(store, afterSave = { asked.incrementAndGet() })
            val caseId = repo.createCase(child("Awa", "Traoré", "Kignan"))
            repo.editCase(caseId, mapOf("village" to "Kaniko"))
            assertEquals(2, asked.get())
            BackgroundSync(repo).run()
            assertEquals("a sync is not a save", 2, asked.get())
            runCatching { repo.createCase(mapOf("child_first_name" to "")) }
            assertEquals("a refused save asks nothing", 2, asked.get())
        }
    }

    @Test
    fun `background sync - a second sync waits for the first, never interleaves with it`() = runBlocking {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            StallingProxy(server.port).use { link ->
                val (store, _) = newStore("amina")
                store.enroll(link.url, server.enrollmentCode("amina"), null)
                val repo = CaseRepository(store)
                repo.createCase(child("Awa", "Traoré", "Kignan"))
                link.stall = true
                val first = launch(Dispatchers.IO) { runCatching { repo.sync { } } }
                until("the first sync waits on the stalled link") { link.stalled.size == 1 }
                // The periodic run starts meanwhile: it must not reach the network yet.
                val second = async(Dispatchers.IO) { repo.sync { } }
                Thread.sleep(500) // time for a second request to show, if one were made
                assertEquals("only the first sync reached the link", 1, link.stalled.size)
                link.stall = false
                first.cancel()
                val summary = withTimeout(60_000) { second.await() }
                assertEquals(1uL, summary.casesUp)
                assertEquals(1, link.stalled.size)
            }
        }
    }

    @Test
    fun `background sync - backoff doubles from 30 seconds up to 5 hours`() {
        assertEquals(listOf(30L, 60L, 120L, 240L), (0..3).map { BackgroundSync.backoffSeconds(it) })
        assertEquals(5 * 3600L, BackgroundSync.backoffSeconds(12))
        assertEquals(5 * 3600L, BackgroundSync.backoffSeconds(63))
    }
}
