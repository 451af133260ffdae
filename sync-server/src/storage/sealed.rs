//! Change payloads sealed by the server before they reach a database that has no encryption of
//! its own (PostgreSQL): XChaCha20-Poly1305 under a key derived from the server's key file, a
//! random nonce per change, and the case id and change hash bound in as associated data, so a
//! payload moved to another row, or altered, fails to open instead of being served.
//!
//! What stays readable in the database: ids (cases, users, devices, teams), times, sizes and the
//! audit log. Children's names, villages and every form answer live only inside change payloads.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// The first byte of a sealed payload: the scheme, so a later one can be told apart.
const SCHEME_V1: u8 = 1;
const NONCE_LEN: usize = 24;
/// What the key check seals: opening it proves the key is this database's.
const KEY_CHECK: &[u8] = b"suivi-server key check";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("a stored payload does not open under this server's key: the key file belongs to another database, or the row was altered")]
    WrongKeyOrAltered,
    #[error("a stored payload is not in a known sealed format")]
    Unknown,
}

/// Seals and opens change payloads with one key.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    /// Keys the blind index of search terms: a term is found by its keyed hash, never stored.
    terms: hmac::Hmac<sha2::Sha256>,
}

impl Sealer {
    /// A sealer whose key is derived (HKDF-SHA256) from the server's 256-bit database key, so the
    /// key file's key is never used directly for two purposes.
    pub fn from_database_key(database_key: &[u8; 32]) -> Sealer {
        use hmac::Mac;
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(None, database_key);
        let mut key = [0u8; 32];
        hkdf.expand(b"suivi-server change payloads v1", &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let mut terms_key = [0u8; 32];
        hkdf.expand(b"suivi-server search terms v1", &mut terms_key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Sealer {
            cipher: XChaCha20Poly1305::new(&key.into()),
            terms: <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&terms_key)
                .expect("HMAC takes keys of any length"),
        }
    }

    fn seal_with(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
            .expect("XChaCha20-Poly1305 encrypts any length a change can have");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SCHEME_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    fn open_with(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        match sealed.split_first() {
            Some((&SCHEME_V1, rest)) if rest.len() >= NONCE_LEN => {
                let (nonce, body) = rest.split_at(NONCE_LEN);
                self.cipher
                    .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
                    .map_err(|_| SealError::WrongKeyOrAltered)
            }
            _ => Err(SealError::Unknown),
        }
    }

    /// Seals one change of one case.
    pub fn seal_change(&self, case_id: &str, hash: &str, data: &[u8]) -> Vec<u8> {
        self.seal_with(data, &change_aad(case_id, hash))
    }

    pub fn open_change(
        &self,
        case_id: &str,
        hash: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        self.open_with(sealed, &change_aad(case_id, hash))
    }

    /// Seals a case's shown summary (names and places) for its projection row.
    pub fn seal_summary(&self, case_id: &str, plain: &[u8]) -> Vec<u8> {
        self.seal_with(plain, &change_aad(case_id, "summary"))
    }

    pub fn open_summary(&self, case_id: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        self.open_with(sealed, &change_aad(case_id, "summary"))
    }

    /// A case's referrals and follow-ups as exports read them (`case_records`).
    pub fn seal_records(&self, case_id: &str, plain: &[u8]) -> Vec<u8> {
        self.seal_with(plain, &change_aad(case_id, "records"))
    }

    pub fn open_records(&self, case_id: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        self.open_with(sealed, &change_aad(case_id, "records"))
    }

    /// A search term (a name key, a folded village) as the database keeps it: a keyed hash,
    /// so equal terms match and a dump shows no name. 128 bits: collisions do not happen.
    pub fn blind(&self, term: &str) -> String {
        use hmac::Mac;
        let mut mac = self.terms.clone();
        mac.update(term.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// A value kept in the database that only this key opens: a wrong key file is caught when
    /// the server starts, not when a device first pulls.
    pub fn key_check(&self) -> Vec<u8> {
        self.seal_with(KEY_CHECK, b"key check")
    }

    pub fn verify_key_check(&self, stored: &[u8]) -> bool {
        self.open_with(stored, b"key check")
            .is_ok_and(|plain| plain == KEY_CHECK)
    }
}

fn change_aad(case_id: &str, hash: &str) -> Vec<u8> {
    // Lengths first: ("ab", "c") and ("a", "bc") must not bind the same bytes.
    let mut aad = Vec::with_capacity(16 + case_id.len() + hash.len());
    aad.extend_from_slice(&(case_id.len() as u64).to_be_bytes());
    aad.extend_from_slice(case_id.as_bytes());
    aad.extend_from_slice(&(hash.len() as u64).to_be_bytes());
    aad.extend_from_slice(hash.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_sealed_change_opens_only_under_its_key_case_and_hash() {
        let sealer = Sealer::from_database_key(&[7; 32]);
        let sealed = sealer.seal_change("case-a", "hash-1", b"Aminata, Sikasso");
        assert!(!sealed.windows(b"Aminata".len()).any(|w| w == b"Aminata"));
        assert_eq!(
            sealer.open_change("case-a", "hash-1", &sealed).unwrap(),
            b"Aminata, Sikasso"
        );
        // Moved to another case or change: refused.
        assert!(matches!(
            sealer.open_change("case-b", "hash-1", &sealed),
            Err(SealError::WrongKeyOrAltered)
        ));
        assert!(sealer.open_change("case-a", "hash-2", &sealed).is_err());
        // Another key: refused.
        let other = Sealer::from_database_key(&[8; 32]);
        assert!(other.open_change("case-a", "hash-1", &sealed).is_err());
        // One flipped bit: refused.
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(sealer.open_change("case-a", "hash-1", &flipped).is_err());
        assert!(matches!(
            sealer.open_change("case-a", "hash-1", b"plain"),
            Err(SealError::Unknown)
        ));
        // Two seals of the same change differ (random nonces).
        assert_ne!(
            sealed,
            sealer.seal_change("case-a", "hash-1", b"Aminata, Sikasso")
        );
    }

    #[test]
    fn the_key_check_tells_keys_apart() {
        let sealer = Sealer::from_database_key(&[1; 32]);
        let check = sealer.key_check();
        assert!(sealer.verify_key_check(&check));
        assert!(!Sealer::from_database_key(&[2; 32]).verify_key_check(&check));
        assert!(!sealer.verify_key_check(b""));
    }
}
