package org.suivi.demo.ui

import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import org.suivi.demo.logic.CipherKeyWrapper
import org.suivi.demo.logic.KeyWrapper
import java.security.KeyStore
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey

/**
 * The database key wrapped under an AES-GCM key that never leaves the Android Keystore. The
 * wrapping and the classification of failures (a key proven gone against a Keystore that did not
 * answer) are `CipherKeyWrapper`'s, tested on the JVM; this only names the Keystore key.
 * (Android only.)
 */
class KeystoreKeyWrapper : KeyWrapper by CipherKeyWrapper(
    keyOf = { keystore().getKey(ALIAS, null) as? SecretKey },
    create = ::create,
    delete = { keystore().deleteEntry(ALIAS) },
)

private const val ALIAS = "suivi-db-wrapping-key"

private fun keystore(): KeyStore = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }

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
