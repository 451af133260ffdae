package org.suivi.demo.ui

import android.app.AlertDialog
import android.content.Intent
import android.os.Bundle
import android.widget.ProgressBar
import androidx.activity.ComponentActivity
import androidx.lifecycle.lifecycleScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.suivi.demo.R
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.Startup
import org.suivi.demo.logic.resetWarning

/**
 * The launcher: opens the store off the main thread and sends the agent where they must go:
 * enrollment, the caseload, or, when the key is lost or the phone was revoked, a reset that
 * says what it loses. (Android only.)
 */
class StartActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(ProgressBar(this))
        lifecycleScope.launch {
            val startup = withContext(Dispatchers.IO) { app.startup.open() }
            when (startup) {
                Startup.Enroll -> go(EnrollActivity::class.java)
                is Startup.Ready -> {
                    app.repository = CaseRepository(startup.store, app.startup.unsynced)
                    go(MainActivity::class.java)
                }
                is Startup.KeyLost -> confirmReset(
                    Messages.text("key_lost", app.lang()) + "\n\n" + resetWarning(startup.unsyncedCases, app.lang()),
                ) {}
                is Startup.Revoked -> confirmReset(Messages.text("revoked", app.lang())) { startup.store.close() }
            }
        }
    }

    private fun confirmReset(message: String, close: () -> Unit) {
        AlertDialog.Builder(this)
            .setMessage(message)
            .setCancelable(false)
            .setPositiveButton(R.string.reset_and_enroll) { _, _ ->
                lifecycleScope.launch {
                    withContext(Dispatchers.IO) {
                        close()
                        // A revoked store may still be open from the caseload screen.
                        app.repository?.store?.close()
                        app.repository = null
                        app.startup.reset()
                    }
                    go(EnrollActivity::class.java)
                }
            }
            .setNegativeButton(R.string.quit) { _, _ -> finish() }
            .show()
    }

    private fun go(screen: Class<*>) {
        startActivity(Intent(this, screen))
        finish()
    }
}
