//! Erasure of a case (consent withdrawn, a data-protection request): removed from the server,
//! a tombstone id kept, and every device told to delete it at its next sync.
//!
//! Each erasure is first appended to a journal kept beside the data directory
//! (`<data>.erasures`: case ids and times, no names; see `journal`), then applied to the
//! database. Opening a store re-applies the journal, so an erasure survives a restore from a
//! backup older than it.

use std::path::{Path, PathBuf};

use crate::journal::{self, JournalError};
use crate::storage::{valid_case_id, ServerStore, StorageError};

/// Erasures listed in one sync response; more follow on the next round trip.
pub const ERASURES_PER_PAGE: usize = 1_000;

/// The journal of a data directory: beside it, `<data>.erasures`.
pub fn journal_path(data_dir: &Path) -> PathBuf {
    journal::path_beside(data_dir, "erasures")
}

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("not a case id: {0}")]
    BadCaseId(String),
    #[error("erasure {0}")]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Erases a case: journalled (and synced to disk) first, then removed from the database.
/// `false` if it was already erased.
pub fn erase(
    store: &dyn ServerStore,
    journal: &Path,
    case_id: &str,
    now: i64,
) -> Result<bool, ErasureError> {
    if !valid_case_id(case_id) {
        return Err(ErasureError::BadCaseId(case_id.chars().take(40).collect()));
    }
    journal::append(journal, case_id, now)?;
    Ok(store.erase_case(&case_id.to_ascii_lowercase(), now)?)
}

/// Re-applies every journalled erasure the database does not hold (after a restore from an
/// older backup): how many were applied again.
pub fn replay(store: &dyn ServerStore, journal: &Path) -> Result<usize, ErasureError> {
    let mut applied = 0;
    for (case_id, at) in journal::entries(journal)? {
        if valid_case_id(&case_id) && store.erase_case(&case_id.to_ascii_lowercase(), at)? {
            applied += 1;
        }
    }
    Ok(applied)
}
