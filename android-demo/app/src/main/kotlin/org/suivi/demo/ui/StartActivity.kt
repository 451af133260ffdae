package org.suivi.demo.ui

import android.app.AlertDialog
import android.content.Intent
import android.os.Bundle
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ProgressBar
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.activity.viewModels
import androidx.lifecycle.ViewModel
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.suivi.demo.R
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.Outcome
import org.suivi.demo.logic.Startup
import org.suivi.demo.logic.attempt
import org.suivi.demo.logic.ResetConfirmation

/** What the start screen found, kept across rotation; runs in the app's scope. */
class StartViewModel : ViewModel() {
    @Volatile var outcome: Outcome<Startup>? = null
    @Volatile var busy = false
    var listener: (() -> Unit)? = null

    fun open(app: SuiviApp) {
        if (busy || outcome != null) return
        busy = true
        app.scope.launch {
            outcome = attempt(app.lang()) { app.openShared() }
            busy = false
            listener?.invoke()
        }
    }

    /** Closes what was opened, removes the store and its key, then goes to enrollment. */
    fun reset(app: SuiviApp) {
        if (busy) return
        busy = true
        val found = (outcome as? Outcome.Ok)?.value
        app.scope.launch {
            outcome = withContext(Dispatchers.IO) {
                attempt(app.lang()) {
                    (found as? Startup.Revoked)?.store?.close()
                    app.use(null)
                    app.startup.reset()
                    app.lock.clear()
                    Startup.Enroll
                }
            }
            busy = false
            listener?.invoke()
        }
    }
}

/**
 * The launcher: opens the store off the main thread and sends the agent where they must go:
 * enrollment, the caseload, or, when the key is lost or the phone was revoked, a reset that
 * says what it loses. (Android only.)
 */
class StartActivity : ComponentActivity() {
    private val state: StartViewModel by viewModels()
    private var dialog: AlertDialog? = null
    private lateinit var message: TextView
    private lateinit var retry: Button

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        message = TextView(this)
        retry = Button(this).apply {
            text = getString(R.string.retry)
            setOnClickListener { state.outcome = null; state.open(app); render() }
        }
        show(LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            addView(ProgressBar(this@StartActivity)); addView(message); addView(retry)
        })
    }

    override fun onStart() {
        super.onStart()
        state.listener = { render() }
        state.open(app)
        render()
    }

    override fun onStop() {
        state.listener = null
        super.onStop()
    }

    override fun onDestroy() {
        dialog?.dismiss()
        super.onDestroy()
    }

    private fun render() {
        retry.visibility = android.view.View.GONE
        if (state.busy) return
        when (val outcome = state.outcome ?: return) {
            is Outcome.Failed -> {
                message.text = outcome.error.message
                retry.visibility = android.view.View.VISIBLE
            }
            is Outcome.Ok -> when (val found = outcome.value) {
                Startup.Enroll -> go(EnrollActivity::class.java)
                is Startup.Ready -> {
                    // Opened (or reused) by `openShared`, which made it the app's store.
                    val form = intent.getStringExtra("resume_form")
                    if (form == null) {
                        go(MainActivity::class.java)
                    } else {
                        // Back to the form the process died on, its draft restored there, over a
                        // fresh caseload (the old task's screens are gone with the process).
                        startActivities(arrayOf(
                            Intent(this, MainActivity::class.java)
                                .addFlags(Intent.FLAG_ACTIVITY_NEW_TASK or Intent.FLAG_ACTIVITY_CLEAR_TASK),
                            Intent(this, FormActivity::class.java).putExtra("form", form).putExtra("case_id", intent.getStringExtra("case_id")),
                        ))
                        finish()
                    }
                }
                is Startup.KeyLost -> confirmReset(
                    Messages.text("key_lost", app.lang()),
                    ResetConfirmation(found.unsyncedCases, app.lang()),
                )
                // Its cases were already wiped: nothing more to lose.
                is Startup.Revoked -> confirmReset(Messages.text("revoked", app.lang()), null)
            }
        }
    }

    /** The reset, said with what it loses; typed to confirm when it could lose work. */
    private fun confirmReset(why: String, confirmation: ResetConfirmation?) {
        if (dialog?.isShowing == true) return
        val typed = EditText(this)
        val shown = AlertDialog.Builder(this)
            .setMessage(why + (confirmation?.let { "\n\n" + it.text } ?: ""))
            .setCancelable(false)
            .setPositiveButton(R.string.reset_and_enroll) { _, _ -> state.reset(app) }
            .setNegativeButton(R.string.quit) { _, _ -> finish() }
            .apply { if (confirmation?.needsTyping == true) setView(typed) }
            .show()
        if (confirmation?.needsTyping == true) {
            val button = shown.getButton(AlertDialog.BUTTON_POSITIVE)
            button.isEnabled = false
            typed.addTextChangedListener(Watcher { button.isEnabled = confirmation.accepts(it) })
        }
        dialog = shown
    }

    private fun go(screen: Class<*>) {
        startActivity(Intent(this, screen))
        finish()
    }
}
