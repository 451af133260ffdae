// The phone open to whoever holds it, closed: the app PIN with growing waits, Keystore failures
// classified (try again against reset), and a reset that could lose work typed to confirm.
package org.suivi.demo

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.core.CaseQuery
import org.suivi.demo.logic.AppFiles
import org.suivi.demo.logic.AppLock
import org.suivi.demo.logic.AppStartup
import org.suivi.demo.logic.KeyTemporarilyUnavailable
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.ResetConfirmation
import org.suivi.demo.logic.Startup
import org.suivi.demo.logic.StoreKeys
import org.suivi.demo.logic.UiError
import org.suivi.demo.logic.toUiError
import org.suivi.core.CaseStore
import org.suivi.demo.testing.SoftwareKeyWrapper
import org.suivi.demo.testing.child
import org.suivi.demo.testing.tempDir
import java.io.File

class PhoneSecurityTest {
    private val all = CaseQuery(null, null, null, null, null, null)

    private fun phoneWithACase(): Triple<AppStartup, SoftwareKeyWrapper, AppFiles> {
        val files = AppFiles(tempDir())
        val wrapper = SoftwareKeyWrapper()
        val store = CaseStore.create(files.store.path, StoreKeys(files, wrapper).newKey(), "amina", "phone")
        store.createCase(child("Awa", "Konaté", "Kignan"))
        store.close()
        return Triple(AppStartup(files, StoreKeys(files, wrapper)), wrapper, files)
    }

    @Test
    fun `a Keystore that does not answer offers to try again, never a reset, and loses nothing`() {
        val (startup, wrapper, files) = phoneWithACase()
        wrapper.failure = java.security.KeyStoreException("keystore2: system busy")
        val busy = runCatching { startup.open() }.exceptionOrNull()
        assertTrue("$busy", busy is KeyTemporarilyUnavailable)
        val error = busy!!.toUiError(Lang.FR)
        assertEquals(UiError.Next.RETRY_LATER, error.next)
        assertTrue(error.message, error.message.startsWith("Le coffre de clés du téléphone n'a pas répondu"))
        assertTrue("the store is untouched", files.store.exists() && files.wrappedKey.exists())
        wrapper.failure = null
        val ready = startup.open()
        assertTrue("$ready", ready is Startup.Ready)
        assertEquals(listOf("Awa"), (ready as Startup.Ready).store.listCases(all).map { it.firstName })
    }

    @Test
    fun `only a key proven gone leads to a reset`() {
        for ((what, make) in listOf<Pair<String, (SoftwareKeyWrapper) -> Unit>>(
            "unrecoverable" to { it.failure = java.security.UnrecoverableKeyException("gone") },
            "removed" to { it.remove() },
            "replaced" to { it.lose() },
        )) {
            val (startup, wrapper, _) = phoneWithACase()
            make(wrapper)
            assertEquals(what, Startup.KeyLost(null), startup.open())
        }
    }

    @Test
    fun `a reset that could lose work is typed to confirm`() {
        val loses = ResetConfirmation(2, Lang.FR)
        assertTrue(loses.needsTyping)
        assertTrue(loses.text, loses.text.contains("efface 2 dossier(s)") && loses.text.endsWith("tapez EFFACER"))
        assertFalse(loses.accepts(""))
        assertFalse(loses.accepts("oui"))
        assertTrue(loses.accepts(" effacer "))
        assertTrue("unknown counts as work to lose", ResetConfirmation(null, Lang.AR).needsTyping)
        assertTrue(ResetConfirmation(null, Lang.AR).accepts("مسح"))
        val nothing = ResetConfirmation(0, Lang.EN)
        assertFalse(nothing.needsTyping)
        assertTrue(nothing.accepts(""))
    }

    @Test
    fun `the app PIN - asked at start and after idling, growing waits that survive a restart`() {
        val dir = tempDir()
        var now = 1_000_000L
        val lock = AppLock(dir) { now }
        assertFalse("no PIN yet: nothing asked", lock.locked())
        assertFalse(lock.acceptable("12a4"))
        assertFalse(lock.acceptable("123"))
        lock.setPin("2580")
        assertFalse("just set", lock.locked())
        assertFalse("only a verifier is kept", File(dir, "app-lock").readText().contains("2580"))
        now += AppLock.IDLE_MILLIS - 1
        assertFalse(lock.locked())
        lock.touch()
        now += AppLock.IDLE_MILLIS
        assertTrue("idle too long", lock.locked())

        // The app restarts: locked at once; three wrong tries are free, then the waits grow.
        val restarted = AppLock(dir) { now }
        assertTrue(restarted.locked())
        assertEquals(AppLock.Attempt.Wrong(0), restarted.unlock("1111"))
        assertEquals(AppLock.Attempt.Wrong(0), restarted.unlock("2222"))
        assertEquals(AppLock.Attempt.Wrong(30), restarted.unlock("3333"))
        assertEquals("nothing checked meanwhile, not even the right PIN", AppLock.Attempt.Wait(30), restarted.unlock("2580"))
        // Killing the app does not clear the wait.
        val again = AppLock(dir) { now }
        now += 10_000
        assertEquals(AppLock.Attempt.Wait(20), again.unlock("2580"))
        now += 20_000
        assertEquals(AppLock.Attempt.Wrong(60), again.unlock("4444"))
        now += 60_000
        assertEquals(AppLock.Attempt.Opened, again.unlock("2580"))
        assertFalse(again.locked())
        assertEquals(listOf(0L, 0L, 0L, 30L, 60L, 120L), (0..5).map { AppLock.waitSeconds(it) })
        assertEquals(3600L, AppLock.waitSeconds(40))
    }
}
