package org.suivi.demo.ui

import android.os.Bundle
import android.text.InputType
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.activity.OnBackPressedCallback
import org.suivi.demo.logic.AppLock
import org.suivi.demo.logic.Messages

/**
 * The app PIN: chosen after enrollment (`choose`), asked at start and after idling. Wrong tries
 * wait longer and longer (`AppLock`, tested on the JVM); Back leaves the app, never the lock.
 * (Android only.)
 */
class LockActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val lang = app.lang()
        val lock = app.lock
        val choosing = !lock.isSet
        val message = TextView(this).apply {
            text = Messages.text(if (choosing) "lock.choose" else "lock.title", lang)
        }
        val pin = EditText(this).apply {
            inputType = InputType.TYPE_CLASS_NUMBER or InputType.TYPE_NUMBER_VARIATION_PASSWORD
        }
        val ok = Button(this).apply {
            text = getString(android.R.string.ok)
            setOnClickListener {
                val typed = pin.text.toString()
                pin.text.clear()
                if (choosing) {
                    if (!lock.acceptable(typed)) return@setOnClickListener
                    lock.setPin(typed)
                    finish()
                    return@setOnClickListener
                }
                when (val attempt = lock.unlock(typed)) {
                    AppLock.Attempt.Opened -> finish()
                    is AppLock.Attempt.Wrong -> message.text = Messages.text("lock.wrong", lang) +
                        if (attempt.waitSeconds > 0) "\n" + Messages.text("lock.wait", lang).replace("{n}", attempt.waitSeconds.toString()) else ""
                    is AppLock.Attempt.Wait -> message.text = Messages.text("lock.wait", lang).replace("{n}", attempt.seconds.toString())
                }
            }
        }
        onBackPressedDispatcher.addCallback(this, object : OnBackPressedCallback(true) {
            override fun handleOnBackPressed() = finishAffinity()
        })
        show(LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            addView(message); addView(pin); addView(ok)
        })
    }
}
