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
import androidx.lifecycle.lifecycleScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.suivi.demo.R
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.EnrollmentModel
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.Outcome

/** Keeps what was typed across a rotation. */
class EnrollViewModel : ViewModel() {
    val model = EnrollmentModel()
}

/**
 * Enrollment: server address, agent id, one-time code from the supervisor or admin, and the
 * project's certificate authority when its server does not use a public one. (Android only.)
 */
class EnrollActivity : ComponentActivity() {
    private val state: EnrollViewModel by viewModels()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val model = state.model.apply { lang = app.lang() }
        fun field(key: String, value: String, type: Int, set: (String) -> Unit) = EditText(this).apply {
            hint = Messages.text(key, model.lang)
            setText(value)
            inputType = type
            addTextChangedListener(Watcher(set))
        }
        val server = field("enroll.server", model.server, InputType.TYPE_TEXT_VARIATION_URI) { model.server = it }
        val user = field("enroll.user", model.user, InputType.TYPE_CLASS_TEXT) { model.user = it }
        val code = field("enroll.code", model.code, InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_CAP_CHARACTERS) { model.code = it }
        val ca = field("enroll.ca", model.caPem, InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_MULTI_LINE) { model.caPem = it }
        val message = TextView(this)
        val send = Button(this).apply { text = getString(R.string.enroll) }
        send.setOnClickListener {
            send.isEnabled = false
            lifecycleScope.launch {
                val outcome = withContext(Dispatchers.IO) { model.enroll(app.startup, app.deviceName) }
                send.isEnabled = true
                when (outcome) {
                    is Outcome.Ok -> {
                        app.repository = CaseRepository(outcome.value, app.startup.unsynced)
                        startActivity(Intent(this@EnrollActivity, MainActivity::class.java))
                        finish()
                    }
                    is Outcome.Failed -> {
                        message.text = outcome.error.message
                        server.error = outcome.error.fieldErrors["server"]
                        user.error = outcome.error.fieldErrors["user"]
                        code.error = outcome.error.fieldErrors["code"]
                        ca.error = outcome.error.fieldErrors["ca"]
                    }
                }
            }
        }
        setContentView(ScrollView(this).apply {
            addView(LinearLayout(this@EnrollActivity).apply {
                orientation = LinearLayout.VERTICAL
                addView(TextView(this@EnrollActivity).apply { text = getString(R.string.enroll_title); textSize = 20f })
                listOf(server, user, code, ca, send, message).forEach { addView(it) }
            })
        })
    }
}

/** A TextWatcher that only reports the new text. */
class Watcher(private val changed: (String) -> Unit) : android.text.TextWatcher {
    override fun afterTextChanged(s: android.text.Editable?) = changed(s?.toString().orEmpty())
    override fun beforeTextChanged(s: CharSequence?, start: Int, count: Int, after: Int) {}
    override fun onTextChanged(s: CharSequence?, start: Int, before: Int, count: Int) {}
}
