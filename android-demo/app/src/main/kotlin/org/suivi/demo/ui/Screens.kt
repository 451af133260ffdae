package org.suivi.demo.ui

import android.content.Intent
import android.view.View
import android.view.WindowManager
import androidx.activity.ComponentActivity
import androidx.activity.enableEdgeToEdge
import androidx.core.view.ViewCompat
import androidx.core.view.WindowInsetsCompat

/**
 * Shows `root` edge to edge (the only way from targetSdk 35) with the system bars and the
 * keyboard kept out of it: `adjustResize` no longer shrinks the window. Every screen may show a
 * child, so none is captured: no screenshot, no screen recording, a blank thumbnail in the recent
 * apps (FLAG_SECURE). (Android only.)
 */
fun ComponentActivity.show(root: View) {
    window.setFlags(WindowManager.LayoutParams.FLAG_SECURE, WindowManager.LayoutParams.FLAG_SECURE)
    enableEdgeToEdge()
    ViewCompat.setOnApplyWindowInsetsListener(root) { view, insets ->
        val bars = insets.getInsets(WindowInsetsCompat.Type.systemBars() or WindowInsetsCompat.Type.ime())
        view.setPadding(bars.left, bars.top, bars.right, bars.bottom)
        WindowInsetsCompat.CONSUMED
    }
    setContentView(root)
}

/**
 * For a screen showing a child: false (and the PIN asked first) when the app is locked, else the
 * agent's use noted so the idle time starts again. Call it from `onStart`.
 */
fun ComponentActivity.unlocked(): Boolean {
    // No PIN yet (its screen left, or the app killed on it): chosen before anything shows.
    if (!app.lock.isSet || app.lock.locked()) {
        startActivity(Intent(this, LockActivity::class.java))
        return false
    }
    app.lock.touch()
    return true
}

/**
 * A screen that may show a child: the PIN's idle time counts from the agent's last touch, not
 * from the last screen opened (a long form is not locked under the agent's fingers, a screen left
 * open locks). Never the lock screen itself: typing a PIN must not reset the idle time.
 */
abstract class ChildScreen : ComponentActivity() {
    override fun onUserInteraction() {
        super.onUserInteraction()
        if (!app.lock.locked()) app.lock.touch()
    }
}
