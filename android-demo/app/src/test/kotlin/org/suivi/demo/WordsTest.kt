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
import org.suivi.demo.testing.TestServer
import org.suivi.demo.testing.child
import org.suivi.demo.testing.newStore
import java.io.File

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

    @Test
    fun `words - a phone set to Bambara reads a form's Bambara labels, French where it has none`() = runBlocking {
        // Identification version 2 with a few labels in Bambara, as a programme in Sikasso
        // publishes them (the server takes the same from an XLSForm's label::bm column).
        val v2 = File("tests/fixtures/identification.v2.json").readText()
        val bambara = listOf(
            "\"fr\": \"Prénom de l'enfant\"," to "Tɔgɔ",
            "\"fr\": \"Fille\"," to "Denmuso",
            "\"fr\": \"Garçon\"," to "Dencɛ",
        ).fold(v2) { text, (french, bm) ->
            assertTrue("the fixture has $french", text.contains(french))
            text.replace(french, "\"bm\": \"$bm\", $french")
        }
        val file = File.createTempFile("identification-v2-bm", ".json").apply { writeText(bambara); deleteOnExit() }
        TestServer().use { server ->
            server.addUser("amina", "agent", "sikasso")
            server.addUser("nadia", "admin", "sikasso")
            val (store, _) = newStore("amina")
            store.enroll(server.url, server.enrollmentCode("amina"), null)
            server.admin("form", "publish", file.absolutePath, "--by", "nadia")
            store.sync(null, null)

            val bm = Lang.from("bm-ML")
            assertEquals("bm", bm.tag)
            assertEquals("the app's own words are French", Lang.FR, bm.app)
            val repo = CaseRepository(store)
            val form = FormScreenModel.load(repo, "identification", bm)
            assertEquals(2u, form.form.version)
            val labels = form.form.fields.associate { it.id to it.label }
            assertEquals("Tɔgɔ", labels["child_first_name"])
            assertEquals("no Bambara label: the French one", "Nom de famille de l'enfant", labels["child_last_name"])
            assertEquals(listOf("Denmuso", "Dencɛ"), form.form.fields.first { it.id == "sex" }.choices.map { it.label })
            assertTrue(!form.rightToLeft)
            form.answer("child_first_name", "")
            val refused = form.submitNewCase()
            assertTrue("$refused", refused is Outcome.Failed)
            assertEquals("Obligatoire", form.fieldErrors["child_first_name"])

            val caseId = store.createCase(child("Awa", "Koné", "Misséni") + ("household_size" to "5"))
            val words = store.identificationInWords(caseId, bm.tag).associate { it.label to it.value }
            assertEquals("Denmuso", words["Sexe"])
            assertEquals("Awa", words["Tɔgɔ"])
            val french = FormScreenModel.load(repo, "identification", Lang.FR).form.fields
            assertEquals("Prénom de l'enfant", french.first { it.id == "child_first_name" }.label)
        }
    }

    @Test
    fun `words - every message the app's screens name has a text`() {
        // The screens are Android glue, not compiled here: a key misspelt there would show as
        // the key itself. Read them for the keys they name.
        val named = File("android-demo/app/src/main/kotlin").walk().filter { it.extension == "kt" }
            .flatMap { Regex("Messages\\.text\\(\"([a-z_.]+)\"").findAll(it.readText()).map { m -> m.groupValues[1] } }
            .toSet()
        assertTrue("the screens name keys: $named", "gps.capture" in named && "date.pick" in named && named.size > 20)
        assertEquals("keys without a text", emptySet<String>(), named.filterNot { Messages.has(it) }.toSet())
    }
}
