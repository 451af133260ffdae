// What the phone's date and GPS pickers store: text core's validation takes, whatever the
// phone's language, read back as the same date and position.
package org.suivi.demo

import kotlinx.coroutines.runBlocking
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.FieldValues
import org.suivi.demo.logic.FormScreenModel
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.Outcome
import org.suivi.demo.testing.child
import org.suivi.demo.testing.newStore
import java.time.LocalDate
import java.util.Locale

class FieldValuesTest {
    @Test
    fun `pickers - a picked date and a GPS fix on a French phone are saved as the same date and position`() = runBlocking {
        val before = Locale.getDefault()
        Locale.setDefault(Locale.FRANCE)
        try {
            val position = FieldValues.position(11.317_852_4, -5.666_301_9)
            assertEquals("a point, never the French comma", "11.317852 -5.666302", position)
            val born = FieldValues.date(2014, 3, 9)
            assertEquals("2014-03-09", born)

            val repo = CaseRepository(newStore().first)
            val form = FormScreenModel.load(repo, "identification", Lang.FR)
            child("Awa", "Koné", "Misséni").forEach { (k, v) -> form.answer(k, v) }
            form.answer("dob_known", "oui")
            form.answer("date_of_birth", born)
            form.answer("gps", position)
            val saved = form.submitNewCase()
            assertTrue("$saved", saved is Outcome.Ok)
            val detail = repo.store.caseDetail((saved as Outcome.Ok).value)
            assertEquals("2014-03-09", detail.identification["date_of_birth"])
            val gps = detail.identification["gps"].orEmpty()
            assertTrue(gps, gps.contains("11.317852") && gps.contains("-5.666302"))
        } finally {
            Locale.setDefault(before)
        }
    }

    @Test
    fun `pickers - the calendar opens on the stored date, or today`() {
        val today = LocalDate.of(2026, 12, 7)
        assertEquals(Triple(2014, 3, 9), FieldValues.calendarStart("2014-03-09", today))
        assertEquals(Triple(2026, 12, 7), FieldValues.calendarStart("", today))
        assertEquals(Triple(2026, 12, 7), FieldValues.calendarStart("9 mars", today))
    }

    @Test
    fun `pickers - a vague or stale fix is not kept`() {
        assertTrue(FieldValues.goodFix(8f, 1_000))
        assertFalse("too vague to place a village", FieldValues.goodFix(400f, 1_000))
        assertFalse("an old fix from elsewhere", FieldValues.goodFix(8f, 10 * 60_000))
        assertFalse("no accuracy told", FieldValues.goodFix(null, 1_000))
        assertEquals("± 8 m", FieldValues.accuracyText(7.6f))
    }
}
