package org.suivi.demo.logic

import java.io.File
import java.security.SecureRandom
import javax.crypto.SecretKeyFactory
import javax.crypto.spec.PBEKeySpec

/**
 * The app's PIN: set at enrollment, asked when the app starts and after `IDLE_MILLIS` without
 * use, with growing waits after wrong tries so a phone picked up by someone else is not opened
 * by guessing. The PIN guards the screens; the database key stays in the Keystore (a PIN of four
 * digits is no key). Only a salted PBKDF2 verifier is kept, in the app's no-backup directory,
 * beside the count of wrong tries, so killing the app does not reset the wait.
 */
class AppLock(private val dir: File, private val clock: () -> Long = System::currentTimeMillis) {
    companion object {
        const val IDLE_MILLIS = 5 * 60_000L
        const val FREE_TRIES = 3
        private const val FIRST_WAIT_SECONDS = 30L
        private const val MAX_WAIT_SECONDS = 3600L
        private const val ITERATIONS = 120_000
        private val DIGITS = Regex("[0-9]{4,8}")

        /** The wait after `failures` wrong tries in a row: none for the first three, then 30 s doubling to an hour. */
        fun waitSeconds(failures: Int): Long = when {
            failures < FREE_TRIES -> 0L
            failures - FREE_TRIES >= 7 -> MAX_WAIT_SECONDS
            else -> minOf(MAX_WAIT_SECONDS, FIRST_WAIT_SECONDS shl (failures - FREE_TRIES))
        }
    }

    sealed class Attempt {
        object Opened : Attempt()
        /** Wrong; the next try is possible in `waitSeconds` (0: at once). */
        data class Wrong(val waitSeconds: Long) : Attempt()
        /** Too soon after wrong tries: nothing was checked. */
        data class Wait(val seconds: Long) : Attempt()
    }

    private val verifier = File(dir, "app-lock")
    private val failures = File(dir, "app-lock-failures")
    @Volatile private var lastUse: Long? = null

    val isSet: Boolean get() = verifier.exists()

    /** A PIN is 4 to 8 digits. */
    fun acceptable(pin: String): Boolean = DIGITS.matches(pin)

    fun setPin(pin: String) {
        require(acceptable(pin)) { "a PIN is 4 to 8 digits" }
        val salt = ByteArray(16).also { SecureRandom().nextBytes(it) }
        writeDurably(verifier, "pbkdf2-sha256:$ITERATIONS:${hex(salt)}:${hex(derive(pin, salt, ITERATIONS))}".toByteArray())
        failures.delete()
        lastUse = clock()
    }

    /** Whether the screens must ask the PIN now: never opened since start, or idle too long. */
    fun locked(): Boolean {
        if (!isSet) return false
        val last = lastUse ?: return true
        return clock() - last >= IDLE_MILLIS
    }

    /** The agent is using the app: the idle time starts again. */
    fun touch() {
        if (lastUse != null) lastUse = clock()
    }

    fun unlock(pin: String): Attempt {
        val (count, lastFailure) = failureState()
        val wait = waitSeconds(count) - (clock() - lastFailure) / 1000
        if (count >= FREE_TRIES && wait > 0) return Attempt.Wait(wait)
        if (matches(pin)) {
            failures.delete()
            lastUse = clock()
            return Attempt.Opened
        }
        writeDurably(failures, "${count + 1}:${clock()}".toByteArray())
        return Attempt.Wrong(waitSeconds(count + 1))
    }

    /** Forgets the PIN (a reset of the phone's store). */
    fun clear() {
        verifier.delete()
        failures.delete()
        lastUse = null
    }

    private fun failureState(): Pair<Int, Long> = runCatching {
        val (count, at) = failures.readText().trim().split(':')
        count.toInt() to at.toLong()
    }.getOrDefault(0 to 0L)

    private fun matches(pin: String): Boolean {
        val parts = runCatching { verifier.readText().trim().split(':') }.getOrNull() ?: return false
        if (parts.size != 4 || parts[0] != "pbkdf2-sha256") return false
        val expected = unhex(parts[3])
        val actual = derive(pin, unhex(parts[2]), parts[1].toInt())
        return java.security.MessageDigest.isEqual(expected, actual)
    }

    private fun derive(pin: String, salt: ByteArray, iterations: Int): ByteArray =
        SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256")
            .generateSecret(PBEKeySpec(pin.toCharArray(), salt, iterations, 256))
            .encoded

    private fun hex(bytes: ByteArray) = bytes.joinToString("") { "%02x".format(it) }

    private fun unhex(text: String) = ByteArray(text.length / 2) { text.substring(it * 2, it * 2 + 2).toInt(16).toByte() }
}
