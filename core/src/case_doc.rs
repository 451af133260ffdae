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

pub mod check;

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
/// The agent a supervisor gave the case to (a reassignment, possibly made offline on the
/// supervisor's phone); the server moves ownership when a new value reaches it.
const K_ASSIGNED_TO: &str = "assigned_to";
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
            time: Utc::now(),
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
    uuid::Uuid::new_v4().simple().to_string()
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

    /// Identification fields the record holds that its version no longer asks: written under
    /// an earlier version before the record moved, shown read-only, each read with the newest
    /// earlier version that has it (a field keeps its type across versions).
    pub fn former_identification_fields(&self, forms: &FormRegistry) -> Result<Record> {
        let version = self.identification_form_version()?;
        let form = forms.get(IDENTIFICATION, version)?;
        let ident = self.map(&ROOT, K_IDENTIFICATION)?;
        let mut former = Record::new();
        for key in self.doc.keys(&ident) {
            if form.field(&key).is_some() {
                continue;
            }
            let earlier = forms
                .versions(IDENTIFICATION)
                .rev()
                .filter(|f| f.version < version)
                .find_map(|f| f.field(&key));
            if let (Some(field), Some((value, id))) = (earlier, self.doc.get(&ident, key.as_str())?)
            {
                if let Some(json) = self.value_to_json(field, value, &id)? {
                    former.insert(key, json);
                }
            }
        }
        Ok(former)
    }

    /// Moves the record to the newest active identification version, as the user edits it in
    /// that form: the patch must give what the new version requires, and the whole record is
    /// checked against it. Fields the new version no longer has stay in the record, read-only
    /// (`former_identification_fields`). Returns the fields written.
    pub fn move_identification(
        &mut self,
        forms: &FormRegistry,
        patch: &Record,
        ctx: &ChangeContext,
    ) -> Result<Vec<String>> {
        let current = self.identification_form_version()?;
        let target = forms.latest(IDENTIFICATION)?;
        if target.version <= current {
            return Err(Error::InvalidInput(format!(
                "the record already follows identification version {current}, the newest in use"
            )));
        }
        let old = self.identification(forms)?;
        let mut new: Record = old
            .iter()
            .filter(|(k, _)| target.field(k).is_some())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in patch {
            if v.is_null() {
                new.remove(k);
            } else {
                new.insert(k.clone(), v.clone());
            }
        }
        clear_hidden(target, &mut new, patch);
        target.validate(&new)?;
        let ident = self.map(&ROOT, K_IDENTIFICATION)?;
        let before: Record = old
            .into_iter()
            .filter(|(k, _)| target.field(k).is_some())
            .collect();
        self.doc
            .put(ROOT, K_IDENTIFICATION_FORM, i64::from(target.version))?;
        let mut changed = self.write_fields(&ident, target, &before, &new)?;
        changed.insert(0, K_IDENTIFICATION_FORM.to_string());
        self.commit(ctx, "case.form_move");
        Ok(changed)
    }

    /// Reads a form's fields from a map, converting Automerge values back to JSON by field type.
    fn read_fields(&self, obj: &ObjId, form: &FormDefinition) -> Result<Record> {
        let mut record = Record::new();
        for field in &form.fields {
            if let Some((value, id)) = self.doc.get(obj, field.id.as_str())? {
                if let Some(json) = self.value_to_json(field, value, &id)? {
                    record.insert(field.id.clone(), json);
                }
            }
        }
        Ok(record)
    }

    fn value_to_json(&self, field: &Field, value: Value<'_>, id: &ObjId) -> Result<Option<Json>> {
        Ok(match value {
            Value::Object(ObjType::Text) => Some(Json::String(self.doc.text(id)?)),
            Value::Object(_) => None,
            Value::Scalar(s) => scalar_to_field_json(field, &s),
        })
    }

    /// Writes the differences between `old` and `new` into a map. Multiline text goes through
    /// `update_text` so concurrent edits of a narrative merge instead of overwriting each other.
    fn write_fields(
        &mut self,
        obj: &ObjId,
        form: &FormDefinition,
        old: &Record,
        new: &Record,
    ) -> Result<Vec<String>> {
        let mut changed = Vec::new();
        for field in &form.fields {
            let before = old.get(&field.id);
            let after = new.get(&field.id).filter(|v| !v.is_null());
            if before == after {
                continue;
            }
            changed.push(field.id.clone());
            match after {
                None => self.doc.delete(obj, field.id.as_str())?,
                Some(Json::String(text)) if field.multiline => {
                    let text_obj = match self.doc.get(obj, field.id.as_str())? {
                        Some((Value::Object(ObjType::Text), id)) => id,
                        _ => self.doc.put_object(obj, field.id.as_str(), ObjType::Text)?,
                    };
                    self.doc.update_text(&text_obj, text)?;
                }
                Some(json) => {
                    let scalar = field_json_to_scalar(field, json)
                        .ok_or_else(|| Error::InvalidInput(format!("value for {}", field.id)))?;
                    self.doc.put(obj, field.id.as_str(), scalar)?;
                }
            }
        }
        Ok(changed)
    }

    pub fn identification(&self, forms: &FormRegistry) -> Result<Record> {
        let form = forms.get(IDENTIFICATION, self.identification_form_version()?)?;
        let ident = self.map(&ROOT, K_IDENTIFICATION)?;
        self.read_fields(&ident, form)
    }

    /// Applies a partial edit (a `null` clears a field). Fields that the edit makes irrelevant
    /// (a child who no longer works has no work sector) are cleared too, and the history says so.
    /// Returns the ids of the fields that changed; nothing is written if validation fails.
    pub fn edit_identification(
        &mut self,
        forms: &FormRegistry,
        patch: &Record,
        ctx: &ChangeContext,
    ) -> Result<Vec<String>> {
        let form = forms.get(IDENTIFICATION, self.identification_form_version()?)?;
        let old = self.identification(forms)?;
        let mut new = old.clone();
        for (k, v) in patch {
            if v.is_null() {
                new.remove(k);
            } else {
                new.insert(k.clone(), v.clone());
            }
        }
        clear_hidden(form, &mut new, patch);
        form.validate(&new)?;
        let ident = self.map(&ROOT, K_IDENTIFICATION)?;
        // Setting a conflicted field settles the conflict, even to the value shown now: mark it
        // as different so it is written.
        let mut before = old.clone();
        for key in patch.keys() {
            if self.doc.get_all(&ident, key.as_str())?.len() > 1 {
                before.insert(key.clone(), Json::String("\u{0}conflicted".into()));
            }
        }
        let changed = self.write_fields(&ident, form, &before, &new)?;
        if !changed.is_empty() {
            self.commit(ctx, "case.edit");
        }
        Ok(changed)
    }

    pub fn add_referral(
        &mut self,
        forms: &FormRegistry,
        record: &Record,
        ctx: &ChangeContext,
    ) -> Result<String> {
        let form = forms.latest(REFERRAL)?;
        form.validate(record)?;
        let id = new_id();
        self.put_referral(&id, form, record, ctx, None)?;
        self.commit(ctx, "referral.create");
        Ok(id)
    }

    fn put_referral(
        &mut self,
        id: &str,
        form: &FormDefinition,
        record: &Record,
        ctx: &ChangeContext,
        previous: Option<&str>,
    ) -> Result<ObjId> {
        let referrals = self.map(&ROOT, K_REFERRALS)?;
        let obj = self.doc.put_object(&referrals, id, ObjType::Map)?;
        self.doc
            .put(&obj, K_FORM_VERSION, i64::from(form.version))?;
        self.doc
            .put(&obj, K_STATUS, ReferralStatus::Draft.as_str())?;
        self.doc.put(&obj, K_CREATED_AT, ctx.time.to_rfc3339())?;
        self.doc.put(&obj, K_CREATED_BY, ctx.user.as_str())?;
        if let Some(previous) = previous {
            self.doc.put(&obj, K_PREVIOUS, previous)?;
        }
        self.doc.put_object(&obj, K_TRANSITIONS, ObjType::Map)?;
        self.write_fields(&obj, form, &Record::new(), record)?;
        Ok(obj)
    }

    fn record_transition(
        &mut self,
        referral: &ObjId,
        transition: Transition,
        from: ReferralStatus,
        to: ReferralStatus,
        note: Option<&str>,
        ctx: &ChangeContext,
    ) -> Result<()> {
        self.doc.put(referral, K_STATUS, to.as_str())?;
        let log = self.map(referral, K_TRANSITIONS)?;
        let entry = self
            .doc
            .put_object(&log, time_key(ctx.time), ObjType::Map)?;
        self.doc.put(&entry, "transition", transition.as_str())?;
        self.doc.put(&entry, "from", from.as_str())?;
        self.doc.put(&entry, "to", to.as_str())?;
        self.doc.put(&entry, "actor", ctx.user.as_str())?;
        self.doc.put(&entry, "at", ctx.time.to_rfc3339())?;
        if let Some(note) = note {
            self.doc.put(&entry, "note", note)?;
        }
        Ok(())
    }

    /// Moves a referral through its status machine. `transfer` needs the next provider and
    /// returns the id of the new referral that continues the chain.
    pub fn transition_referral(
        &mut self,
        forms: &FormRegistry,
        referral_id: &str,
        transition: Transition,
        note: Option<&str>,
        next_provider: Option<&str>,
        ctx: &ChangeContext,
    ) -> Result<Option<String>> {
        let referrals = self.map(&ROOT, K_REFERRALS)?;
        let obj = self
            .map(&referrals, referral_id)
            .map_err(|_| Error::NotFound {
                kind: "referral",
                id: referral_id.to_string(),
            })?;
        let from = ReferralStatus::parse(&self.string(&obj, K_STATUS)?.unwrap_or_default())
            .map_err(|_| Error::Document("bad referral status".into()))?;
        let to = from.apply(transition)?;
        let mut next_id = None;
        if transition == Transition::Transfer {
            let provider = next_provider
                .filter(|p| !p.trim().is_empty())
                .ok_or_else(|| {
                    Error::Validation(vec![crate::error::FieldError::new("provider", "required")])
                })?;
            let form = forms.get(REFERRAL, self.version(&obj, K_FORM_VERSION)?)?;
            let mut record = self.read_fields(&obj, form)?;
            record.insert("provider".into(), Json::String(provider.to_string()));
            form.validate(&record)?;
            let id = new_id();
            let next = self.put_referral(&id, form, &record, ctx, Some(referral_id))?;
            // The next link starts as sent: transferring is the act of referring onward.
            self.record_transition(
                &next,
                Transition::Send,
                ReferralStatus::Draft,
                ReferralStatus::Sent,
                note,
                ctx,
            )?;
            self.doc.put(&obj, K_NEXT, id.as_str())?;
            next_id = Some(id);
        }
        self.record_transition(&obj, transition, from, to, note, ctx)?;
        self.commit(ctx, &format!("referral.{}", transition.as_str()));
        Ok(next_id)
    }

    pub fn referrals(&self, forms: &FormRegistry) -> Result<Vec<Referral>> {
        let referrals = self.map(&ROOT, K_REFERRALS)?;
        let mut out = Vec::new();
        for item in self.doc.map_range(&referrals, ..) {
            let id = item.key.to_string();
            let obj = item.id();
            let form = forms.get(REFERRAL, self.version(&obj, K_FORM_VERSION)?)?;
            let log = self.map(&obj, K_TRANSITIONS)?;
            let mut transitions = Vec::new();
            for entry in self.doc.map_range(&log, ..) {
                let e = entry.id();
                let get = |k: &str| self.string(&e, k).map(Option::unwrap_or_default);
                transitions.push(TransitionRecord {
                    transition: get("transition")?,
                    from: get("from")?,
                    to: get("to")?,
                    actor: get("actor")?,
                    at: get("at")?,
                    note: self.string(&e, "note")?,
                });
            }
            out.push(Referral {
                status: self.string(&obj, K_STATUS)?.unwrap_or_default(),
                form_version: self.version(&obj, K_FORM_VERSION)?,
                fields: self.read_fields(&obj, form)?,
                created_at: self.string(&obj, K_CREATED_AT)?.unwrap_or_default(),
                created_by: self.string(&obj, K_CREATED_BY)?.unwrap_or_default(),
                previous_referral: self.string(&obj, K_PREVIOUS)?,
                next_referral: self.string(&obj, K_NEXT)?,
                transitions,
                id,
            });
        }
        out.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(out)
    }

    pub fn add_followup(
        &mut self,
        forms: &FormRegistry,
        record: &Record,
        ctx: &ChangeContext,
    ) -> Result<String> {
        let form = forms.latest(FOLLOWUP)?;
        form.validate(record)?;
        let followups = self.map(&ROOT, K_FOLLOWUPS)?;
        let id = new_id();
        let obj = self.doc.put_object(&followups, id.as_str(), ObjType::Map)?;
        self.doc
            .put(&obj, K_FORM_VERSION, i64::from(form.version))?;
        self.doc.put(&obj, K_CREATED_AT, ctx.time.to_rfc3339())?;
        self.doc.put(&obj, K_CREATED_BY, ctx.user.as_str())?;
        self.write_fields(&obj, form, &Record::new(), record)?;
        self.commit(ctx, "followup.create");
        Ok(id)
    }

    /// Follow-up visits, oldest visit first.
    pub fn followups(&self, forms: &FormRegistry) -> Result<Vec<FollowUp>> {
        let followups = self.map(&ROOT, K_FOLLOWUPS)?;
        let mut out = Vec::new();
        for item in self.doc.map_range(&followups, ..) {
            let obj = item.id();
            let version = self.version(&obj, K_FORM_VERSION)?;
            let form = forms.get(FOLLOWUP, version)?;
            out.push(FollowUp {
                id: item.key.to_string(),
                form_version: version,
                fields: self.read_fields(&obj, form)?,
                created_at: self.string(&obj, K_CREATED_AT)?.unwrap_or_default(),
                created_by: self.string(&obj, K_CREATED_BY)?.unwrap_or_default(),
            });
        }
        let visit_date = |f: &FollowUp| {
            f.fields
                .get("visit_date")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string()
        };
        out.sort_by(|a, b| {
            (visit_date(a), &a.created_at, &a.id).cmp(&(visit_date(b), &b.created_at, &b.id))
        });
        Ok(out)
    }

    /// A project officer's note on a case: the only thing an officer writes.
    pub fn add_audit_note(&mut self, text: &str, ctx: &ChangeContext) -> Result<String> {
        let notes = self.map(&ROOT, K_AUDIT_NOTES)?;
        let id = time_key(ctx.time);
        let obj = self.doc.put_object(&notes, id.as_str(), ObjType::Map)?;
        self.doc.put(&obj, "text", text)?;
        self.doc.put(&obj, "author", ctx.user.as_str())?;
        self.doc.put(&obj, "at", ctx.time.to_rfc3339())?;
        self.commit(ctx, "audit.note");
        Ok(id)
    }

    pub fn audit_notes(&self) -> Result<Vec<AuditNote>> {
        let notes = self.map(&ROOT, K_AUDIT_NOTES)?;
        let mut out = Vec::new();
        for item in self.doc.map_range(&notes, ..) {
            let obj = item.id();
            out.push(AuditNote {
                id: item.key.to_string(),
                text: self.string(&obj, "text")?.unwrap_or_default(),
                author: self.string(&obj, "author")?.unwrap_or_default(),
                at: self.string(&obj, "at")?.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Fields holding concurrent values: identification fields and referral statuses.
    pub fn conflicts(&self, forms: &FormRegistry) -> Result<Vec<Conflict>> {
        Ok(self
            .conflicts_and_ops(forms)?
            .into_iter()
            .map(|(c, _)| c)
            .collect())
    }

    /// Each conflict and the operation that wrote each of its values.
    fn conflicts_and_ops(&self, forms: &FormRegistry) -> Result<Vec<(Conflict, Vec<ObjId>)>> {
        let mut out = Vec::new();
        let form = forms.get(IDENTIFICATION, self.identification_form_version()?)?;
        let ident = self.map(&ROOT, K_IDENTIFICATION)?;
        for field in &form.fields {
            let all = self.doc.get_all(&ident, field.id.as_str())?;
            if all.len() > 1 {
                let mut values = Vec::new();
                let mut ops = Vec::new();
                for (value, id) in all {
                    values.push(self.value_to_json(field, value, &id)?.unwrap_or(Json::Null));
                    ops.push(id);
                }
                let conflict = Conflict {
                    path: format!("{K_IDENTIFICATION}.{}", field.id),
                    values,
                    sources: Vec::new(),
                };
                out.push((conflict, ops));
            }
        }
        // Two devices moved the record to two different versions at once: it follows the
        // newer, and the supervisor sees that one device answered an older version's questions.
        let moves = self.doc.get_all(ROOT, K_IDENTIFICATION_FORM)?;
        let mut versions: Vec<Json> = moves.iter().map(|(v, _)| value_to_plain_json(v)).collect();
        versions.sort_by_key(|v| v.as_u64());
        versions.dedup();
        if versions.len() > 1 {
            let conflict = Conflict {
                path: K_IDENTIFICATION_FORM.to_string(),
                values: versions,
                sources: Vec::new(),
            };
            out.push((conflict, moves.iter().map(|(_, id)| id.clone()).collect()));
        }
        let assignees = self.doc.get_all(ROOT, K_ASSIGNED_TO)?;
        if assignees.len() > 1 {
            let ops = assignees.iter().map(|(_, id)| id.clone()).collect();
            let conflict = Conflict {
                path: K_ASSIGNED_TO.to_string(),
                values: assignees
                    .into_iter()
                    .map(|(v, _)| value_to_plain_json(&v))
                    .collect(),
                sources: Vec::new(),
            };
            out.push((conflict, ops));
        }
        let referrals = self.map(&ROOT, K_REFERRALS)?;
        for item in self.doc.map_range(&referrals, ..) {
            let obj = item.id();
            let all = self.doc.get_all(&obj, K_STATUS)?;
            if all.len() > 1 {
                let ops = all.iter().map(|(_, id)| id.clone()).collect();
                let conflict = Conflict {
                    path: format!("{K_REFERRALS}.{}.{K_STATUS}", item.key),
                    values: all
                        .into_iter()
                        .map(|(v, _)| value_to_plain_json(&v))
                        .collect(),
                    sources: Vec::new(),
                };
                out.push((conflict, ops));
            }
        }
        Ok(out)
    }

    /// The conflicts, each value with the change that wrote it (for a supervisor to decide).
    pub fn conflicts_with_sources(&mut self, forms: &FormRegistry) -> Result<Vec<Conflict>> {
        let found = self.conflicts_and_ops(forms)?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let changes: Vec<Change> = self.doc.get_changes(&[]);
        let source_of = |op: &ObjId| -> Option<ValueSource> {
            let change = change_of(&changes, op)?;
            let meta: Option<CommitMeta> =
                change.message().and_then(|m| serde_json::from_str(m).ok());
            Some(ValueSource {
                change: change.hash().to_string(),
                user: meta.map(|m| m.user),
                at: Utc
                    .timestamp_opt(change.timestamp(), 0)
                    .single()
                    .unwrap_or_default(),
            })
        };
        Ok(found
            .into_iter()
            .map(|(mut conflict, ops)| {
                conflict.sources = ops
                    .iter()
                    .map(|op| {
                        source_of(op).unwrap_or(ValueSource {
                            change: String::new(),
                            user: None,
                            at: DateTime::<Utc>::default(),
                        })
                    })
                    .collect();
                conflict
            })
            .collect())
    }

    /// Settles a conflict: `value` replaces every concurrent value of the field at `path` (a
    /// path `conflicts` gives). An identification field takes any value valid for it; a
    /// disputed referral takes one of the statuses it holds (the status machine does not move:
    /// a supervisor says which move stands). Once devices sync, the conflict is gone everywhere.
    pub fn resolve_conflict(
        &mut self,
        forms: &FormRegistry,
        path: &str,
        value: &Json,
        ctx: &ChangeContext,
    ) -> Result<()> {
        let conflicts = self.conflicts(forms)?;
        let conflict =
            conflicts
                .iter()
                .find(|c| c.path == path)
                .ok_or_else(|| Error::NotFound {
                    kind: "conflict",
                    id: path.to_string(),
                })?;
        if let Some(field_id) = path
            .strip_prefix(K_IDENTIFICATION)
            .and_then(|p| p.strip_prefix('.'))
        {
            let form = forms.get(IDENTIFICATION, self.identification_form_version()?)?;
            let field = form
                .field(field_id)
                .ok_or_else(|| Error::InvalidInput(format!("no field {field_id}")))?;
            if value.is_null() {
                return Err(Error::Validation(vec![crate::error::FieldError::new(
                    field_id, "required",
                )]));
            }
            crate::forms::check_field_value(field, value).map_err(|why| {
                Error::Validation(vec![crate::error::FieldError::new(field_id, why)])
            })?;
            let ident = self.map(&ROOT, K_IDENTIFICATION)?;
            match value {
                Json::String(text) if field.multiline => {
                    // One new text object replaces the concurrent ones.
                    let text_obj = self
                        .doc
                        .put_object(&ident, field.id.as_str(), ObjType::Text)?;
                    self.doc.update_text(&text_obj, text)?;
                }
                json => {
                    let scalar = field_json_to_scalar(field, json)
                        .ok_or_else(|| Error::InvalidInput(format!("value for {field_id}")))?;
                    self.doc.put(&ident, field.id.as_str(), scalar)?;
                }
            }
        } else if path == K_IDENTIFICATION_FORM {
            // Only the newer settles it: the older version does not ask what the other device
            // answered under the newer, so those answers would not check under it.
            let newest = self.identification_form_version()?;
            let chosen = value
                .as_u64()
                .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()));
            if chosen != Some(u64::from(newest)) {
                return Err(Error::InvalidInput(format!(
                    "a record moved to two versions at once follows the newer: settle it with {newest}"
                )));
            }
            self.doc
                .put(ROOT, K_IDENTIFICATION_FORM, i64::from(newest))?;
        } else if path == K_ASSIGNED_TO {
            let agent = value
                .as_str()
                .filter(|a| valid_user_id(a))
                .ok_or_else(|| Error::InvalidInput("agent".into()))?;
            self.doc.put(ROOT, K_ASSIGNED_TO, agent)?;
        } else {
            let referral_id = path
                .strip_prefix(K_REFERRALS)
                .and_then(|p| p.strip_prefix('.'))
                .and_then(|p| p.strip_suffix(K_STATUS))
                .and_then(|p| p.strip_suffix('.'))
                .ok_or_else(|| Error::InvalidInput(format!("conflict path {path}")))?;
            if !conflict.values.contains(value) {
                return Err(Error::InvalidInput(
                    "a disputed referral is settled with one of its statuses".into(),
                ));
            }
            let status = value
                .as_str()
                .and_then(|s| ReferralStatus::parse(s).ok())
                .ok_or_else(|| Error::InvalidInput("referral status".into()))?;
            let referrals = self.map(&ROOT, K_REFERRALS)?;
            let obj = self.map(&referrals, referral_id)?;
            self.doc.put(&obj, K_STATUS, status.as_str())?;
        }
        self.commit(ctx, "conflict.resolve");
        Ok(())
    }

    /// The agent the case was last given to by a supervisor (the value Automerge shows when two
    /// reassignments were made at once: `conflicts` lists both until one is kept). `None` for a
    /// case never reassigned through its document.
    pub fn assigned_to(&self) -> Result<Option<String>> {
        self.string(&ROOT, K_ASSIGNED_TO)
    }

    /// Gives the case to `agent`: a supervisor's reassignment, written offline if need be. The
    /// server checks the agent is of the case's team and moves ownership when it receives this.
    /// Nothing is written if the case is already given to `agent` without dispute.
    pub fn assign_to(&mut self, agent: &str, ctx: &ChangeContext) -> Result<bool> {
        if !valid_user_id(agent) {
            return Err(Error::InvalidInput("agent".into()));
        }
        let current = self.doc.get_all(ROOT, K_ASSIGNED_TO)?;
        let settled = current.len() == 1
            && matches!(&current[0].0, Value::Scalar(s) if matches!(s.as_ref(), ScalarValue::Str(a) if a.as_str() == agent));
        if settled {
            return Ok(false);
        }
        self.doc.put(ROOT, K_ASSIGNED_TO, agent)?;
        self.commit(ctx, "case.reassign");
        Ok(true)
    }

    /// The case this one was merged into, if a supervisor merged it away (the same child
    /// registered twice). A merged-away case is read-only: `Store` refuses edits and the
    /// server refuses changes made after the merge was seen.
    pub fn merged_into(&self) -> Result<Option<String>> {
        self.string(&ROOT, K_MERGED_INTO)
    }

    /// The cases merged into this one, oldest merge first.
    pub fn merged_cases(&self) -> Result<Vec<String>> {
        let Some((Value::Object(ObjType::Map), merged)) = self.doc.get(ROOT, K_MERGED_CASES)?
        else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(String, String)> = Vec::new();
        for key in self.doc.keys(&merged) {
            let at = self.string(&merged, &key)?.unwrap_or_default();
            out.push((at, key));
        }
        out.sort();
        Ok(out.into_iter().map(|(_, id)| id).collect())
    }

    /// Marks this case as merged into `survivor` (written by the server for a supervisor in the
    /// console; the survivor gets `link_merged_case` in the same step).
    pub fn merge_into(&mut self, survivor: &str, ctx: &ChangeContext) -> Result<()> {
        let case_id = self.case_id()?;
        if survivor == case_id || !is_case_id(survivor) {
            return Err(Error::InvalidInput("survivor case".into()));
        }
        if let Some(into) = self.merged_into()? {
            return Err(Error::CaseMerged { case_id, into });
        }
        self.doc.put(ROOT, K_MERGED_INTO, survivor)?;
        self.commit(ctx, "case.merge_away");
        Ok(())
    }

    /// Links a merged-away case to this one, the survivor: its referrals and visits are shown
    /// here from then on.
    pub fn link_merged_case(&mut self, merged: &str, ctx: &ChangeContext) -> Result<()> {
        let case_id = self.case_id()?;
        if let Some(into) = self.merged_into()? {
            return Err(Error::CaseMerged { case_id, into });
        }
        if merged == case_id || !is_case_id(merged) {
            return Err(Error::InvalidInput("merged case".into()));
        }
        let map = match self.doc.get(ROOT, K_MERGED_CASES)? {
            Some((Value::Object(ObjType::Map), id)) => id,
            _ => self.doc.put_object(ROOT, K_MERGED_CASES, ObjType::Map)?,
        };
        self.doc.put(&map, merged, ctx.time.to_rfc3339())?;
        self.commit(ctx, "case.merge");
        Ok(())
    }

    /// On a merged-away case: the change that put `merged_into` (the merge), and its time (the
    /// server's clock: only the console writes it).
    pub fn merge_change(&mut self) -> Option<(ChangeHash, DateTime<Utc>)> {
        merge_change(&mut self.doc)
    }

    /// On a merged-away case: the changes recorded without knowledge of the merge (on a phone
    /// still offline when it happened): neither before the merge nor after it. They are kept,
    /// and shown on the survivor for a supervisor to review. Empty for a case not merged away.
    pub fn edits_after_merge(&mut self) -> Result<Vec<HistoryEntry>> {
        let Some((merge, _)) = self.merge_change() else {
            return Ok(Vec::new());
        };
        // Changes the merge does not precede, in causal order; those that follow it are its
        // descendants (the console's own, later).
        let mut after_merge = std::collections::HashSet::from([merge]);
        let mut concurrent = std::collections::HashSet::new();
        for change in self.doc.get_changes(&[merge]) {
            if change.hash() == merge {
                continue;
            }
            if change.deps().iter().any(|d| after_merge.contains(d)) {
                after_merge.insert(change.hash());
            } else {
                concurrent.insert(change.hash().to_string());
            }
        }
        Ok(self
            .history()?
            .into_iter()
            .filter(|h| concurrent.contains(&h.hash))
            .collect())
    }

    /// Every change in causal order: when, who, what, and each field's old → new value.
    pub fn history(&mut self) -> Result<Vec<HistoryEntry>> {
        let changes: Vec<Change> = self.doc.get_changes(&[]);
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            let deps: Vec<ChangeHash> = change.deps().to_vec();
            let hash = change.hash();
            let meta: Option<CommitMeta> =
                change.message().and_then(|m| serde_json::from_str(m).ok());
            let patches = self.doc.diff(&deps, &[hash]);
            let mut fields = Vec::new();
            let mut texts_seen: Vec<ObjId> = Vec::new();
            for patch in patches {
                let mut path: Vec<String> = patch.path.iter().map(|(_, p)| prop_text(p)).collect();
                let (key, new) = match patch.action {
                    PatchAction::PutMap { key, value, .. }
                        if !matches!(value.0, Value::Object(_)) =>
                    {
                        (key, Some(value_to_plain_json(&value.0)))
                    }
                    PatchAction::DeleteMap { key } => (key, None),
                    PatchAction::SpliceText { .. } | PatchAction::DeleteSeq { .. } => {
                        if texts_seen.contains(&patch.obj) {
                            continue;
                        }
                        texts_seen.push(patch.obj.clone());
                        let old = if deps.is_empty() {
                            None
                        } else {
                            self.doc
                                .text_at(&patch.obj, &deps)
                                .ok()
                                .filter(|t| !t.is_empty())
                        };
                        let new = self.doc.text_at(&patch.obj, &[hash]).ok();
                        fields.push(FieldChange {
                            path: path.join("."),
                            old: old.map(Json::String),
                            new: new.map(Json::String),
                        });
                        continue;
                    }
                    _ => continue,
                };
                let old = self
                    .doc
                    .get_at(&patch.obj, key.as_str(), &deps)?
                    .map(|(v, _)| value_to_plain_json(&v));
                path.push(key);
                fields.push(FieldChange {
                    path: path.join("."),
                    old,
                    new,
                });
            }
            out.push(HistoryEntry {
                hash: hash.to_string(),
                at: Utc
                    .timestamp_opt(change.timestamp(), 0)
                    .single()
                    .unwrap_or_default(),
                user: meta.as_ref().map(|m| m.user.clone()),
                action: meta.map(|m| m.action),
                changes: fields,
                verified: None,
            });
        }
        Ok(out)
    }

    /// The newest change time: when the case was last touched.
    pub fn last_change_time(&mut self) -> Option<DateTime<Utc>> {
        let heads = self.doc.get_heads();
        heads
            .iter()
            .filter_map(|h| self.doc.get_change_meta_by_hash(h).map(|m| m.timestamp))
            .max()
            .and_then(|t| Utc.timestamp_opt(t, 0).single())
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

/// The change that made operation `op`: the change of its actor whose counters span it.
/// Clears the fields of `record` an edit made irrelevant (a child who no longer works has no
/// work sector), until none is left, keeping what the edit itself sets.
fn clear_hidden(form: &FormDefinition, record: &mut Record, patch: &Record) {
    loop {
        let hidden: Vec<String> = form
            .fields
            .iter()
            .filter(|f| {
                record.contains_key(&f.id)
                    && !patch.contains_key(&f.id)
                    && !form.is_relevant(f, record)
            })
            .map(|f| f.id.clone())
            .collect();
        if hidden.is_empty() {
            break;
        }
        for id in hidden {
            record.remove(&id);
        }
    }
}

fn change_of<'c>(changes: &'c [Change], op: &ObjId) -> Option<&'c Change> {
    let ObjId::Id(counter, actor, _) = op else {
        return None;
    };
    changes
        .iter()
        .find(|c| c.actor_id() == actor && c.start_op().get() <= *counter && *counter <= c.max_op())
}

/// The change that put a merged-away case's `merged_into`, and its time.
pub(crate) fn merge_change(doc: &mut AutoCommit) -> Option<(ChangeHash, DateTime<Utc>)> {
    let (_, op) = doc.get(ROOT, K_MERGED_INTO).ok()??;
    let changes: Vec<Change> = doc.get_changes(&[]);
    let change = change_of(&changes, &op)?;
    Some((
        change.hash(),
        Utc.timestamp_opt(change.timestamp(), 0).single()?,
    ))
}

/// The agent a document gives its case to, if exactly one (two reassignments made at once
/// wait for a supervisor to keep one).
pub fn single_assignee(doc: &AutoCommit) -> Option<String> {
    let mut all = doc.get_all(ROOT, K_ASSIGNED_TO).ok()?;
    match (all.pop(), all.is_empty()) {
        (Some((Value::Scalar(s), _)), true) => match s.as_ref() {
            ScalarValue::Str(a) => Some(a.to_string()),
            _ => None,
        },
        _ => None,
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

fn prop_text(prop: &Prop) -> String {
    match prop {
        Prop::Map(k) => k.to_string(),
        Prop::Seq(i) => i.to_string(),
    }
}

fn value_to_plain_json(value: &Value<'_>) -> Json {
    match value {
        Value::Object(_) => Json::Null,
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => Json::String(s.to_string()),
            ScalarValue::Int(i) => Json::from(*i),
            ScalarValue::Uint(u) => Json::from(*u),
            ScalarValue::F64(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            ScalarValue::Boolean(b) => Json::Bool(*b),
            ScalarValue::Timestamp(t) => Json::from(*t),
            _ => Json::Null,
        },
    }
}

fn field_json_to_scalar(field: &Field, json: &Json) -> Option<ScalarValue> {
    Some(match field.field_type {
        FieldType::Integer => ScalarValue::Int(json.as_i64()?),
        FieldType::Decimal => ScalarValue::F64(json.as_f64()?),
        FieldType::Boolean => ScalarValue::Boolean(json.as_bool()?),
        // Kept as one atomic value, so concurrent edits show as a conflict rather than a blend.
        FieldType::SelectMultiple => ScalarValue::Str(
            json.as_array()?
                .iter()
                .map(|v| v.as_str())
                .collect::<Option<Vec<_>>>()?
                .join(" ")
                .into(),
        ),
        FieldType::Geopoint => ScalarValue::Str(
            format!(
                "{},{}",
                json.get("lat")?.as_f64()?,
                json.get("lon")?.as_f64()?
            )
            .into(),
        ),
        FieldType::Text | FieldType::Phone | FieldType::Date | FieldType::SelectOne => {
            ScalarValue::Str(json.as_str()?.into())
        }
    })
}

fn scalar_to_field_json(field: &Field, scalar: &ScalarValue) -> Option<Json> {
    Some(match (field.field_type, scalar) {
        (FieldType::Integer, ScalarValue::Int(i)) => Json::from(*i),
        (FieldType::Decimal, ScalarValue::F64(f)) => {
            Json::Number(serde_json::Number::from_f64(*f)?)
        }
        (FieldType::Boolean, ScalarValue::Boolean(b)) => Json::Bool(*b),
        (FieldType::SelectMultiple, ScalarValue::Str(s)) => Json::Array(
            s.split(' ')
                .filter(|p| !p.is_empty())
                .map(|p| Json::String(p.to_string()))
                .collect(),
        ),
        (FieldType::Geopoint, ScalarValue::Str(s)) => {
            let (lat, lon) = crate::forms::parse_geopoint(s)?;
            serde_json::json!({"lat": lat, "lon": lon})
        }
        (_, ScalarValue::Str(s)) => Json::String(s.to_string()),
        _ => return None,
    })
}
