// Enrollment, the database key and what happens when it is lost, and re-enrollment after a
// revocation: the app's startup logic over the real bindings, a real suivi-server, and a
// software stand-in for the Android Keystore.
package org.suivi.demo

import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.core.CaseQuery
import org.suivi.core.CaseStore
import org.suivi.core.SuiviException
import org.suivi.demo.logic.AppFiles
import org.suivi.demo.logic.AppStartup
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.EnrollmentModel
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.Outcome
import org.suivi.demo.logic.Startup
import org.suivi.demo.logic.StoreKeys
import org.suivi.demo.logic.resetWarning
import org.suivi.demo.testing.SoftwareKeyWrapper
import org.suivi.demo.testing.TestServer
import org.suivi.demo.testing.Tls
import org.suivi.demo.testing.child
import org.suivi.demo.testing.tempDir
import java.io.File

class StartupTest {
    private class Phone(dir: File = tempDir(), val wrapper: SoftwareKeyWrapper = SoftwareKeyWrapper()) {
        val files = AppFiles(dir)
        val startup = AppStartup(files, StoreKeys(files, wrapper), "suivi-android 1.4.0-test")
    }

    private val all = CaseQuery(null, null, null, null, null, null)

    private fun ready(s: Startup): CaseStore {
        assertTrue("expected an open store, got $s", s is Startup.Ready)
        return (s as Startup.Ready).store
    }

    @Test
    fun `enrollment over https trusts the project CA for the enrollment itself`() {
        val tls = Tls.make()
        TestServer(tls).use { server ->
            server.addUser("amina", "agent", "sikasso")
            val code = server.enrollmentCode("amina")
            val phone = Phone()
            val screen = EnrollmentModel(Lang.FR).apply { this.server = server.url; user = "amina"; this.code = code }
            // Without the project's CA the server's certificate is not trusted: nothing is left behind.
            val untrusted = screen.enroll(phone.startup, "Tecno Spark")
            assertTrue("$untrusted", untrusted is Outcome.Failed)
            assertFalse("no store left after a failed enrollment", phone.files.store.exists())
            assertEquals(Startup.Enroll, phone.startup.open())
            screen.caPem = tls.caPem
            val enrolled = screen.enroll(phone.startup, "Tecno Spark")
            assertTrue("$enrolled", enrolled is Outcome.Ok)
            val store = ready(phone.startup.open())
            assertEquals("amina", store.user())
            assertEquals("the version each sync reports", "suivi-android 1.4.0-test", store.appVersion())
            assertEquals("agent", store.enrollment()!!.role)
            store.createCase(child("Awa", "Konaté", "Kignan"))
            assertEquals(1uL, store.sync(null, null).casesUp)
        }
    }

    @Test
    fun `enrollment screen checks its fields before sending anything`() {
        val screen = EnrollmentModel(Lang.EN).apply { server = "http://sync.example.org"; caPem = "not a certificate" }
        val problems = screen.problems()
        assertEquals(setOf("server", "user", "code", "ca"), problems.keys)
        assertEquals("An https:// address is required", problems["server"])
    }

    @Test
    fun `a code issued for someone else is refused and leaves no store`() {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            server.addUser("karim", "agent", "sikasso")
            val code = server.enrollmentCode("amina")
            val phone = Phone()
            val refused = runCatching { phone.startup.enroll("karim", "phone", server.url, code, null) }
            assertTrue("${refused.exceptionOrNull()}", refused.exceptionOrNull() is SuiviException.Forbidden)
            assertFalse(phone.files.store.exists())
            // The code stays unused: its user enrolls with it.
            val store = phone.startup.enroll("amina", "phone", server.url, code, null)
            assertEquals("amina", store.user())
        }
    }

    @Test
    fun `a key written without its store (process death) leads to enrollment, not to a wrong key`() {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            val phone = Phone()
            StoreKeys(phone.files, phone.wrapper).newKey() // the process dies here
            assertEquals(Startup.Enroll, phone.startup.open())
            phone.startup.enroll("amina", "phone", server.url, server.enrollmentCode("amina"), null)
            ready(phone.startup.open())
        }
    }

    @Test
    fun `a lost key offers a reset that says how many cases it loses, then enrollment brings synced cases back`() {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            val phone = Phone()
            val store = phone.startup.enroll("amina", "phone", server.url, server.enrollmentCode("amina"), null)
            val repo = CaseRepository(store, phone.startup.unsynced)
            runBlocking {
                repo.createCase(child("Awa", "Konaté", "Kignan"))
                repo.sync { }
                repo.createCase(child("Bintou", "Traoré", "Kignan"))
                repo.createCase(child("Oumou", "Diallo", "Kignan"))
            }
            store.close()
            phone.wrapper.lose() // the Keystore was reset
            val lost = phone.startup.open()
            assertEquals(Startup.KeyLost(2), lost)
            assertEquals(
                "Réinitialiser efface 2 dossier(s) avec des modifications non synchronisées.",
                resetWarning((lost as Startup.KeyLost).unsyncedCases, Lang.FR),
            )
            phone.startup.reset()
            assertEquals(Startup.Enroll, phone.startup.open())
            val again = phone.startup.enroll("amina", "phone", server.url, server.enrollmentCode("amina"), null)
            again.sync(null, null)
            assertEquals(listOf("Awa"), again.listCases(all).map { it.firstName })
        }
    }

    @Test
    fun `a phone transferred to another device (files without the Keystore key) does not crash`() {
        val old = Phone()
        val store = CaseStore.create(old.files.store.path, StoreKeys(old.files, old.wrapper).newKey(), "amina", "phone")
        store.createCase(child("Awa", "Konaté", "Kignan"))
        store.close()
        val copied = tempDir()
        old.files.dir.listFiles()!!.forEach { it.copyTo(File(copied, it.name)) }
        val transferred = Phone(copied, SoftwareKeyWrapper())
        val lost = transferred.startup.open()
        assertEquals(Startup.KeyLost(null), lost)
        assertEquals(
            "How many unsynced changes there are is unknown: they will be lost.",
            resetWarning((lost as Startup.KeyLost).unsyncedCases, Lang.EN),
        )
    }

    @Test
    fun `a revoked phone is wiped, says so at startup, and enrolls again`() {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            val phone = Phone()
            val store = phone.startup.enroll("amina", "phone", server.url, server.enrollmentCode("amina"), null)
            store.createCase(child("Awa", "Konaté", "Kignan"))
            store.sync(null, null)
            server.revoke(store.enrollment()!!.deviceId)
            store.createCase(child("Bintou", "Traoré", "Kignan"))
            val e = runCatching { store.sync(null, null) }.exceptionOrNull()
            assertTrue("$e", e is SuiviException.Revoked)
            assertEquals(0, store.listCases(all).size)
            store.close()
            val revoked = phone.startup.open()
            assertTrue("$revoked", revoked is Startup.Revoked)
            (revoked as Startup.Revoked).store.close()
            phone.startup.reset()
            val again = phone.startup.enroll("amina", "phone", server.url, server.enrollmentCode("amina"), null)
            again.sync(null, null)
            assertEquals(listOf("Awa"), again.listCases(all).map { it.firstName })
        }
    }
}
