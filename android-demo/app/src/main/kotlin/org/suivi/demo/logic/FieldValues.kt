package org.suivi.demo.logic

import java.time.LocalDate
import java.util.Locale

/**
 * The values the phone's own pickers give a form, in the text the form takes: a date from the
 * calendar, a position from the GPS. Plain Kotlin, so what the screens store is tested on the JVM
 * against core's validation; the pickers themselves are Android glue (`ui/FieldInputs.kt`).
 */
object FieldValues {
    /** A date picked on the calendar (month 1 to 12), as a form stores it: `2014-03-09`. */
    fun date(year: Int, month: Int, day: Int): String = LocalDate.of(year, month, day).toString()

    /**
     * Where the calendar opens: the stored date, or `today` when there is none (or it does not
     * read as a date, as typed by an older screen). Month 1 to 12.
     */
    fun calendarStart(stored: String, today: LocalDate): Triple<Int, Int, Int> {
        val date = runCatching { LocalDate.parse(stored.trim()) }.getOrNull() ?: today
        return Triple(date.year, date.monthValue, date.dayOfMonth)
    }

    /**
     * A GPS position as a form takes it: latitude then longitude, six decimals (about a tenth of
     * a metre), a point as the decimal mark whatever the phone's language (a French phone would
     * otherwise write `12,6392`, which reads as two numbers).
     */
    fun position(latitude: Double, longitude: Double): String =
        String.format(Locale.ROOT, "%.6f %.6f", latitude, longitude)

    /** A fix worth keeping: accurate to [ACCURACY_METERS_MAX] and taken in the last two minutes. */
    fun goodFix(accuracyMeters: Float?, ageMillis: Long): Boolean =
        accuracyMeters != null && accuracyMeters <= ACCURACY_METERS_MAX && ageMillis in 0..FIX_AGE_MILLIS_MAX

    /** What the agent reads under the position: "± 8 m". */
    fun accuracyText(accuracyMeters: Float): String = "± ${Math.round(accuracyMeters)} m"

    /** Beyond this a position may place a child in the wrong village. */
    const val ACCURACY_METERS_MAX = 50f
    const val FIX_AGE_MILLIS_MAX = 120_000L
}
