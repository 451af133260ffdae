// Every kind of error the app acts on reaches Kotlin as its own exception, a bug in Rust (a
// panic) is an exception the app catches instead of a crash, and no message carries a child's
// data.
package org.suivi.ffi

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.core.CaseStore
import org.suivi.core.SuiviException
import org.suivi.core.SyncListener
import org.suivi.core.SyncProgress
import org.suivi.demo.testing.FixedReplyServer
import org.suivi.demo.testing.KEY
import org.suivi.demo.testing.TestServer
import org.suivi.demo.testing.child
import org.suivi.demo.testing.newStore
import org.suivi.demo.testing.tempDir
import java.io.File

class ErrorsTest {
    /** What the child's record holds: none of it may appear in an error. */
    private val childData = listOf("Aïcha", "Traoré", "Fès", "Kignan", "Sikasso")
    private val seen = mutableListOf<Throwable>()

    private inline fun <reified E : Throwable> caught(block: () -> Unit): E {
        val e = expectThrows<E>(block)
        seen.add(e)
        return e
    }

    private fun noChildDataInMessages() {
        for (e in seen) {
            val text = "${e.message} $e"
            for (word in childData) assertFalse("'$word' in the message of $e", text.contains(word))
        }
    }

    @Test
    fun `errors of the store itself are typed, without child data`() {
        val (store, path) = newStore()
        val caseId = store.createCase(child("Aïcha", "Traoré", "Fès"))
        caught<SuiviException.Validation> { store.editCase(caseId, mapOf("estimated_age" to "Kignan")) }
        caught<SuiviException.NotFound> { store.caseDetail("0123456789abcdef0123456789abcdef") }
        val referral = store.refer(caseId, mapOf(
            "service_type" to "birth_registration", "provider" to "Mairie de Kignan", "reason" to "Pas d'acte",
            "urgency" to "routine", "consent" to "oui",
        ))
        val illegal = caught<SuiviException.IllegalTransition> { store.moveReferral(referral, "complete", null, null) }
        assertEquals("complete", illegal.transition)
        assertEquals("draft", illegal.from)
        caught<SuiviException.InvalidInput> { store.moveReferral(referral, "teleport", null, null) }
        caught<SuiviException.InvalidInput> { store.setServerCa("not a certificate") }
        caught<SuiviException.NotEnrolled> { store.sync(null, null) }
        store.close()
        caught<SuiviException.WrongKey> { CaseStore.open(path.path, "x'" + "11".repeat(32) + "'") }
        // A directory where the database should be: the storage fails, it is not a wrong key.
        caught<SuiviException.Storage> { CaseStore.open(tempDir().path, KEY) }
        noChildDataInMessages()
    }

    @Test
    fun `errors of the network and the server are typed, without child data`() {
        val (store, _) = newStore()
        store.createCase(child("Aïcha", "Traoré", "Fès"))
        caught<SuiviException.Offline> { store.enroll("http://127.0.0.1:9", "ABCDEFGHJK", null) }
        FixedReplyServer(426, """{"error":"upgrade_required","message":"update the app"}""").use { old ->
            caught<SuiviException.UpgradeRequired> { store.enroll(old.url, "ABCDEFGHJK", null) }
        }
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            server.addUser("karim", "agent", "sikasso")
            caught<SuiviException.Forbidden> { store.enroll(server.url, server.enrollmentCode("karim"), null) }
            store.enroll(server.url, server.enrollmentCode("amina"), null)
            store.sync(null, null)
            server.revoke(store.enrollment()!!.deviceId)
            caught<SuiviException.Revoked> { store.sync(null, null) }
            assertTrue("the case data is wiped", store.isWiped())
        }
        noChildDataInMessages()
    }

    @Test
    fun `a panic in Rust is an Internal exception the app catches, and the store goes on`() {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            val (store, _) = newStore("amina")
            store.enroll(server.url, server.enrollmentCode("amina"), null)
            store.createCase(child("Aïcha", "Traoré", "Fès"))
            // A progress listener that throws makes uniffi panic inside the sync.
            val broken = object : SyncListener {
                override fun onProgress(progress: SyncProgress) = throw IllegalStateException("listener bug")
            }
            caught<SuiviException.Internal> { store.sync(broken, null) }
            // The page committed before the panic stays; the next sync completes.
            store.createCase(child("Mariam", "Diarra", "Zégoua"))
            val summary = store.sync(null, null)
            assertEquals(0uL, store.unsyncedCaseCount())
            assertTrue("$summary", summary.casesUp >= 1uL)
        }
        noChildDataInMessages()
    }

    @Test
    fun `a full phone storage is StorageFull and loses nothing saved before`() {
        // A real full filesystem: a small tmpfs (CI runs as root, as the Rust disk-full tests do).
        val mount = tempDir()
        val mounted = ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mount.path).start().waitFor() == 0
        if (!mounted) {
            // Never skipped unasked: a run that cannot mount says so, or is told to skip.
            org.junit.Assume.assumeTrue("SUIVI_NO_ROOT=1: the full-storage test is skipped", System.getenv("SUIVI_NO_ROOT") == "1")
            throw AssertionError("cannot mount a tmpfs: run as root (CI does), or set SUIVI_NO_ROOT=1 to skip this test knowingly")
        }
        try {
            val path = File(mount, "amina.db").path
            val store = CaseStore.create(path, KEY, "amina", "phone")
            val kept = store.createCase(child("Aïcha", "Traoré", "Fès"))
            // Fill what is left of the filesystem.
            runCatching { File(mount, "filler").outputStream().use { out -> val mb = ByteArray(1 shl 20); while (true) out.write(mb) } }
            caught<SuiviException.StorageFull> {
                repeat(200) { store.createCase(child("Mariam", "Diarra", "Zégoua")) }
            }
            File(mount, "filler").delete()
            assertEquals(kept, store.caseDetail(kept).summary.caseId)
            store.close()
        } finally {
            ProcessBuilder("umount", "-l", mount.path).start().waitFor()
        }
        noChildDataInMessages()
    }
}
