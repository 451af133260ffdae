package org.suivi.demo.ui

import android.app.Application
import android.os.Build
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.sync.withLock
import org.suivi.demo.logic.AppFiles
import org.suivi.demo.logic.AppLock
import org.suivi.demo.logic.AppStartup
import org.suivi.demo.logic.CaseRepository
import org.suivi.demo.logic.Lang
import org.suivi.demo.logic.StoreKeys
import java.util.Locale

/**
 * The process: where the store lives (`noBackupFilesDir`: never backed up, never moved to
 * another phone) and the open store, shared by the screens. (Android only.)
 */
class SuiviApp : Application() {
    lateinit var startup: AppStartup
        private set

    /** The app PIN, asked at start and after idling (`ui/LockActivity`). */
    lateinit var lock: AppLock
        private set

    @Volatile var repository: CaseRepository? = null
        private set

    /**
     * For work that must finish whatever the screens do (an enrollment, a reset): a screen
     * that goes away mid-way must not leave a store open and unowned.
     */
    val scope = MainScope()

    /** The open store for the screens: each save asks for a sync soon, and the periodic one is kept. */
    fun repositoryOf(store: org.suivi.core.CaseStore): CaseRepository {
        SyncWorker.schedule(this)
        return CaseRepository(store, startup.unsynced, afterSave = { SyncWorker.soon(this) })
    }

    private val opening = kotlinx.coroutines.sync.Mutex()

    /**
     * The store, opened once for the screens and the background sync alike: whichever comes
     * first opens it, the other reuses it (two handles would close each other's).
     */
    suspend fun openShared(): org.suivi.demo.logic.Startup = opening.withLock {
        repository?.let { return@withLock org.suivi.demo.logic.Startup.Ready(it.store) }
        val found = kotlinx.coroutines.withContext(kotlinx.coroutines.Dispatchers.IO) { startup.open() }
        if (found is org.suivi.demo.logic.Startup.Ready) use(repositoryOf(found.store))
        found
    }

    /** Makes `next` the open store, closing the one it replaces. */
    fun use(next: CaseRepository?) {
        val previous = repository
        repository = next
        if (previous != null && previous.store !== next?.store) previous.store.close()
    }

    override fun onCreate() {
        super.onCreate()
        val files = AppFiles(noBackupFilesDir)
        val version = packageManager.getPackageInfo(packageName, 0).versionName ?: "?"
        startup = AppStartup(files, StoreKeys(files, KeystoreKeyWrapper()), "suivi-android $version")
        lock = AppLock(noBackupFilesDir)
    }

    val deviceName: String get() = "${Build.MANUFACTURER} ${Build.MODEL}".take(100)

    fun lang(): Lang = Lang.from(Locale.getDefault().toLanguageTag())
}

val android.app.Activity.app: SuiviApp get() = application as SuiviApp
