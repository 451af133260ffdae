package org.suivi.demo.ui

import android.content.Intent
import android.os.Bundle
import android.text.InputType
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.activity.viewModels
import androidx.lifecycle.ViewModel
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.suivi.demo.R
import org.suivi.demo.logic.EnrollmentModel
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.Outcome

/**
 * What was typed and the enrollment's outcome, kept across rotation. The enrollment itself runs
 * in the app's scope: leaving the screen mid-way still hands the new store to the app.
 */
class EnrollViewModel : ViewModel() {
    val model = EnrollmentModel()
    @Volatile var running = false
    @Volatile var outcome: Outcome<Unit>? = null
    var listener: (() -> Unit)? = null

    fun enroll(app: SuiviApp) {
        if (running) return
        running = true
        outcome = null
        app.scope.launch {
            val result = withContext(Dispatchers.IO) { model.enroll(app.startup, app.deviceName) }
            outcome = when (result) {
                is Outcome.Ok -> {
                    app.use(app.repositoryOf(result.value))
                    Outcome.Ok(Unit)
                }
                is Outcome.Failed -> result
            }
            running = false
            listener?.invoke()
        }
    }
}

/**
 * Enrollment: server address, agent id, one-time code from the supervisor or admin, and the
 * project's certificate authority when its server does not use a public one. (Android only.)
 */
class EnrollActivity : ComponentActivity() {
    private val state: EnrollViewModel by viewModels()
    private lateinit var fields: Map<String, EditText>
    private lateinit var message: TextView
    private lateinit var send: Button

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val model = state.model.apply { lang = app.lang() }
        fun field(key: String, value: String, type: Int, set: (String) -> Unit) = EditText(this).apply {
            hint = Messages.text(key, model.lang)
            setText(value)
            inputType = type
            addTextChangedListener(Watcher(set))
        }
        fields = mapOf(
            "server" to field("enroll.server", model.server, InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_URI) { model.server = it },
            "user" to field("enroll.user", model.user, InputType.TYPE_CLASS_TEXT) { model.user = it },
            "code" to field("enroll.code", model.code, InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_CAP_CHARACTERS) { model.code = it },
            "ca" to field("enroll.ca", model.caPem, InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_MULTI_LINE) { model.caPem = it },
        )
        message = TextView(this)
        send = Button(this).apply {
            text = getString(R.string.enroll)
            setOnClickListener { state.enroll(app); render() }
        }
        show(ScrollView(this).apply {
            addView(LinearLayout(this@EnrollActivity).apply {
                orientation = LinearLayout.VERTICAL
                addView(TextView(this@EnrollActivity).apply { text = getString(R.string.enroll_title); textSize = 20f })
                fields.values.forEach { addView(it) }
                addView(send); addView(message)
            })
        })
    }

    override fun onStart() {
        super.onStart()
        state.listener = { render() }
        render()
    }

    override fun onStop() {
        state.listener = null
        super.onStop()
    }

    private fun render() {
        send.isEnabled = !state.running
        when (val outcome = state.outcome) {
            is Outcome.Ok -> {
                // The caseload asks for a PIN to be chosen before anything of a child shows.
                startActivity(Intent(this, MainActivity::class.java))
                finish()
            }
            is Outcome.Failed -> {
                message.text = outcome.error.message
                fields.forEach { (id, view) -> view.error = outcome.error.fieldErrors[id] }
            }
            null -> message.text = if (state.running) Messages.text("enroll.sending", state.model.lang) else ""
        }
    }
}

/** A TextWatcher that only reports the new text. */
class Watcher(private val changed: (String) -> Unit) : android.text.TextWatcher {
    override fun afterTextChanged(s: android.text.Editable?) = changed(s?.toString().orEmpty())
    override fun beforeTextChanged(s: CharSequence?, start: Int, count: Int, after: Int) {}
    override fun onTextChanged(s: CharSequence?, start: Int, before: Int, count: Int) {}
}
