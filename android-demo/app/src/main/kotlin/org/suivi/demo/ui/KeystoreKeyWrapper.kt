package org.suivi.demo.ui

import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import org.suivi.demo.logic.KeyUnavailable
import org.suivi.demo.logic.KeyWrapper
import java.io.IOException
import java.security.GeneralSecurityException
import java.security.KeyStore
import java.security.ProviderException
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * Wraps the database key with an AES-GCM key that never leaves the Android Keystore. A missing
 * or invalidated Keystore key (a Keystore reset, a transfer to another phone, which copies files
 * but never Keystore keys) is `KeyUnavailable`: the app offers a reset instead of crashing.
 * Unwrapping never makes a new key: that would hide the loss. (Android only.)
 */
class KeystoreKeyWrapper : KeyWrapper {
    private companion object {
        const val ALIAS = "suivi-db-wrapping-key"
        const val IV_BYTES = 12
    }

    private fun keystore(): KeyStore = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }

    private fun existing(): SecretKey? = keystore().getKey(ALIAS, null) as? SecretKey

    private fun create(): SecretKey {
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
        generator.init(
            KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .build(),
        )
        return generator.generateKey()
    }

    /** Failures here stop an enrollment with a message (`UiError`): no store is created. */
    override fun wrap(raw: ByteArray): ByteArray {
        val cipher = Cipher.getInstance("AES/GCM/NoPadding").apply { init(Cipher.ENCRYPT_MODE, existing() ?: create()) }
        return cipher.iv + cipher.doFinal(raw)
    }

    override fun unwrap(sealed: ByteArray): ByteArray {
        if (sealed.size <= IV_BYTES) throw KeyUnavailable()
        return try {
            val key = existing() ?: throw KeyUnavailable()
            val cipher = Cipher.getInstance("AES/GCM/NoPadding")
            cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(128, sealed.copyOfRange(0, IV_BYTES)))
            cipher.doFinal(sealed.copyOfRange(IV_BYTES, sealed.size))
        } catch (e: GeneralSecurityException) {
            // KeyPermanentlyInvalidatedException, UnrecoverableKeyException, AEADBadTagException…
            throw KeyUnavailable(e)
        } catch (e: IOException) {
            // KeyStore.load
            throw KeyUnavailable(e)
        } catch (e: ProviderException) {
            // Keystore2 failures
            throw KeyUnavailable(e)
        }
    }

    override fun deleteKey() {
        keystore().deleteEntry(ALIAS)
    }
}
