//! Credentials. Device tokens are random and long (256 bits), so a SHA-256 of them is what the
//! server keeps (a slow hash would cost CPU on every sync for no gain). Enrollment codes are
//! short enough to be typed (about 50 bits), so a plain hash of them could be reversed by brute
//! force from a stolen database: they are kept as an HMAC under a secret kept outside the
//! database (`CodeKey`). User passwords are chosen by people and are kept with argon2.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
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

/// Argon2id's cost for console passwords: 12 MiB, 3 passes, one lane. OWASP lists it as
/// equal in strength to its 19 MiB / 2 passes default; a district server is a small machine
/// checking at most `PASSWORD_CHECKS_CONCURRENT` at once, so memory is the cost to keep low.
pub const ARGON2_MEMORY_KIB: u32 = 12 * 1024;
pub const ARGON2_PASSES: u32 = 3;
/// The most passes a stored hash may ask of one check (argon2's default is 2).
pub const ARGON2_PASSES_MAX: u32 = 4;

fn argon2() -> Argon2<'static> {
    // The constants are within argon2's bounds.
    let params = argon2::Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, None)
        .expect("argon2 parameters within bounds");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
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

/// Checks a password against its stored hash, with the parameters the hash names (a hash made
/// before `ARGON2_MEMORY_KIB` was chosen keeps its own), refusing any beyond
/// `ARGON2_MEMORY_KIB_MAX`: an edited hash must not make one check take a gigabyte. Allocates
/// the check's working memory; the console checks through `PasswordGate`, which reuses it.
pub fn verify_password(password: &str, stored: &str) -> bool {
    let mut memory = vec![argon2::Block::default(); ARGON2_MEMORY_KIB_MAX as usize];
    verify_password_in(password, stored, &mut memory)
}

/// `verify_password` with `memory` as argon2's working memory (one `Block` per KiB the hash
/// asks for): reused from check to check, so sign-ins allocate nothing however many arrive
/// (argon2 allocating on each check, in whichever thread, left every allocator arena holding its
/// last check's memory).
pub fn verify_password_in(password: &str, stored: &str, memory: &mut [argon2::Block]) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return false;
    };
    // Memory and time bounded: an edited hash must hold a place neither with a gigabyte nor
    // for hours.
    if params.m_cost() > ARGON2_MEMORY_KIB_MAX
        || params.block_count() > memory.len()
        || params.t_cost() > ARGON2_PASSES_MAX
        || params.p_cost() > 1
    {
        return false;
    }
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut *memory)
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// The most memory a stored hash may ask of one check: argon2's own default (19 MiB), which
/// hashes made before `ARGON2_MEMORY_KIB` use.
pub const ARGON2_MEMORY_KIB_MAX: u32 = 19 * 1024;

/// Password checks at once: argon2 takes its memory per check, so this bounds what sign-ins
/// can cost whatever arrives (two checks of at most 19 MiB).
pub const PASSWORD_CHECKS_CONCURRENT: usize = 2;
/// Sign-ins waiting for a check; one more is told the server is busy (a check takes tens of
/// milliseconds, so the queue drains in about a second).
pub const PASSWORD_CHECKS_WAITING_MAX: usize = 32;

/// The gate every password check passes: a few at once, a short queue, "busy" beyond it; each
/// check borrows one of `PASSWORD_CHECKS_CONCURRENT` working memories, made once and reused.
pub struct PasswordGate {
    checks: std::sync::Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    memories: std::sync::Arc<std::sync::Mutex<Vec<Vec<argon2::Block>>>>,
}

/// The gate's queue is full.
#[derive(Debug, PartialEq, Eq)]
pub struct GateFull;

/// One password check's place: its working memory goes back to the gate when it is dropped.
pub struct PasswordCheck {
    _permit: tokio::sync::OwnedSemaphorePermit,
    memory: Vec<argon2::Block>,
    memories: std::sync::Arc<std::sync::Mutex<Vec<Vec<argon2::Block>>>>,
}

impl PasswordCheck {
    /// Checks a password against its stored hash in this place's memory.
    pub fn verify(&mut self, password: &str, stored: &str) -> bool {
        verify_password_in(password, stored, &mut self.memory)
    }
}

impl Drop for PasswordCheck {
    fn drop(&mut self) {
        let memory = std::mem::take(&mut self.memory);
        self.memories
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(memory);
    }
}

impl PasswordGate {
    pub fn new() -> PasswordGate {
        PasswordGate {
            checks: std::sync::Arc::new(tokio::sync::Semaphore::new(PASSWORD_CHECKS_CONCURRENT)),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            memories: Default::default(),
        }
    }

    /// A place to check one password, once one is free; `GateFull` at once when
    /// `PASSWORD_CHECKS_WAITING_MAX` are already waiting.
    pub async fn enter(&self) -> Result<PasswordCheck, GateFull> {
        use std::sync::atomic::Ordering;
        /// A place in the queue, given back however the wait ends: a sign-in whose client hung
        /// up is dropped mid-wait, and a count left behind would fill the queue for good.
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let permit = match self.checks.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let waiting = Waiting(&self.waiting);
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= PASSWORD_CHECKS_WAITING_MAX {
                    return Err(GateFull);
                }
                let permit = self.checks.clone().acquire_owned().await;
                drop(waiting);
                // The semaphore is never closed.
                permit.map_err(|_| GateFull)?
            }
        };
        // A permit holder always finds a memory: there are as many as permits, made on first
        // use (the largest a stored hash may ask for).
        let memory = self
            .memories
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_else(|| vec![argon2::Block::default(); ARGON2_MEMORY_KIB_MAX as usize]);
        Ok(PasswordCheck {
            _permit: permit,
            memory,
            memories: self.memories.clone(),
        })
    }
}

impl Default for PasswordGate {
    fn default() -> Self {
        Self::new()
    }
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
        assert!(
            stored.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"),
            "{stored}"
        );
        assert!(verify_password("Sikasso-2026", &stored));
        assert!(!verify_password("sikasso-2026", &stored));
        assert!(!verify_password("x", "not a hash"));
        // A hash made with argon2's default (19 MiB) still verifies; one asking for more is
        // refused without being computed.
        let salt = SaltString::generate(&mut OsRng);
        let old = Argon2::default()
            .hash_password(b"Sikasso-2026", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("Sikasso-2026", &old));
        let greedy = old.replace("m=19456", "m=1048576");
        assert!(!verify_password("Sikasso-2026", &greedy));
        let slow = old.replace("t=2", "t=100000");
        assert!(!verify_password("Sikasso-2026", &slow));
    }

    #[tokio::test]
    async fn the_password_gate_admits_a_few_queues_some_and_refuses_the_rest() {
        let gate = std::sync::Arc::new(PasswordGate::new());
        let held: Vec<_> = futures_held(&gate, PASSWORD_CHECKS_CONCURRENT).await;
        let mut queued = Vec::new();
        for _ in 0..PASSWORD_CHECKS_WAITING_MAX {
            let gate = gate.clone();
            queued.push(tokio::spawn(async move { gate.enter().await.is_ok() }));
        }
        // Let every queued task reach the semaphore.
        while gate.waiting.load(std::sync::atomic::Ordering::SeqCst) < PASSWORD_CHECKS_WAITING_MAX {
            tokio::task::yield_now().await;
        }
        assert_eq!(gate.enter().await.err(), Some(GateFull));
        drop(held);
        for q in queued {
            assert!(q.await.unwrap(), "a queued check gets its turn");
        }
        // Waiters dropped mid-wait (a client that hung up) give their place back.
        let held: Vec<_> = futures_held(&gate, PASSWORD_CHECKS_CONCURRENT).await;
        let mut dropped = Vec::new();
        for _ in 0..PASSWORD_CHECKS_WAITING_MAX {
            let gate = gate.clone();
            dropped.push(tokio::spawn(async move { gate.enter().await.is_ok() }));
        }
        while gate.waiting.load(std::sync::atomic::Ordering::SeqCst) < PASSWORD_CHECKS_WAITING_MAX {
            tokio::task::yield_now().await;
        }
        for d in &dropped {
            d.abort();
        }
        for d in dropped {
            let _ = d.await;
        }
        assert_eq!(gate.waiting.load(std::sync::atomic::Ordering::SeqCst), 0);
        drop(held);
        let mut check = gate.enter().await.unwrap();
        let stored = hash_password("Sikasso-2026").unwrap();
        assert!(check.verify("Sikasso-2026", &stored));
        assert!(!check.verify("sikasso-2026", &stored));
        drop(check);
        assert!(
            gate.memories.lock().unwrap().len() <= PASSWORD_CHECKS_CONCURRENT,
            "no more working memories than places"
        );
    }

    async fn futures_held(gate: &PasswordGate, n: usize) -> Vec<PasswordCheck> {
        let mut held = Vec::new();
        for _ in 0..n {
            held.push(gate.enter().await.unwrap());
        }
        held
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
