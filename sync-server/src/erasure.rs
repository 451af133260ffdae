//! Erasure of a case (consent withdrawn, a data-protection request): removed from the server,
//! a tombstone id kept, and every device told to delete it at its next sync.
//!
//! Each erasure is first appended to a journal kept beside the data directory
//! (`<data>.erasures`: case ids and times, no names), then applied to the database. Opening a
//! store re-applies the journal, so an erasure survives a restore from a backup older than it.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::storage::{valid_case_id, ServerStore, StorageError};

/// Erasures listed in one sync response; more follow on the next round trip.
pub const ERASURES_PER_PAGE: usize = 1_000;

/// The journal of a data directory: beside it, `<data>.erasures`.
pub fn journal_path(data_dir: &Path) -> PathBuf {
    let mut name = data_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "suivi-server".into());
    name.push(".erasures");
    data_dir.with_file_name(name)
}

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("not a case id: {0}")]
    BadCaseId(String),
    #[error("erasure journal {path}: {source}")]
    Journal {
        path: PathBuf,
        source: std::io::Error,
    },
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
    let journal_error = |source| ErasureError::Journal {
        path: journal.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(journal)
        .map_err(journal_error)?;
    writeln!(file, "{case_id} {now}")
        .and_then(|()| file.sync_all())
        .map_err(journal_error)?;
    Ok(store.erase_case(&case_id.to_ascii_lowercase(), now)?)
}

/// Re-applies every journalled erasure the database does not hold (after a restore from an
/// older backup): how many were applied again.
pub fn replay(store: &dyn ServerStore, journal: &Path) -> Result<usize, ErasureError> {
    let text = match std::fs::read_to_string(journal) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(ErasureError::Journal {
                path: journal.to_path_buf(),
                source,
            })
        }
    };
    let mut applied = 0;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(case_id), Some(at)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(at) = at.parse::<i64>() else { continue };
        if valid_case_id(case_id) && store.erase_case(&case_id.to_ascii_lowercase(), at)? {
            applied += 1;
        }
    }
    Ok(applied)
}
