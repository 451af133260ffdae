//! The rules a change must follow before anyone stores it. The server runs them on every pushed
//! change (a device is untrusted input); they live here, next to `CaseDoc`, because this is the
//! one place that knows the document's layout.
//!
//! Two kinds of rules:
//! - **per change**, judged against the state the change's own dependencies hold: user fields
//!   (`created_by`, a transition's `actor`, a note's `author`, the commit message's user) name the
//!   verified user; a referral's status moves only by a legal transition; records are never
//!   deleted; an officer only adds new audit notes.
//! - **layout and values**, judged on the merged document: the structure `CaseDoc` reads and the
//!   value types and constraints of each record's form version.
//!
//! Required fields and relevance are not checked: a merge of two honest concurrent changes can
//! break them (a field cleared on one phone while set on another), and that shows as a conflict
//! for a supervisor, never as a refusal.

use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

use automerge::{AutoCommit, Change, ChangeHash, ObjId, ObjType, PatchAction, Prop, ReadDoc};
use automerge::{ScalarValue, Value, ROOT};
use serde_json::Value as Json;

use super::{
    scalar_to_field_json, ClosureStatus, CommitMeta, CLOSURE_REASONS, CLOSURE_STEPS,
    CLOSURE_STEP_KEYS, K_ASSIGNED_TO, K_AUDIT_NOTES, K_CASE_ID, K_CLOSURE_REASON, K_CLOSURE_STATUS,
    K_CLOSURE_STEPS, K_CREATED_AT, K_CREATED_BY, K_FOLLOWUPS, K_FORM_VERSION, K_IDENTIFICATION,
    K_IDENTIFICATION_FORM, K_MERGED_CASES, K_MERGED_INTO, K_NEXT, K_PREVIOUS, K_REFERRALS,
    K_STATUS, K_TRANSITIONS,
};
use crate::forms::{FieldType, FormDefinition, FormRegistry, FOLLOWUP, IDENTIFICATION, REFERRAL};
use crate::referral::{ReferralStatus, ALL_TRANSITIONS};
mod chunk;
mod closure;
mod document;
mod layout;
pub use chunk::*;
pub use document::*;
use layout::*;

/// Largest raw change accepted: a follow-up with a long narrative is a few KB.
pub const CHANGE_BYTES_MAX: usize = 256 * 1024;
/// Operations in one change: an honest edit of the largest form makes a few hundred; a
/// run-length-encoded column could otherwise declare millions in a few bytes.
pub const CHANGE_OPS_MAX: usize = 20_000;
/// Operations in one case's whole history. A busy real case (identification, ten referrals
/// with their transitions, fifty visits) holds a few thousand; the bound keeps the memory the
/// server spends to load and check one case small, whatever its history.
pub const CASE_OPS_MAX: usize = 100_000;
/// Dependencies, other actors and columns a change chunk may declare.
const CHUNK_LIST_MAX: u64 = 1_024;
/// The commit message is a small JSON object.
const MESSAGE_BYTES_MAX: u64 = 4 * 1024;

/// Why a change (and so its whole case) is refused. Each maps to a refusal reason on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRefusal {
    /// The bytes are not a plain Automerge change chunk, or applying them failed or panicked.
    #[error("malformed change: {0}")]
    Malformed(&'static str),
    /// Two different changes with the same actor and sequence number.
    #[error("a different change with the same actor and sequence number exists")]
    DuplicateSeq,
    /// The document does not have the structure or values its forms require.
    #[error("invalid case document at {0}")]
    Invalid(String),
    /// A user field or the commit message names someone other than the verified user.
    #[error("the change names another user at {0}")]
    WrongAuthor(String),
    /// A referral status moved in a way its status machine does not allow.
    #[error("illegal referral transition at {0}")]
    IllegalTransition(String),
    /// The change does something the author's role may not do (an officer editing a record,
    /// anyone deleting one).
    #[error("the change is not allowed at {0}")]
    NotAllowed(String),
    /// The case's history would exceed `CASE_OPS_MAX` operations.
    #[error("the case would hold more than {CASE_OPS_MAX} operations")]
    TooLarge,
}

/// What the server verified about who pushes a change.
#[derive(Debug, Clone, Copy)]
pub struct Author<'a> {
    pub user: &'a str,
    /// Officers audit: their changes may only add new audit notes.
    pub audit_notes_only: bool,
    /// A supervisor or admin in the console: the one author who may link cases as merged
    /// (`merged_into`, `merged_cases`), and write to a case merged away.
    pub links_cases: bool,
    /// A supervisor of the case's team or an admin, who may write the case: the authors who
    /// give a case to an agent (`assigned_to`) and decide a proposed closure, from a phone or
    /// the console.
    pub supervises: bool,
}

/// The server's copy of one case, to apply and check new changes on.
pub struct CaseCheck {
    case_id: String,
    doc: AutoCommit,
    /// Operations held, against `CASE_OPS_MAX`.
    ops: usize,
    /// (actor, seq) of every change held: a different change reusing one is refused.
    seqs: HashMap<(Vec<u8>, u64), ChangeHash>,
}

impl CaseCheck {
    /// Rebuilds a case from its stored changes. Panics inside Automerge are contained.
    pub fn load(case_id: &str, stored: Vec<Change>) -> Result<CaseCheck, ChangeRefusal> {
        let mut seqs = HashMap::new();
        for c in &stored {
            seqs.insert((c.actor_id().to_bytes().to_vec(), c.seq()), c.hash());
        }
        // Counted from the change headers, before Automerge builds anything.
        let ops: usize = stored.iter().map(Change::len).sum();
        if ops > CASE_OPS_MAX {
            return Err(ChangeRefusal::TooLarge);
        }
        let doc = catch_unwind(AssertUnwindSafe(|| {
            let mut doc = AutoCommit::new();
            doc.apply_changes(stored).map(|_| doc)
        }))
        .map_err(|_| ChangeRefusal::Malformed("stored history panicked"))?
        .map_err(|_| ChangeRefusal::Malformed("stored history does not apply"))?;
        Ok(CaseCheck {
            case_id: case_id.to_string(),
            doc,
            ops,
            seqs,
        })
    }

    /// Applies new changes one by one, each checked against its own dependencies, then checks
    /// the merged document's layout and values. On any refusal this copy must be dropped:
    /// nothing of the case may be stored.
    pub fn apply(
        &mut self,
        changes: Vec<Change>,
        author: Author<'_>,
        forms: &FormRegistry,
    ) -> Result<(), ChangeRefusal> {
        let adding: usize = changes.iter().map(Change::len).sum();
        if self.ops.saturating_add(adding) > CASE_OPS_MAX {
            return Err(ChangeRefusal::TooLarge);
        }
        self.ops += adding;
        for change in changes {
            let key = (change.actor_id().to_bytes().to_vec(), change.seq());
            match self.seqs.get(&key) {
                Some(h) if *h == change.hash() => continue,
                Some(_) => return Err(ChangeRefusal::DuplicateSeq),
                None => {}
            }
            // Automerge asserts these while applying; check them first so a hostile change is a
            // refusal, and so the per-change view below (clocks by actor) means what it says.
            if change.seq() > 1 && !self.seqs.contains_key(&(key.0.clone(), change.seq() - 1)) {
                return Err(ChangeRefusal::Malformed("sequence gap"));
            }
            let mut max_op = 0u64;
            for dep in change.deps() {
                // Automerge can panic looking up a change in a history a hostile peer built
                // (found by fuzzing): contained like every other call into it.
                let dep_max_op = self.max_op_of(dep)?;
                max_op = max_op.max(dep_max_op);
            }
            if change.start_op().get() != max_op + 1 || change.max_op() > u64::from(u32::MAX) {
                return Err(ChangeRefusal::Malformed("operation counter"));
            }
            self.seqs.insert(key, change.hash());
            let hash = change.hash();
            let deps = change.deps().to_vec();
            let message = change.message().map(str::to_string);
            let doc = &mut self.doc;
            catch_unwind(AssertUnwindSafe(|| doc.apply_changes([change])))
                .map_err(|_| ChangeRefusal::Malformed("applying panicked"))?
                .map_err(|_| ChangeRefusal::Malformed("does not apply"))?;
            self.max_op_of(&hash)?;
            let mut rules = ChangeRules {
                doc: &mut self.doc,
                deps: &deps,
                hash,
                author,
            };
            catch_unwind(AssertUnwindSafe(|| rules.check(message.as_deref())))
                .map_err(|_| ChangeRefusal::Malformed("reading the change panicked"))??;
        }
        let doc = &self.doc;
        catch_unwind(AssertUnwindSafe(|| check_layout(doc, &self.case_id, forms)))
            .map_err(|_| ChangeRefusal::Malformed("reading the document panicked"))?
    }

    /// The last operation counter of a change this copy holds; a missing one is a refusal.
    fn max_op_of(&mut self, hash: &ChangeHash) -> Result<u64, ChangeRefusal> {
        let doc = &mut self.doc;
        catch_unwind(AssertUnwindSafe(|| {
            doc.get_change_by_hash(hash).map(|c| c.max_op())
        }))
        .map_err(|_| ChangeRefusal::Malformed("reading the history panicked"))?
        .ok_or(ChangeRefusal::Malformed("dependencies missing"))
    }

    /// When the case was merged away, if it was (the server's clock at the merge).
    pub fn merged_at(&mut self) -> Option<chrono::DateTime<chrono::Utc>> {
        let doc = &mut self.doc;
        catch_unwind(AssertUnwindSafe(|| super::merge_change(doc)))
            .ok()
            .flatten()
            .map(|(_, at)| at)
    }

    /// The document as it stands (before `apply`: as stored).
    pub fn document(&self) -> &AutoCommit {
        &self.doc
    }

    /// The document as checked, for reading it whole.
    pub fn into_document(self) -> AutoCommit {
        self.doc
    }
}

/// Checks a whole case document as it stands (for `case check` on a server's stored cases, and
/// for a device receiving a page from a server it does not trust blindly).
pub fn check_document(
    doc: &AutoCommit,
    case_id: &str,
    forms: &FormRegistry,
) -> Result<(), ChangeRefusal> {
    catch_unwind(AssertUnwindSafe(|| check_layout(doc, case_id, forms)))
        .map_err(|_| ChangeRefusal::Malformed("reading the document panicked"))?
}

/// Per-change rules, read from the change's own view: `diff(deps → hash)`.
struct ChangeRules<'a> {
    doc: &'a mut AutoCommit,
    deps: &'a [ChangeHash],
    hash: ChangeHash,
    author: Author<'a>,
}

const USER_KEYS: [&str; 3] = [K_CREATED_BY, "actor", "author"];

impl ChangeRules<'_> {
    fn check(&mut self, message: Option<&str>) -> Result<(), ChangeRefusal> {
        let meta: CommitMeta = message
            .and_then(|m| serde_json::from_str(m).ok())
            .ok_or_else(|| ChangeRefusal::Invalid("commit message".into()))?;
        if meta.user != self.author.user {
            return Err(ChangeRefusal::WrongAuthor("commit message".into()));
        }
        if self.author.audit_notes_only && meta.action != "audit.note" {
            return Err(ChangeRefusal::NotAllowed("commit action".into()));
        }
        // A merged-away case is read-only: a change made after its author saw the merge is
        // refused; one made without knowing it (a phone offline at the time) is kept.
        if !self.author.links_cases && !self.absent_at_deps(&ROOT, K_MERGED_INTO) {
            return Err(ChangeRefusal::NotAllowed(K_MERGED_INTO.into()));
        }
        let patches = self.doc.diff(self.deps, &[self.hash]);
        // Audit notes this change creates: an officer may fill them in, nothing else.
        let mut new_notes: HashSet<String> = HashSet::new();
        for patch in patches {
            let path: Vec<String> = patch
                .path
                .iter()
                .map(|(_, p)| match p {
                    Prop::Map(k) => k.to_string(),
                    Prop::Seq(i) => i.to_string(),
                })
                .collect();
            let (key, put) = match &patch.action {
                PatchAction::PutMap { key, .. } => (Some(key.clone()), true),
                PatchAction::Conflict {
                    prop: Prop::Map(key),
                } => (Some(key.clone()), true),
                PatchAction::DeleteMap { key } => (Some(key.clone()), false),
                // Text edits of a narrative field; the layout check places the text object.
                PatchAction::SpliceText { .. } | PatchAction::DeleteSeq { .. } => (None, true),
                _ => return Err(ChangeRefusal::NotAllowed(path.join("."))),
            };
            let at = match &key {
                Some(k) => format!("{}.{k}", path.join(".")),
                None => path.join("."),
            };
            if self.author.audit_notes_only {
                let is_new_note = matches!(path.as_slice(), [n] if n == K_AUDIT_NOTES)
                    && matches!(
                        &patch.action,
                        PatchAction::PutMap {
                            value: (Value::Object(ObjType::Map), _),
                            ..
                        }
                    )
                    && key
                        .as_deref()
                        .is_some_and(|k| self.absent_at_deps(&patch.obj, k));
                let in_new_note = matches!(path.as_slice(), [n, id] if n == K_AUDIT_NOTES && new_notes.contains(id))
                    && matches!(&patch.action, PatchAction::PutMap { .. });
                if is_new_note {
                    new_notes.extend(key.clone());
                } else if !in_new_note {
                    return Err(ChangeRefusal::NotAllowed(at));
                }
            }
            let Some(key) = key else { continue };
            let links = match path.as_slice() {
                [] => key == K_MERGED_INTO || key == K_MERGED_CASES,
                [m, ..] => m == K_MERGED_CASES,
            };
            if path.is_empty() && key == K_ASSIGNED_TO && !self.author.supervises {
                return Err(ChangeRefusal::NotAllowed(K_ASSIGNED_TO.into()));
            }
            if links && !self.author.links_cases {
                return Err(ChangeRefusal::NotAllowed(
                    at.trim_start_matches('.').to_string(),
                ));
            }
            if !put && links {
                // Undoing a merge: only the console's author who links cases (checked above).
                continue;
            }
            if !put {
                // Clearing a field is an edit; removing a record or a part of the layout is not.
                let field_map = matches!(path.as_slice(), [m] if m == K_IDENTIFICATION)
                    || matches!(path.as_slice(), [m, _] if m == K_REFERRALS || m == super::K_FOLLOWUPS);
                if !field_map || super::RECORD_BOOKKEEPING.contains(&key.as_str()) {
                    return Err(ChangeRefusal::Invalid(format!("{at}: deleted")));
                }
                continue;
            }
            if USER_KEYS.contains(&key.as_str()) {
                for value in self.new_values(&patch.obj, &key) {
                    if !matches!(&value, Value::Scalar(s) if matches!(s.as_ref(), ScalarValue::Str(u) if u.as_str() == self.author.user))
                    {
                        return Err(ChangeRefusal::WrongAuthor(at));
                    }
                }
            }
            if key == K_STATUS && matches!(path.as_slice(), [r, _] if r == K_REFERRALS) {
                self.check_transition(&patch.obj, &at)?;
            }
        }
        // Read from the document, not from the patches: a dispute settled with the value
        // Automerge already showed makes no patch, and a log two phones created at once is not
        // the one Automerge shows; both must be checked.
        self.check_closure_move()?;
        self.check_closure_steps()?;
        Ok(())
    }

    fn absent_at_deps(&self, obj: &ObjId, key: &str) -> bool {
        self.doc
            .get_all_at(obj, key, self.deps)
            .map(|v| v.is_empty())
            .unwrap_or(true)
    }

    /// The values this change put at `obj.key`: those in its own view that its dependencies
    /// did not hold.
    fn new_values(&self, obj: &ObjId, key: &str) -> Vec<Value<'static>> {
        let before: HashSet<ObjId> = self
            .doc
            .get_all_at(obj, key, self.deps)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        self.doc
            .get_all_at(obj, key, &[self.hash])
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, id)| !before.contains(id))
            .map(|(v, _)| v.into_owned())
            .collect()
    }

    /// A referral's new status must follow from a status its dependencies hold by one legal
    /// transition, or settle a dispute with one of the statuses they hold; a new referral
    /// starts as a draft, or as sent when a transfer starts it.
    fn check_transition(&self, referral: &ObjId, at: &str) -> Result<(), ChangeRefusal> {
        let status_of = |v: &Value<'_>| match v {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Str(t) => ReferralStatus::parse(t).ok(),
                _ => None,
            },
            _ => None,
        };
        let before: Vec<ReferralStatus> = self
            .doc
            .get_all_at(referral, K_STATUS, self.deps)
            .unwrap_or_default()
            .iter()
            .filter_map(|(v, _)| status_of(v))
            .collect();
        for value in self.new_values(referral, K_STATUS) {
            let to = status_of(&value).ok_or_else(|| ChangeRefusal::Invalid(at.to_string()))?;
            let legal = if before.is_empty() {
                matches!(to, ReferralStatus::Draft | ReferralStatus::Sent)
            } else if before.len() > 1 && before.contains(&to) {
                // Settling a dispute: one of the concurrent moves stands.
                true
            } else {
                before.iter().any(|from| {
                    ALL_TRANSITIONS
                        .iter()
                        .any(|t| from.apply(*t).is_ok_and(|s| s == to))
                })
            };
            if !legal {
                return Err(ChangeRefusal::IllegalTransition(at.to_string()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An agent, and an officer who may only add audit notes.
    const AMINA: Author<'static> = Author {
        user: "amina",
        audit_notes_only: false,
        links_cases: false,
        supervises: false,
    };
    const OMAR: Author<'static> = Author {
        user: "omar",
        audit_notes_only: true,
        links_cases: false,
        supervises: false,
    };

    /// A change chunk written by hand: `columns` are (spec, data).
    fn chunk(chunk_type: u8, columns: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![0]; // no deps
        body.push(16);
        body.extend([0xab; 16]); // actor
        body.extend([1, 1, 0, 0, 0]); // seq, start op, time, empty message, no other actors
        body.push(columns.len() as u8);
        for (spec, data) in columns {
            body.extend([*spec, data.len() as u8]);
        }
        for (_, data) in columns {
            body.extend(data);
        }
        let mut out = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, chunk_type];
        assert!(body.len() < 128);
        out.push(body.len() as u8);
        out.extend(body);
        out
    }

    fn sleb(mut v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0) {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    #[test]
    fn compressed_chunks_and_columns_are_refused_before_automerge_sees_them() {
        assert!(matches!(
            precheck_change_chunk(&chunk(2, &[])),
            Err(ChangeRefusal::Malformed(_))
        ));
        assert!(matches!(
            precheck_change_chunk(&chunk(0, &[])),
            Err(ChangeRefusal::Malformed(_))
        ));
        // The action column with its deflate bit set.
        assert!(matches!(
            precheck_change_chunk(&chunk(1, &[(0x42 | 0x08, vec![1, 2])])),
            Err(ChangeRefusal::Malformed("compressed column"))
        ));
        assert!(precheck_change_chunk(&chunk(1, &[])).is_ok());
        assert!(precheck_change_chunk(&[0x85, 0x6f, 0x4a]).is_err());
    }

    /// A few bytes of run-length encoding declaring a billion operations, or one operation with
    /// a billion predecessors: refused by adding up the runs, before Automerge allocates them.
    #[test]
    fn run_length_bombs_are_refused() {
        let mut action = sleb(1_000_000_000);
        action.push(1);
        let bomb = chunk(1, &[(0x42, action)]);
        assert!(bomb.len() < 64);
        assert_eq!(
            precheck_change_chunk(&bomb),
            Err(ChangeRefusal::Malformed("too many operations"))
        );
        let mut preds = sleb(1);
        preds.extend([0x80, 0x94, 0xeb, 0xdc, 0x03]); // one op with 1e9 predecessors
        let bomb = chunk(1, &[(0x70, preds)]);
        assert_eq!(
            precheck_change_chunk(&bomb),
            Err(ChangeRefusal::Malformed("too many operations"))
        );
        let mut fine = sleb(3);
        fine.push(1);
        assert!(precheck_change_chunk(&chunk(1, &[(0x42, fine)])).is_ok());
    }

    #[test]
    fn honest_changes_pass_the_precheck() {
        let forms = FormRegistry::builtin();
        let record: crate::Record = serde_json::from_value(serde_json::json!({
            "child_first_name": "Aïcha", "child_last_name": "Traoré", "sex": "female",
            "dob_known": false, "estimated_age": 12, "province": "Sikasso", "commune": "Kignan",
            "village": "Fès", "school_status": "dropped_out", "school_level": "primary",
            "works": true, "work_sector": "artisanal_gold_mining",
            "hazardous_conditions": ["mercury"], "hours_per_week": 30,
            "risk_level": "high", "consent_to_share": true,
            "notes": "Travaille au site d'orpaillage avec son oncle, depuis deux saisons, six jours sur sept."
        }))
        .unwrap();
        let mut doc = crate::CaseDoc::create(
            &"a".repeat(32),
            automerge::ActorId::random(),
            forms.latest(IDENTIFICATION).unwrap(),
            &record,
            &crate::ChangeContext::now("amina"),
        )
        .unwrap();
        let changes = doc.changes_since(&[]);
        assert!(
            changes[0].len() > 256,
            "large enough that Automerge could compress it"
        );
        let parsed: Vec<Change> = changes.iter().map(|c| parse_change(c).unwrap()).collect();
        let mut copy = CaseCheck::load(&"a".repeat(32), Vec::new()).unwrap();
        copy.apply(parsed.clone(), AMINA, &forms).unwrap();
        let mut other = CaseCheck::load(&"a".repeat(32), Vec::new()).unwrap();
        let karim = Author {
            user: "karim",
            audit_notes_only: false,
            links_cases: false,
            supervises: false,
        };
        assert!(matches!(
            other.apply(parsed, karim, &forms),
            Err(ChangeRefusal::WrongAuthor(_))
        ));
    }

    fn uleb(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    /// A change chunk of any size written by hand: `deps` hashes, a commit message of
    /// `message` bytes, `columns` as (spec, data), and `padding` bytes of trailing column data.
    fn big_chunk(deps: u64, message: usize, columns: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut body = uleb(deps);
        body.extend(vec![0x11; deps as usize * 32]);
        body.push(16);
        body.extend([0xab; 16]); // actor
        body.extend([1, 1, 0]); // seq, start op, time
        body.extend(uleb(message as u64));
        body.extend(vec![b'm'; message]);
        body.push(0); // no other actors
        body.extend(uleb(columns.len() as u64));
        for (spec, data) in columns {
            body.extend(uleb(*spec));
            body.extend(uleb(data.len() as u64));
        }
        for (_, data) in columns {
            body.extend(data);
        }
        let mut out = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1];
        out.extend(uleb(body.len() as u64));
        out.extend(body);
        out
    }

    fn reader(bytes: &[u8]) -> Reader<'_> {
        Reader { bytes, at: 0 }
    }

    #[test]
    fn run_lengths_add_up_values_runs_literals_and_nulls() {
        // 3 × 5, then the literals 4 and 6, then 7 nulls.
        let mut column = sleb(3);
        column.extend(uleb(5));
        column.extend(sleb(-2));
        column.extend([4, 6]);
        column.extend(sleb(0));
        column.extend(uleb(7));
        assert_eq!(rle_total(&column, true), Ok(3 + 2 + 7));
        assert_eq!(rle_total(&column, false), Ok(15 + 10));
        assert_eq!(rle_total(&[], true), Ok(0));
        // A literal run that promises more values than it holds.
        let mut short = sleb(-3);
        short.push(1);
        assert_eq!(
            rle_total(&short, true),
            Err(ChangeRefusal::Malformed("truncated chunk"))
        );
    }

    #[test]
    fn signed_varints_decode_with_their_sign() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            127,
            -128,
            8191,
            -8192,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(reader(&sleb(v)).sleb_value(), Ok(v), "{v}");
        }
        assert_eq!(reader(&[0x7f]).sleb_value(), Ok(-1));
        assert_eq!(reader(&[0x3f]).sleb_value(), Ok(63));
        assert_eq!(reader(&[0xff, 0x00]).sleb_value(), Ok(127));
        assert_eq!(
            reader(&[0x80; 11]).sleb_value(),
            Err(ChangeRefusal::Malformed("varint too long"))
        );
    }

    #[test]
    fn counts_are_bounded_by_the_list_limit_and_the_bytes_left() {
        let with_left = |n: u64, left: usize| {
            let mut bytes = uleb(n);
            bytes.extend(vec![0; left]);
            bytes
        };
        // Hashes of 32 bytes: exactly enough bytes, one short, and past the list limit.
        assert_eq!(reader(&with_left(3, 96)).count(32), Ok(3));
        assert_eq!(
            reader(&with_left(3, 95)).count(32),
            Err(ChangeRefusal::Malformed("count beyond the chunk"))
        );
        assert_eq!(reader(&with_left(1024, 1024 * 32)).count(32), Ok(1024));
        assert_eq!(
            reader(&with_left(1025, 1025 * 32)).count(32),
            Err(ChangeRefusal::Malformed("too many entries"))
        );
        // Bytes: bounded by what is left only.
        assert_eq!(reader(&with_left(5000, 5000)).count(1), Ok(5000));
        assert_eq!(
            reader(&with_left(5, 4)).count(1),
            Err(ChangeRefusal::Malformed("count beyond the chunk"))
        );
        let mut r = reader(&[1, 2, 3]);
        assert_eq!(r.skip(3), Ok(()));
        assert_eq!(r.skip(1), Err(ChangeRefusal::Malformed("truncated chunk")));
        let mut r = reader(&[1, 2, 3]);
        r.at = 1;
        assert_eq!(r.skip(3), Err(ChangeRefusal::Malformed("truncated chunk")));
    }

    #[test]
    fn the_precheck_bounds_sit_exactly_at_their_limits() {
        assert_eq!(precheck_change_chunk(&big_chunk(0, 0, &[])), Ok(()));
        // Dependencies are skipped by their size.
        assert_eq!(precheck_change_chunk(&big_chunk(3, 0, &[])), Ok(()));
        // The commit message: 4 KiB at most.
        assert_eq!(precheck_change_chunk(&big_chunk(0, 4096, &[])), Ok(()));
        assert_eq!(
            precheck_change_chunk(&big_chunk(0, 4097, &[])),
            Err(ChangeRefusal::Malformed("commit message too long"))
        );
        // The whole chunk: 256 KiB at most (a long column of nulls makes it big).
        let padding = |total: usize| {
            let bare = big_chunk(0, 0, &[(0x11, vec![])]).len();
            // The column length grows from 1 to 3 varint bytes, and so does the body length.
            vec![0u8; total - bare - 4]
        };
        let at_limit = big_chunk(0, 0, &[(0x11, padding(CHANGE_BYTES_MAX))]);
        assert_eq!(at_limit.len(), CHANGE_BYTES_MAX);
        assert_eq!(precheck_change_chunk(&at_limit), Ok(()));
        let over = big_chunk(0, 0, &[(0x11, padding(CHANGE_BYTES_MAX + 1))]);
        assert_eq!(over.len(), CHANGE_BYTES_MAX + 1);
        assert_eq!(
            precheck_change_chunk(&over),
            Err(ChangeRefusal::Malformed("change too large"))
        );
        // Nine bytes are a header without a body: read on, and found truncated.
        assert_eq!(
            precheck_change_chunk(&[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1]),
            Err(ChangeRefusal::Malformed("truncated chunk"))
        );
        // A column that declares more bytes than the chunk holds.
        let mut beyond = big_chunk(0, 0, &[(0x42, vec![1, 1])]);
        let len_at = beyond.len() - 3;
        assert_eq!(beyond[len_at], 2, "the column's declared length");
        beyond[len_at] = 3;
        assert_eq!(
            precheck_change_chunk(&beyond),
            Err(ChangeRefusal::Malformed("column beyond the chunk"))
        );
    }

    #[test]
    fn operation_and_predecessor_totals_sit_exactly_at_their_limits() {
        let ops = |n: u64| {
            let mut column = sleb(n as i64);
            column.push(1);
            big_chunk(0, 0, &[(COLUMN_ACTION, column)])
        };
        assert_eq!(precheck_change_chunk(&ops(CHANGE_OPS_MAX as u64)), Ok(()));
        assert_eq!(
            precheck_change_chunk(&ops(CHANGE_OPS_MAX as u64 + 1)),
            Err(ChangeRefusal::Malformed("too many operations"))
        );
        let preds = |n: u64| {
            let mut column = sleb(1);
            column.extend(uleb(n));
            big_chunk(0, 0, &[(COLUMN_PRED_GROUP, column)])
        };
        assert_eq!(precheck_change_chunk(&preds(CHANGE_PREDS_MAX)), Ok(()));
        assert_eq!(
            precheck_change_chunk(&preds(CHANGE_PREDS_MAX + 1)),
            Err(ChangeRefusal::Malformed("too many operations"))
        );
        assert_eq!(CHANGE_PREDS_MAX, 80_000);
        // Other columns are not added up.
        let mut other = sleb(1_000_000_000);
        other.push(1);
        assert_eq!(
            precheck_change_chunk(&big_chunk(0, 0, &[(0x11, other)])),
            Ok(())
        );
    }

    /// A change of exactly `n` operations: a list made (on the first call) and values inserted.
    fn ops_change(doc: &mut AutoCommit, n: usize) -> Change {
        use automerge::transaction::Transactable;
        let text = match doc.get(ROOT, "t").unwrap() {
            Some((_, id)) => id,
            None => doc.put_object(ROOT, "t", ObjType::Text).unwrap(),
        };
        let made = usize::from(doc.get_heads().is_empty() || doc.pending_ops() > 0);
        doc.splice_text(&text, 0, 0, &"x".repeat(n - made)).unwrap();
        doc.commit();
        let change = doc.get_last_local_change().unwrap().clone();
        assert_eq!(change.len(), n);
        change
    }

    /// One change of each kind of operation Suivi never writes, each refused when parsed.
    #[test]
    fn operations_suivi_never_writes_are_refused_before_they_are_applied() {
        use automerge::marks::{ExpandMark, Mark};
        use automerge::transaction::Transactable;
        let mut doc = AutoCommit::new();
        let text = doc.put_object(ROOT, "notes", ObjType::Text).unwrap();
        doc.splice_text(&text, 0, 0, "Enfant vu au marché").unwrap();
        doc.commit();
        let plain = doc.get_last_local_change().unwrap().clone();
        assert!(
            parse_change(plain.raw_bytes()).is_ok(),
            "text is what notes are"
        );

        let mut kinds = Vec::new();
        let mut marked = doc.fork();
        marked
            .mark(
                &text,
                Mark::new("bold".into(), true, 0, 6),
                ExpandMark::None,
            )
            .unwrap();
        marked.commit();
        kinds.push((marked, "text marks"));
        let mut list = doc.fork();
        list.put_object(ROOT, "visits", ObjType::List).unwrap();
        list.commit();
        kinds.push((list, "an operation kind Suivi never writes"));
        let mut counter = doc.fork();
        counter
            .put(ROOT, "visits", ScalarValue::counter(1))
            .unwrap();
        counter.commit();
        let mut increment = counter.fork();
        kinds.push((counter, "an operation kind Suivi never writes"));
        increment.increment(ROOT, "visits", 2).unwrap();
        increment.commit();
        kinds.push((increment, "an operation kind Suivi never writes"));
        for (mut doc, why) in kinds {
            let change = doc.get_last_local_change().unwrap().clone();
            assert_eq!(
                parse_change(change.raw_bytes()).err(),
                Some(ChangeRefusal::Malformed(why))
            );
        }
    }

    #[test]
    fn a_change_at_the_operation_limit_parses() {
        let mut doc = AutoCommit::new();
        let change = ops_change(&mut doc, CHANGE_OPS_MAX);
        assert!(parse_change(change.raw_bytes()).is_ok());
        let over = ops_change(&mut doc, CHANGE_OPS_MAX + 1);
        assert_eq!(
            parse_change(over.raw_bytes()).err(),
            Some(ChangeRefusal::Malformed("too many operations"))
        );
    }

    /// A case's history is bounded at exactly `CASE_OPS_MAX` operations, whether it is loaded
    /// from storage or grows by pushes, one after another.
    #[test]
    fn a_case_history_is_bounded_at_exactly_its_operation_limit() {
        let mut doc = AutoCommit::new();
        let parts = CASE_OPS_MAX / CHANGE_OPS_MAX;
        let full: Vec<Change> = (0..parts)
            .map(|_| ops_change(&mut doc, CHANGE_OPS_MAX))
            .collect();
        let one_more = ops_change(&mut doc, 1);
        assert!(CaseCheck::load("c", full.clone()).is_ok());
        let mut over = full.clone();
        over.push(one_more.clone());
        assert_eq!(
            CaseCheck::load("c", over).err(),
            Some(ChangeRefusal::TooLarge)
        );
        // Pushed one by one: each is refused for its layout (not a case document), but its
        // operations count; the limit itself is still allowed, one more is not.
        let forms = FormRegistry::builtin();
        let mut check = CaseCheck::load("c", Vec::new()).unwrap();
        for change in full {
            let result = check.apply(vec![change], AMINA, &forms);
            assert_ne!(result, Err(ChangeRefusal::TooLarge));
        }
        assert_eq!(
            check.apply(vec![one_more], AMINA, &forms),
            Err(ChangeRefusal::TooLarge)
        );
    }

    /// A child's identification, valid for the identification form.
    fn aicha() -> crate::Record {
        serde_json::from_value(serde_json::json!({
            "child_first_name": "Aïcha", "child_last_name": "Traoré", "sex": "female",
            "dob_known": false, "estimated_age": 12, "province": "Sikasso", "commune": "Kignan",
            "village": "Fès", "school_status": "dropped_out", "school_level": "primary",
            "works": false, "risk_level": "high", "consent_to_share": true
        }))
        .unwrap()
    }

    fn case_changes(actor: automerge::ActorId, village: &str) -> Vec<Change> {
        let forms = FormRegistry::builtin();
        let record = aicha();
        let ctx = crate::ChangeContext::now("amina");
        let mut doc = crate::CaseDoc::create(
            &"b".repeat(32),
            actor,
            forms.latest(IDENTIFICATION).unwrap(),
            &record,
            &ctx,
        )
        .unwrap();
        let patch: crate::Record =
            serde_json::from_value(serde_json::json!({ "village": village })).unwrap();
        doc.edit_identification(&forms, &patch, &ctx).unwrap();
        doc.changes_since(&[])
            .iter()
            .map(|raw| parse_change(raw).unwrap())
            .collect()
    }

    #[test]
    fn sequence_numbers_are_checked_before_anything_is_applied() {
        let forms = FormRegistry::builtin();
        let actor = automerge::ActorId::random();
        let changes = case_changes(actor.clone(), "Misséni");
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].seq(), 2);
        // The second change alone: its predecessor by sequence is missing.
        let mut check = CaseCheck::load(&"b".repeat(32), Vec::new()).unwrap();
        assert_eq!(
            check.apply(vec![changes[1].clone()], AMINA, &forms),
            Err(ChangeRefusal::Malformed("sequence gap"))
        );
        // Both, in order: fine; both again (a retried push): skipped, fine.
        let mut check = CaseCheck::load(&"b".repeat(32), Vec::new()).unwrap();
        assert_eq!(check.apply(changes.clone(), AMINA, &forms), Ok(()));
        assert_eq!(check.apply(changes.clone(), AMINA, &forms), Ok(()));
        // The same actor and sequence number on a different change: refused.
        let forged = case_changes(actor, "Zégoua");
        assert_ne!(forged[1].hash(), changes[1].hash());
        assert_eq!(
            check.apply(vec![forged[1].clone()], AMINA, &forms),
            Err(ChangeRefusal::DuplicateSeq)
        );
        // Loaded from storage, the held changes are known the same way.
        let mut loaded = CaseCheck::load(&"b".repeat(32), changes.clone()).unwrap();
        assert_eq!(loaded.apply(changes, AMINA, &forms), Ok(()));
        assert_eq!(
            loaded.apply(vec![forged[0].clone()], AMINA, &forms),
            Err(ChangeRefusal::DuplicateSeq)
        );
    }

    /// A change whose operation counter does not follow its dependencies (re-encoded with a
    /// shifted start) is refused before Automerge applies it.
    #[test]
    fn an_operation_counter_that_does_not_follow_the_dependencies_is_refused() {
        let forms = FormRegistry::builtin();
        let changes = case_changes(automerge::ActorId::random(), "Misséni");
        for shift in [1u64, 1000] {
            let mut expanded = changes[1].decode();
            expanded.start_op = std::num::NonZeroU64::new(expanded.start_op.get() + shift).unwrap();
            expanded.hash = None;
            let forged = Change::from(expanded);
            let mut check = CaseCheck::load(&"b".repeat(32), vec![changes[0].clone()]).unwrap();
            assert_eq!(
                check.apply(vec![forged], AMINA, &forms),
                Err(ChangeRefusal::Malformed("operation counter")),
                "start shifted by {shift}"
            );
        }
    }

    /// An officer adds audit notes and nothing else: a new note is fine, writing a new note
    /// map over one that exists (same id) is not.
    #[test]
    fn an_officer_may_add_a_note_but_not_overwrite_one() {
        let forms = FormRegistry::builtin();
        let record = aicha();
        let case_id = "c".repeat(32);
        let mut doc = crate::CaseDoc::create(
            &case_id,
            automerge::ActorId::random(),
            forms.latest(IDENTIFICATION).unwrap(),
            &record,
            &crate::ChangeContext::now("amina"),
        )
        .unwrap();
        let officer = crate::ChangeContext::now("omar");
        let note = doc
            .add_audit_note("Chaîne de référence vérifiée", &officer)
            .unwrap();
        // A new map written over the note's id: the note replaced.
        {
            use automerge::transaction::Transactable;
            let am = doc.automerge();
            let (_, notes) = am.get(ROOT, K_AUDIT_NOTES).unwrap().unwrap();
            let replaced = am.put_object(&notes, note.as_str(), ObjType::Map).unwrap();
            am.put(&replaced, "text", "Réécrite").unwrap();
            am.put(&replaced, "author", "omar").unwrap();
            am.commit_with(
                automerge::transaction::CommitOptions::default()
                    .with_message(r#"{"user":"omar","action":"audit.note"}"#.to_string()),
            );
        }
        let changes: Vec<Change> = doc
            .changes_since(&[])
            .iter()
            .map(|raw| parse_change(raw).unwrap())
            .collect();
        assert_eq!(changes.len(), 3);
        let mut check = CaseCheck::load(&case_id, Vec::new()).unwrap();
        check
            .apply(vec![changes[0].clone()], AMINA, &forms)
            .unwrap();
        assert_eq!(check.apply(vec![changes[1].clone()], OMAR, &forms), Ok(()));
        let overwrite = check.apply(vec![changes[2].clone()], OMAR, &forms);
        assert!(
            matches!(overwrite, Err(ChangeRefusal::NotAllowed(_))),
            "{overwrite:?}"
        );
    }

    /// A case created by Amina (with one referral), as the server holds it, and a way to add
    /// changes written straight into the Automerge document, as a hostile app could.
    struct Hostile {
        doc: crate::CaseDoc,
        check: CaseCheck,
        forms: FormRegistry,
        seen: Vec<ChangeHash>,
    }

    impl Hostile {
        fn new() -> Hostile {
            let forms = FormRegistry::builtin();
            let mut record = aicha();
            record.insert("notes".into(), "Vue au marché".into());
            let ctx = crate::ChangeContext::now("amina");
            let mut doc = crate::CaseDoc::create(
                &"d".repeat(32),
                automerge::ActorId::random(),
                forms.latest(IDENTIFICATION).unwrap(),
                &record,
                &ctx,
            )
            .unwrap();
            let referral: crate::Record = serde_json::from_value(serde_json::json!({
                "service_type": "health", "provider": "CSCOM Misséni",
                "reason": "Blessure au travail", "urgency": "priority", "consent": true
            }))
            .unwrap();
            doc.add_referral(&forms, &referral, &ctx).unwrap();
            let mut hostile = Hostile {
                doc,
                check: CaseCheck::load(&"d".repeat(32), Vec::new()).unwrap(),
                forms,
                seen: Vec::new(),
            };
            assert_eq!(hostile.push(AMINA), Ok(()));
            hostile
        }

        /// Commits what `write` does to the document as `user`'s `action`.
        fn write(
            &mut self,
            user: &str,
            action: &str,
            write: impl FnOnce(&mut AutoCommit, &ObjId, &ObjId),
        ) {
            use automerge::transaction::CommitOptions;
            let am = self.doc.automerge();
            let (_, identification) = am.get(ROOT, K_IDENTIFICATION).unwrap().unwrap();
            let (_, referrals) = am.get(ROOT, K_REFERRALS).unwrap().unwrap();
            let referral = am.keys(&referrals).next().unwrap();
            let (_, referral) = am.get(&referrals, referral.as_str()).unwrap().unwrap();
            write(am, &identification, &referral);
            am.commit_with(
                CommitOptions::default()
                    .with_message(format!(r#"{{"user":"{user}","action":"{action}"}}"#)),
            );
        }

        /// Pushes every change not pushed yet.
        fn push(&mut self, author: Author<'_>) -> Result<(), ChangeRefusal> {
            let changes: Vec<Change> = self
                .doc
                .changes_since(&self.seen.clone())
                .iter()
                .map(|raw| parse_change(raw).unwrap())
                .collect();
            self.seen = self.doc.heads();
            self.check.apply(changes, author, &self.forms)
        }
    }

    #[test]
    fn an_officer_writes_nothing_but_new_notes_whatever_the_commit_says() {
        use automerge::transaction::Transactable;
        // A field the case did not hold yet, filled in by an officer.
        let mut case = Hostile::new();
        case.write("omar", "audit.note", |am, identification, _| {
            am.put(identification, "school_level", "secondary").unwrap();
            am.put(identification, "hours_per_week", 10).unwrap();
        });
        assert!(matches!(case.push(OMAR), Err(ChangeRefusal::NotAllowed(_))));
        // A field it held, changed by an officer.
        let mut case = Hostile::new();
        case.write("omar", "audit.note", |am, identification, _| {
            am.put(identification, "village", "Zégoua").unwrap();
        });
        assert!(matches!(case.push(OMAR), Err(ChangeRefusal::NotAllowed(_))));
        // A new map anywhere but under the audit notes.
        let mut case = Hostile::new();
        case.write("omar", "audit.note", |am, _, _| {
            am.put_object(ROOT, "extra", ObjType::Map).unwrap();
        });
        assert!(matches!(case.push(OMAR), Err(ChangeRefusal::NotAllowed(_))));
    }

    #[test]
    fn clearing_a_field_is_an_edit_removing_the_layout_is_not() {
        use automerge::transaction::Transactable;
        // Amina clears an optional field of the identification: an edit.
        let mut case = Hostile::new();
        case.write("amina", "case.edit", |am, identification, _| {
            am.delete(identification, "notes").unwrap();
        });
        assert_eq!(case.push(AMINA), Ok(()));
        // And a referral's optional field.
        case.write("amina", "referral.edit", |am, _, referral| {
            am.delete(referral, "reason").unwrap();
        });
        assert_eq!(case.push(AMINA), Ok(()));
        // A referral's status is part of its layout: deleting it is refused as a deletion.
        let mut case = Hostile::new();
        case.write("amina", "referral.edit", |am, _, referral| {
            am.delete(referral, K_STATUS).unwrap();
        });
        assert!(matches!(
            case.push(AMINA),
            Err(ChangeRefusal::Invalid(at)) if at.ends_with("status: deleted")
        ));
    }

    #[test]
    fn the_layout_checks_form_versions_note_keys_and_text_objects() {
        use automerge::transaction::Transactable;
        // A referral claiming a form version that does not exist.
        let mut case = Hostile::new();
        case.write("amina", "referral.edit", |am, _, referral| {
            am.put(referral, K_FORM_VERSION, 99).unwrap();
        });
        assert!(matches!(case.push(AMINA), Err(ChangeRefusal::Invalid(_))));
        // An audit note with a key notes do not have, or a value that is not a string.
        for (key, value) in [
            ("photo", ScalarValue::Str("x".into())),
            ("at", ScalarValue::Int(3)),
        ] {
            let mut case = Hostile::new();
            case.write("omar", "audit.note", |am, _, _| {
                let (_, notes) = am.get(ROOT, K_AUDIT_NOTES).unwrap().unwrap();
                let note = am.put_object(&notes, "n1", ObjType::Map).unwrap();
                am.put(&note, "text", "Vérifié").unwrap();
                am.put(&note, "author", "omar").unwrap();
                am.put(&note, key, value).unwrap();
            });
            assert!(
                matches!(case.push(OMAR), Err(ChangeRefusal::Invalid(at)) if at.contains(key)),
                "{key}"
            );
        }
        // A text object is a narrative field's value only, never a short field's.
        let mut case = Hostile::new();
        case.write("amina", "case.edit", |am, identification, _| {
            let text = am
                .put_object(identification, "village", ObjType::Text)
                .unwrap();
            am.splice_text(&text, 0, 0, "Zégoua").unwrap();
        });
        assert!(matches!(
            case.push(AMINA),
            Err(ChangeRefusal::Invalid(at)) if at.contains("village")
        ));
        let mut case = Hostile::new();
        case.write("amina", "case.edit", |am, identification, _| {
            let text = am
                .put_object(identification, "notes", ObjType::Text)
                .unwrap();
            am.splice_text(&text, 0, 0, "Vue au marché, puis à l'école")
                .unwrap();
        });
        assert_eq!(case.push(AMINA), Ok(()));
    }
}
