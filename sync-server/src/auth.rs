//! Credentials. Device tokens and enrollment codes are random and long, so a SHA-256 of them is
//! what the server keeps (a slow hash would cost CPU on every sync for no gain); user passwords
//! are chosen by people and are kept with argon2.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
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
