// The sync screen's logic against a real suivi-server: progress, the result, the last-sync line,
// and a cancel that stops a sync stalled on the network at once.
package org.suivi.demo

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.GlobalScope
import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.core.CaseQuery
import org.suivi.core.SuiviException
import org.suivi.demo.logic.CaseListViewModel
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.SyncViewModel
import org.suivi.demo.logic.UiError
import org.suivi.demo.testing.StallingProxy
import org.suivi.demo.testing.TestServer
import org.suivi.demo.testing.child
import org.suivi.demo.testing.newStore
import org.suivi.demo.testing.joinWithin
import org.suivi.demo.testing.until
import java.util.concurrent.CopyOnWriteArrayList

class SyncViewModelTest {
    @Test
    fun `sync screen - progress, result and last-sync line`() = runBlocking {
        TestServer().use { server ->
            server.addUser("amina", "agent", "souk-sebt")
            val (store, _) = newStore("amina")
            val sync = SyncViewModel(CaseRepository(store), GlobalScope, Lang.FR)
            assertEquals("Jamais synchronisé", sync.lastSyncLine())
            store.enroll(server.url, server.enrollmentCode("amina"), null)
            store.createCase(child("Khadija", "Benali", "Douar Ouled Ali"))
            val seen = CopyOnWriteArrayList<SyncViewModel.State>()
            sync.observe { seen.add(it) }
            sync.start().joinWithin()
            val done = sync.state
            assertTrue("sync done: $done", done is SyncViewModel.State.Done)
            assertEquals(1uL, (done as SyncViewModel.State.Done).summary.casesUp)
            assertTrue("progress drawn: $seen", seen.any { it is SyncViewModel.State.Running && it.pages > 0 })
            assertTrue(sync.lastSyncLine(), sync.lastSyncLine().startsWith("Dernière synchronisation"))
        }
    }

    @Test
    fun `a new phone's first sync says how far it is against the caseload it announced`() = runBlocking {
        TestServer().use { server ->
            server.addUser("amina", "agent", "souk-sebt")
            server.addUser("fatima", "supervisor", "souk-sebt")
            val (agent, _) = newStore("amina")
            agent.enroll(server.url, server.enrollmentCode("amina"), null)
            for (name in listOf("Khadija", "Salma", "Nadia")) agent.createCase(child(name, "Benali", "Souk Sebt"))
            agent.sync(null, null)
            val (store, _) = newStore("fatima")
            store.enroll(server.url, server.enrollmentCode("fatima"), null)
            val sync = SyncViewModel(CaseRepository(store), GlobalScope, Lang.FR)
            val seen = CopyOnWriteArrayList<SyncViewModel.State>()
            sync.observe { seen.add(it) }
            sync.start().joinWithin()
            assertTrue("${sync.state}", sync.state is SyncViewModel.State.Done)
            val running = seen.filterIsInstance<SyncViewModel.State.Running>()
            assertTrue("the caseload announced: $running", running.any { it.caseload == 3L })
            assertEquals("3 dossiers arrivés sur 3", running.last().howFar(Lang.FR))
            assertEquals("0 cases arrived of 3", running.first { it.caseload == 3L }.copy(casesDown = 0).howFar(Lang.EN))
            assertEquals(null, SyncViewModel.State.Running(1, 2, 3).howFar(Lang.FR))
            // Once synced the list is the phone's own: nothing marked arriving.
            assertTrue(store.listCases(CaseQuery(null, null, null, null, null, null)).none { it.arriving })
        }
    }

    @Test
    fun `a case listed ahead of its history opens at once, fetched by itself`() = runBlocking {
        TestServer().use { server ->
            server.addUser("amina", "agent", "souk-sebt")
            server.addUser("fatima", "supervisor", "souk-sebt")
            val (agent, _) = newStore("amina")
            agent.enroll(server.url, server.enrollmentCode("amina"), null)
            repeat(40) { n -> agent.createCase(child("Enfant$n", "Benali", "Souk Sebt")) }
            agent.sync(null, null)
            StallingProxy(server.port).use { proxy ->
                val (store, _) = newStore("fatima")
                store.enroll(proxy.url, server.enrollmentCode("fatima"), null)
                // The link drops after the list rows, inside the first page of cases.
                proxy.cutDownAfter = 3000
                val cut = runCatching { store.sync(null, null) }.exceptionOrNull()
                assertTrue("$cut", cut is SuiviException.Offline)
                val listed = store.listCases(CaseQuery(null, null, null, null, null, null))
                assertEquals(40, listed.size)
                assertTrue("every row arriving", listed.all { it.arriving })
                val repo = CaseRepository(store)
                val list = CaseListViewModel(repo, Lang.FR)
                list.refresh()
                assertTrue(list.row(list.cases.first()), list.row(list.cases.first()).endsWith("en cours d'arrivée"))
                // Opened: fetched at once, through the same link, healed.
                proxy.cutDownAfter = null
                val opened = repo.case(listed[7].caseId)
                assertEquals(listed[7].firstName, opened.summary.firstName)
                assertTrue(store.listCases(CaseQuery(null, null, null, null, null, null)).count { !it.arriving } == 1)
                store.sync(null, null)
                assertTrue(store.listCases(CaseQuery(null, null, null, null, null, null)).none { it.arriving })
            }
        }
    }

    @Test
    fun `sync screen - cancelling a stalled sync stops it at once and loses nothing`() = runBlocking {
        TestServer().use { server ->
            server.addUser("amina", "agent", "souk-sebt")
            StallingProxy(server.port).use { proxy ->
                val (store, _) = newStore("amina")
                store.enroll(proxy.url, server.enrollmentCode("amina"), null)
                val repo = CaseRepository(store)
                val sync = SyncViewModel(repo, GlobalScope, Lang.FR)
                proxy.stall = true
                val job = sync.start()
                until("the sync waits on the stalled link") { proxy.stalled.isNotEmpty() }
                // Meanwhile the agent records a child: the save does not wait for the sync.
                val saved = repo.createCase(child("Nadia", "Amrani", "Souk Sebt"))
                assertTrue("still syncing", sync.running)
                sync.cancel()
                job.joinWithin()
                assertEquals(SyncViewModel.State.Cancelled, sync.state)
                proxy.stall = false
                sync.start().joinWithin()
                val done = sync.state
                assertTrue("synced once the link is back: $done", done is SyncViewModel.State.Done)
                assertEquals(1uL, (done as SyncViewModel.State.Done).summary.casesUp)
                assertEquals(listOf(saved), store.listCases(CaseQuery(null, null, null, null, null, null)).map { it.caseId })
            }
        }
    }

    @Test
    fun `sync screen - offline is a message in the agent's language, with retry later`() = runBlocking {
        TestServer().use { server ->
            server.addUser("amina", "agent", "souk-sebt")
            val (store, _) = newStore("amina")
            store.enroll(server.url, server.enrollmentCode("amina"), null)
            server.close()
            val sync = SyncViewModel(CaseRepository(store, io = Dispatchers.IO), GlobalScope, Lang.EN)
            sync.start().joinWithin()
            val failed = sync.state
            assertTrue("$failed", failed is SyncViewModel.State.Failed)
            val error = (failed as SyncViewModel.State.Failed).error
            assertEquals("Offline: nothing is lost", error.message)
            assertEquals(UiError.Next.RETRY_LATER, error.next)
        }
    }
}
