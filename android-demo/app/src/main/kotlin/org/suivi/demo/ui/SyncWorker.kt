package org.suivi.demo.ui

import android.app.NotificationChannel
import android.app.NotificationManager
import android.content.Context
import android.content.pm.ServiceInfo
import android.os.Build
import androidx.core.app.NotificationCompat
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ExistingWorkPolicy
import androidx.work.ForegroundInfo
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import org.suivi.demo.logic.BackgroundSync
import org.suivi.demo.logic.KeyTemporarilyUnavailable
import org.suivi.demo.logic.Messages
import org.suivi.demo.logic.Startup
import java.util.concurrent.TimeUnit

/**
 * The background sync: WorkManager runs it as unique work, only with a network, periodically
 * and soon after each save, backing off exponentially; its progress is a notification. What to
 * do after a run is `BackgroundSync`'s decision (tested on the JVM); this is the glue.
 * (Android only: WorkManager and notifications cannot run on the JVM.)
 */
class SyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    companion object {
        private const val PERIODIC = "suivi-sync-periodic"
        private const val SOON = "suivi-sync-soon"
        private const val CHANNEL = "sync"
        private const val NOTIFICATION = 1

        private val online = Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build()

        /** The periodic run, kept once (enrollment and every start call this). */
        fun schedule(context: Context) {
            val periodic = PeriodicWorkRequestBuilder<SyncWorker>(BackgroundSync.PERIOD_HOURS, TimeUnit.HOURS)
                .setConstraints(online)
                .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                .build()
            WorkManager.getInstance(context).enqueueUniquePeriodicWork(PERIODIC, ExistingPeriodicWorkPolicy.KEEP, periodic)
        }

        /** A run soon after a save. */
        fun soon(context: Context) {
            val once = OneTimeWorkRequestBuilder<SyncWorker>()
                .setConstraints(online)
                .setInitialDelay(BackgroundSync.AFTER_SAVE_SECONDS, TimeUnit.SECONDS)
                .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                .build()
            // Appended, never replacing: a sync running on a slow link is not cancelled by the
            // next save, which gets its own run after it.
            WorkManager.getInstance(context).enqueueUniqueWork(SOON, ExistingWorkPolicy.APPEND_OR_REPLACE, once)
        }
    }

    override suspend fun doWork(): Result {
        val app = applicationContext as SuiviApp
        val lang = app.lang()
        // The process may have been started for this work alone: open the store as the app does.
        val opened = try {
            app.openShared()
        } catch (e: KeyTemporarilyUnavailable) {
            return Result.retry()
        } catch (e: Exception) {
            return Result.failure()
        }
        val repository = when (opened) {
            is Startup.Ready -> app.repository ?: return Result.retry()
            is Startup.Revoked -> {
                opened.store.close()
                return Result.failure()
            }
            // Not enrolled, key lost: the agent must act in the app; nothing to retry.
            else -> return Result.failure()
        }
        // From Android 12 a worker started in the background may not show a foreground
        // notification: it then syncs without one.
        try {
            setForeground(progress(Messages.text("syncing", lang)))
        } catch (e: IllegalStateException) {
        }
        val decision = BackgroundSync(repository, lang).run { p ->
            runCatching { setForegroundAsync(progress("${Messages.text("syncing", lang)} ↓ ${p.casesDown}")) }
        }
        return when (decision) {
            is BackgroundSync.Decision.Done -> {
                // The count only: the notification shade is outside the PIN, no child is named
                // there; the sync screen lists them.
                if (decision.setAside.isNotEmpty()) {
                    tell(Messages.text("todo.attention", lang).replace("{n}", decision.setAside.size.toString()))
                }
                Result.success()
            }
            is BackgroundSync.Decision.RetryLater -> Result.retry()
            is BackgroundSync.Decision.Stop -> {
                tell(decision.why.message)
                Result.failure()
            }
        }
    }

    private fun channel(): NotificationManager {
        val manager = applicationContext.getSystemService(NotificationManager::class.java)
        if (Build.VERSION.SDK_INT >= 26) {
            manager.createNotificationChannel(NotificationChannel(CHANNEL, "Synchronisation", NotificationManager.IMPORTANCE_LOW))
        }
        return manager
    }

    private fun progress(text: String): ForegroundInfo {
        channel()
        val notification = NotificationCompat.Builder(applicationContext, CHANNEL)
            .setSmallIcon(android.R.drawable.stat_notify_sync)
            .setContentText(text)
            .setOngoing(true)
            .build()
        return if (Build.VERSION.SDK_INT >= 29) {
            ForegroundInfo(NOTIFICATION, notification, ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC)
        } else {
            ForegroundInfo(NOTIFICATION, notification)
        }
    }

    /** What the agent must act on after a run, without a child's name (and hidden on the lock screen). */
    private fun tell(text: String) {
        val notification = NotificationCompat.Builder(applicationContext, CHANNEL)
            .setSmallIcon(android.R.drawable.stat_notify_error)
            .setStyle(NotificationCompat.BigTextStyle().bigText(text))
            .setContentText(text)
            .setVisibility(NotificationCompat.VISIBILITY_PRIVATE)
            .build()
        channel().notify(NOTIFICATION + 1, notification)
    }
}
