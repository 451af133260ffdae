package org.suivi.demo.ui

import android.os.Bundle
import android.text.InputType
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.activity.OnBackPressedCallback
import androidx.lifecycle.lifecycleScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.suivi.demo.logic.AppLock
import org.suivi.demo.logic.Messages

/**
 * The app PIN: chosen (typed twice) when none is set, asked at start and after idling. Wrong
 * tries wait longer and longer (`AppLock`, tested on the JVM); the key derivation runs off the
 * main thread. Back leaves the app, never the lock. (Android only.)
 */
class LockActivity : ComponentActivity() {
    private var first: String? = null

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
        val ok = Button(this)
        ok.text = getString(android.R.string.ok)
        ok.setOnClickListener {
            val typed = pin.text.toString()
            pin.text.clear()
            if (choosing) {
                when {
                    !lock.acceptable(typed) -> message.text = Messages.text("lock.choose", lang)
                    first == null -> {
                        first = typed
                        message.text = Messages.text("lock.again", lang)
                    }
                    first != typed -> {
                        first = null
                        message.text = Messages.text("lock.differ", lang) + "\n" + Messages.text("lock.choose", lang)
                    }
                    else -> {
                        ok.isEnabled = false
                        lifecycleScope.launch {
                            withContext(Dispatchers.Default) { lock.setPin(typed) }
                            finish()
                        }
                    }
                }
                return@setOnClickListener
            }
            ok.isEnabled = false
            lifecycleScope.launch {
                val attempt = withContext(Dispatchers.Default) { lock.unlock(typed) }
                ok.isEnabled = true
                when (attempt) {
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
