package org.suivi.demo.ui

import android.content.Context
import org.suivi.core.CaseStore
import org.suivi.demo.logic.Lang
import java.io.File
import java.util.Locale

/** The opened store and the UI language, shared by the screens. (Android only.) */
object Session {
    @Volatile private var store: CaseStore? = null

    fun store(context: Context): CaseStore = store ?: synchronized(this) {
        store ?: run {
            val path = File(context.filesDir, "suivi.db").path
            val key = DatabaseKey.get(context)
            val opened = if (File(path).exists()) CaseStore.open(path, key)
            else CaseStore.create(path, key, "agent", android.os.Build.MODEL)
            store = opened
            opened
        }
    }

    fun lang(): Lang = Lang.from(Locale.getDefault().toLanguageTag())
}
