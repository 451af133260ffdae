//! What every request handler shares: the service, the rate limiters and slots that bound what
//! clients can take, and how the server is reached (HTTPS or not). The device API (`api`) and
//! the console (`console`) both read it; neither depends on the other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::service::SyncService;

/// Keys a rate limiter remembers before forgetting the idle ones.
const RATE_KEYS_MAX: usize = 50_000;

/// A token bucket per device: bursts for a first sync's pages, a ceiling for a runaway client.
pub struct RateLimiter {
    burst: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(burst: u32, per_sec: f64) -> RateLimiter {
        RateLimiter {
            burst: f64::from(burst),
            per_sec,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a request is allowed now; takes one token if so.
    pub fn allow(&self, key: &str) -> bool {
        self.take(key, true)
    }

    /// Whether `key` has a token left, without taking one.
    pub fn has_room(&self, key: &str) -> bool {
        self.take(key, false)
    }

    fn take(&self, key: &str, consume: bool) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if buckets.len() > RATE_KEYS_MAX {
            // Keys that would be full again cost nothing to forget: keeps memory bounded.
            let (burst, per_sec) = (self.burst, self.per_sec);
            buckets.retain(|_, (t, last)| {
                *t + now.duration_since(*last).as_secs_f64() * per_sec < burst
            });
        }
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_sec).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            if consume {
                *tokens -= 1.0;
            }
            true
        } else {
            false
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<SyncService>,
    /// Per device.
    pub limiter: Arc<RateLimiter>,
    /// Per IP address: enrollment attempts.
    pub enroll_limiter: Arc<RateLimiter>,
    /// Per IP address: failed authentications (a guessed token costs a token).
    pub auth_failure_limiter: Arc<RateLimiter>,
    /// `/v1/sync` and `/v1/docsync` bodies being read or worked on at once: the server's
    /// memory budget (each holds at most a 4 MiB body, its 8 MiB inflation and one case's
    /// copy at a time).
    pub sync_slots: Arc<tokio::sync::Semaphore>,
    /// Sync bodies being read at once (each at most `SYNC_BODY_BYTES_MAX`), before a shared
    /// slot is taken.
    pub bodies_in_flight: Arc<tokio::sync::Semaphore>,
    /// One sync at a time per account, taken before a shared slot: the phones of one stolen
    /// or buggy account queue behind each other instead of filling the server's slots.
    pub account_slots: Arc<AccountSlots>,
    /// Console password checks: a few at once, a short queue (argon2's memory is per check).
    pub password_gate: Arc<crate::auth::PasswordGate>,
    /// Served over HTTPS: console cookies are marked Secure.
    pub https: bool,
    /// Where a revocation made in the console is journalled first (`<data>.revocations`), so a
    /// restore from an older backup cannot bring the phone back; `None` in tests without one.
    pub revocation_journal: Option<std::path::PathBuf>,
    /// The checkpoint journal the console verifies cases against (`evidence`); `None`: no
    /// case shows as verified beyond its chain links.
    pub checkpoints: Option<Arc<crate::evidence::Checkpointer>>,
    /// The project's time zone: the console shows times in it (`--time-zone`).
    pub zone: suivi_core::words::Zone,
}

/// Per-account sync slots, striped: an account's id picks one of `ACCOUNT_STRIPES`
/// one-permit semaphores (two accounts may share one, which costs a little waiting, never a
/// refusal), so memory stays fixed however many accounts sync.
pub struct AccountSlots(Vec<Arc<tokio::sync::Semaphore>>);

/// Stripes for per-account slots: far more than the shared sync slots.
const ACCOUNT_STRIPES: usize = 256;

impl AccountSlots {
    pub fn new() -> AccountSlots {
        AccountSlots(
            (0..ACCOUNT_STRIPES)
                .map(|_| Arc::new(tokio::sync::Semaphore::new(1)))
                .collect(),
        )
    }

    pub(crate) fn for_account(&self, user_id: &str) -> Arc<tokio::sync::Semaphore> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        user_id.hash(&mut h);
        self.0[(h.finish() as usize) % self.0.len()].clone()
    }
}

impl Default for AccountSlots {
    fn default() -> Self {
        Self::new()
    }
}
