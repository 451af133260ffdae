//! Where core reads the time and draws new ids and actors: the wall clock and the operating
//! system's randomness. With the `simulation` feature a test may replace both for the whole
//! process (`clock::simulated::start`), so that one seed replays a run exactly: an Automerge
//! change's hash covers its actor and its time, and ids name cases and records.

use automerge::ActorId;
use chrono::{DateTime, Utc};

/// The time a change or a record is stamped with.
pub fn now() -> DateTime<Utc> {
    #[cfg(feature = "simulation")]
    if let Some(at) = simulated::now() {
        return at;
    }
    Utc::now()
}

/// A new id: 32 lowercase hex digits (a case, a referral, a follow-up).
pub fn new_id() -> String {
    #[cfg(feature = "simulation")]
    if let Some(bytes) = simulated::bytes() {
        return hex::encode(bytes);
    }
    uuid::Uuid::new_v4().simple().to_string()
}

/// A new Automerge actor (a phone's store, the server's console device).
pub fn new_actor() -> ActorId {
    #[cfg(feature = "simulation")]
    if let Some(bytes) = simulated::bytes() {
        return ActorId::from(bytes.to_vec());
    }
    ActorId::random()
}

/// The simulated clock and ids: process-wide while a `Simulated` guard lives, so one
/// simulation runs per process at a time (its test binary holds nothing else).
#[cfg(feature = "simulation")]
pub mod simulated {
    use std::sync::Mutex;

    use chrono::{DateTime, Utc};

    struct State {
        at: i64,
        rng: u64,
    }

    static STATE: Mutex<Option<State>> = Mutex::new(None);

    fn state() -> std::sync::MutexGuard<'static, Option<State>> {
        STATE.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the simulation when dropped: the wall clock and real randomness come back.
    pub struct Simulated(());

    impl Drop for Simulated {
        fn drop(&mut self) {
            *state() = None;
        }
    }

    /// Starts a simulated clock at `at` (Unix seconds) and ids drawn from `seed`.
    pub fn start(seed: u64, at: i64) -> Simulated {
        *state() = Some(State { at, rng: seed });
        Simulated(())
    }

    /// Moves the simulated clock on.
    pub fn advance(secs: i64) {
        if let Some(s) = state().as_mut() {
            s.at = s.at.saturating_add(secs);
        }
    }

    /// The simulated time, if a simulation runs.
    pub fn at() -> Option<i64> {
        state().as_ref().map(|s| s.at)
    }

    pub(super) fn now() -> Option<DateTime<Utc>> {
        at().and_then(|at| DateTime::from_timestamp(at, 0))
    }

    /// 16 bytes from the seed's stream (SplitMix64: not for secrets, only to replay).
    pub(super) fn bytes() -> Option<[u8; 16]> {
        let mut guard = state();
        let s = guard.as_mut()?;
        let mut out = [0u8; 16];
        for half in out.chunks_mut(8) {
            s.rng = s.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            half.copy_from_slice(&z.to_le_bytes());
        }
        Some(out)
    }
}
