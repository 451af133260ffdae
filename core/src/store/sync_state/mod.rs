//! The device's sync state, kept in its store: enrollment, the feed cursor and its mark, what a
//! push collects, each round trip committed (a page), forgeries witnessed, cases set aside. The
//! session (`sync::session`) drives the network and calls these; every SQL statement of sync
//! lives here. Being offline is normal: a failed sync has committed whole pages only, and the
//! next one continues from there.

use automerge::ChangeHash;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::case_doc::CaseDoc;
use crate::error::{Error, Result};
use crate::policy::Role;
use crate::protocol::{self, EnrollRequest, EnrollResponse, ForgeryReport, PulledCase, Refusal};
use crate::store::{Store, SyncState};
use crate::transport::status_error;
use crate::transport::{Credentials, HttpReply, Transport};
mod enrollment;
mod fallback;
mod forgeries;
mod page;
mod plan;
mod quarantine;
mod report;
pub use enrollment::*;
pub use forgeries::*;
pub(crate) use page::*;
pub(crate) use plan::*;
pub use quarantine::*;
pub use report::*;

/// Raw change bytes gathered into one push before the rest waits for the next round trip.
pub const PUSH_RAW_BYTES_MAX: usize = 2 * 1024 * 1024;
const META_SERVER: &str = "server";
const META_DEVICE_ID: &str = "device_id";
pub(crate) const META_TOKEN: &str = "device_token";
const META_CURSOR: &str = "cursor";
/// The last erasure this device applied (the server's erasure sequence).
pub(crate) const META_ERASURES: &str = "erasures_cursor";
/// The last removal (a case reassigned away from this user) applied.
pub(crate) const META_REMOVALS: &str = "removals_cursor";
/// The server's feed mark at the cursor: proves at the next sync that the server still holds
/// the same history up to there.
pub(crate) const META_MARK: &str = "feed_mark";
pub(crate) const META_LAST_SYNC: &str = "last_sync";
/// The older version a server said it speaks, and when ("7 1765100000"): the next syncs of
/// the day start in it rather than pay a refused round trip each.
pub(crate) const META_SERVER_SPEAKS: &str = "server_speaks";
const META_SERVER_CA: &str = "server_ca";
/// How long a server's older version is remembered: after a day the phone tries its own again
/// (the server may have been updated).
pub const SERVER_SPEAKS_TTL_SECS: i64 = 24 * 3600;

impl Store {
    /// The older protocol version the server said today that it speaks, if it did.
    pub fn server_speaks(&self) -> Result<Option<u16>> {
        Ok(self.meta(META_SERVER_SPEAKS)?.and_then(|said| {
            let (version, at) = said.split_once(' ')?;
            let (version, at): (u16, i64) = (version.parse().ok()?, at.parse().ok()?);
            let fresh = chrono::Utc::now().timestamp() - at < SERVER_SPEAKS_TTL_SECS;
            fresh.then_some(version)
        }))
    }
}

pub(crate) struct Pushed {
    pub(crate) case_id: String,
    pub(crate) changes: Vec<Vec<u8>>,
    pub(crate) hashes: Vec<ChangeHash>,
    pub(crate) heads: Vec<ChangeHash>,
    /// The case's local save count when it was gathered (`case_sync.edits`).
    pub(crate) edits: i64,
}

impl Store {
    /// The feed position this phone has committed (0 before its first page). A stored value
    /// that is not a number is an error here; a sync restarts it (`positions`).
    pub fn cursor(&self) -> Result<u64> {
        match self.meta(META_CURSOR)? {
            None => Ok(0),
            Some(text) => text
                .parse()
                .map_err(|_| Error::Storage(format!("the feed cursor {text:?} is not a number"))),
        }
    }

    /// Where this phone stands with the server, for a sync request. A value that does not read
    /// (a damaged row, a hand edit) is never taken for 0 silently: the feed cursor and its mark
    /// restart together from the beginning (a full re-pull: every change is applied again, and
    /// applying one twice changes nothing), an erasures or removals cursor restarts at 0 (each
    /// listed again, applied again, harmlessly). The restart is written before the request is
    /// built, so the next sync does not meet it again, and reported in `restarted`.
    pub(crate) fn positions(&self, restarted: &mut Vec<String>) -> Result<Positions> {
        let cursor = self.meta(META_CURSOR)?;
        let mark = self.meta(META_MARK)?;
        let feed = match (
            cursor.as_deref().map(str::parse::<u64>),
            mark.as_deref().map(hex::decode),
        ) {
            (None, _) => (0, Vec::new()),
            (Some(Ok(cursor)), Some(Ok(mark))) => (cursor, mark),
            // A cursor from before marks existed: the server trusts it as far as its feed goes.
            (Some(Ok(cursor)), None) => (cursor, Vec::new()),
            _ => {
                self.set_meta(META_CURSOR, "0")?;
                self.set_meta(META_MARK, "")?;
                restarted.push("feed cursor".into());
                (0, Vec::new())
            }
        };
        let mut counter = |key: &str, name: &str| -> Result<u64> {
            match self.meta(key)?.map(|t| t.parse::<u64>()) {
                None => Ok(0),
                Some(Ok(n)) => Ok(n),
                Some(Err(_)) => {
                    self.set_meta(key, "0")?;
                    restarted.push(name.into());
                    Ok(0)
                }
            }
        };
        Ok(Positions {
            cursor: feed.0,
            mark: feed.1,
            erasures_seen: counter(META_ERASURES, "erasures cursor")?,
            removals_seen: counter(META_REMOVALS, "removals cursor")?,
        })
    }

    pub fn last_sync(&self) -> Result<Option<String>> {
        self.meta(META_LAST_SYNC)
    }

    pub(crate) fn has_pending(&self, skip: &[String]) -> Result<bool> {
        let mut stmt = self
            .connection_ref()
            .prepare_cached("SELECT case_id FROM case_sync WHERE dirty = ?1")?;
        let mut rows = stmt.query([SyncState::Pending])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            if !skip.contains(&id) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Gathers the changes of pending cases, one document in memory at a time, up to the limits.
    pub(crate) fn collect_push(&self, skip: &[String]) -> Result<Vec<Pushed>> {
        let ids: Vec<(String, i64)> = {
            let mut stmt = self.connection_ref().prepare_cached(
                "SELECT case_id, edits FROM case_sync WHERE dirty = ?1 ORDER BY case_id",
            )?;
            let rows = stmt.query_map([SyncState::Pending], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut pushed = Vec::new();
        let mut bytes = 0usize;
        for (case_id, edits) in ids.into_iter().filter(|(id, _)| !skip.contains(id)) {
            if pushed.len() >= protocol::PUSH_CASES_MAX || bytes >= PUSH_RAW_BYTES_MAX {
                break;
            }
            let Some(mut doc) = self.load_doc(&case_id)? else {
                continue;
            };
            let have = self.synced_heads(&case_id)?;
            let mut changes = doc.automerge().get_changes(&have);
            changes.truncate(protocol::PUSH_CHANGES_PER_CASE_MAX);
            let hashes: Vec<ChangeHash> = changes.iter().map(|c| c.hash()).collect();
            let raw: Vec<Vec<u8>> = changes.iter().map(|c| c.raw_bytes().to_vec()).collect();
            bytes += raw.iter().map(Vec::len).sum::<usize>();
            pushed.push(Pushed {
                heads: doc.heads(),
                case_id,
                changes: raw,
                hashes,
                edits,
            });
        }
        Ok(pushed)
    }
}

/// How a refusal is kept beside a case: its reason's name and detail.
pub(crate) fn refusal_text(refusal: &Refusal) -> String {
    if refusal.detail.is_empty() {
        refusal.reason.as_str().to_string()
    } else {
        format!("{}: {}", refusal.reason.as_str(), refusal.detail)
    }
}

/// Where a phone stands with the server: its feed cursor and mark, and the last erasure and
/// removal it applied.
pub(crate) struct Positions {
    pub(crate) cursor: u64,
    pub(crate) mark: Vec<u8>,
    pub(crate) erasures_seen: u64,
    pub(crate) removals_seen: u64,
}
