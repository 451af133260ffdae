//! The sync service: authenticates devices, decides who may read and write which case, checks
//! every pushed change, and builds pull pages. Decisions are made here, once, for every storage
//! implementation: a plan is computed from what the store holds, then applied in one write.
//!
//! A device is untrusted input. A pushed change is stored only once it was parsed under bounds,
//! applied to the server's copy of its case with panics contained, and checked by the case
//! layout rules in core (`suivi_core::case_doc::check`): structure, values, verified user,
//! legal referral transitions. A refused case stores nothing; the rest of the batch goes on.

mod admission;
mod budget;
mod console;
mod decision;
mod devices;
mod docsync;
mod summaries;
mod sync;
use admission::*;
pub use budget::*;
use decision::*;
pub use sync::*;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use automerge::sync::{Message, State, SyncDoc};
use automerge::{AutoCommit, Change, ChangeHash};
use suivi_core::case_doc::check::{self, Author, CaseCheck, ChangeRefusal};
use suivi_core::outcome::OutcomeSettings;
use suivi_core::policy::{self, WriteMode};
use suivi_core::sync::protocol::{
    self, CaseChanges, DocSyncRequest, DocSyncResponse, EnrollRequest, EnrollResponse, PulledCase,
    PulledChange, Refusal, RefusalReason, SyncRequest, SyncResponse, PROTOCOL_VERSION,
    PROTOCOL_VERSION_MIN,
};
use suivi_core::FormRegistry;

use crate::auth;
use crate::storage::{console_device_id, valid_case_id};
use crate::storage::{
    AcceptedCase, AdmissionWrite, CaseAccess, CursorCheck, Device, FeedRow, Quota, Role,
    ServerStore, StorageError, Usage, User, Viewer,
};
use crate::summary;

/// Raw change bytes read for one pull page before compression; trimmed if the compressed page
/// would exceed `PULL_PAGE_BYTES_MAX`. Case changes compress about 7:1 together, so read
/// enough to fill a page.
pub const PULL_PAGE_RAW_BYTES_MAX: usize = 16 * protocol::PULL_PAGE_BYTES_MAX;
/// Cases a console edit of many (a list reassigned) writes in one transaction.
const CONSOLE_BATCH_CASES: usize = 500;
/// Cases of such an edit checked at once: each waits on its store reads, several overlap.
const CONSOLE_WORKERS: usize = 4;
/// A device's own changes listed back to it in one page (each about 100 bytes).
pub const OWN_CHANGES_PER_PAGE_MAX: usize = 500;
/// Forgery reports read from one request; a device reports more at its next syncs.
pub const FORGERY_REPORTS_PER_REQUEST_MAX: usize = 16;
/// Refused cases named in the one audit row a push writes; the rest are counted.
const AUDIT_REFUSALS_LISTED_MAX: usize = 20;

/// The default daily quotas of one device: far above what an agent records in a day (tens of
/// children), and above a whole project's spreadsheet imported at once (a few thousand children
/// of ~2–5 KB of changes each). They bound what one stolen or buggy phone can add to every
/// reader's caseload; `suivi-server device quota` raises or lowers them per device.
pub const DEFAULT_QUOTA: Quota = Quota {
    new_cases_per_day: 10_000,
    bytes_per_day: 128 * 1024 * 1024,
};

/// Automerge operations one sync request may load and apply, across its cases. Validation
/// costs a few microseconds per operation, so this bounds one request to a few seconds of
/// CPU however its bytes were packed (run-length encoding fits millions of operations in a
/// small body). An honest push (at most 2 MiB of changes, most cases a few hundred operations)
/// stays well under it; cases past it are refused for now (`QuotaExceeded`) and pushed again
/// at the device's next sync.
pub const REQUEST_OPS_MAX: usize = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("missing or invalid device credential")]
    Unauthorized,
    #[error("this device was revoked")]
    Revoked,
    #[error("this app speaks protocol {0}; the server needs {PROTOCOL_VERSION_MIN} or newer")]
    UpgradeRequired(u16),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("storage failure")]
    Storage(#[from] StorageError),
    #[error("internal failure: {0}")]
    Internal(String),
}

/// A bug planted for the deterministic simulation to find: once `set(true)`, a push that
/// stores two cases or more acknowledges the last without storing it. Compiled only with the
/// `simulation` feature, and off unless a test turns it on.
#[cfg(feature = "simulation")]
pub mod planted {
    use std::sync::atomic::{AtomicBool, Ordering};

    static ON: AtomicBool = AtomicBool::new(false);

    pub fn set(on: bool) {
        ON.store(on, Ordering::SeqCst);
    }

    pub(crate) fn on() -> bool {
        ON.load(Ordering::SeqCst)
    }
}

/// How long a former owner's phones may still push to a case reassigned away from it: phones
/// in the field stay offline for days.
pub const REASSIGN_GRACE_SECS: i64 = 30 * 86_400;

/// A device that presented a valid credential, with its user.
#[derive(Debug, Clone)]
pub struct AuthedDevice {
    pub device: Device,
    pub user: User,
}

impl AuthedDevice {
    fn viewer(&self) -> Viewer {
        Viewer {
            user_id: self.user.user_id.clone(),
            role: self.user.role,
            team: self.user.team.clone(),
            device_id: self.device.device_id.clone(),
        }
    }
}

pub struct SyncService {
    store: Arc<dyn ServerStore>,
    forms: crate::forms::FormCache,
    /// Held while a console change is made, from reading the case to storing the change.
    console_writes: std::sync::Mutex<()>,
    codes: auth::CodeKey,
    refusal_audits: RefusalAudits,
}

impl SyncService {
    pub fn new(store: Arc<dyn ServerStore>, codes: auth::CodeKey) -> SyncService {
        SyncService {
            store,
            forms: crate::forms::FormCache::default(),
            console_writes: std::sync::Mutex::new(()),
            codes,
            refusal_audits: RefusalAudits::default(),
        }
    }

    /// The programme's outcome settings (the defaults until some are published): what the
    /// server derives outcomes with, and sends to phones holding an older version. Read from
    /// the store each time, as the forms feed's head is (another instance, or the command, may
    /// have published some): one small indexed read.
    pub fn outcome_settings(&self) -> OutcomeSettings {
        match self.store.outcome_settings() {
            Ok(stored) => stored.unwrap_or_default(),
            Err(e) => {
                tracing::error!(error = %e, "outcome settings");
                OutcomeSettings::default()
            }
        }
    }

    /// A request's budget: the forms and outcome settings as stored now.
    fn budget(&self) -> OpsBudget {
        OpsBudget {
            settings: self.outcome_settings(),
            ..OpsBudget::new(self.refresh_forms())
        }
    }

    /// Publishes outcome settings as the next version (checked first), audited as `by`, and
    /// rebuilds every case's projections with them. Phones receive them at their next sync.
    pub fn publish_outcome_settings(
        &self,
        settings: &OutcomeSettings,
        by: &str,
        now: i64,
    ) -> Result<OutcomeSettings, ServiceError> {
        settings
            .check()
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let published = self.store.publish_outcome_settings(settings, (by, now))?;
        self.refresh_all_summaries()?;
        Ok(published)
    }

    pub fn store(&self) -> &Arc<dyn ServerStore> {
        &self.store
    }

    /// A refusal's audit row, within the device's daily bound (`REFUSAL_AUDITS_PER_DAY`).
    fn audit_refusal(
        &self,
        device: &AuthedDevice,
        action: &str,
        subject: &str,
        now: i64,
    ) -> Result<(), ServiceError> {
        let device_id = &device.device.device_id;
        match self.refusal_audits.admit(device_id, now) {
            RefusalAudit::Write => self.store.audit(now, device_id, action, subject)?,
            RefusalAudit::Count(n) => self.store.audit(
                now,
                device_id,
                &format!("{action}_unlisted"),
                &format!("{n} refusals today past {REFUSAL_AUDITS_PER_DAY} rows"),
            )?,
            RefusalAudit::Skip => {}
        }
        Ok(())
    }

    /// The form definitions the console shows records with: every published version, as last
    /// loaded (no I/O: async handlers call it).
    pub fn forms(&self) -> Arc<FormRegistry> {
        self.forms.get()
    }

    /// The form definitions as the store holds them now (blocking I/O): what a push or a
    /// console change is checked with.
    pub fn refresh_forms(&self) -> Arc<FormRegistry> {
        self.forms.refresh(self.store.as_ref())
    }

    /// A case's document rebuilt from its stored changes under the push's bounds, to read;
    /// `None` if it does not load (a quarantine candidate: `case check` reports it).
    pub fn case_document(
        &self,
        case_id: &str,
    ) -> Result<Option<suivi_core::CaseDoc>, ServiceError> {
        let stored = self.stored_changes(case_id)?;
        Ok(CaseCheck::load(case_id, stored)
            .ok()
            .map(|c| suivi_core::CaseDoc::from_automerge(c.into_document())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Role;

    fn user(id: &str, role: Role, team: &str) -> User {
        User::new(id, role, team)
    }

    /// Awa, a girl of Kignan at a gold-mining site: an identification every form rule accepts.
    pub(super) fn awa() -> suivi_core::Record {
        serde_json::from_value(serde_json::json!({
            "child_first_name": "Awa", "child_last_name": "Konaté", "sex": "female",
            "dob_known": false, "estimated_age": 12, "province": "Sikasso", "commune": "Kignan",
            "village": "Kignan", "school_status": "dropped_out", "school_level": "primary",
            "works": true, "work_sector": "artisanal_gold_mining",
            "hazardous_conditions": ["mercury"], "hours_per_week": 30, "risk_level": "high",
            "consent_to_share": true
        }))
        .unwrap()
    }

    /// What a phone claims at enrollment is checked before any code is looked up: an actor id
    /// of 16 to 64 hex digits, a device name of 1 to 100 bytes.
    #[test]
    fn enrollment_requests_are_checked_at_their_bounds() {
        let (_dir, service) = service();
        let request = |actor: String, device_name: String| EnrollRequest {
            code: "NOCODE".into(),
            user: "amina".into(),
            actor,
            device_name,
        };
        let refused_as_bad =
            |r: EnrollRequest| matches!(service.enroll(&r, 0), Err(ServiceError::BadRequest(_)));
        let hex = |n: usize| "ab".repeat(n).chars().take(n).collect::<String>();
        let name = |n: usize| "t".repeat(n);
        // Within the bounds the request goes on to the code, which does not exist.
        for (actor, device) in [(hex(16), name(1)), (hex(64), name(100))] {
            let result = service.enroll(&request(actor, device), 0);
            assert!(
                !matches!(result, Err(ServiceError::BadRequest(_))),
                "{result:?}"
            );
        }
        assert!(refused_as_bad(request(hex(15), name(10))));
        assert!(refused_as_bad(request(hex(65), name(10))));
        assert!(refused_as_bad(request(format!("{}g", hex(31)), name(10))));
        assert!(refused_as_bad(request(hex(32), name(0))));
        assert!(refused_as_bad(request(hex(32), name(101))));
    }

    /// A device of `user` that presented a valid credential.
    fn authed(device_id: &str, user: User, actor: String) -> AuthedDevice {
        AuthedDevice {
            device: Device {
                device_id: device_id.into(),
                user_id: user.user_id.clone(),
                actor,
                name: "phone".into(),
                token_hash: String::new(),
                revoked: false,
                wiped: false,
            },
            user,
        }
    }

    fn service() -> (tempfile::TempDir, SyncService) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("s.db"), None).unwrap();
        (
            dir,
            SyncService::new(Arc::new(store), auth::CodeKey::generate()),
        )
    }

    /// The mode a push is checked in: only an officer who may read the case gets notes-only;
    /// anyone else outside the caseload gets nothing (the push is refused as forbidden).
    #[test]
    fn write_modes_by_role_and_caseload() {
        let (_dir, service) = service();
        let case = CaseAccess {
            created_by: "amina".into(),
            team: "souk-sebt".into(),
            assignees: vec![],
        };
        let mode = |u: &User| service.write_mode(u, Some(&case));
        assert_eq!(
            mode(&user("amina", Role::Agent, "souk-sebt")),
            Some(WriteMode::Write)
        );
        assert_eq!(
            mode(&user("fatima", Role::Supervisor, "souk-sebt")),
            Some(WriteMode::Write)
        );
        assert_eq!(mode(&user("karim", Role::Agent, "souk-sebt")), None);
        assert_eq!(mode(&user("ali", Role::Supervisor, "sikasso")), None);
        assert_eq!(
            mode(&user("omar", Role::Officer, "project")),
            Some(WriteMode::AuditNotesOnly)
        );
        // A new case: created by agents, supervisors and admins, never by an officer.
        assert_eq!(
            service.write_mode(&user("karim", Role::Agent, "souk-sebt"), None),
            Some(WriteMode::Write)
        );
        assert_eq!(
            service.write_mode(&user("omar", Role::Officer, "project"), None),
            None
        );
    }

    /// The per-case change count is checked before anything is decoded: exactly the maximum goes
    /// on to be parsed (and this garbage is refused as malformed), one more is refused outright.
    #[test]
    fn a_case_may_push_up_to_the_change_limit() {
        let (_dir, service) = service();
        let device = authed(
            "dev-1",
            user("amina", Role::Agent, "souk-sebt"),
            "a1".repeat(16),
        );
        let refusal = |n: usize| {
            let case = CaseChanges {
                case_id: "c0ffee00c0ffee00c0ffee00c0ffee00".into(),
                changes: vec![serde_bytes::ByteBuf::from(vec![0u8; 4]); n],
            };
            let checked = service.check_case(
                &device,
                &case,
                None,
                &mut OpsBudget {
                    settings: service.outcome_settings(),
                    ..OpsBudget::new(service.forms())
                },
                0,
                None,
            );
            checked.unwrap().unwrap_err().0
        };
        let max = protocol::PUSH_CHANGES_PER_CASE_MAX;
        assert_eq!(refusal(max + 1), RefusalReason::TooManyChanges);
        assert_eq!(refusal(max), RefusalReason::Malformed);
        assert_eq!(refusal(1), RefusalReason::Malformed);
    }

    /// The per-request operation budget: the first case always goes through; after it, a case
    /// that fits exactly what is left goes through, one operation more is refused.
    #[test]
    fn the_request_operation_budget_is_spent_to_its_last_operation() {
        let mut budget = OpsBudget::new(Arc::new(FormRegistry::builtin()));
        assert!(
            budget.take(REQUEST_OPS_MAX + 5).is_ok(),
            "the first case goes through"
        );
        assert!(budget.take(1).is_err(), "nothing is left after it");
        let mut budget = OpsBudget::new(Arc::new(FormRegistry::builtin()));
        budget.take(REQUEST_OPS_MAX - 10).unwrap();
        assert_eq!(budget.take(11).unwrap_err().0, RefusalReason::QuotaExceeded);
        assert!(budget.take(10).is_ok(), "exactly what is left fits");
        assert!(budget.take(1).is_err());
        assert!(budget.take(0).is_ok(), "an empty case costs nothing");
    }

    /// The daily quotas: a device may fill each to the last case and byte, not one past it;
    /// what is taken is counted for the next case.
    #[test]
    fn daily_quotas_fill_to_their_bound_and_not_past_it() {
        let case = |new: bool, bytes: usize| AcceptedCase {
            case_id: "c".into(),
            new_case: new.then(|| ("amina".to_string(), "sikasso".to_string())),
            changes: vec![("h".into(), vec![0; bytes])],
            summary: None,
        };
        let mut allowance = Allowance {
            quota: Quota {
                new_cases_per_day: 2,
                bytes_per_day: 100,
            },
            used: Usage {
                new_cases: 1,
                bytes: 40,
            },
        };
        allowance.take(&case(true, 10)).unwrap();
        assert_eq!((allowance.used.new_cases, allowance.used.bytes), (2, 50));
        let refused = allowance.take(&case(true, 1)).unwrap_err();
        assert_eq!(
            refused,
            (RefusalReason::QuotaExceeded, "2 new cases per day".into())
        );
        allowance.take(&case(false, 50)).unwrap();
        assert_eq!((allowance.used.new_cases, allowance.used.bytes), (2, 100));
        let refused = allowance.take(&case(false, 1)).unwrap_err();
        assert_eq!(
            refused,
            (RefusalReason::QuotaExceeded, "100 bytes per day".into())
        );
        allowance.take(&case(false, 0)).unwrap();
    }

    /// The version is read before anything else: older than the oldest spoken is "upgrade
    /// required", newer than this server is a bad request, anything between goes on.
    #[test]
    fn protocol_versions_are_checked_at_both_ends() {
        let body = |version: u16| {
            protocol::encode(&SyncRequest {
                version,
                ..SyncRequest::pushing(0, vec![])
            })
            .unwrap()
        };
        assert!(check_version(&body(PROTOCOL_VERSION)).is_ok());
        assert!(check_version(&body(PROTOCOL_VERSION_MIN)).is_ok());
        assert!(matches!(
            check_version(&body(PROTOCOL_VERSION_MIN - 1)),
            Err(ServiceError::UpgradeRequired(v)) if v == PROTOCOL_VERSION_MIN - 1
        ));
        assert!(matches!(
            check_version(&body(PROTOCOL_VERSION + 1)),
            Err(ServiceError::BadRequest(m)) if m.contains("newer")
        ));
    }

    /// The default quotas are meant to let a whole project's spreadsheet through in one day:
    /// 5,000 children of 5 KB of changes each from one device.
    #[test]
    fn the_default_quotas_let_a_spreadsheet_import_through() {
        let mut allowance = Allowance {
            quota: DEFAULT_QUOTA,
            used: Usage::default(),
        };
        for n in 0..5_000 {
            let case = AcceptedCase {
                case_id: format!("{n:032x}"),
                new_case: Some(("amina".into(), "sikasso".into())),
                changes: vec![("h".into(), vec![0; 5 * 1024])],
                summary: None,
            };
            allowance.take(&case).unwrap();
        }
    }

    /// A push may name up to `PUSH_CASES_MAX` cases; one more is a bad request, refused before
    /// any case is looked at.
    #[test]
    fn a_push_may_name_up_to_the_case_limit() {
        let (_dir, service) = service();
        let device = authed(
            "dev-1",
            user("amina", Role::Agent, "souk-sebt"),
            "a1".repeat(16),
        );
        let body = |cases: usize| {
            protocol::encode(&SyncRequest::pushing(
                0,
                (0..cases)
                    .map(|n| CaseChanges {
                        case_id: format!("{n:032x}"),
                        changes: vec![],
                    })
                    .collect(),
            ))
            .unwrap()
        };
        let max = protocol::PUSH_CASES_MAX;
        assert!(service.sync(&device, &body(max), 0).is_ok());
        assert!(matches!(
            service.sync(&device, &body(max + 1), 0),
            Err(ServiceError::BadRequest(_))
        ));
    }

    /// The audit row of a push's refusals: valid case ids with their reason, at most
    /// `AUDIT_REFUSALS_LISTED_MAX` of them, the rest (and every malformed id) counted.
    #[test]
    fn refusal_rows_are_bounded_per_device_per_day_and_the_rest_counted() {
        let audits = RefusalAudits::default();
        let day = 20_000 * 86_400;
        for _ in 0..REFUSAL_AUDITS_PER_DAY {
            assert_eq!(audits.admit("dev-a", day), RefusalAudit::Write);
        }
        let past: Vec<RefusalAudit> = (0..9).map(|_| audits.admit("dev-a", day + 5)).collect();
        use RefusalAudit::*;
        assert_eq!(
            past,
            [
                Count(1),
                Count(2),
                Skip,
                Count(4),
                Skip,
                Skip,
                Skip,
                Count(8),
                Skip
            ]
        );
        assert_eq!(audits.admit("dev-b", day), Write, "per device");
        assert_eq!(audits.admit("dev-a", day + 86_400), Write, "per day");
    }

    #[test]
    fn the_refusal_audit_lists_valid_ids_up_to_its_bound_and_counts_the_rest() {
        let refusal = |id: &str| Refusal::new(id, RefusalReason::Forbidden, "");
        assert_eq!(refusal_audit(&[]), "");
        let one = format!("{:032x}", 1);
        assert_eq!(refusal_audit(&[refusal(&one)]), format!("{one} forbidden"));
        let bad = refusal("<script>alert(1)</script>");
        assert_eq!(
            refusal_audit(&[refusal(&one), bad.clone()]),
            format!("{one} forbidden, +1 more")
        );
        let many: Vec<Refusal> = (0..AUDIT_REFUSALS_LISTED_MAX + 3)
            .map(|n| refusal(&format!("{n:032x}")))
            .collect();
        let row = refusal_audit(&many);
        assert_eq!(row.matches(" forbidden").count(), AUDIT_REFUSALS_LISTED_MAX);
        assert!(row.ends_with(", +3 more"), "{row}");
        let exactly: Vec<Refusal> = many[..AUDIT_REFUSALS_LISTED_MAX].to_vec();
        assert!(!refusal_audit(&exactly).contains("more"));
    }

    /// An Automerge sync message may carry changes the server already holds, written by other
    /// devices (the device cannot always know what the server has). The fallback skips those and
    /// checks only what is new, so a supervisor's edit goes through instead of being refused as
    /// another device's change.
    #[test]
    fn a_fallback_message_carrying_changes_already_stored_is_accepted_for_its_new_ones() {
        use automerge::sync::SyncDoc;
        use automerge::ActorId;
        use suivi_core::{forms::IDENTIFICATION, CaseDoc, ChangeContext, Record};
        let (_dir, service) = service();
        let store = service.store.clone();
        for u in [
            user("amina", Role::Agent, "sikasso"),
            user("fatima", Role::Supervisor, "sikasso"),
        ] {
            store.add_user(&u, 0).unwrap();
        }
        let (amina_actor, fatima_actor) = (ActorId::from([1u8; 16]), ActorId::from([2u8; 16]));
        let fatima = authed(
            "dev-f",
            user("fatima", Role::Supervisor, "sikasso"),
            fatima_actor.to_hex_string(),
        );
        store.add_enrollment_code("code", "fatima", 100).unwrap();
        store
            .redeem_enrollment_code("code", "fatima", 0, &fatima.device)
            .unwrap()
            .unwrap();
        let forms = FormRegistry::builtin();
        let child = awa();
        let case_id = format!("{:032x}", 7);
        let mut amina_doc = CaseDoc::create(
            &case_id,
            amina_actor,
            forms.latest(IDENTIFICATION).unwrap(),
            &child,
            &ChangeContext::now("amina"),
        )
        .unwrap();
        let stored = amina_doc.changes_since(&[]);
        let accepted = AcceptedCase {
            case_id: case_id.clone(),
            new_case: Some(("amina".into(), "sikasso".into())),
            changes: stored
                .iter()
                .map(|raw| {
                    let hash = Change::from_bytes(raw.clone()).unwrap().hash();
                    (hash.to_string(), raw.clone())
                })
                .collect(),
            summary: None,
        };
        store.store_changes("dev-a", &[accepted], None, 0).unwrap();
        // Fatima's phone holds the case and edits it.
        let mut doc = CaseDoc::empty(fatima_actor);
        doc.apply_changes(&stored).unwrap();
        let patch: Record =
            serde_json::from_value(serde_json::json!({"village": "Zégoua"})).unwrap();
        doc.edit_identification(&forms, &patch, &ChangeContext::now("fatima"))
            .unwrap();
        // Its sync message to a peer it believes holds nothing carries every change.
        let mut state = automerge::sync::State::new();
        let mut nobody = automerge::sync::State::new();
        let empty = AutoCommit::new()
            .sync()
            .generate_sync_message(&mut nobody)
            .unwrap();
        doc.automerge().sync().generate_sync_message(&mut state);
        doc.automerge()
            .sync()
            .receive_sync_message(&mut state, empty)
            .unwrap();
        // Plain change chunks, as the phone's fallback sends them.
        state.their_capabilities = None;
        let message = doc
            .automerge()
            .sync()
            .generate_sync_message(&mut state)
            .unwrap();
        assert!(
            message.changes.len() > stored.len(),
            "the stored changes ride along"
        );
        let body = protocol::encode(&DocSyncRequest {
            version: PROTOCOL_VERSION,
            case_id: case_id.clone(),
            message: serde_bytes::ByteBuf::from(message.encode()),
        })
        .unwrap();
        let reply: DocSyncResponse =
            protocol::decode(&service.doc_sync(&fatima, &body, 0).unwrap()).unwrap();
        assert_eq!(reply.refused, None);
        assert_eq!(
            store.case_changes(&case_id).unwrap().len(),
            stored.len() + 1,
            "Fatima's edit is stored, nothing twice"
        );

        // One gate for every write: a case set aside is told as such only to a device that
        // may write it; another team's supervisor hears "forbidden", by fallback as by push.
        store.quarantine_case(&case_id, "test", 0).unwrap();
        let karim = authed(
            "dev-k",
            user("karim", Role::Supervisor, "souk-sebt"),
            ActorId::from([3u8; 16]).to_hex_string(),
        );
        store.add_user(&karim.user, 0).unwrap();
        let refused_to = |device: &AuthedDevice| {
            let reply: DocSyncResponse =
                protocol::decode(&service.doc_sync(device, &body, 0).unwrap()).unwrap();
            reply.refused.map(|r| r.reason)
        };
        assert_eq!(refused_to(&fatima), Some(RefusalReason::Quarantined));
        assert_eq!(refused_to(&karim), Some(RefusalReason::Forbidden));
        let push = CaseChanges {
            case_id: case_id.clone(),
            changes: Vec::new(),
        };
        let plan = service.plan_push(&karim, &[push], 0).unwrap();
        assert_eq!(plan.refused[0].reason, RefusalReason::Forbidden);
    }

    /// A page that stops at its raw read budget says there is more, even when what it holds
    /// compresses far below the page size (nothing was trimmed after encoding): the device keeps
    /// pulling and gets every row once.
    #[test]
    fn a_page_stopped_by_its_read_budget_says_there_is_more() {
        let (_dir, service) = service();
        let store = service.store.clone();
        store
            .add_user(&user("fatima", Role::Supervisor, "sikasso"), 0)
            .unwrap();
        // Changes of zeros: 64 KiB each, they compress to almost nothing.
        let cases: Vec<AcceptedCase> = (0..40)
            .map(|n| AcceptedCase {
                case_id: format!("{n:032x}"),
                new_case: Some(("amina".into(), "sikasso".into())),
                changes: vec![(format!("h{n}"), vec![0; 64 * 1024])],
                summary: None,
            })
            .collect();
        store.store_changes("dev-a", &cases, None, 0).unwrap();
        let fatima = authed(
            "dev-f",
            user("fatima", Role::Supervisor, "sikasso"),
            "f1".repeat(16),
        );
        let mut cursor = 0;
        let mut mark = Vec::new();
        let mut pulled = 0;
        let mut pages = 0;
        loop {
            let body = protocol::encode(&SyncRequest {
                mark: serde_bytes::ByteBuf::from(mark.clone()),
                ..SyncRequest::pushing(cursor, vec![])
            })
            .unwrap();
            let reply = service.sync_first(&fatima, &body, 0).unwrap().page;
            let response: SyncResponse = protocol::decode(&reply).unwrap();
            assert!(
                reply.len() < protocol::PULL_PAGE_BYTES_MAX / 4,
                "nothing to trim"
            );
            pulled += response.pull.iter().map(|c| c.changes.len()).sum::<usize>();
            pages += 1;
            cursor = response.cursor;
            mark = response.mark.to_vec();
            if !response.more {
                break;
            }
        }
        assert_eq!(pulled, 40, "every row once");
        assert!(pages > 1, "the read budget cut the pull into pages");
    }

    /// A page whose rows do not compress is trimmed until it fits the page size: no reply is
    /// larger than `PULL_PAGE_BYTES_MAX` unless it holds a single row.
    #[test]
    fn an_incompressible_page_is_trimmed_to_the_page_size() {
        let (_dir, service) = service();
        let store = service.store.clone();
        store
            .add_user(&user("fatima", Role::Supervisor, "sikasso"), 0)
            .unwrap();
        // 20 KiB of noise per change (a xorshift: no compressor finds a pattern in it).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        let cases: Vec<AcceptedCase> = (0..20)
            .map(|n| AcceptedCase {
                case_id: format!("{n:032x}"),
                new_case: Some(("amina".into(), "sikasso".into())),
                changes: vec![(format!("h{n}"), noise(20 * 1024))],
                summary: None,
            })
            .collect();
        store.store_changes("dev-a", &cases, None, 0).unwrap();
        let fatima = authed(
            "dev-f",
            user("fatima", Role::Supervisor, "sikasso"),
            "f1".repeat(16),
        );
        let body = protocol::encode(&SyncRequest::pushing(0, vec![])).unwrap();
        let reply = service.sync_first(&fatima, &body, 0).unwrap().page;
        let response: SyncResponse = protocol::decode(&reply).unwrap();
        let rows: usize = response.pull.iter().map(|c| c.changes.len()).sum();
        assert!(rows > 1, "more than one row fits");
        assert!(
            reply.len() <= protocol::PULL_PAGE_BYTES_MAX,
            "{} bytes in one page",
            reply.len()
        );
        assert!(response.more, "the rest comes in the next page");
    }
}
