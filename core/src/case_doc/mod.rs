//! One Automerge document per case: identification fields in a map (one key per field, so edits
//! to different fields never collide), referrals and follow-ups in maps keyed by generated ids
//! (so concurrent additions never collide), narrative notes as Automerge text. Every change
//! carries its author (user id) and time in its commit message and timestamp.

use automerge::{
    transaction::{CommitOptions, Transactable},
    ActorId, AutoCommit, Change, ChangeHash, ObjId, ObjType, PatchAction, Prop, ReadDoc,
    ScalarValue, Value, ROOT,
};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::forms::{
    Field, FieldType, FormDefinition, FormRegistry, Record, FOLLOWUP, IDENTIFICATION, REFERRAL,
};
use crate::referral::{ReferralStatus, Transition};

mod chain;
pub mod check;
mod closure;
mod conflicts;
mod history;
mod ownership;
mod records;
mod referrals;
mod story;
pub use chain::*;
pub use closure::*;
use conflicts::*;
pub use ownership::*;
use records::*;
pub use story::*;

const K_CASE_ID: &str = "case_id";
const K_CREATED_AT: &str = "created_at";
const K_CREATED_BY: &str = "created_by";
const K_IDENTIFICATION: &str = "identification";
const K_IDENTIFICATION_FORM: &str = "identification_form";
const K_REFERRALS: &str = "referrals";
const K_FOLLOWUPS: &str = "followups";
const K_AUDIT_NOTES: &str = "audit_notes";
const K_FORM_VERSION: &str = "form_version";
const K_STATUS: &str = "status";
const K_TRANSITIONS: &str = "transitions";
const K_PREVIOUS: &str = "previous_referral";
const K_NEXT: &str = "next_referral";
/// On a case merged away: the id of the case it was merged into (the survivor).
const K_MERGED_INTO: &str = "merged_into";
/// On a survivor: merged-away case id → time of the merge.
const K_MERGED_CASES: &str = "merged_cases";
/// Days after a merge during which a supervisor may undo it: long enough to notice a mistake
/// at the next visit, short enough that two records do not drift apart for months.
pub const MERGE_UNDO_DAYS: i64 = 30;
/// The agent a supervisor gave the case to (a reassignment, possibly made offline on the
/// supervisor's phone); the server moves ownership when a new value reaches it.
const K_ASSIGNED_TO: &str = "assigned_to";
/// The keys a referral or a visit holds that are the case's bookkeeping, never a form's field:
/// a change may not delete them, and history tells them through what happened, not as fields.
const RECORD_BOOKKEEPING: [&str; 7] = [
    K_FORM_VERSION,
    K_STATUS,
    K_CREATED_AT,
    K_CREATED_BY,
    K_TRANSITIONS,
    K_PREVIOUS,
    K_NEXT,
];
/// Longest user id an assignment may name.
pub const USER_ID_CHARS_MAX: usize = 64;

/// Who makes a change and when: recorded in every Automerge change for the history.
#[derive(Debug, Clone)]
pub struct ChangeContext {
    pub user: String,
    pub time: DateTime<Utc>,
}

impl ChangeContext {
    pub fn now(user: impl Into<String>) -> Self {
        ChangeContext {
            user: user.into(),
            time: crate::clock::now(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CommitMeta {
    user: String,
    action: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionRecord {
    pub transition: String,
    pub from: String,
    pub to: String,
    pub actor: String,
    pub at: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Referral {
    pub id: String,
    pub status: String,
    pub form_version: u32,
    pub fields: Record,
    pub created_at: String,
    pub created_by: String,
    pub previous_referral: Option<String>,
    pub next_referral: Option<String>,
    pub transitions: Vec<TransitionRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUp {
    pub id: String,
    pub form_version: u32,
    pub fields: Record,
    pub created_at: String,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditNote {
    pub id: String,
    pub text: String,
    pub author: String,
    pub at: String,
}

/// Two devices set the same field concurrently: Automerge keeps both values and picks one
/// deterministically; we show both so a supervisor can decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub path: String,
    pub values: Vec<Json>,
    /// Who wrote each value, in the order of `values` (`conflicts_with_sources`; empty from
    /// `conflicts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ValueSource>,
}

/// The change that wrote one of a conflict's values: its hash (the server's verified origin is
/// found by it), the user its commit names, and the writing device's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueSource {
    pub change: String,
    pub user: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub path: String,
    pub old: Option<Json>,
    pub new: Option<Json>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub hash: String,
    /// The time the writing device's clock gave (a device clock can be wrong: shown, never
    /// trusted).
    pub at: DateTime<Utc>,
    /// The user the change names (written by the device).
    pub user: Option<String>,
    pub action: Option<String>,
    pub changes: Vec<FieldChange>,
    /// Who the server verified pushed it (the user and device of the credential), and when it
    /// received it; for this device's own changes, this device. `None`: not verified (a change
    /// received through the per-document fallback, or from before verification existed).
    pub verified: Option<VerifiedOrigin>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedOrigin {
    pub user: String,
    pub device: String,
    /// When the server received the change; `None` for a change made on this device.
    pub received_at: Option<DateTime<Utc>>,
}

pub struct CaseDoc {
    doc: AutoCommit,
}

fn new_id() -> String {
    crate::clock::new_id()
}

/// Map keys that sort in time order, so transitions read chronologically without a list.
fn time_key(time: DateTime<Utc>) -> String {
    format!("{:013}-{}", time.timestamp_millis().max(0), &new_id()[..8])
}

impl CaseDoc {
    /// Starts a new case from a validated identification record.
    pub fn create(
        case_id: &str,
        actor: ActorId,
        form: &FormDefinition,
        record: &Record,
        ctx: &ChangeContext,
    ) -> Result<CaseDoc> {
        form.validate(record)?;
        let mut doc = AutoCommit::new().with_actor(actor);
        doc.put(ROOT, K_CASE_ID, case_id)?;
        doc.put(ROOT, K_CREATED_AT, ctx.time.to_rfc3339())?;
        doc.put(ROOT, K_CREATED_BY, ctx.user.as_str())?;
        doc.put(ROOT, K_IDENTIFICATION_FORM, i64::from(form.version))?;
        let ident = doc.put_object(ROOT, K_IDENTIFICATION, ObjType::Map)?;
        doc.put_object(ROOT, K_REFERRALS, ObjType::Map)?;
        doc.put_object(ROOT, K_FOLLOWUPS, ObjType::Map)?;
        doc.put_object(ROOT, K_AUDIT_NOTES, ObjType::Map)?;
        let mut case = CaseDoc { doc };
        case.write_fields(&ident, form, &Record::new(), record)?;
        case.commit(ctx, "case.create");
        Ok(case)
    }

    pub fn load(bytes: &[u8], actor: ActorId) -> Result<CaseDoc> {
        let doc = AutoCommit::load(bytes)?.with_actor(actor);
        Ok(CaseDoc { doc })
    }

    /// A document checked and rebuilt elsewhere (the server's copy of a pushed case), to read.
    pub fn from_automerge(doc: AutoCommit) -> CaseDoc {
        CaseDoc { doc }
    }

    /// An empty document for a case known only by id, to receive changes from the server.
    pub fn empty(actor: ActorId) -> CaseDoc {
        CaseDoc {
            doc: AutoCommit::new().with_actor(actor),
        }
    }

    fn commit(&mut self, ctx: &ChangeContext, action: &str) {
        let meta = CommitMeta {
            user: ctx.user.clone(),
            action: action.to_string(),
        };
        // Serializing two strings into JSON cannot fail.
        let message = serde_json::to_string(&meta).unwrap_or_default();
        self.doc.commit_with(
            CommitOptions::default()
                .with_message(message)
                .with_time(ctx.time.timestamp()),
        );
    }

    fn map(&self, parent: &ObjId, key: &str) -> Result<ObjId> {
        match self.doc.get(parent, key)? {
            Some((Value::Object(_), id)) => Ok(id),
            _ => Err(Error::Document(format!("missing map {key}"))),
        }
    }

    fn scalar(&self, obj: &ObjId, key: &str) -> Result<Option<ScalarValue>> {
        Ok(match self.doc.get(obj, key)? {
            Some((Value::Scalar(s), _)) => Some(s.into_owned()),
            _ => None,
        })
    }

    fn string(&self, obj: &ObjId, key: &str) -> Result<Option<String>> {
        Ok(match self.scalar(obj, key)? {
            Some(ScalarValue::Str(s)) => Some(s.to_string()),
            _ => None,
        })
    }

    fn version(&self, obj: &ObjId, key: &str) -> Result<u32> {
        match self.scalar(obj, key)? {
            Some(ScalarValue::Int(v)) => {
                u32::try_from(v).map_err(|_| Error::Document(format!("bad {key}")))
            }
            _ => Err(Error::Document(format!("missing {key}"))),
        }
    }

    pub fn case_id(&self) -> Result<String> {
        self.string(&ROOT, K_CASE_ID)?
            .ok_or_else(|| Error::Document("missing case_id".into()))
    }

    pub fn created_at(&self) -> Result<String> {
        Ok(self.string(&ROOT, K_CREATED_AT)?.unwrap_or_default())
    }

    pub fn created_by(&self) -> Result<String> {
        Ok(self.string(&ROOT, K_CREATED_BY)?.unwrap_or_default())
    }

    /// The identification form version the record follows. Two devices that moved it to a
    /// newer version at once leave two values: the record follows the newer (both are checked
    /// to be known versions of the form).
    pub fn identification_form_version(&self) -> Result<u32> {
        let mut newest = None;
        for (value, _) in self.doc.get_all(ROOT, K_IDENTIFICATION_FORM)? {
            let version = match value {
                Value::Scalar(s) => match s.as_ref() {
                    ScalarValue::Int(v) => u32::try_from(*v).ok(),
                    _ => None,
                },
                Value::Object(_) => None,
            }
            .ok_or_else(|| Error::Document(format!("bad {K_IDENTIFICATION_FORM}")))?;
            newest = newest.max(Some(version));
        }
        newest.ok_or_else(|| Error::Document(format!("missing {K_IDENTIFICATION_FORM}")))
    }

    // --- storage and sync ---

    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The changes made since the last save, to append to storage.
    pub fn save_incremental(&mut self) -> Vec<u8> {
        self.doc.save_incremental()
    }

    pub fn load_incremental(&mut self, bytes: &[u8]) -> Result<()> {
        self.doc.load_incremental(bytes)?;
        Ok(())
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Raw change chunks the holder of `have` lacks: what sync sends.
    pub fn changes_since(&mut self, have: &[ChangeHash]) -> Vec<Vec<u8>> {
        self.doc
            .get_changes(have)
            .into_iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect()
    }

    /// Applies raw change chunks; already-known changes are ignored, so a retry is harmless.
    /// The bytes may come from a server that is not trusted blindly: each chunk is checked
    /// before Automerge parses it, and a panic inside Automerge is an error, not a crash.
    pub fn apply_changes(&mut self, raw: &[Vec<u8>]) -> Result<()> {
        let mut changes = Vec::with_capacity(raw.len());
        for bytes in raw {
            changes.push(
                check::parse_change(bytes)
                    .map_err(|e| Error::Protocol(format!("bad change: {e}")))?,
            );
        }
        let doc = &mut self.doc;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| doc.apply_changes(changes)))
            .map_err(|_| Error::Document("applying changes panicked".into()))??;
        Ok(())
    }

    /// Hashes that changes refer to but the document does not have yet.
    pub fn missing_deps(&mut self) -> Vec<ChangeHash> {
        self.doc.get_missing_deps(&[])
    }

    pub fn automerge(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }
}

/// A user id as the server gives them: 1-64 ASCII letters, digits, '-', '_' or '.'.
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= USER_ID_CHARS_MAX
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A case id as the server takes it: 32 hex digits (a UUID v4 without hyphens).
pub fn is_case_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}
