//! The errors Kotlin sees, and every call's panic containment.

use super::*;

/// One problem in a form: the field id and a message key (the UI picks the text).
#[derive(Debug, Clone, uniffi::Record)]
pub struct FieldProblem {
    pub field: String,
    pub key: String,
}

/// Errors Kotlin can act on, one kind per thing the app does differently. Messages carry ids,
/// keys and kinds of failure, never a child's data.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum SuiviError {
    /// The data did not pass the form's checks; nothing was saved.
    #[error("validation failed on {} field(s)", problems.len())]
    Validation { problems: Vec<FieldProblem> },
    /// No such case, referral, form or store.
    #[error("not found: {what}")]
    NotFound { what: String },
    /// The case is listed from the row a first sync sent ahead; its history is on its way:
    /// show the row, read-only, and open it once the sync has brought it.
    #[error("case {case_id} is still arriving with the sync")]
    CaseArriving { case_id: String },
    /// The database key is wrong, or the file is not a Suivi database; the file is untouched.
    /// The app offers to reset the store and enroll again.
    #[error("wrong key or not a Suivi database")]
    WrongKey,
    /// This device was revoked: its case data is wiped. It must be enrolled again.
    #[error("this device was revoked; its case data was wiped")]
    Revoked,
    /// The store has no sync credential yet: enroll first.
    #[error("not enrolled with a sync server")]
    NotEnrolled,
    /// The app is too old for the sync server: it must be updated before it syncs again.
    #[error("upgrade required")]
    UpgradeRequired,
    /// A referral cannot make this move from its status; nothing was saved.
    #[error("illegal referral transition {transition} from {from}")]
    IllegalTransition { transition: String, from: String },
    /// The server refused (an enrollment code, a case outside the caseload).
    #[error("forbidden: {reason}")]
    Forbidden { reason: String },
    /// The server cannot be reached; nothing was lost, sync again later.
    #[error("offline: {reason}")]
    Offline { reason: String },
    /// The phone's storage is full; nothing of the failed step was saved.
    #[error("storage full")]
    StorageFull,
    /// The phone's storage failed.
    #[error("storage: {reason}")]
    Storage { reason: String },
    /// The sync was cancelled; every page committed before it stays.
    #[error("sync cancelled")]
    Cancelled,
    /// The case was merged into `into` (the same child registered twice): it is read-only;
    /// record on that case. Nothing was saved.
    #[error("case merged into {into}")]
    CaseMerged { into: String },
    /// Input the app passed is not acceptable (an unknown transition, a bad certificate).
    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },
    /// A bug in Suivi (a panic), caught at the boundary: the app reports it and goes on. The
    /// panic's own message stays out: it could hold data.
    #[error("internal error")]
    Internal,
    #[error("{reason}")]
    Other { reason: String },
}

impl From<CoreError> for SuiviError {
    fn from(err: CoreError) -> Self {
        match err {
            CoreError::Validation(problems) => SuiviError::Validation {
                problems: problems
                    .into_iter()
                    .map(|p| FieldProblem {
                        field: p.field,
                        key: p.key,
                    })
                    .collect(),
            },
            CoreError::NotFound { kind, id } => SuiviError::NotFound {
                what: format!("{kind} {id}"),
            },
            CoreError::CaseArriving(case_id) => SuiviError::CaseArriving { case_id },
            CoreError::UnknownForm { id, version } => SuiviError::NotFound {
                what: format!("form {id} v{version}"),
            },
            CoreError::WrongKeyOrCorrupt
            | CoreError::PlaintextDatabase
            | CoreError::ForeignDatabase => SuiviError::WrongKey,
            CoreError::DeviceRevoked => SuiviError::Revoked,
            CoreError::NotEnrolled => SuiviError::NotEnrolled,
            CoreError::UpgradeRequired => SuiviError::UpgradeRequired,
            CoreError::IllegalTransition { from, transition } => {
                SuiviError::IllegalTransition { transition, from }
            }
            CoreError::Forbidden(reason) => SuiviError::Forbidden { reason },
            CoreError::Offline(reason) => SuiviError::Offline { reason },
            CoreError::StorageFull => SuiviError::StorageFull,
            CoreError::Storage(reason) => SuiviError::Storage { reason },
            CoreError::Cancelled => SuiviError::Cancelled,
            CoreError::CaseMerged { into, .. } => SuiviError::CaseMerged { into },
            CoreError::InvalidInput(reason) => SuiviError::InvalidInput { reason },
            other => SuiviError::Other {
                reason: other.to_string(),
            },
        }
    }
}

/// Runs one call with panics contained: a bug in Rust becomes `SuiviError::Internal` for the
/// app to report, never a crash of the app (uniffi would raise its own exception with the
/// panic's message).
pub(super) fn guard<T>(call: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or(Err(SuiviError::Internal))
}

pub(super) type Result<T, E = SuiviError> = std::result::Result<T, E>;
