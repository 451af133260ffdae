//! Tamper evidence: proof that the stored history is the history the server accepted.
//!
//! Recomputing hashes inside the database proves nothing against someone who can edit it: they
//! rewrite a change and its stored hash, and every mark after it, together. What such an editor
//! cannot rewrite is kept outside the database:
//!
//! - **Checkpoints.** The feed and the audit log are each a hash chain (`next_feed_mark`,
//!   `next_audit_mark`). The serving server appends where both chains stand (position and mark)
//!   to a journal beside the data directory, `<data>.checkpoints`, every minute that they moved
//!   and when it stops. Keep that file where the database's editors cannot write (another host,
//!   an append-only mount). A history rewritten before a checkpoint no longer ends in the mark
//!   the checkpoint holds; rows deleted before it leave the chain shorter than the checkpoint.
//! - **Devices.** Each phone holds the feed mark of its cursor and sends it back at every sync;
//!   a server whose feed up to there differs tells the phone so (`CursorCheck`), and writes an
//!   audit row (`HISTORY_DIFFERS`) that `verify` reports.
//! - **The changes themselves.** An Automerge change's hash is computed from its bytes, and its
//!   actor is inside them: the stored hash and the device it is said to come from must agree.
//!
//! `verify` checks all of it for the whole store (`suivi-server verify`); `verify_case` checks
//! one case, for the console. What was written after the last checkpoint is covered by the
//! chains' links only: an editor who rewrites it whole, marks included, is seen at the next
//! checkpoint's verification if not before. That window is the checkpoint interval.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use automerge::Change;

use crate::journal::{self, JournalError};
use crate::storage::{
    next_audit_mark, parse_device_binding, ChainHeads, FeedLink, FeedMarks, ServerStore,
    StorageError, StoredChange, CONSOLE_DEVICE_ACTION,
};
mod case;
mod checkpoints;
mod verify;
pub use case::*;
pub use checkpoints::*;
pub use verify::*;

/// The audit action of a phone whose feed mark no longer matches the server's feed at its
/// cursor: it read another history up to there.
pub const HISTORY_DIFFERS: &str = "device.history_differs";
/// The audit action of a phone's witness: a change stored under its name that it never wrote
/// (subject `<case> <hash>`), reported at a sync (protocol 6).
pub const FORGERY_REPORTED: &str = "device.forgery_reported";
/// The audit action of an officer's or admin's review of such a report (`case
/// forgery-reviewed`): `verify` then lists the report as a note.
pub const FORGERY_REVIEWED: &str = "case.forgery_reviewed";
/// The audit action of an erasure, written in the transaction that makes it.
pub const ERASURE_ACTION: &str = "case.erased";

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Something the stored history does not prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A change's bytes are not a change, or hash to another hash than the one stored.
    ChangeBytes {
        case_id: String,
        hash: String,
        why: String,
    },
    /// A change says it comes from a device whose actor did not write it.
    ChangeAuthor {
        case_id: String,
        hash: String,
        device: String,
    },
    /// A change no feed row of its case holds: it did not come through a push.
    ChangeOutsideFeed { case_id: String, hash: String },
    /// A change depends on changes its case does not hold: moved from another case, or a
    /// change before it deleted.
    ChangeOutsideItsCase { case_id: String, hash: String },
    /// A feed row marked as erased whose case was never erased.
    ErasedRowOfLiveCase { seq: u64, case_id: String },
    /// A feed row whose change is gone.
    FeedRowWithoutChange { seq: u64, case_id: String },
    /// A feed row's mark does not follow from the row before it and its change.
    FeedLink { seq: u64, case_id: Option<String> },
    /// The feed up to a checkpoint is not what it was when the checkpoint was written.
    FeedCheckpoint { at: i64, seq: u64, why: String },
    /// An audit row's mark does not follow from the row before it: it, or a row before it,
    /// was edited or deleted.
    AuditLink { id: u64 },
    /// The audit log up to a checkpoint is not what it was.
    AuditCheckpoint { at: i64, id: u64, why: String },
    /// A device's user or actor is not the one its enrollment, in the chained audit log,
    /// bound it to.
    DeviceBinding { device: String, why: String },
    /// The database holds an erasure of a case that the audit log never recorded.
    ErasureNotAudited { case_id: String },
    /// A phone found a change stored under its name that it never wrote.
    ForgeryReported {
        device: String,
        case_id: String,
        hash: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |at: i64| {
            chrono::DateTime::from_timestamp(at, 0)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| at.to_string())
        };
        match self {
            Problem::ChangeBytes { case_id, hash, why } => {
                write!(f, "case {case_id}: change {hash}: {why}")
            }
            Problem::ChangeAuthor {
                case_id,
                hash,
                device,
            } => write!(
                f,
                "case {case_id}: change {hash} is said to come from device {device}, which did not write it"
            ),
            Problem::ChangeOutsideFeed { case_id, hash } => write!(
                f,
                "case {case_id}: change {hash} is in no feed row of its case: it was not accepted through a push"
            ),
            Problem::ChangeOutsideItsCase { case_id, hash } => write!(
                f,
                "case {case_id}: change {hash} depends on changes this case does not hold (moved from another case, or a change before it deleted)"
            ),
            Problem::ErasedRowOfLiveCase { seq, case_id } => write!(
                f,
                "feed row {seq} is kept as erased, but case {case_id} was never erased"
            ),
            Problem::FeedRowWithoutChange { seq, case_id } => {
                write!(f, "feed row {seq} (case {case_id}): its change is gone")
            }
            Problem::FeedLink { seq, case_id } => write!(
                f,
                "feed row {seq}{}: its mark does not follow from the row before it and its change (edited, or a row before it deleted)",
                case_id
                    .as_ref()
                    .map(|c| format!(" (case {c})"))
                    .unwrap_or_else(|| " (erased case)".into())
            ),
            Problem::FeedCheckpoint { at, seq, why } => write!(
                f,
                "feed up to row {seq}, checkpointed at {}: {why}",
                time(*at)
            ),
            Problem::AuditLink { id } => write!(
                f,
                "audit row {id}: its mark does not follow from the row before it (it was edited, or a row before it deleted)"
            ),
            Problem::ForgeryReported {
                device,
                case_id,
                hash,
            } => write!(
                f,
                "case {case_id}: device {device} reported change {hash}, stored under its name, as one it never wrote (the case is set aside)"
            ),
            Problem::ErasureNotAudited { case_id } => write!(
                f,
                "case {case_id} is held as erased, but no erasure of it is in the audit log (every phone would delete it)"
            ),
            Problem::DeviceBinding { device, why } => write!(
                f,
                "device {device}: {why} (its history would be shown as someone else's)"
            ),
            Problem::AuditCheckpoint { at, id, why } => write!(
                f,
                "audit log up to row {id}, checkpointed at {}: {why}",
                time(*at)
            ),
        }
    }
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub feed_rows: u64,
    pub erased_rows: u64,
    pub changes: u64,
    pub audit_rows: u64,
    pub checkpoints: usize,
    pub last_checkpoint: Option<Checkpoint>,
    pub problems: Vec<Problem>,
    /// Phones that found, at a sync, that the feed up to their cursor was not the history they
    /// had read: (audit row, device, feed row, when). A restore from a backup does this too,
    /// so these are reported beside the findings, not as findings.
    pub device_witnesses: Vec<(u64, String, u64, i64)>,
    /// Feed rows erased before erasures kept what their marks cover: the chain is taken on
    /// trust across them.
    pub legacy_erased_rows: u64,
    /// Devices bound before bindings named the actor (or console devices made before they were
    /// audited): their user is held to the log, their actor taken on trust.
    pub legacy_bindings: u64,
    /// Erasures the database holds that this host's erasure journal does not (when given):
    /// made on another host sharing the database, or added by hand (then also not audited).
    pub erasures_outside_journal: Vec<String>,
    /// Phones' forgery reports an officer or admin reviewed (`case forgery-reviewed`).
    pub reviewed_forgeries: Vec<String>,
    /// Lines of the journal that do not read as a checkpoint (one torn by a crash while it was
    /// written): those checkpoints are lost, which proves nothing against the database.
    pub unreadable_journal_lines: Vec<usize>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Journals a checkpoint every `every` while the server serves.
pub async fn checkpoint_every(
    store: std::sync::Arc<dyn ServerStore>,
    checkpointer: std::sync::Arc<Checkpointer>,
    every: std::time::Duration,
) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let (store, checkpointer) = (store.clone(), checkpointer.clone());
        let written = tokio::task::spawn_blocking(move || {
            checkpointer.checkpoint(store.as_ref(), chrono::Utc::now().timestamp())
        })
        .await;
        match written {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "checkpoint"),
            Err(e) => tracing::error!(error = %e, "checkpoint task"),
        }
    }
}
