package org.suivi.demo.ui

import android.Manifest
import android.app.Activity
import android.app.DatePickerDialog
import android.content.pm.PackageManager
import android.location.Location
import android.location.LocationManager
import android.os.SystemClock
import android.text.InputType
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.CheckBox
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.Spinner
import android.widget.TextView
import androidx.core.content.ContextCompat
import androidx.core.location.LocationManagerCompat
import org.suivi.core.FieldInfo
import org.suivi.core.dateInWords
import org.suivi.demo.logic.FieldValues
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.Messages
import java.time.LocalDate
import java.util.concurrent.TimeUnit

/**
 * The input for one field, shared by the new-record form and the case edit: choices and yes/no
 * by their labels (ids stored), a calendar for a date (shown in words), the GPS for a position,
 * a keyboard suited to numbers and phones. `answer` gets the text the form takes, as
 * `FieldValues` makes it (tested on the JVM). (Android only.)
 */
fun Activity.fieldInput(field: FieldInfo, current: String, lang: Lang, answer: (String) -> Unit): View =
    when (field.fieldType) {
        "select_one", "boolean" -> choiceInput(field, current, lang, answer)
        "select_multiple" -> LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            val chosen = current.split(',').map { it.trim() }.filter { it.isNotBlank() }.toMutableSet()
            for (choice in field.choices) {
                addView(CheckBox(this@fieldInput).apply {
                    text = choice.label
                    isChecked = choice.id in chosen
                    setOnCheckedChangeListener { _, checked ->
                        if (checked) chosen.add(choice.id) else chosen.remove(choice.id)
                        answer(field.choices.map { it.id }.filter { it in chosen }.joinToString(","))
                    }
                })
            }
        }
        "date" -> dateInput(current, lang, answer)
        "geopoint" -> positionInput(current, lang, answer)
        else -> EditText(this).apply {
            setText(current)
            inputType = when (field.fieldType) {
                "integer" -> InputType.TYPE_CLASS_NUMBER
                "decimal" -> InputType.TYPE_CLASS_NUMBER or InputType.TYPE_NUMBER_FLAG_DECIMAL
                "phone" -> InputType.TYPE_CLASS_PHONE
                else -> if (field.multiline) InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_MULTI_LINE else InputType.TYPE_CLASS_TEXT
            }
            addTextChangedListener(Watcher(answer))
        }
    }

/** Labels shown, ids stored; an empty first entry means "no answer". */
private fun Activity.choiceInput(field: FieldInfo, current: String, lang: Lang, answer: (String) -> Unit): View {
    val options = if (field.fieldType == "boolean") {
        listOf("oui" to Messages.text("yes", lang), "non" to Messages.text("no", lang))
    } else {
        field.choices.map { it.id to it.label }
    }
    var chosen = current
    return Spinner(this).apply {
        adapter = ArrayAdapter(this@choiceInput, android.R.layout.simple_spinner_dropdown_item, listOf("") + options.map { it.second })
        setSelection(options.indexOfFirst { it.first == current } + 1)
        onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
            override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) {
                val value = if (position == 0) "" else options[position - 1].first
                if (value != chosen) {
                    chosen = value
                    answer(value)
                }
            }
            override fun onNothingSelected(parent: AdapterView<*>?) {}
        }
    }
}

/** A date from the calendar, shown in the agent's language; never typed as YYYY-MM-DD. */
private fun Activity.dateInput(current: String, lang: Lang, answer: (String) -> Unit): View {
    val shown = Button(this)
    var value = current
    fun show() {
        shown.text = if (value.isBlank()) Messages.text("date.pick", lang)
        else runCatching { dateInWords(value, lang.tag) }.getOrDefault(value)
    }
    show()
    shown.setOnClickListener {
        val (year, month, day) = FieldValues.calendarStart(value, LocalDate.now())
        DatePickerDialog(this, { _, y, m, d ->
            // The calendar counts months from 0.
            value = FieldValues.date(y, m + 1, d)
            show()
            answer(value)
        }, year, month - 1, day).show()
    }
    return shown
}

/**
 * A position from the GPS, or typed (latitude and longitude) where there is no fix; a fix too
 * vague or too old is refused in words. Asks for the location permission the first time.
 */
private fun Activity.positionInput(current: String, lang: Lang, answer: (String) -> Unit): View {
    val typed = EditText(this).apply {
        setText(current)
        inputType = InputType.TYPE_CLASS_TEXT
        addTextChangedListener(Watcher(answer))
    }
    val status = TextView(this)
    val capture = Button(this).apply {
        text = Messages.text("gps.capture", lang)
        setOnClickListener {
            if (ContextCompat.checkSelfPermission(this@positionInput, Manifest.permission.ACCESS_FINE_LOCATION) != PackageManager.PERMISSION_GRANTED) {
                // Android 12 and later grant a precise position only when both are asked together.
                requestPermissions(arrayOf(Manifest.permission.ACCESS_FINE_LOCATION, Manifest.permission.ACCESS_COARSE_LOCATION), LOCATION_REQUEST)
                status.text = Messages.text("gps.allow", lang)
                return@setOnClickListener
            }
            val locations = getSystemService(LocationManager::class.java)
            if (locations == null || !LocationManagerCompat.isLocationEnabled(locations)) {
                status.text = Messages.text("gps.off", lang)
                return@setOnClickListener
            }
            status.text = Messages.text("gps.waiting", lang)
            LocationManagerCompat.getCurrentLocation(
                locations, LocationManager.GPS_PROVIDER, null, ContextCompat.getMainExecutor(this@positionInput),
            ) { fix: Location? ->
                val age = fix?.let { TimeUnit.NANOSECONDS.toMillis(SystemClock.elapsedRealtimeNanos() - it.elapsedRealtimeNanos) } ?: -1
                if (fix == null || !FieldValues.goodFix(if (fix.hasAccuracy()) fix.accuracy else null, age)) {
                    status.text = Messages.text("gps.vague", lang)
                } else {
                    typed.setText(FieldValues.position(fix.latitude, fix.longitude))
                    status.text = FieldValues.accuracyText(fix.accuracy)
                }
            }
        }
    }
    return LinearLayout(this).apply {
        orientation = LinearLayout.VERTICAL
        addView(capture)
        addView(typed)
        addView(status)
    }
}

private const val LOCATION_REQUEST = 41
