package org.suivi.demo.logic

import java.io.File
import java.io.FileOutputStream
import java.security.SecureRandom

/**
 * Wraps the database key. On a phone: an AES key that never leaves the Android Keystore. It can
 * be lost (a Keystore reset, a device-to-device transfer that copies files but never Keystore
 * keys): `unwrap` then throws `KeyUnavailable`, never anything the app does not expect.
 */
interface KeyWrapper {
    fun wrap(raw: ByteArray): ByteArray

    /** @throws KeyUnavailable when the wrapping key is gone or does not open this blob. */
    fun unwrap(sealed: ByteArray): ByteArray

    /** Deletes the wrapping key (a reset). */
    fun deleteKey()
}

/** The wrapping key is proven gone (invalidated, unrecoverable, missing, or not opening its blob). */
class KeyUnavailable(cause: Throwable? = null) : Exception("the database key cannot be unwrapped", cause)

/**
 * The key store did not answer now (busy, a provider hiccup on a cheap phone): the key may well
 * be there, so the app offers "try again", never a reset.
 */
class KeyTemporarilyUnavailable(cause: Throwable? = null) : Exception("the key store did not answer", cause)

/**
 * A key store failure classified: only a key proven gone is `KeyUnavailable` (the way to a
 * reset); anything else is `KeyTemporarilyUnavailable`.
 */
fun keyStoreFailure(e: Throwable): Exception = when {
    e is KeyUnavailable -> e
    e is KeyTemporarilyUnavailable -> e
    // The blob does not open with this key: the key was replaced.
    e is javax.crypto.AEADBadTagException -> KeyUnavailable(e)
    e is java.security.UnrecoverableKeyException -> KeyUnavailable(e)
    // Android's, an InvalidKeyException: the key was invalidated (a new screen lock, a reset).
    e.javaClass.simpleName == "KeyPermanentlyInvalidatedException" -> KeyUnavailable(e)
    else -> KeyTemporarilyUnavailable(e)
}

/**
 * Wraps the database key with AES-GCM under a key from a key store (`keyOf`; the Android
 * Keystore on a phone, see `ui/KeystoreKeyWrapper`), every failure classified by
 * `keyStoreFailure`. A missing key on unwrap is proven gone; unwrapping never makes a new key,
 * which would hide the loss.
 */
class CipherKeyWrapper(
    private val keyOf: () -> javax.crypto.SecretKey?,
    private val create: () -> javax.crypto.SecretKey,
    private val delete: () -> Unit,
) : KeyWrapper {
    private companion object {
        const val IV_BYTES = 12
    }

    override fun wrap(raw: ByteArray): ByteArray = classified {
        val cipher = javax.crypto.Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(javax.crypto.Cipher.ENCRYPT_MODE, keyOf() ?: create())
        cipher.iv + cipher.doFinal(raw)
    }

    override fun unwrap(sealed: ByteArray): ByteArray {
        if (sealed.size <= IV_BYTES) throw KeyUnavailable()
        return classified {
            val key = keyOf() ?: throw KeyUnavailable()
            val cipher = javax.crypto.Cipher.getInstance("AES/GCM/NoPadding")
            cipher.init(javax.crypto.Cipher.DECRYPT_MODE, key, javax.crypto.spec.GCMParameterSpec(128, sealed.copyOfRange(0, IV_BYTES)))
            cipher.doFinal(sealed.copyOfRange(IV_BYTES, sealed.size))
        }
    }

    override fun deleteKey() = classified { delete() }

    private inline fun <T> classified(block: () -> T): T = try {
        block()
    } catch (e: Exception) {
        // GeneralSecurityException, IOException (KeyStore.load), ProviderException (Keystore2)…
        throw keyStoreFailure(e)
    }
}

/**
 * The app's files, all in one directory that is never backed up or transferred to another
 * device (`noBackupFilesDir`, and the backup rules exclude it too): the store, its wrapped key,
 * and the last count of unsynced cases (a number, no case data) for the day the key is lost.
 */
class AppFiles(val dir: File) {
    val store = File(dir, "suivi.db")
    val wrappedKey = File(dir, "suivi.db.key")
    val unsyncedCount = File(dir, "unsynced-cases")
}

/** Writes a small file so that a process death or power cut leaves the old file or the new one. */
internal fun writeDurably(file: File, bytes: ByteArray) {
    val temp = File(file.parentFile, file.name + ".tmp")
    FileOutputStream(temp).use { out ->
        out.write(bytes)
        out.fd.sync()
    }
    if (!temp.renameTo(file)) throw java.io.IOException("cannot replace ${file.name}")
}

/** The count of unsynced cases, kept outside the encrypted store (a number, nothing else). */
class UnsyncedCount(private val files: AppFiles) {
    fun record(count: Long) = writeDurably(files.unsyncedCount, count.toString().toByteArray())

    /** The last count recorded, or null when none was (or it cannot be read). */
    fun last(): Long? = runCatching { files.unsyncedCount.readText().trim().toLong() }.getOrNull()

    fun clear() {
        files.unsyncedCount.delete()
    }
}

/** The SQLCipher key of the store: 32 random bytes, kept only wrapped. */
class StoreKeys(private val files: AppFiles, private val wrapper: KeyWrapper) {
    /**
     * A fresh key for a new store. The wrapped key is written durably and read back through the
     * wrapper before this returns, so the store is only ever created once its key is safe: a
     * process death in between leaves a key and no store, and the next start simply enrolls.
     */
    fun newKey(): String {
        val raw = ByteArray(32).also { SecureRandom().nextBytes(it) }
        writeDurably(files.wrappedKey, wrapper.wrap(raw))
        val back = wrapper.unwrap(files.wrappedKey.readBytes())
        check(back.contentEquals(raw)) { "the wrapped key does not read back" }
        return sqlcipherKey(raw)
    }

    /** The existing store's key. @throws KeyUnavailable when it is missing or cannot be unwrapped. */
    fun existingKey(): String {
        if (!files.wrappedKey.exists()) throw KeyUnavailable()
        val sealed = try {
            files.wrappedKey.readBytes()
        } catch (e: java.io.IOException) {
            throw KeyUnavailable(e)
        }
        return sqlcipherKey(wrapper.unwrap(sealed))
    }

    /** Forgets the key (after the store itself was removed). */
    fun forget() {
        files.wrappedKey.delete()
        runCatching { wrapper.deleteKey() }
    }

    private fun sqlcipherKey(raw: ByteArray): String = "x'" + raw.joinToString("") { "%02X".format(it) } + "'"
}
