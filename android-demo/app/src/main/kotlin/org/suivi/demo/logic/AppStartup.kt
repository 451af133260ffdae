package org.suivi.demo.logic

import org.suivi.core.CaseStore
import org.suivi.core.SuiviException
import org.suivi.core.removeStore

/** What the app shows first. */
sealed class Startup {
    /** No store yet (or it was reset): the enrollment screen. */
    object Enroll : Startup()

    /** The store is open. */
    data class Ready(val store: CaseStore) : Startup()

    /**
     * The store is there but its key is proven gone (Keystore reset, a transfer to another
     * phone): offer a reset and a new enrollment. (A key store that did not answer is not this:
     * `open` throws `KeyTemporarilyUnavailable`, and the app offers to try again.) `unsyncedCases` is the last count recorded,
     * or null when it is unknown.
     */
    data class KeyLost(val unsyncedCases: Long?) : Startup()

    /** The server revoked this device and its case data was wiped: enroll again. */
    data class Revoked(val store: CaseStore) : Startup()
}

/**
 * Opening, enrolling and resetting the store, with its key (blocking: call it off the main thread).
 * `appVersion` is what each sync reports, so a supervisor sees which phones run an old app.
 */
class AppStartup(
    private val files: AppFiles,
    private val keys: StoreKeys,
    private val appVersion: String = "suivi-android",
) {
    val unsynced = UnsyncedCount(files)

    fun open(): Startup {
        if (!files.store.exists()) return Startup.Enroll
        val key = try {
            keys.existingKey()
        } catch (e: KeyUnavailable) {
            return Startup.KeyLost(unsynced.last())
        }
        val store = try {
            CaseStore.open(files.store.path, key)
        } catch (e: SuiviException.WrongKey) {
            return Startup.KeyLost(unsynced.last())
        }
        if (store.isWiped()) return Startup.Revoked(store)
        store.setAppVersion(appVersion)
        return Startup.Ready(store)
    }

    /**
     * Creates the store for `user` and enrolls it. Its key is written before the store exists; on
     * any failure no store is left (the app shows the error and the screen stays filled in).
     */
    fun enroll(user: String, deviceName: String, server: String, code: String, caPem: String?): CaseStore {
        // Never over an existing store: a reset (with its warning) comes first.
        if (files.store.exists()) throw SuiviException.Other("a store exists on this phone: reset it first")
        val key = keys.newKey()
        val store = CaseStore.enrollNew(files.store.path, key, user.trim(), deviceName, server.trim(), code.trim(), caPem)
        store.setAppVersion(appVersion)
        unsynced.record(0)
        return store
    }

    /**
     * Removes the store, its key and its count: what a lost key or a revocation leaves no choice
     * but to do. The caller has closed every handle on the store and, if work could be lost,
     * asked the user with `resetWarning`.
     */
    fun reset() {
        removeStore(files.store.path)
        keys.forget()
        unsynced.clear()
    }
}

/** The confirmation a reset asks for: how many cases with unsynced work it loses, or that this is unknown. */
fun resetWarning(unsyncedCases: Long?, lang: Lang): String = when {
    unsyncedCases == null -> Messages.text("reset.unknown", lang)
    unsyncedCases == 0L -> Messages.text("reset.nothing_lost", lang)
    else -> Messages.text("reset.loses", lang).replace("{n}", unsyncedCases.toString())
}

/**
 * A reset the agent confirms by typing a word when it could lose work (unsynced cases, or a
 * count unknown): a tap alone must not wipe a week of visits.
 */
class ResetConfirmation(val unsyncedCases: Long?, private val lang: Lang) {
    val needsTyping: Boolean get() = unsyncedCases != 0L
    val word: String get() = Messages.text("reset.word", lang)

    /** What the dialog says: what is lost, and the word to type when it matters. */
    val text: String
        get() = resetWarning(unsyncedCases, lang) +
            if (needsTyping) "\n\n" + Messages.text("reset.type", lang).replace("{word}", word) else ""

    fun accepts(typed: String): Boolean = !needsTyping || typed.trim().equals(word, ignoreCase = true)
}
