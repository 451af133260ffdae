// The store the UI reads while a sync waits on a server that never answers: lists, search, a
// case and a save on other threads all return while the sync is still stalled. No timing is
// asserted (the benchmark measures it); the deadline only turns a hang into a failure.
package org.suivi.ffi

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.core.CaseQuery
import org.suivi.core.SuiviException
import org.suivi.core.SyncCancel
import org.suivi.demo.testing.DEADLINE_SECONDS
import org.suivi.demo.testing.StallingProxy
import org.suivi.demo.testing.TestServer
import org.suivi.demo.testing.child
import org.suivi.demo.testing.newStore
import org.suivi.demo.testing.until
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit

class StalledSyncTest {
    @Test
    fun `reads and saves return while a sync is stalled, and a cancel ends it without loss`() {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            StallingProxy(server.port).use { proxy ->
                val (store, _) = newStore("amina")
                store.enroll(proxy.url, server.enrollmentCode("amina"), null)
                val first = store.createCase(child("Aïcha", "Traoré", "Fès"))
                store.sync(null, null)

                proxy.stall = true
                val cancel = SyncCancel()
                val pool = Executors.newFixedThreadPool(4)
                val sync = pool.submit<Result<Any>> { runCatching { store.sync(null, cancel) } }
                until("the sync waits on the stalled server") { proxy.stalled.isNotEmpty() }

                // Each on its own thread, as the UI's IO dispatcher would run them.
                val listed = pool.submit<Int> { store.listCases(ALL).size }
                val found = pool.submit<List<String>> {
                    store.listCases(CaseQuery("AICHA", null, null, null, null, null)).map { it.caseId }
                }
                val opened = pool.submit<String> { store.caseDetail(first).summary.lastName }
                assertEquals(1, listed.get(DEADLINE_SECONDS, TimeUnit.SECONDS))
                assertEquals(listOf(first), found.get(DEADLINE_SECONDS, TimeUnit.SECONDS))
                assertEquals("Traoré", opened.get(DEADLINE_SECONDS, TimeUnit.SECONDS))
                // The save after the reads: made at once with them, the list could hold it
                // already (it counted 2 in one CI run).
                val saved = pool.submit<String> { store.createCase(child("Mariam", "Diarra", "Zégoua")) }
                val second = saved.get(DEADLINE_SECONDS, TimeUnit.SECONDS)
                assertEquals(2, store.listCases(ALL).size)
                assertTrue("the sync is still stalled", !sync.isDone)

                cancel.cancel()
                val outcome = sync.get(DEADLINE_SECONDS, TimeUnit.SECONDS)
                assertTrue("$outcome", outcome.exceptionOrNull() is SuiviException.Cancelled)
                pool.shutdown()

                proxy.stall = false
                val summary = store.sync(null, null)
                assertEquals("the case saved during the stall is pushed", 1uL, summary.casesUp)
                assertEquals(0uL, store.unsyncedCaseCount())
                assertEquals(listOf(second), store.listCases(CaseQuery("mariam", null, null, null, null, null)).map { it.caseId })
            }
        }
    }
}
