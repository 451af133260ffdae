// Drafts: a half-filled form survives the process being killed (the store closed and opened
// again mid-form), is discarded explicitly or by the save, and goes with the case on the phone.
package org.suivi.demo

import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.core.CaseStore
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.FormScreenModel
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.Outcome
import org.suivi.demo.testing.KEY
import org.suivi.demo.testing.TestServer
import org.suivi.demo.testing.child
import org.suivi.demo.testing.newStore

class DraftsTest {
    @Test
    fun `drafts - a form killed half-way opens again with its answers, and a save ends the draft`() = runBlocking {
        val (first, path) = newStore()
        val typed = child("Mariam", "Diarra", "Kalaké")
        run {
            val form = FormScreenModel.load(CaseRepository(first), "identification", Lang.FR)
            assertFalse(form.restored)
            typed.forEach { (k, v) -> form.answer(k, v) }
            // Android kills the process: nothing else runs, the store is simply gone.
            first.close()
        }
        val store = CaseStore.open(path.path, KEY)
        val repo = CaseRepository(store)
        val again = FormScreenModel.load(repo, "identification", Lang.FR)
        assertTrue("said to be restored", again.restored)
        assertEquals(typed, again.inputs.toMap())
        assertTrue("relevance follows the restored answers", "work_sector" in again.visibleFields().map { it.id })
        val saved = again.submitNewCase()
        assertTrue("$saved", saved is Outcome.Ok)
        assertNull("the save ends the draft", store.draft("identification", null))
        // A keep still on its way from the last keystroke writes nothing after the save.
        again.keepDraft()
        assertNull("no draft comes back", store.draft("identification", null))
        assertFalse(FormScreenModel.load(repo, "identification", Lang.FR).restored)
    }

    @Test
    fun `drafts - one per form and case, thrown away on request`() = runBlocking {
        val (store, _) = newStore()
        val repo = CaseRepository(store)
        val caseId = store.createCase(child("Awa", "Traoré", "Kignan"))
        val visit = FormScreenModel.load(repo, "followup", Lang.FR, caseId)
        visit.answer("notes", "Absente, partie au champ avec sa mère")
        val newChild = FormScreenModel.load(repo, "identification", Lang.FR)
        newChild.answer("child_first_name", "Salma")
        assertEquals(2, store.drafts().size)
        assertEquals("Absente, partie au champ avec sa mère", FormScreenModel.load(repo, "followup", Lang.FR, caseId).inputs["notes"])
        assertTrue("another case's visit form starts empty",
            FormScreenModel.load(repo, "followup", Lang.FR, store.createCase(child("Moussa", "Keïta", "Kignan"))).inputs.isEmpty())
        visit.discard()
        assertNull(store.draft("followup", caseId))
        visit.keepDraft()
        assertNull("a late keep after the discard writes nothing", store.draft("followup", caseId))
        assertTrue(FormScreenModel.load(repo, "followup", Lang.FR, caseId).inputs.isEmpty())
        assertEquals(listOf("identification"), store.drafts().map { it.formId })
    }

    @Test
    fun `drafts - a revoked phone's wipe takes its drafts`() = runBlocking {
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            val (store, _) = newStore("amina")
            store.enroll(server.url, server.enrollmentCode("amina"), null)
            val caseId = store.createCase(child("Awa", "Traoré", "Kignan"))
            store.sync(null, null)
            val repo = CaseRepository(store)
            FormScreenModel.load(repo, "followup", Lang.FR, caseId).answer("notes", "Awa a été vue à la mine")
            FormScreenModel.load(repo, "identification", Lang.FR).answer("child_first_name", "Salma")
            assertEquals(2, store.drafts().size)
            server.revoke(store.enrollment()!!.deviceId)
            runCatching { store.sync(null, null) }
            assertTrue(store.isWiped())
            assertTrue("no draft left to name a child", store.drafts().isEmpty())
        }
    }
}
