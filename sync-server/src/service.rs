//! The sync service: authenticates devices, decides who may read and write which case, checks
//! every pushed change, and builds pull pages. Decisions are made here, once, for every storage
//! implementation: a plan is computed from what the store holds, then applied in one write.
//!
//! A device is untrusted input. A pushed change is stored only once it was parsed under bounds,
//! applied to the server's copy of its case with panics contained, and checked by the case
//! layout rules in core (`suivi_core::case_doc::check`): structure, values, verified user,
//! legal referral transitions. A refused case stores nothing; the rest of the batch goes on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use automerge::sync::{Message, State, SyncDoc};
use automerge::{AutoCommit, Change, ChangeHash};
use suivi_core::case_doc::check::{self, Author, CaseCheck, ChangeRefusal};
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
    AcceptedCase, CaseAccess, CursorCheck, Device, FeedRow, Quota, Role, ServerStore, StorageError,
    Usage, User, Viewer,
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

/// What is left of `REQUEST_OPS_MAX` as a push is checked. The first case always goes through,
/// so every request makes progress.
struct OpsBudget {
    left: usize,
    spent: bool,
    /// Agents looked up while checking this request's reassignments (a list reassigned at once
    /// names one agent a thousand times).
    agents: HashMap<String, Option<User>>,
    /// The forms the request's changes are checked with, read once for the request.
    forms: Arc<FormRegistry>,
}

impl OpsBudget {
    fn new(forms: Arc<FormRegistry>) -> OpsBudget {
        OpsBudget {
            left: REQUEST_OPS_MAX,
            spent: false,
            agents: HashMap::new(),
            forms,
        }
    }

    fn take(&mut self, ops: usize) -> Result<(), (RefusalReason, String)> {
        if self.spent && ops > self.left {
            return Err((
                RefusalReason::QuotaExceeded,
                format!("{REQUEST_OPS_MAX} operations per request"),
            ));
        }
        self.left = self.left.saturating_sub(ops);
        self.spent = true;
        Ok(())
    }
}

/// What a device may still store today, spent case by case as a push is planned. Two pushes
/// from the same device at once can each see the same allowance, so a day may overshoot by at
/// most one request.
struct Allowance {
    quota: Quota,
    used: Usage,
}

impl Allowance {
    fn today(
        store: &dyn ServerStore,
        device_id: &str,
        now: i64,
    ) -> Result<Allowance, ServiceError> {
        Ok(Allowance {
            quota: store.device_quota(device_id)?.unwrap_or(DEFAULT_QUOTA),
            used: store.device_usage(device_id, now.div_euclid(86_400))?,
        })
    }

    /// Takes what `case` would store, or says which quota it would exceed.
    fn take(&mut self, case: &AcceptedCase) -> Result<(), (RefusalReason, String)> {
        let new_cases = u64::from(case.new_case.is_some());
        let bytes: u64 = case.changes.iter().map(|(_, c)| c.len() as u64).sum();
        if self.used.new_cases + new_cases > self.quota.new_cases_per_day {
            return Err((
                RefusalReason::QuotaExceeded,
                format!("{} new cases per day", self.quota.new_cases_per_day),
            ));
        }
        if self.used.bytes + bytes > self.quota.bytes_per_day {
            return Err((
                RefusalReason::QuotaExceeded,
                format!("{} bytes per day", self.quota.bytes_per_day),
            ));
        }
        self.used.new_cases += new_cases;
        self.used.bytes += bytes;
        Ok(())
    }
}

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

/// What a push leads to: the changes to store, and per case, accepted or refused.
struct PushPlan {
    to_store: Vec<AcceptedCase>,
    accepted: Vec<String>,
    refused: Vec<Refusal>,
    /// Cases this push gave to another agent (a supervisor's reassignment): ownership moves
    /// once they are stored.
    reassigned: Vec<(String, User)>,
}

/// A pushed case that passed every check: what to store, and the agent it was given to if the
/// push reassigned it.
type Checked = (AcceptedCase, Option<User>);

/// Who a console user's changes are written as: the console device, its actor, the time.
struct ConsoleAuthor {
    authed: AuthedDevice,
    actor: automerge::ActorId,
    ctx: suivi_core::ChangeContext,
}

pub struct SyncService {
    store: Arc<dyn ServerStore>,
    forms: crate::forms::FormCache,
    /// Held while a console change is made, from reading the case to storing the change.
    console_writes: std::sync::Mutex<()>,
    codes: auth::CodeKey,
    refusal_audits: RefusalAudits,
}

/// Audit rows of refused pushes and docsyncs per device per day (in each instance): a device
/// refused at the rate limit all day must not fill the disk with rows (about 1.4 GB a day on
/// main at d9e481c). Past it, refusals are counted, and a row records the count each time it
/// doubles, so what was left out is known.
pub const REFUSAL_AUDITS_PER_DAY: u32 = 200;
/// Devices remembered before the counts of past days are dropped.
const REFUSAL_AUDIT_DEVICES_MAX: usize = 10_000;

/// What one refusal's audit row gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalAudit {
    /// Written.
    Write,
    /// Left out; this many so far today, a power of two: write a row counting them.
    Count(u64),
    /// Left out, counted.
    Skip,
}

/// Per device: the day, refusal rows written, refusals left out.
#[derive(Default)]
struct RefusalAudits(std::sync::Mutex<HashMap<String, (i64, u32, u64)>>);

impl RefusalAudits {
    fn admit(&self, device_id: &str, now: i64) -> RefusalAudit {
        let day = now.div_euclid(86_400);
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() >= REFUSAL_AUDIT_DEVICES_MAX && !counts.contains_key(device_id) {
            counts.retain(|_, (d, _, _)| *d == day);
        }
        let entry = counts.entry(device_id.to_string()).or_insert((day, 0, 0));
        if entry.0 != day {
            *entry = (day, 0, 0);
        }
        if entry.1 < REFUSAL_AUDITS_PER_DAY {
            entry.1 += 1;
            return RefusalAudit::Write;
        }
        entry.2 += 1;
        if entry.2.is_power_of_two() {
            RefusalAudit::Count(entry.2)
        } else {
            RefusalAudit::Skip
        }
    }
}

/// The refusal reason a broken layout rule leads to, with its detail.
fn refusal_of(refusal: &ChangeRefusal) -> (RefusalReason, String) {
    match refusal {
        ChangeRefusal::Malformed(why) => (RefusalReason::Malformed, (*why).to_string()),
        ChangeRefusal::DuplicateSeq => (RefusalReason::DuplicateSeq, String::new()),
        ChangeRefusal::Invalid(at) => (RefusalReason::Invalid, at.clone()),
        ChangeRefusal::WrongAuthor(at) => (RefusalReason::WrongAuthor, at.clone()),
        ChangeRefusal::IllegalTransition(at) => (RefusalReason::IllegalTransition, at.clone()),
        ChangeRefusal::NotAllowed(at) => (RefusalReason::Forbidden, at.clone()),
        ChangeRefusal::TooLarge => (
            RefusalReason::TooManyChanges,
            format!("over {} operations in the case", check::CASE_OPS_MAX),
        ),
    }
}

/// Reads the version a body speaks before decoding the rest: an older device gets "upgrade
/// required", never a decoding failure.
fn check_version(body: &[u8]) -> Result<(), ServiceError> {
    let version =
        protocol::peek_version(body).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    if version < PROTOCOL_VERSION_MIN {
        return Err(ServiceError::UpgradeRequired(version));
    }
    if version > PROTOCOL_VERSION {
        return Err(ServiceError::BadRequest(format!(
            "protocol version {version} is newer than this server's {PROTOCOL_VERSION}"
        )));
    }
    Ok(())
}

/// Orders changes so each comes after the ones it depends on among them; `None` if some depend
/// on changes that are neither here nor in `known`.
fn causal_order(changes: Vec<Change>, known: &HashSet<ChangeHash>) -> Option<Vec<Change>> {
    let mut have: HashSet<ChangeHash> = known.clone();
    let mut left = changes;
    let mut out = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let before = left.len();
        let (ready, rest): (Vec<Change>, Vec<Change>) = left
            .into_iter()
            .partition(|c| c.deps().iter().all(|d| have.contains(d)));
        for c in &ready {
            have.insert(c.hash());
        }
        out.extend(ready);
        left = rest;
        if left.len() == before {
            return None;
        }
    }
    Some(out)
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

    pub fn store(&self) -> &Arc<dyn ServerStore> {
        &self.store
    }

    /// A phone's witness: changes the feed holds under its name that it never wrote. Each one
    /// that is really stored in that case under this device is recorded for the officer (an
    /// audit row `verify` reports) and its case set aside, so it spreads no further; anything
    /// else in a report is not a change of this device and is left out. At most
    /// `FORGERY_REPORTS_PER_REQUEST_MAX` are read per request.
    fn record_forgeries(
        &self,
        device: &AuthedDevice,
        reports: &[protocol::ForgeryReport],
        now: i64,
    ) -> Result<(), ServiceError> {
        let device_id = &device.device.device_id;
        for report in reports.iter().take(FORGERY_REPORTS_PER_REQUEST_MAX) {
            let hash_ok = report.hash.len() == 64
                && report
                    .hash
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !valid_case_id(&report.case_id) || !hash_ok {
                continue;
            }
            let subject = format!("{} {}", report.case_id, report.hash);
            // Known already: nothing more to do (an indexed lookup, before any other read).
            if self
                .store
                .audit_row_exists(crate::evidence::FORGERY_REPORTED, &subject)?
            {
                continue;
            }
            // Who pushed each of the case's changes (hashes and devices, no payloads).
            let under_this_device = self
                .store
                .change_origins(&report.case_id)?
                .iter()
                .any(|o| o.hash == report.hash && o.device_id == *device_id);
            if !under_this_device {
                continue;
            }
            self.store
                .audit(now, device_id, crate::evidence::FORGERY_REPORTED, &subject)?;
            self.store.quarantine_case(
                &report.case_id,
                "a phone reported a change under its name that it never wrote",
                now,
            )?;
            tracing::error!(device = %device_id, case = %report.case_id, "forgery reported by a phone");
        }
        Ok(())
    }

    /// Whether an erasure the database holds was made by `case erase`: its `case.erased` row is
    /// in the chained audit log. One that is not is logged and never acted on.
    fn erasure_proven(&self, case_id: &str) -> Result<bool, ServiceError> {
        let proven = self
            .store
            .audit_row_exists(crate::evidence::ERASURE_ACTION, case_id)?;
        if !proven {
            tracing::error!(case = %case_id, "an erasure the audit log never recorded: not announced to phones; run verify");
        }
        Ok(proven)
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

    /// Checks `Authorization: Bearer <device>.<token>`. A revoked device is refused unless
    /// `allow_revoked` (the wipe confirmation is the one thing it may still say).
    pub fn authenticate(
        &self,
        header: Option<&str>,
        allow_revoked: bool,
    ) -> Result<AuthedDevice, ServiceError> {
        let (device_id, token) = header
            .and_then(auth::parse_bearer)
            .ok_or(ServiceError::Unauthorized)?;
        let device = self
            .store
            .device(device_id)?
            .ok_or(ServiceError::Unauthorized)?;
        if !auth::token_matches(token, &device.token_hash) {
            return Err(ServiceError::Unauthorized);
        }
        if device.revoked && !allow_revoked {
            return Err(ServiceError::Revoked);
        }
        let user = self
            .store
            .user(&device.user_id)?
            .ok_or(ServiceError::Unauthorized)?;
        Ok(AuthedDevice { device, user })
    }

    pub fn enroll(
        &self,
        request: &EnrollRequest,
        now: i64,
    ) -> Result<EnrollResponse, ServiceError> {
        let actor_ok = request.actor.len() >= 16
            && request.actor.len() <= 64
            && request.actor.chars().all(|c| c.is_ascii_hexdigit());
        if !actor_ok || request.device_name.is_empty() || request.device_name.len() > 100 {
            return Err(ServiceError::BadRequest(
                "invalid actor or device name".into(),
            ));
        }
        let token = auth::new_token();
        let device = Device {
            device_id: auth::new_device_id(),
            user_id: String::new(),
            actor: request.actor.to_ascii_lowercase(),
            name: request.device_name.clone(),
            token_hash: auth::sha256_hex(&token),
            revoked: false,
            wiped: false,
        };
        let code = auth::normalise_code(&request.code);
        // Codes issued before they were keyed were stored as a plain SHA-256; they expire within
        // ENROLLMENT_CODE_TTL_SECS of the upgrade, and the two forms cannot collide.
        let redeemed = match self.store.redeem_enrollment_code(
            &self.codes.code_hash(&code),
            &request.user,
            now,
            &device,
        ) {
            Ok(None) => self.store.redeem_enrollment_code(
                &auth::sha256_hex(&code),
                &request.user,
                now,
                &device,
            ),
            other => other,
        };
        let user = match redeemed {
            Ok(Some(user)) => user,
            Ok(None) => {
                return Err(ServiceError::Forbidden(
                    "unknown, used or expired enrollment code".into(),
                ))
            }
            Err(StorageError::Conflict(_)) => {
                return Err(ServiceError::BadRequest(
                    "this actor id is already enrolled".into(),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(EnrollResponse {
            device_id: device.device_id,
            token,
            user: user.user_id,
            role: user.role.as_str().to_string(),
        })
    }

    pub fn confirm_wipe(&self, device: &AuthedDevice, now: i64) -> Result<(), ServiceError> {
        if device.device.revoked {
            self.store.confirm_wipe(&device.device.device_id, now)?;
        }
        Ok(())
    }

    /// One sync round trip: store what the device may push, then answer with the next page of
    /// its caseload.
    pub fn sync(
        &self,
        device: &AuthedDevice,
        body: &[u8],
        now: i64,
    ) -> Result<(Vec<u8>, SyncStats), ServiceError> {
        check_version(body)?;
        let request: SyncRequest =
            protocol::decode_request(body).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        if request.push.len() > protocol::PUSH_CASES_MAX {
            return Err(ServiceError::BadRequest(format!(
                "more than {} cases in one push",
                protocol::PUSH_CASES_MAX
            )));
        }
        let cursor = match self.store.check_cursor(request.cursor, &request.mark)? {
            CursorCheck::Matches => Some(request.cursor),
            CursorCheck::Reset => {
                // A phone read another history up to its cursor than the feed now holds (a
                // restore from a backup, or a history rewritten): kept as evidence for
                // `verify`, by position and mark only.
                if request.cursor > 0 && !request.mark.is_empty() {
                    self.store.audit(
                        now,
                        &device.device.device_id,
                        crate::evidence::HISTORY_DIFFERS,
                        &format!("{} {}", request.cursor, hex::encode(&request.mark)),
                    )?;
                }
                None
            }
            CursorCheck::Invalid => {
                return Err(ServiceError::BadRequest("cursor beyond the feed".into()))
            }
        };
        let PushPlan {
            to_store: accepted_cases,
            accepted,
            refused,
            reassigned,
        } = self.plan_push(device, &request.push, now)?;
        let audit = if refused.is_empty() {
            None
        } else {
            match self.refusal_audits.admit(&device.device.device_id, now) {
                RefusalAudit::Write => Some(("push.refused", refusal_audit(&refused))),
                RefusalAudit::Count(n) => Some((
                    "push.refused_unlisted",
                    format!("{n} refusals today past {REFUSAL_AUDITS_PER_DAY} rows"),
                )),
                RefusalAudit::Skip => None,
            }
        };
        let stored = if accepted_cases.is_empty() && audit.is_none() {
            0
        } else {
            self.store.store_changes(
                &device.device.device_id,
                &accepted_cases,
                audit
                    .as_ref()
                    .map(|(action, subject)| (*action, subject.as_str())),
                now,
            )?
        };
        let mut raced = Vec::new();
        if !accepted_cases.is_empty() {
            let ids: Vec<String> = accepted_cases.iter().map(|c| c.case_id.clone()).collect();
            raced = self.refresh_summaries_of(&ids)?;
        }
        self.apply_reassignments(&device.user, reassigned, &raced, now)?;
        // What the device said, for its supervisor: the cases still waiting on it are those it
        // counted less the ones this push settled (accepted, or already held).
        let (app_version, waiting) = if request.version >= 4 {
            let version: String = request
                .report
                .app_version
                .chars()
                .take(protocol::APP_VERSION_CHARS_MAX)
                .collect();
            let settled = accepted.len() as u64;
            (
                Some(version),
                Some(request.report.waiting_cases.saturating_sub(settled)),
            )
        } else {
            (None, None)
        };
        self.store.record_device_sync(
            &device.device.device_id,
            now,
            app_version.as_deref(),
            waiting,
        )?;
        self.record_forgeries(device, &request.forgeries, now)?;
        let (body, pulled) = self.pull_page(
            device,
            request.version,
            cursor,
            (
                request.erasures_seen,
                request.removals_seen,
                request.forms_seen,
            ),
            accepted,
            refused.clone(),
        )?;
        Ok((
            body,
            SyncStats {
                changes_stored: stored,
                cases_refused: refused.len(),
                changes_pulled: pulled,
            },
        ))
    }

    /// A change made in the console by `user` (a conflict settled, a merge, a reassignment):
    /// written by the server under the actor registered to that user's console
    /// (`console-<user>`), then checked and stored exactly as a device's push, so devices
    /// receive it with its verified author like any other change. `edit` gets the case as the
    /// server holds it.
    pub fn console_change<T>(
        &self,
        user: &User,
        case_id: &str,
        now: i64,
        edit: impl FnOnce(
            &mut suivi_core::CaseDoc,
            &FormRegistry,
            &suivi_core::ChangeContext,
        ) -> suivi_core::Result<T>,
    ) -> Result<T, ServiceError> {
        let _one_at_a_time = self.console_lock();
        self.console_change_locked(user, case_id, now, edit)
    }

    /// `console_change`, for a caller already holding the console lock.
    fn console_change_locked<T>(
        &self,
        user: &User,
        case_id: &str,
        now: i64,
        edit: impl FnOnce(
            &mut suivi_core::CaseDoc,
            &FormRegistry,
            &suivi_core::ChangeContext,
        ) -> suivi_core::Result<T>,
    ) -> Result<T, ServiceError> {
        let console = self.console_author(user, now)?;
        let ids = [case_id.to_string()];
        let access = self.store.case_access(&ids)?;
        let mut edit = Some(edit);
        let (outcome, checked) = self.console_check(
            &console,
            case_id,
            access.get(case_id),
            &mut OpsBudget::new(self.refresh_forms()),
            now,
            &mut |doc, forms, ctx| {
                let edit = edit
                    .take()
                    .ok_or_else(|| suivi_core::Error::InvalidInput("one case".into()))?;
                edit(doc, forms, ctx)
            },
        )?;
        self.console_store(&console, checked.into_iter().collect(), now)?;
        outcome
    }

    /// The same edit made in the console on many cases (a list reassigned at once): each case
    /// checked as a push (`CONSOLE_WORKERS` at a time: on PostgreSQL each waits on its reads),
    /// then stored `CONSOLE_BATCH_CASES` to a transaction. Returns each case's outcome, in the
    /// order given; one refused case never stops the others.
    #[allow(clippy::type_complexity)]
    pub fn console_changes<T: Send>(
        &self,
        user: &User,
        case_ids: &[String],
        now: i64,
        edit: impl Fn(
                &mut suivi_core::CaseDoc,
                &FormRegistry,
                &suivi_core::ChangeContext,
            ) -> suivi_core::Result<T>
            + Sync,
    ) -> Result<Vec<(String, Result<T, ServiceError>)>, ServiceError> {
        let _one_at_a_time = self.console_lock();
        let console = self.console_author(user, now)?;
        let mut outcomes = Vec::with_capacity(case_ids.len());
        for chunk in case_ids.chunks(CONSOLE_BATCH_CASES) {
            let valid: Vec<String> = chunk
                .iter()
                .filter(|id| valid_case_id(id))
                .cloned()
                .collect();
            let access = self.store.case_access(&valid)?;
            let share = chunk.len().div_ceil(CONSOLE_WORKERS).max(1);
            let done: Vec<Result<Vec<_>, ServiceError>> = std::thread::scope(|scope| {
                let workers: Vec<_> = chunk
                    .chunks(share)
                    .map(|part| {
                        let (console, access, edit) = (&console, &access, &edit);
                        scope.spawn(move || {
                            // Each case a whole budget, as if pushed alone; each worker keeps
                            // the agents it looked up.
                            let mut agents = HashMap::new();
                            part.iter()
                                .map(|case_id| {
                                    let mut budget = OpsBudget {
                                        agents: std::mem::take(&mut agents),
                                        ..OpsBudget::new(self.refresh_forms())
                                    };
                                    let checked = self.console_check(
                                        console,
                                        case_id,
                                        access.get(case_id),
                                        &mut budget,
                                        now,
                                        &mut |doc, forms, ctx| edit(doc, forms, ctx),
                                    );
                                    agents = budget.agents;
                                    checked.map(|(outcome, checked)| {
                                        (case_id.clone(), outcome, checked)
                                    })
                                })
                                .collect::<Result<Vec<_>, ServiceError>>()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| {
                        w.join().unwrap_or_else(|_| {
                            Err(ServiceError::Internal("a console worker panicked".into()))
                        })
                    })
                    .collect()
            });
            let mut checked_cases = Vec::new();
            for part in done {
                for (case_id, outcome, checked) in part? {
                    outcomes.push((case_id, outcome));
                    checked_cases.extend(checked);
                }
            }
            self.console_store(&console, checked_cases, now)?;
        }
        Ok(outcomes)
    }

    fn console_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // One console change at a time on this instance: two made at once under one console
        // actor would both take the same sequence number and break the case's history.
        self.console_writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The device, actor and change context a console user's changes are written under.
    fn console_author(&self, user: &User, now: i64) -> Result<ConsoleAuthor, ServiceError> {
        let actor = automerge::ActorId::random();
        let device = self
            .store
            .console_device(&user.user_id, &actor.to_hex_string(), now)?;
        let actor = automerge::ActorId::from(
            hex::decode(&device.actor).map_err(|e| ServiceError::Internal(e.to_string()))?,
        );
        Ok(ConsoleAuthor {
            authed: AuthedDevice {
                device,
                user: user.clone(),
            },
            actor,
            ctx: suivi_core::ChangeContext {
                time: chrono::DateTime::from_timestamp(now, 0).unwrap_or_default(),
                ..suivi_core::ChangeContext::now(user.user_id.clone())
            },
        })
    }

    /// One case of a console edit: loaded as stored, edited under the console actor, checked as
    /// a push. The edit's outcome for the caller, and what to store if it wrote anything. Only
    /// a failing store is an error here.
    #[allow(clippy::type_complexity)]
    fn console_check<T>(
        &self,
        console: &ConsoleAuthor,
        case_id: &str,
        existing: Option<&CaseAccess>,
        scratch: &mut OpsBudget,
        now: i64,
        edit: &mut dyn FnMut(
            &mut suivi_core::CaseDoc,
            &FormRegistry,
            &suivi_core::ChangeContext,
        ) -> suivi_core::Result<T>,
    ) -> Result<(Result<T, ServiceError>, Option<Checked>), ServiceError> {
        let not_found = || ServiceError::Forbidden(format!("no case {case_id} in your caseload"));
        // An erased case has no owner left: not found, like a case outside the scope.
        let existing = match existing {
            Some(a)
                if valid_case_id(case_id)
                    && self.write_mode(&console.authed.user, Some(a)).is_some() =>
            {
                a
            }
            _ => return Ok((Err(not_found()), None)),
        };
        // A stored case that does not parse (for `case check`) fails alone.
        let stored = match self.stored_changes(case_id) {
            Ok(stored) => stored,
            Err(e @ ServiceError::Storage(_)) => return Err(e),
            Err(e) => return Ok((Err(e), None)),
        };
        let mut doc = match CaseCheck::load(case_id, stored.clone()) {
            Ok(c) => suivi_core::CaseDoc::from_automerge(
                c.into_document().with_actor(console.actor.clone()),
            ),
            Err(e) => {
                let why = format!("stored case does not load: {e:?}");
                return Ok((Err(ServiceError::Internal(why)), None));
            }
        };
        let before = doc.heads();
        let out = match edit(&mut doc, &self.refresh_forms(), &console.ctx) {
            Ok(out) => out,
            Err(e) => return Ok((Err(ServiceError::BadRequest(e.to_string())), None)),
        };
        let changes = doc.changes_since(&before);
        if changes.is_empty() {
            return Ok((Ok(out), None));
        }
        let pushed = CaseChanges {
            case_id: case_id.to_string(),
            changes: changes
                .into_iter()
                .map(serde_bytes::ByteBuf::from)
                .collect(),
        };
        Ok(
            match self.check_case(
                &console.authed,
                &pushed,
                Some(existing),
                scratch,
                now,
                Some(stored),
            )? {
                Ok(Some(checked)) => (Ok(out), Some(checked)),
                Ok(None) => (Ok(out), None),
                Err((reason, detail)) => (
                    Err(ServiceError::BadRequest(format!(
                        "refused: {} {detail}",
                        reason.as_str()
                    ))),
                    None,
                ),
            },
        )
    }

    /// Stores checked console changes in one transaction (audited `console.change`), then moves
    /// the cases they reassigned.
    fn console_store(
        &self,
        console: &ConsoleAuthor,
        checked: Vec<Checked>,
        now: i64,
    ) -> Result<(), ServiceError> {
        if checked.is_empty() {
            return Ok(());
        }
        let (to_store, moves): (Vec<AcceptedCase>, Vec<Option<(String, User)>>) = checked
            .into_iter()
            .map(|(accepted, to)| {
                let case_id = accepted.case_id.clone();
                (accepted, to.map(|to| (case_id, to)))
            })
            .unzip();
        let subject = match to_store.as_slice() {
            [one] => one.case_id.clone(),
            many => format!("{} cases", many.len()),
        };
        self.store.store_changes(
            &console.authed.device.device_id,
            &to_store,
            Some(("console.change", &subject)),
            now,
        )?;
        let ids: Vec<String> = to_store.iter().map(|c| c.case_id.clone()).collect();
        let raced = self.refresh_summaries_of(&ids)?;
        self.apply_reassignments(
            &console.authed.user,
            moves.into_iter().flatten().collect(),
            &raced,
            now,
        )?;
        Ok(())
    }

    /// Merges two records of the same child, for a supervisor or admin who may write both:
    /// `merged` is marked as merged into `survivor` and becomes read-only everywhere, the
    /// survivor links it (and shows its referrals and visits), both written as console changes
    /// with their verified author. Whoever held one case now holds the other too, so every
    /// phone that shows either can follow the link. Audited as `console.merge`.
    pub fn merge_cases(
        &self,
        by: &User,
        survivor: &str,
        merged: &str,
        now: i64,
    ) -> Result<(), ServiceError> {
        if !matches!(by.role, Role::Supervisor | Role::Admin) {
            return Err(ServiceError::Forbidden(
                "supervisors and admins merge cases".into(),
            ));
        }
        if survivor == merged || !valid_case_id(survivor) || !valid_case_id(merged) {
            return Err(ServiceError::BadRequest("two different case ids".into()));
        }
        let ids = [survivor.to_string(), merged.to_string()];
        let access = self.store.case_access(&ids)?;
        for id in &ids {
            let writable = access
                .get(id)
                .is_some_and(|a| self.write_mode(by, Some(a)) == Some(WriteMode::Write));
            if !writable || self.store.is_erased(id)? {
                return Err(ServiceError::Forbidden(format!(
                    "no case {id} in your caseload"
                )));
            }
        }
        // The whole merge under the console lock: two merges of one pair at once (A into B,
        // B into A) would otherwise leave both cases merged away.
        let _one_at_a_time = self.console_lock();
        let state = |id: &str| -> Result<(Option<String>, Vec<String>), ServiceError> {
            let doc = self
                .case_document(id)?
                .ok_or_else(|| ServiceError::BadRequest(format!("case {id} does not load")))?;
            let read =
                || -> suivi_core::Result<_> { Ok((doc.merged_into()?, doc.merged_cases()?)) };
            read().map_err(|e| ServiceError::Internal(e.to_string()))
        };
        let (survivor_into, survivor_links) = state(survivor)?;
        let (merged_into, _) = state(merged)?;
        if survivor_into.is_some() {
            return Err(ServiceError::BadRequest(format!(
                "case {survivor} was merged away: it cannot survive"
            )));
        }
        // A merge stopped halfway (the merged side written, the survivor's link not) is
        // finished by making it again.
        match merged_into.as_deref() {
            None => self.console_change_locked(by, merged, now, |doc, _, ctx| {
                doc.merge_into(survivor, ctx)
            })?,
            Some(into) if into == survivor => {}
            Some(_) => {
                return Err(ServiceError::BadRequest(format!(
                    "case {merged} was already merged away"
                )))
            }
        }
        if !survivor_links.iter().any(|id| id == merged) {
            self.console_change_locked(by, survivor, now, |doc, _, ctx| {
                doc.link_merged_case(merged, ctx)
            })?;
        }
        let holders = |a: &CaseAccess| -> Vec<String> {
            std::iter::once(a.created_by.clone())
                .chain(a.assignees.iter().cloned())
                .collect()
        };
        if let (Some(a), Some(b)) = (access.get(survivor), access.get(merged)) {
            let (hold_a, hold_b) = (holders(a), holders(b));
            for user in hold_a.iter().filter(|u| !hold_b.contains(u)) {
                self.store.assign_case(merged, user, now)?;
            }
            for user in hold_b.iter().filter(|u| !hold_a.contains(u)) {
                self.store.assign_case(survivor, user, now)?;
            }
        }
        self.store.audit(
            now,
            &by.user_id,
            "console.merge",
            &format!("{merged} -> {survivor}"),
        )?;
        Ok(())
    }

    /// Moves cases to the agent `to`, from the console or an admin's command: only cases `by`
    /// may write, only to an agent of their team (a supervisor: of its own team). The former
    /// owner's phones push what they recorded for `REASSIGN_GRACE_SECS`, and remove the case.
    /// Returns the cases moved.
    pub fn reassign(
        &self,
        by: &User,
        case_ids: &[String],
        to: &str,
        now: i64,
    ) -> Result<Vec<String>, ServiceError> {
        let to = self
            .store
            .user(to)?
            .filter(|u| u.role == Role::Agent)
            .ok_or_else(|| ServiceError::BadRequest(format!("{to} is not an agent")))?;
        if by.role == Role::Supervisor && to.team != by.team {
            return Err(ServiceError::Forbidden(format!(
                "{} is not in your team",
                to.user_id
            )));
        }
        if !matches!(by.role, Role::Supervisor | Role::Admin) {
            return Err(ServiceError::Forbidden(
                "supervisors and admins reassign cases".into(),
            ));
        }
        // The cases `by` may write that are not `to`'s yet, in `to`'s team: what moves.
        let mut permitted = Vec::with_capacity(case_ids.len());
        for chunk in case_ids.chunks(500) {
            let access = self.store.case_access(chunk)?;
            permitted.extend(
                chunk
                    .iter()
                    .filter(|id| {
                        access.get(id.as_str()).is_some_and(|a| {
                            self.write_mode(by, Some(a)) == Some(WriteMode::Write)
                                && a.created_by != to.user_id
                                && a.team == to.team
                        })
                    })
                    .cloned(),
            );
        }
        // A console user writes the reassignment into each case, which moves it (so one made
        // at the same time on a supervisor's phone shows as a conflict); the server's own
        // command, acting as no registered user, moves ownership only.
        let mut left = permitted.clone();
        if self.store.user(&by.user_id)?.is_some() {
            let to_id = to.user_id.clone();
            let outcomes = self.console_changes(by, &permitted, now, |doc, _, ctx| {
                // A merged-away case stays with the survivor's record, read-only.
                if let Some(into) = doc.merged_into()? {
                    return Err(suivi_core::Error::CaseMerged {
                        case_id: doc.case_id()?,
                        into,
                    });
                }
                doc.assign_to(&to_id, ctx)
            })?;
            left.clear();
            let mut refused = HashSet::new();
            for (case_id, outcome) in outcomes {
                match outcome {
                    // Written, so moved as the change was stored.
                    Ok(true) => {}
                    // Given to `to` in the document already: ownership follows.
                    Ok(false) => left.push(case_id),
                    // A stored case that does not load (`case check` finds it) still moves.
                    Err(e @ ServiceError::Internal(_)) => {
                        tracing::warn!(case = %case_id, error = %e, "moved without writing the case");
                        left.push(case_id);
                    }
                    Err(e) => {
                        tracing::info!(case = %case_id, error = %e, "not reassigned");
                        refused.insert(case_id);
                    }
                }
            }
            permitted.retain(|id| !refused.contains(id));
        }
        // Whatever the documents did not move (given to `to` before, or not written).
        for chunk in left.chunks(500) {
            self.store
                .reassign_cases(chunk, &to, &by.user_id, now, now + REASSIGN_GRACE_SECS)?;
        }
        Ok(permitted)
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

    /// Recomputes the projections of these cases that a concurrent push left stale. Another push
    /// can land meanwhile and leave one stale again: that push refreshes it in turn. Returns
    /// those cases: another push stored changes to them while this one was checked.
    fn refresh_summaries_of(&self, case_ids: &[String]) -> Result<Vec<String>, ServiceError> {
        let stale = self.store.stale_summaries(case_ids)?;
        self.rebuild_summaries(&stale)?;
        Ok(stale)
    }

    /// Recomputes and stores the projections of these cases from their stored changes.
    pub fn rebuild_summaries(&self, case_ids: &[String]) -> Result<(), ServiceError> {
        let mut writes = Vec::new();
        let forms = self.refresh_forms();
        for case_id in case_ids {
            // One bad stored case (for `case check` to find) never stops the others.
            let stored = match self.stored_changes(case_id) {
                Ok(stored) => stored,
                Err(ServiceError::Storage(e)) => return Err(ServiceError::Storage(e)),
                Err(e) => {
                    tracing::warn!(case = %case_id, error = %e, "a stored case does not parse");
                    continue;
                }
            };
            let count = stored.len() as u64;
            match CaseCheck::load(case_id, stored) {
                Ok(check) => {
                    writes.extend(summary::summarize(check.into_document(), count, &forms))
                }
                Err(e) => {
                    tracing::warn!(case = %case_id, error = ?e, "a stored case does not load")
                }
            }
        }
        if !writes.is_empty() {
            self.store.write_summaries(&writes)?;
        }
        Ok(())
    }

    /// Builds every missing or stale projection (a store from before projections, a refresh
    /// cut short), a batch at a time. Returns how many it wrote.
    pub fn refresh_all_summaries(&self) -> Result<usize, ServiceError> {
        let mut done = 0;
        let mut last: Option<String> = None;
        loop {
            let batch = self.store.summaries_to_refresh(256)?;
            // A case that cannot be summarized stays listed: stop rather than loop on it.
            if batch.is_empty() || batch.last() == last.as_ref() {
                return Ok(done);
            }
            self.rebuild_summaries(&batch)?;
            done += batch.len();
            last = batch.last().cloned();
        }
    }

    /// What a user may do to a case, from the envelope alone (its id and who owns it).
    fn write_mode(&self, user: &User, existing: Option<&CaseAccess>) -> Option<WriteMode> {
        policy::write_mode(
            &user.subject(),
            existing.map(CaseAccess::ownership).as_ref(),
        )
    }

    /// Decides, case by case, what of a push is stored: nothing for a case the device may not
    /// write, nothing not authored by the device, nothing whose history the server lacks,
    /// nothing that breaks the case layout rules.
    fn plan_push(
        &self,
        device: &AuthedDevice,
        push: &[CaseChanges],
        now: i64,
    ) -> Result<PushPlan, ServiceError> {
        let ids: Vec<String> = push
            .iter()
            .filter(|c| valid_case_id(&c.case_id))
            .map(|c| c.case_id.clone())
            .collect();
        let access = self.store.case_access(&ids)?;
        let mut plan = PushPlan {
            to_store: Vec::new(),
            accepted: Vec::new(),
            refused: Vec::new(),
            reassigned: Vec::new(),
        };
        let mut seen = HashSet::new();
        let mut allowance = Allowance::today(self.store.as_ref(), &device.device.device_id, now)?;
        let mut budget = OpsBudget::new(self.refresh_forms());
        for case in push {
            if !valid_case_id(&case.case_id) || !seen.insert(case.case_id.clone()) {
                // An id that is not ours is echoed back cut short, never as sent.
                let id: String = case.case_id.chars().take(32).collect();
                plan.refused
                    .push(Refusal::new(&id, RefusalReason::Malformed, "case id"));
                continue;
            }
            let existing = access.get(&case.case_id);
            match self.check_case(device, case, existing, &mut budget, now, None)? {
                Ok(None) => plan.accepted.push(case.case_id.clone()),
                Ok(Some((accepted, reassigned))) => match allowance.take(&accepted) {
                    Ok(()) => {
                        plan.accepted.push(case.case_id.clone());
                        plan.to_store.push(accepted);
                        if let Some(to) = reassigned {
                            plan.reassigned.push((case.case_id.clone(), to));
                        }
                    }
                    Err((reason, detail)) => {
                        plan.refused
                            .push(Refusal::new(&case.case_id, reason, &detail))
                    }
                },
                Err((reason, detail)) => {
                    plan.refused
                        .push(Refusal::new(&case.case_id, reason, &detail))
                }
            }
        }
        Ok(plan)
    }

    /// Checks one pushed case: `Ok(None)` if the server holds all of it already.
    fn check_case(
        &self,
        device: &AuthedDevice,
        case: &CaseChanges,
        existing: Option<&CaseAccess>,
        budget: &mut OpsBudget,
        now: i64,
        preloaded: Option<Vec<Change>>,
    ) -> Result<Result<Option<Checked>, (RefusalReason, String)>, ServiceError> {
        if self.store.is_erased(&case.case_id)? {
            // Checked first: an erased case has no owner left, so it would read as new. An
            // erasure the audit log never recorded was not made by `case erase`: the phone is
            // told to set the case aside, never to delete it.
            let reason = if self.erasure_proven(&case.case_id)? {
                RefusalReason::Erased
            } else {
                RefusalReason::Quarantined
            };
            return Ok(Err((reason, String::new())));
        }
        if case.changes.len() > protocol::PUSH_CHANGES_PER_CASE_MAX {
            return Ok(Err((RefusalReason::TooManyChanges, String::new())));
        }
        if existing.is_some() && self.store.is_quarantined(&case.case_id)? {
            return Ok(Err((RefusalReason::Quarantined, String::new())));
        }
        let mode = match self.write_mode(&device.user, existing) {
            Some(mode) => mode,
            // A case reassigned away: what the former owner's phones recorded before they heard
            // of it is still accepted, for a grace period (it had the right when it wrote it).
            None if existing.is_some()
                && self
                    .store
                    .in_handover(&case.case_id, &device.user.user_id, now)? =>
            {
                WriteMode::Write
            }
            None => return Ok(Err((RefusalReason::Forbidden, String::new()))),
        };
        let mut parsed = Vec::with_capacity(case.changes.len());
        for raw in &case.changes {
            match check::parse_change(raw) {
                Ok(change) => parsed.push(change),
                Err(e) => return Ok(Err(refusal_of(&e))),
            }
        }
        // Which of these (and of their dependencies) the server holds.
        let mut lookup: Vec<String> = parsed.iter().map(|c| c.hash().to_string()).collect();
        lookup.extend(
            parsed
                .iter()
                .flat_map(|c| c.deps().iter().map(ToString::to_string)),
        );
        // A console change is made on the stored case the caller loaded: no need to ask again.
        let known: HashSet<String> = match (&preloaded, existing) {
            (_, None) => HashSet::new(),
            (Some(stored), Some(_)) => {
                let held: HashSet<String> = stored.iter().map(|c| c.hash().to_string()).collect();
                lookup.into_iter().filter(|h| held.contains(h)).collect()
            }
            (None, Some(_)) => self.store.known_changes(&case.case_id, &lookup)?,
        };
        let mut have: HashSet<String> = known.clone();
        let mut fresh = Vec::new();
        for change in parsed {
            let hash = change.hash().to_string();
            if have.contains(&hash) {
                continue;
            }
            if change.actor_id().to_hex_string() != device.device.actor {
                return Ok(Err((RefusalReason::WrongActor, String::new())));
            }
            if !change.deps().iter().all(|d| have.contains(&d.to_string())) {
                return Ok(Err((RefusalReason::MissingDeps, String::new())));
            }
            have.insert(hash);
            fresh.push(change);
        }
        if fresh.is_empty() {
            return Ok(Ok(None));
        }
        let raw: Vec<(String, Vec<u8>)> = fresh
            .iter()
            .map(|c| (c.hash().to_string(), c.raw_bytes().to_vec()))
            .collect();
        let stored = match (preloaded, existing) {
            (_, None) => Vec::new(),
            (Some(stored), Some(_)) => stored,
            (None, Some(_)) => self.stored_changes(&case.case_id)?,
        };
        let ops = stored.iter().chain(&fresh).map(Change::len).sum();
        if let Err(refusal) = budget.take(ops) {
            return Ok(Err(refusal));
        }
        let change_count = (stored.len() + fresh.len()) as u64;
        let team = existing.map_or(device.user.team.as_str(), |a| a.team.as_str());
        let (checked, reassigned) = match self.validate(
            device,
            (&case.case_id, team, now),
            stored,
            mode,
            fresh,
            budget,
        )? {
            Ok(checked) => checked,
            Err(refusal) => return Ok(Err(refusal)),
        };
        Ok(Ok(Some((
            AcceptedCase {
                case_id: case.case_id.clone(),
                new_case: existing
                    .is_none()
                    .then(|| (device.user.user_id.clone(), device.user.team.clone())),
                changes: raw,
                summary: summary::summarize(checked, change_count, &budget.forms),
            },
            reassigned,
        ))))
    }

    /// Applies new changes to the server's copy of the case (rebuilt from `stored`) and runs
    /// the layout rules; the checked document, for its projection, and the agent the changes
    /// gave the case to, if they reassigned it (an agent of the case's `team`, or a refusal).
    #[allow(clippy::type_complexity)]
    fn validate(
        &self,
        device: &AuthedDevice,
        (case_id, team, now): (&str, &str, i64),
        stored: Vec<Change>,
        mode: WriteMode,
        fresh: Vec<Change>,
        scratch: &mut OpsBudget,
    ) -> Result<Result<(AutoCommit, Option<User>), (RefusalReason, String)>, ServiceError> {
        let forms = scratch.forms.clone();
        let agents = &mut scratch.agents;
        let Ok(mut copy) = CaseCheck::load(case_id, stored) else {
            return Ok(Err((
                RefusalReason::Quarantined,
                "stored history fails validation".to_string(),
            )));
        };
        let before = suivi_core::case_doc::single_assignee(copy.document());
        let role = device.user.role;
        let author = Author {
            user: &device.user.user_id,
            audit_notes_only: mode == WriteMode::AuditNotesOnly,
            // Merge links are written by the server for a supervisor in the console, never
            // pushed by a phone.
            links_cases: device.device.device_id == console_device_id(&device.user.user_id)
                && matches!(role, Role::Supervisor | Role::Admin),
            // A supervisor reassigns the cases of their own team only (one assigned to them
            // from elsewhere, they may edit but not give away).
            reassigns: mode == WriteMode::Write
                && (role == Role::Admin || (role == Role::Supervisor && device.user.team == team)),
        };
        // A phone's change is checked against its own dependencies, which a hostile phone
        // chooses: a merged-away case takes changes "made without knowing of the merge" only
        // for the grace a reassigned case gets, then nothing but the console's.
        if !author.links_cases {
            if let Some(at) = copy.merged_at() {
                if now > at.timestamp().saturating_add(REASSIGN_GRACE_SECS) {
                    return Ok(Err((RefusalReason::Forbidden, "merged_into".to_string())));
                }
            }
        }
        if let Err(e) = copy.apply(fresh, author, &forms) {
            return Ok(Err(refusal_of(&e)));
        }
        let doc = copy.into_document();
        let after = suivi_core::case_doc::single_assignee(&doc);
        let reassigned = match after {
            Some(agent) if Some(&agent) != before.as_ref() => {
                let found = match agents.get(&agent) {
                    Some(found) => found.clone(),
                    None => {
                        let found = self.store.user(&agent)?;
                        agents.insert(agent.clone(), found.clone());
                        found
                    }
                };
                match found {
                    Some(user) if user.role == Role::Agent && user.team == team => Some(user),
                    _ => {
                        return Ok(Err((
                            RefusalReason::Forbidden,
                            "assigned_to: not an agent of the case's team".to_string(),
                        )))
                    }
                }
            }
            _ => None,
        };
        Ok(Ok((doc, reassigned)))
    }

    /// Moves the cases a stored push or console change gave to another agent; `by` is who
    /// reassigned them. Returns the cases whose owner changed. If the server stops between
    /// storing the change and this move, the case stays with its owner until the next
    /// reassignment: the document then shows the agent it was given to (`case check` does not
    /// catch this; a supervisor sees the owner in the console).
    fn apply_reassignments(
        &self,
        by: &User,
        reassigned: Vec<(String, User)>,
        raced: &[String],
        now: i64,
    ) -> Result<Vec<String>, ServiceError> {
        let mut by_agent: HashMap<String, (User, Vec<String>)> = HashMap::new();
        for (case_id, to) in reassigned {
            // A case another push stored changes to meanwhile (its summary came out stale) is
            // read again as stored: if that push reassigned it too, the case holds two values,
            // a conflict, and stays where it is until one is kept.
            if raced.contains(&case_id) {
                let still = self
                    .case_document(&case_id)?
                    .and_then(|mut doc| suivi_core::case_doc::single_assignee(doc.automerge()));
                if still.as_deref() != Some(to.user_id.as_str()) {
                    tracing::info!(case = %case_id, "a reassignment met another: not moved");
                    continue;
                }
            }
            by_agent
                .entry(to.user_id.clone())
                .or_insert_with(|| (to, Vec::new()))
                .1
                .push(case_id);
        }
        let mut moved = Vec::new();
        for (to, case_ids) in by_agent.into_values() {
            for chunk in case_ids.chunks(CONSOLE_BATCH_CASES) {
                moved.extend(self.store.reassign_cases(
                    chunk,
                    &to,
                    &by.user_id,
                    now,
                    now + REASSIGN_GRACE_SECS,
                )?);
            }
        }
        Ok(moved)
    }

    /// A case's stored changes, parsed under the same bounds as a push.
    fn stored_changes(&self, case_id: &str) -> Result<Vec<Change>, ServiceError> {
        self.store
            .case_changes(case_id)?
            .iter()
            .map(|raw| check::parse_change(raw))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ServiceError::Internal(format!("stored change of {case_id}: {e}")))
    }

    /// Checks every stored case against the layout rules, as if each change were pushed again
    /// by the user whose device pushed it: the cases that fail, with why.
    pub fn check_stored_cases(&self) -> Result<Vec<(String, String)>, ServiceError> {
        let mut failing = Vec::new();
        let forms = self.refresh_forms();
        for case_id in self.store.case_ids()? {
            let raw = self.store.case_changes(&case_id)?;
            let mut changes = Vec::new();
            let mut broken = None;
            for r in &raw {
                match check::parse_change(r) {
                    Ok(c) => changes.push(c),
                    Err(e) => {
                        broken = Some(e.to_string());
                        break;
                    }
                }
            }
            let result = match broken {
                Some(why) => Err(why),
                None => CaseCheck::load(&case_id, changes)
                    .map_err(|e| e.to_string())
                    .and_then(|copy| {
                        let doc = copy.into_document();
                        check::check_document(&doc, &case_id, &forms).map_err(|e| e.to_string())
                    }),
            };
            if let Err(why) = result {
                failing.push((case_id, why));
            }
        }
        Ok(failing)
    }

    /// The next page of the device's caseload after `cursor` (from the start when `None`: the
    /// device's cursor does not match this feed), at most `PULL_PAGE_BYTES_MAX` compressed.
    /// The response to a sync request of `version`: a version 3 device gets a version 3
    /// response (the same layout, read without the removals appended at its end).
    fn pull_page(
        &self,
        device: &AuthedDevice,
        version: u16,
        cursor: Option<u64>,
        (erasures_seen, removals_seen, forms_seen): (u64, u64, u64),
        accepted: Vec<String>,
        refused: Vec<Refusal>,
    ) -> Result<(Vec<u8>, usize), ServiceError> {
        let from = cursor.unwrap_or(0);
        // The cases first, then the forms: a case in this page was pushed by a phone that held
        // its form version, which was published (committed) before, so the forms read after
        // the page include every version its cases use. A version 4 device is sent no forms
        // and keeps the ones it has.
        let page = self
            .store
            .feed_page(&device.viewer(), from, PULL_PAGE_RAW_BYTES_MAX)?;
        let published = if version >= 5 {
            self.store
                .forms_after(forms_seen, crate::forms::FORMS_PER_RESPONSE_MAX)?
        } else {
            Vec::new()
        };
        let forms_cursor = published.last().map_or(forms_seen, |f| f.seq);
        let more_forms = published.len() == crate::forms::FORMS_PER_RESPONSE_MAX;
        let forms: Vec<protocol::FormUpdate> = published
            .into_iter()
            // Every device ships the built-in versions: only their retirement is news.
            .filter(|f| f.published_by != crate::forms::BUILT_IN || f.retired_at.is_some())
            .map(|f| protocol::FormUpdate {
                definition: f.definition,
                retired: f.retired_at.is_some(),
            })
            .collect();
        // More forms wait than one response holds: no case travels until they all have, so
        // none arrives before its version.
        let (mut rows, page_cursor, page_more) = if more_forms {
            (Vec::new(), from, true)
        } else {
            (page.rows, page.cursor, page.more)
        };
        // The device's own changes in this page's range, listed back to it (version 6 on) so it
        // can witness one it never wrote. More than a page lists: the page ends at the last.
        let (mut page_cursor, mut page_more) = (page_cursor, page_more);
        let mut own = if version >= 6 {
            self.store.own_feed_rows(
                &device.device.device_id,
                from,
                page_cursor,
                OWN_CHANGES_PER_PAGE_MAX + 1,
            )?
        } else {
            Vec::new()
        };
        if own.len() > OWN_CHANGES_PER_PAGE_MAX {
            own.truncate(OWN_CHANGES_PER_PAGE_MAX);
            let cut = own.last().map_or(from, |(seq, _, _)| *seq);
            rows.retain(|r| r.seq <= cut);
            page_cursor = cut;
            page_more = true;
        }
        let erasures = self
            .store
            .erasures_after(erasures_seen, crate::erasure::ERASURES_PER_PAGE)?;
        let erasures_cursor = erasures.last().map_or(erasures_seen, |(seq, _)| *seq);
        let erasures_listed = erasures.len();
        // Only erasures the audit log recorded are announced: one added to the database by
        // hand would have every phone delete a live child's case.
        let mut erased = Vec::with_capacity(erasures.len());
        for (_, case_id) in erasures {
            if self.erasure_proven(&case_id)? {
                erased.push(case_id);
            }
        }
        let removals = if version >= 4 {
            self.store.removals_after(
                &device.user.user_id,
                removals_seen,
                crate::erasure::ERASURES_PER_PAGE,
            )?
        } else {
            Vec::new()
        };
        let mut response = SyncResponse {
            version: version.min(PROTOCOL_VERSION),
            accepted,
            refused,
            authors: Vec::new(),
            pull: Vec::new(),
            cursor: page_cursor,
            mark: serde_bytes::ByteBuf::new(),
            more: page_more
                || erasures_listed == crate::erasure::ERASURES_PER_PAGE
                || removals.len() == crate::erasure::ERASURES_PER_PAGE
                || more_forms,
            reset: cursor.is_none(),
            erasures_cursor,
            erased,
            removals_cursor: removals.last().map_or(removals_seen, |(seq, _)| *seq),
            removed: removals.into_iter().map(|(_, id)| id).collect(),
            forms,
            forms_cursor,
            own: Vec::new(),
        };
        loop {
            response.own = own
                .iter()
                .filter(|(seq, _, _)| *seq <= response.cursor)
                .map(|(_, case_id, hash)| protocol::OwnChange {
                    case_id: case_id.clone(),
                    hash: hash.clone(),
                })
                .collect();
            let (authors, pull) = group_by_case(&rows);
            response.authors = authors;
            response.pull = pull;
            response.mark = serde_bytes::ByteBuf::from(self.store.feed_mark(response.cursor)?);
            let body =
                protocol::encode(&response).map_err(|e| ServiceError::Internal(e.to_string()))?;
            if body.len() <= protocol::PULL_PAGE_BYTES_MAX || rows.len() <= 1 {
                return Ok((body, rows.len()));
            }
            // Too big once compressed: keep a proportional share of the rows and try again.
            let keep = (rows.len() * protocol::PULL_PAGE_BYTES_MAX * 9 / 10 / body.len())
                .clamp(1, rows.len() - 1);
            rows.truncate(keep);
            response.cursor = rows.last().map(|r| r.seq).unwrap_or(from);
            response.more = true;
        }
    }

    /// The fallback: Automerge's own sync protocol for one case, with the same checks as a push.
    pub fn doc_sync(
        &self,
        device: &AuthedDevice,
        body: &[u8],
        now: i64,
    ) -> Result<Vec<u8>, ServiceError> {
        check_version(body)?;
        let request: DocSyncRequest =
            protocol::decode(body).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        if !valid_case_id(&request.case_id) {
            return Err(ServiceError::BadRequest("invalid case id".into()));
        }
        let case_id = request.case_id.as_str();
        let forms = self.refresh_forms();
        let refuse = |reason, detail: &str| {
            protocol::encode(&DocSyncResponse {
                version: PROTOCOL_VERSION,
                message: None,
                refused: Some(Refusal::new(case_id, reason, detail)),
            })
            .map_err(|e| ServiceError::Internal(e.to_string()))
        };
        if self.store.is_erased(case_id)? {
            if !self.erasure_proven(case_id)? {
                return refuse(RefusalReason::Quarantined, "");
            }
            return refuse(RefusalReason::Erased, "");
        }
        let access = self
            .store
            .case_access(std::slice::from_ref(&request.case_id))?;
        let existing = access.get(case_id);
        // The same decision as a push: an officer's fallback carries audit notes only, and a
        // former owner's phone may still hand over what it recorded.
        let handover =
            existing.is_some() && self.store.in_handover(case_id, &device.user.user_id, now)?;
        let mode = self
            .write_mode(&device.user, existing)
            .or(handover.then_some(WriteMode::Write));
        let Some(mode) = mode else {
            self.audit_refusal(
                device,
                "docsync.refused",
                &format!("{case_id} forbidden"),
                now,
            )?;
            return refuse(RefusalReason::Forbidden, "");
        };
        if existing.is_some() && self.store.is_quarantined(case_id)? {
            return refuse(RefusalReason::Quarantined, "");
        }
        let stored = self.stored_changes(case_id)?;
        let stored_hashes: HashSet<ChangeHash> = stored.iter().map(Change::hash).collect();
        let mut doc = AutoCommit::new();
        doc.apply_changes(stored.clone())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut state = State::new();
        if !request.message.is_empty() {
            let Ok(Ok(message)) = std::panic::catch_unwind(|| Message::decode(&request.message))
            else {
                return Err(ServiceError::BadRequest(
                    "sync message does not decode".into(),
                ));
            };
            // Plain change chunks only, each checked like a pushed one: a whole document (a
            // version 2 message) could hold compressed columns of any size.
            let mut incoming = Vec::new();
            for chunk in message.changes.iter() {
                match check::parse_change(chunk) {
                    Ok(c) if !stored_hashes.contains(&c.hash()) => incoming.push(c),
                    Ok(_) => {}
                    Err(e) => {
                        let (reason, detail) = refusal_of(&e);
                        return refuse(reason, &detail);
                    }
                }
            }
            if incoming
                .iter()
                .any(|c| c.actor_id().to_hex_string() != device.device.actor)
            {
                self.audit_refusal(
                    device,
                    "docsync.refused",
                    &format!("{case_id} wrong_actor"),
                    now,
                )?;
                return refuse(RefusalReason::WrongActor, "");
            }
            if !incoming.is_empty() {
                let Some(ordered) = causal_order(incoming, &stored_hashes) else {
                    return refuse(RefusalReason::MissingDeps, "");
                };
                let raw: Vec<(String, Vec<u8>)> = ordered
                    .iter()
                    .map(|c| (c.hash().to_string(), c.raw_bytes().to_vec()))
                    .collect();
                // The stored changes were read once, above, and serve the reply too.
                let change_count = (stored.len() + ordered.len()) as u64;
                let team = existing.map_or(device.user.team.as_str(), |a| a.team.as_str());
                let (checked, reassigned) = match self.validate(
                    device,
                    (case_id, team, now),
                    stored.clone(),
                    mode,
                    ordered.clone(),
                    &mut OpsBudget::new(forms.clone()),
                )? {
                    Ok(checked) => checked,
                    Err((reason, detail)) => return refuse(reason, &detail),
                };
                doc.apply_changes(ordered)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                let accepted = AcceptedCase {
                    case_id: case_id.to_string(),
                    new_case: existing
                        .is_none()
                        .then(|| (device.user.user_id.clone(), device.user.team.clone())),
                    changes: raw,
                    summary: summary::summarize(checked, change_count, &forms),
                };
                let mut allowance =
                    Allowance::today(self.store.as_ref(), &device.device.device_id, now)?;
                if let Err((reason, detail)) = allowance.take(&accepted) {
                    return refuse(reason, &detail);
                }
                self.store
                    .store_changes(&device.device.device_id, &[accepted], None, now)?;
                let raced = self.refresh_summaries_of(&[case_id.to_string()])?;
                let moves = reassigned.map(|to| (case_id.to_string(), to));
                self.apply_reassignments(&device.user, moves.into_iter().collect(), &raced, now)?;
            }
            // The message's own bookkeeping (heads, have, need) without its changes, which
            // were applied above.
            let mut bookkeeping = message;
            bookkeeping.changes = automerge::sync::ChunkList::empty();
            let synced = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                doc.sync().receive_sync_message(&mut state, bookkeeping)
            }));
            if !matches!(synced, Ok(Ok(()))) {
                return refuse(RefusalReason::Malformed, "sync message");
            }
            state.their_capabilities = None;
        }
        let reply = doc.sync().generate_sync_message(&mut state);
        protocol::encode(&DocSyncResponse {
            version: PROTOCOL_VERSION,
            message: reply.map(|m| serde_bytes::ByteBuf::from(m.encode())),
            refused: None,
        })
        .map_err(|e| ServiceError::Internal(e.to_string()))
    }
}

/// The one audit row of a push with refusals: validated case ids only (a malformed id is
/// counted, never written), at most `AUDIT_REFUSALS_LISTED_MAX` listed.
fn refusal_audit(refused: &[Refusal]) -> String {
    let mut listed: Vec<String> = refused
        .iter()
        .filter(|r| valid_case_id(&r.case_id))
        .take(AUDIT_REFUSALS_LISTED_MAX)
        .map(|r| format!("{} {}", r.case_id, r.reason.as_str()))
        .collect();
    if refused.len() > listed.len() {
        listed.push(format!("+{} more", refused.len() - listed.len()));
    }
    listed.join(", ")
}

/// What one sync did, for the structured log (counts only: no case data).
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncStats {
    pub changes_stored: usize,
    pub cases_refused: usize,
    pub changes_pulled: usize,
}

/// Groups consecutive rows of one case, and lists each row's verified author once per page.
fn group_by_case(rows: &[FeedRow]) -> (Vec<protocol::Author>, Vec<PulledCase>) {
    let mut authors: Vec<protocol::Author> = Vec::new();
    let mut index: HashMap<(&str, &str), u32> = HashMap::new();
    let mut out: Vec<PulledCase> = Vec::new();
    for row in rows {
        let author = *index
            .entry((row.user_id.as_str(), row.device_id.as_str()))
            .or_insert_with(|| {
                authors.push(protocol::Author {
                    user: row.user_id.clone(),
                    device: row.device_id.clone(),
                });
                (authors.len() - 1) as u32
            });
        let change = PulledChange {
            data: serde_bytes::ByteBuf::from(row.data.clone()),
            author,
            received_at: row.received_at,
        };
        match out.last_mut() {
            Some(last) if last.case_id == row.case_id => last.changes.push(change),
            _ => out.push(PulledCase {
                case_id: row.case_id.clone(),
                changes: vec![change],
            }),
        }
    }
    (authors, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Role;

    fn user(id: &str, role: Role, team: &str) -> User {
        User {
            user_id: id.into(),
            role,
            team: team.into(),
            password_hash: None,
        }
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
                &mut OpsBudget::new(service.forms()),
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
                cursor: 0,
                mark: Default::default(),
                push: vec![],
                erasures_seen: 0,
                report: Default::default(),
                removals_seen: 0,
                forms_seen: 0,
                forgeries: vec![],
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
            protocol::encode(&SyncRequest {
                version: PROTOCOL_VERSION,
                cursor: 0,
                mark: Default::default(),
                push: (0..cases)
                    .map(|n| CaseChanges {
                        case_id: format!("{n:032x}"),
                        changes: vec![],
                    })
                    .collect(),
                erasures_seen: 0,
                report: Default::default(),
                removals_seen: 0,
                forms_seen: 0,
                forgeries: vec![],
            })
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
        let child: Record = serde_json::from_value(serde_json::json!({
            "child_first_name": "Awa", "child_last_name": "Konaté", "sex": "female",
            "dob_known": false, "estimated_age": 12, "province": "Sikasso", "commune": "Kignan",
            "village": "Kignan", "school_status": "dropped_out", "school_level": "primary",
            "works": true, "work_sector": "artisanal_gold_mining",
            "hazardous_conditions": ["mercury"], "hours_per_week": 30, "risk_level": "high",
            "consent_to_share": true
        }))
        .unwrap();
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
                version: PROTOCOL_VERSION,
                cursor,
                mark: serde_bytes::ByteBuf::from(mark.clone()),
                push: vec![],
                erasures_seen: 0,
                report: Default::default(),
                removals_seen: 0,
                forms_seen: 0,
                forgeries: vec![],
            })
            .unwrap();
            let (reply, _) = service.sync(&fatima, &body, 0).unwrap();
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
        let body = protocol::encode(&SyncRequest {
            version: PROTOCOL_VERSION,
            cursor: 0,
            mark: Default::default(),
            push: vec![],
            erasures_seen: 0,
            report: Default::default(),
            removals_seen: 0,
            forms_seen: 0,
            forgeries: vec![],
        })
        .unwrap();
        let (reply, _) = service.sync(&fatima, &body, 0).unwrap();
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
