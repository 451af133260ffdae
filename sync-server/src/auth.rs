//! Credentials. Device tokens are random and long (256 bits), so a SHA-256 of them is what the
//! server keeps (a slow hash would cost CPU on every sync for no gain). Enrollment codes are
//! short enough to be typed (about 50 bits), so a plain hash of them could be reversed by brute
//! force from a stolen database: they are kept as an HMAC under a secret kept outside the
//! database (`CodeKey`). User passwords are chosen by people and are kept with argon2.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Enrollment codes avoid letters that read alike on a phone screen (0/O, 1/I/L).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
pub const ENROLLMENT_CODE_CHARS: usize = 10;
pub const ENROLLMENT_CODE_TTL_SECS: i64 = 72 * 3600;

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The secret for keyed hashes of enrollment codes, from the key file (or derived from the
/// database passphrase); never stored in the database.
#[derive(Clone)]
pub struct CodeKey(Vec<u8>);

impl CodeKey {
    pub fn new(secret: Vec<u8>) -> CodeKey {
        CodeKey(secret)
    }

    /// A fresh random secret (tests, and servers whose codes need not outlive them).
    pub fn generate() -> CodeKey {
        CodeKey(rand::thread_rng().gen::<[u8; 32]>().to_vec())
    }

    /// A secret derived from a passphrase that also keys the database: HMAC as a key derivation
    /// step, under a label that keeps it apart from any other use of the passphrase.
    pub fn derive(passphrase: &[u8]) -> CodeKey {
        CodeKey(Self::mac(passphrase, b"suivi-server enrollment codes v1"))
    }

    fn mac(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }

    /// What is stored for a (normalised) enrollment code.
    pub fn code_hash(&self, code: &str) -> String {
        format!(
            "hmac-sha256:{}",
            hex::encode(Self::mac(&self.0, code.as_bytes()))
        )
    }
}

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(…)")
    }
}

pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::thread_rng().gen();
    hex::encode(bytes)
}

pub fn new_device_id() -> String {
    let bytes: [u8; 8] = rand::thread_rng().gen();
    format!("dev-{}", hex::encode(bytes))
}

pub fn new_enrollment_code() -> String {
    let mut rng = rand::thread_rng();
    (0..ENROLLMENT_CODE_CHARS)
        .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

/// Codes are typed by hand: ignore case, spaces and dashes.
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

pub fn token_matches(token: &str, stored_hash: &str) -> bool {
    sha256_hex(token)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// A hash of a random password, checked against when a login names an unknown user or one
/// without a password, so that such a login costs the same argon2 work as any other.
pub fn dummy_password_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&new_token()).unwrap_or_default())
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Splits `Authorization: Bearer <device_id>.<token>`.
pub fn parse_bearer(header: &str) -> Option<(&str, &str)> {
    let credential = header.strip_prefix("Bearer ")?;
    let (device, token) = credential.split_once('.')?;
    (!device.is_empty() && !token.is_empty()).then_some((device, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_one() {
        let stored = hash_password("Sikasso-2026").unwrap();
        assert!(stored.starts_with("$argon2"));
        assert!(verify_password("Sikasso-2026", &stored));
        assert!(!verify_password("sikasso-2026", &stored));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn code_hashes_are_keyed() {
        let key = CodeKey::generate();
        let hash = key.code_hash("ABCDE23456");
        assert!(hash.starts_with("hmac-sha256:"));
        assert_eq!(hash, key.code_hash("ABCDE23456"));
        assert_ne!(hash, CodeKey::generate().code_hash("ABCDE23456"));
        assert_ne!(hash, key.code_hash("ABCDE23457"));
        assert!(!hash.contains(&sha256_hex("ABCDE23456")));
        let derived = CodeKey::derive(b"passphrase");
        assert_eq!(
            derived.code_hash("X"),
            CodeKey::derive(b"passphrase").code_hash("X")
        );
        assert_ne!(
            derived.code_hash("X"),
            CodeKey::derive(b"other").code_hash("X")
        );
    }

    #[test]
    fn tokens_and_codes() {
        let token = new_token();
        assert_eq!(token.len(), 64);
        assert!(token_matches(&token, &sha256_hex(&token)));
        assert!(!token_matches(&new_token(), &sha256_hex(&token)));
        let code = new_enrollment_code();
        assert_eq!(code.len(), ENROLLMENT_CODE_CHARS);
        assert_eq!(
            normalise_code(&format!(" {}-{} ", &code[..5].to_lowercase(), &code[5..])),
            code
        );
        assert_eq!(parse_bearer("Bearer dev-1.abc"), Some(("dev-1", "abc")));
        assert_eq!(parse_bearer("Basic x"), None);
        assert_eq!(parse_bearer("Bearer nodot"), None);
    }
}
