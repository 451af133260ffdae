//! Sync and enrollment as Kotlin sees them: the summary, progress, cancelling.

use super::*;

/// What a sync did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncSummary {
    pub cases_up: u64,
    pub cases_down: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub round_trips: u64,
    /// Cases holding a conflict after this sync.
    pub conflicts: u64,
    /// Cases the server refused (outside this device's caseload).
    pub refused: u64,
    /// Cases erased on the server (consent withdrawn) and deleted from this phone.
    pub erased: u64,
    /// Pulled cases set aside because they failed to apply or check; the rest went on.
    pub quarantined: u64,
    /// Form versions received from the server (new versions and retirements).
    pub forms_received: u64,
    /// Form versions the server sent that failed their checks here, each with why.
    pub forms_refused: Vec<String>,
    pub duration_ms: u64,
}

/// A pulled case set aside (it failed to apply or check), readable in its last good state.
#[derive(Debug, Clone, uniffi::Record)]
pub struct QuarantinedCase {
    pub case_id: String,
    pub reason: String,
}

/// A case whose own changes the server refused, kept on the phone with them.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RefusedCase {
    pub case_id: String,
    /// The server's reason as a code (forbidden, quota_exceeded, invalid, ...), for the app's
    /// words; the server's detail is not passed on (a server response is untrusted text).
    pub reason: String,
}

/// Cancels a running sync from another thread (a Cancel button, a coroutine's cancellation).
#[derive(uniffi::Object, Default)]
pub struct SyncCancel {
    pub(super) inner: Cancel,
}

#[uniffi::export]
impl SyncCancel {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(SyncCancel::default())
    }

    /// Stops the sync at once if it waits on the network, else before its next request.
    pub fn cancel(&self) {
        self.inner.cancel();
    }
}

/// Progress while a sync runs.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncProgress {
    pub round_trips: u64,
    pub cases_down: u64,
    pub bytes_down: u64,
    /// The caseload's size once a first sync's rows ahead came (0 otherwise): "312 of 1,000".
    pub caseload: u64,
    /// Rows listed ahead of their cases: the list and search work from them.
    pub listed: u64,
    pub more: bool,
}

/// Receives sync progress, on the syncing thread, with no lock held: post it to the UI thread.
#[uniffi::export(callback_interface)]
pub trait SyncListener: Send + Sync {
    /// Called after each committed page.
    fn on_progress(&self, progress: SyncProgress);
}

/// The device after enrollment.
#[derive(Debug, Clone, uniffi::Record)]
pub struct EnrollmentInfo {
    pub device_id: String,
    pub user: String,
    pub role: String,
}

pub(super) fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl From<suivi_core::sync::SyncReport> for SyncSummary {
    fn from(report: suivi_core::sync::SyncReport) -> Self {
        SyncSummary {
            cases_up: to_u64(report.cases_up),
            cases_down: to_u64(report.cases_down),
            bytes_up: to_u64(report.bytes_up),
            bytes_down: to_u64(report.bytes_down),
            round_trips: to_u64(report.round_trips),
            conflicts: to_u64(report.conflicts),
            refused: to_u64(report.refused.len()),
            erased: to_u64(report.erased),
            quarantined: to_u64(report.quarantined.len()),
            forms_received: to_u64(report.forms_received),
            forms_refused: report.forms_refused,
            duration_ms: report.duration_ms,
        }
    }
}

impl From<&suivi_core::sync::SyncProgress> for SyncProgress {
    fn from(p: &suivi_core::sync::SyncProgress) -> Self {
        SyncProgress {
            round_trips: to_u64(p.round_trips),
            cases_down: to_u64(p.cases_down),
            bytes_down: to_u64(p.bytes_down),
            caseload: to_u64(p.caseload),
            listed: to_u64(p.listed),
            more: p.more,
        }
    }
}

impl From<suivi_core::store::Enrollment> for EnrollmentInfo {
    fn from(e: suivi_core::store::Enrollment) -> Self {
        EnrollmentInfo {
            device_id: e.device_id,
            user: e.user,
            role: e.role.as_str().to_string(),
        }
    }
}
