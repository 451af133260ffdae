// Words, not codes: a text for every message key core can emit, in every language; bounds in
// range messages; a case's values by their labels (yes or no, choices, multiple choices, dates).
package org.suivi.demo

import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.core.fieldErrorKeys
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.FormScreenModel
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.Outcome
import org.suivi.demo.testing.child
import org.suivi.demo.testing.newStore

class WordsTest {
    @Test
    fun `words - every key core can emit has a text in French, English and Arabic`() {
        val keys = fieldErrorKeys()
        assertTrue("core lists its keys: $keys", keys.size >= 20 && "choice.duplicate" in keys)
        val missing = keys.filter { !Messages.has(it) }
        assertEquals("keys without a text", emptyList<String>(), missing)
        for (lang in Lang.values()) for (key in keys) {
            val text = Messages.text(key, lang)
            assertTrue("$key in $lang: '$text'", text.isNotBlank() && text != key)
        }
    }

    @Test
    fun `words - a broken bound is said, a date bound written out`() = runBlocking {
        val repo = CaseRepository(newStore().first)
        val form = FormScreenModel.load(repo, "identification", Lang.FR)
        child("Aïcha", "Traoré", "Fès").forEach { (k, v) -> form.answer(k, v) }
        form.answer("dob_known", "oui")
        form.answer("date_of_birth", "1999-05-01")
        val failed = form.submitNewCase()
        assertTrue("$failed", failed is Outcome.Failed)
        assertEquals("Trop petit : 1 janvier 2000 au moins", form.fieldErrors["date_of_birth"])
    }

    @Test
    fun `words - a case's values read by their labels`() {
        val (store, _) = newStore()
        val caseId = store.createCase(child("Aïcha", "Traoré", "Fès"))
        val fr = store.identificationInWords(caseId, "fr").associate { it.label to it.value }
        assertEquals("Fille", fr["Sexe"])
        assertEquals("a boolean in words", "oui", fr["L'enfant travaille-t-il actuellement ?"])
        assertTrue("no raw code: $fr", fr.values.none { it == "true" || it == "false" || it == "artisanal_gold_mining" })
        assertTrue("a multiple choice by its labels: $fr", fr.values.any { it.contains("Mercure") && it.contains(", ") })
        val ar = store.identificationInWords(caseId, "ar")
        assertTrue("Arabic labels: $ar", ar.first().label.any { it in '\u0600'..'\u06FF' })
    }
}
