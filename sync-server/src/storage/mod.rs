//! Server storage behind traits, one per concern (`traits`), and `ServerStore` over them all:
//! SQLite is the embedded default; PostgreSQL implements the same traits and runs the same
//! conformance tests. The stores store and fetch; the decisions (who may read and write what)
//! live in `service` and `suivi_core::policy`, shared by every implementation.

mod case_list;
mod indicators;
pub mod migrate;
pub mod postgres;
mod queries;
pub mod sealed;
pub mod sqlite;
mod traits;

pub use queries::*;
pub use traits::*;

/// Every concern's trait, to call a store's methods on a concrete `SqliteStore` or
/// `PostgresStore` (through `dyn ServerStore` they need no import).
pub mod prelude {
    pub use super::traits::{
        AccountStore, AuditStore, FeedStore, FormStore, LifecycleStore, ProjectionStore,
        ServerStore, SignInStore,
    };
}

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    Conflict(String),
    /// What a write was decided from changed meanwhile (another instance wrote first): decide
    /// again.
    #[error("changed meanwhile: {0}")]
    Moved(String),
    #[error("storage: {0}")]
    Backend(String),
    /// The store was busy (a lock held too long, a serialization failure, a deadlock): the
    /// same request can succeed if tried again. Devices are told to retry later (503).
    #[error("storage busy, retry later: {0}")]
    Retryable(String),
}

impl StorageError {
    /// Whether trying the same operation again can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Retryable(_))
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// The feed mark of a row: SHA-256 over the previous row's mark, this row's seq, its change's
/// hash and its audience. Equal marks at a position mean the same feed up to there; a store
/// migration that carries every row carries the marks with them.
pub fn next_feed_mark(
    previous: &[u8],
    seq: u64,
    change_hash: &str,
    audience: Option<&str>,
) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(previous);
    h.update(seq.to_be_bytes());
    h.update(change_hash.as_bytes());
    h.update([u8::from(audience.is_some())]);
    h.update(audience.unwrap_or_default().as_bytes());
    h.finalize().to_vec()
}

/// The feed mark from the first row of `FeedMarks::case_id_from` on: the same, and also the
/// row's case id (length-prefixed), so a row cannot be passed off as another case's (say, a
/// live case's newest visit deleted and its row kept as an erased case's).
pub fn next_feed_mark_with_case(
    previous: &[u8],
    seq: u64,
    change_hash: &str,
    audience: Option<&str>,
    case_id: &str,
) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(next_feed_mark(previous, seq, change_hash, audience));
    h.update((case_id.len() as u64).to_be_bytes());
    h.update(case_id.as_bytes());
    h.finalize().to_vec()
}

/// Which formula a feed row's mark follows: rows written before the case id was covered keep
/// their marks (every phone sends back the mark at its cursor, and a different one means a
/// reset), so the new formula starts at the first row written after the upgrade, recorded in
/// the database (`feed_mark_formula`). Moving that row breaks every mark from either side of
/// it, as any other edit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedMarks {
    pub case_id_from: u64,
}

impl FeedMarks {
    pub fn next(
        &self,
        previous: &[u8],
        seq: u64,
        change_hash: &str,
        audience: Option<&str>,
        case_id: &str,
    ) -> Vec<u8> {
        if seq >= self.case_id_from {
            next_feed_mark_with_case(previous, seq, change_hash, audience, case_id)
        } else {
            next_feed_mark(previous, seq, change_hash, audience)
        }
    }
}

/// The mark of an audit row: SHA-256 over the previous row's mark and this row's id, time,
/// actor, action and subject (each string length-prefixed, so no two rows hash alike). Deleting
/// or editing a row breaks every mark after it; `verify` checks them against the checkpoints
/// journalled outside the database.
pub fn next_audit_mark(
    previous: &[u8],
    id: u64,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(previous);
    h.update(id.to_be_bytes());
    h.update(at.to_be_bytes());
    for text in [actor, action, subject] {
        h.update((text.len() as u64).to_be_bytes());
        h.update(text.as_bytes());
    }
    h.finalize().to_vec()
}

/// The referral statuses of a summary as one column: each between spaces, so one status is
/// matched as ` status ` and never as part of another.
pub fn statuses_column(statuses: &[String]) -> String {
    format!(" {} ", statuses.join(" "))
}

/// A case id as devices make them (32 hex digits): anything else is refused, never stored.
pub fn valid_case_id(id: &str) -> bool {
    id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())
}

/// Roles and what they may do: the one access policy, in core.
pub use suivi_core::policy::Role;
use suivi_core::policy::{Ownership, ReadScope, Subject};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub user_id: String,
    pub role: Role,
    pub team: String,
    #[serde(skip)]
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub device_id: String,
    pub user_id: String,
    pub actor: String,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    pub revoked: bool,
    pub wiped: bool,
}

/// A form version as the server published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedForm {
    pub form_id: String,
    pub version: u32,
    /// The definition as canonical JSON: what devices receive, check and keep.
    pub definition: String,
    pub published_at: i64,
    /// The admin who published it, or `built-in` for the first versions of a project.
    pub published_by: String,
    /// Set once the version takes no new records.
    pub retired_at: Option<i64>,
    /// Where it stands in the forms feed: set when published, raised again when retired.
    pub seq: u64,
}

/// A device and what it said at its last sync, with its user's role and team: the console's
/// agents and devices page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStatus {
    pub device: Device,
    pub role: Role,
    pub team: String,
    pub last_sync_at: Option<i64>,
    /// `None`: never synced, or only with a version 3 app, which does not say.
    pub app_version: Option<String>,
    pub waiting_cases: Option<u64>,
}

/// Who owns a case on the server: what caseload access is decided from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseAccess {
    pub created_by: String,
    pub team: String,
    pub assignees: Vec<String>,
}

impl CaseAccess {
    /// The case's ownership, as the access policy reads it.
    pub fn ownership(&self) -> Ownership<'_> {
        Ownership {
            created_by: &self.created_by,
            team: &self.team,
            assignees: &self.assignees,
        }
    }
}

/// Whether a case's former owner still reads it once it moved to `owner` of `team` (so its
/// phones keep it): the policy's read scope, decided here for both stores, which only fetch
/// the facts. `former` is the former owner's role and team, `None` for a user the store does
/// not hold (assignments alone count then).
pub(crate) fn still_reads_after_move(
    former_id: &str,
    former: Option<(Role, &str)>,
    owner: &str,
    team: &str,
    assignees: &[String],
) -> bool {
    let case = Ownership {
        created_by: owner,
        team,
        assignees,
    };
    match former {
        Some((role, user_team)) => {
            let subject = Subject {
                user_id: former_id,
                role,
                team: user_team,
            };
            ReadScope::of(role).includes(&subject, &case)
        }
        None => assignees.iter().any(|a| a == former_id),
    }
}

impl User {
    /// A user without a console password (an agent, or one whose password is set later).
    pub fn new(user_id: &str, role: Role, team: &str) -> User {
        User {
            user_id: user_id.to_string(),
            role,
            team: team.to_string(),
            password_hash: None,
        }
    }

    /// This user, as the access policy reads it.
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            user_id: &self.user_id,
            role: self.role,
            team: &self.team,
        }
    }
}

/// The changes of one case that a push adds, already checked by the service.
#[derive(Debug, Clone)]
pub struct AcceptedCase {
    pub case_id: String,
    /// Set when the case is new on the server: its creator and team.
    pub new_case: Option<(String, String)>,
    /// (hash, raw change) in causal order.
    pub changes: Vec<(String, Vec<u8>)>,
    /// The case's projection after these changes, written in the same transaction. `None`
    /// keeps the one stored (the service could not read the document: logged).
    pub summary: Option<SummaryWrite>,
}

/// What one admission writes in one transaction (`FeedStore::write_admission`).
#[derive(Debug, Clone, Copy)]
pub struct AdmissionWrite<'a> {
    pub device_id: &'a str,
    pub cases: &'a [AcceptedCase],
    /// How many changes each case held when admission read it (a new case: 0). A case left
    /// out is not checked.
    pub held: &'a [(String, u64)],
    pub audit: Option<(&'a str, &'a str)>,
    /// Cases the accepted changes gave to another agent of their team, and who did.
    pub moves: &'a [(String, User)],
    pub moved_by: &'a str,
    /// Until when a former owner may still push to a case moved away from it.
    pub grace_until: i64,
    /// (user, case): a former owner's phones told again to remove a case once the work it
    /// pushed in its handover is stored.
    pub removals: &'a [(String, String)],
    pub now: i64,
}

impl<'a> AdmissionWrite<'a> {
    /// The accepted cases alone: no audit row, no moves, no removals, no check.
    pub fn new(device_id: &'a str, cases: &'a [AcceptedCase], now: i64) -> Self {
        AdmissionWrite {
            device_id,
            cases,
            held: &[],
            audit: None,
            moves: &[],
            moved_by: "",
            grace_until: now,
            removals: &[],
            now,
        }
    }

    /// The moves grouped by the agent they go to, in their first mention's order.
    pub fn moves_by_agent(&self) -> Vec<(&'a User, Vec<String>)> {
        let mut out: Vec<(&User, Vec<String>)> = Vec::new();
        for (case_id, to) in self.moves {
            match out.iter_mut().find(|(u, _)| u.user_id == to.user_id) {
                Some((_, ids)) => ids.push(case_id.clone()),
                None => out.push((to, vec![case_id.clone()])),
            }
        }
        out
    }
}

/// What the console shows of a case in lists, computed by the service from the checked
/// document. The names and places are sealed at rest on PostgreSQL; the rest is in clear on
/// every store, to filter on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseSummary {
    pub case_id: String,
    pub first_name: String,
    pub last_name: String,
    pub province: Option<String>,
    pub commune: Option<String>,
    pub village: Option<String>,
    pub sex: Option<String>,
    pub work_sector: Option<String>,
    /// The risk seen at the latest visit, or at identification.
    pub risk_level: Option<String>,
    /// Stated, or estimated from the age given at identification.
    pub birth_year: Option<i32>,
    /// The statuses the case's referrals are in, sorted, without repeats; `disputed` when
    /// two devices moved one referral concurrently.
    pub referral_statuses: Vec<String>,
    /// The next visit the latest follow-up set (YYYY-MM-DD).
    pub next_followup_due: Option<String>,
    pub referral_count: u32,
    pub followup_count: u32,
    /// Fields holding concurrent values.
    pub conflict_count: u32,
    /// Set on a case merged into another (the same child registered twice): the survivor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
}

/// Outcome settings as stored (JSON).
pub(crate) fn settings_body(
    settings: &suivi_core::outcome::OutcomeSettings,
) -> StorageResult<String> {
    serde_json::to_string(settings)
        .map_err(|e| StorageError::Backend(format!("outcome settings: {e}")))
}

/// Outcome settings read back; a stored body that does not read is a backend error.
pub(crate) fn settings_of(body: &str) -> StorageResult<suivi_core::outcome::OutcomeSettings> {
    serde_json::from_str(body).map_err(|e| StorageError::Backend(format!("outcome settings: {e}")))
}

/// What the indicators count of a case (`summary::indicators`), kept beside its summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseIndicators {
    /// False for a case merged into another: the same child is counted once.
    pub counted: bool,
    /// YYYY-MM-DD as the agent recorded it; `None`: when the server first received the case.
    pub identified_on: Option<String>,
    pub province: Option<String>,
    pub province_key: Option<String>,
    pub commune: Option<String>,
    pub commune_key: Option<String>,
    pub sector: Option<String>,
    /// The child's sex as recorded (a choice id).
    pub sex: Option<String>,
    pub village: Option<String>,
    pub village_key: Option<String>,
    /// A referral past its draft.
    pub referred: bool,
    /// A referral in service or completed, or a follow-up that lists a service received.
    pub service: bool,
    /// At the latest follow-up that says (`None`: none says).
    pub stopped_working: Option<bool>,
    /// From identification to the first service (a referral taken into service, or a visit
    /// listing a service received).
    pub days_to_service: Option<i64>,
    /// The child's stage (`suivi_core::outcome::Stage`'s code).
    pub stage: String,
    /// `withdrawn` or `prevented`.
    pub classification: Option<String>,
    /// The closure's status when not simply open (`proposed`, `returned`, `closed`, `disputed`).
    pub closure: Option<String>,
    /// A closed case's reason.
    pub closed_reason: Option<String>,
    pub reopenings: i64,
    /// Visits made with a due date set by the visit before, and those made by that date.
    pub visits_scheduled: i64,
    pub visits_on_time: i64,
}

/// The statuses a referral spends time in before its end, and their projection columns.
pub const TIMED_STATUSES: [(&str, &str); 5] = [
    ("draft", "secs_draft"),
    ("sent", "secs_sent"),
    ("accepted", "secs_accepted"),
    ("declined", "secs_declined"),
    ("in_service", "secs_in_service"),
];

/// One referral, as the project-wide referral views read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferralSummary {
    pub referral_id: String,
    pub service_type: Option<String>,
    pub urgency: Option<String>,
    pub provider: Option<String>,
    pub provider_key: Option<String>,
    pub status: String,
    /// Unix times from the devices' clocks.
    pub created_at: Option<i64>,
    pub status_since: Option<i64>,
    /// Seconds spent in each of `TIMED_STATUSES` it has left (`None`: never in it).
    pub secs_in: [Option<i64>; 5],
}

/// Indicator counts of the cases sharing a month, province, commune, sector, sex, age, agent,
/// team and number of days to a first service (`ServerStore::indicator_cells`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndicatorCell {
    /// YYYY-MM of identification.
    pub month: String,
    pub province_key: Option<String>,
    pub commune_key: Option<String>,
    pub sector: Option<String>,
    pub sex: Option<String>,
    /// Years at identification: its year less the birth year (stated or estimated).
    pub age: Option<i64>,
    /// The case's agent (its owner) and team.
    pub agent: String,
    pub team: String,
    pub days_to_service: Option<i64>,
    /// A closed case's reason (`None`: not closed).
    pub closed_reason: Option<String>,
    pub cases: u64,
    pub referred: u64,
    pub service: u64,
    pub stopped_working: u64,
    pub overdue: u64,
    pub withdrawn: u64,
    pub prevented: u64,
    pub exited: u64,
    pub relapsed: u64,
    /// Closures proposed and not decided yet.
    pub proposed: u64,
    /// Cases reopened at least once.
    pub reopened: u64,
    pub visits_scheduled: u64,
    pub visits_on_time: u64,
}

/// A place as typed, under the folded key it is grouped by, and how many cases typed it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceSpelling {
    /// `province`, `commune`, `village`, or `agent` (a case's agent, under its lowercase id).
    pub kind: String,
    pub key: String,
    pub spelling: String,
    pub cases: u64,
}

/// Referrals sharing a service, provider and status, with the time they spent in each status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferralGroup {
    pub service_type: Option<String>,
    pub provider_key: Option<String>,
    /// One spelling of the provider (the first in order).
    pub provider: Option<String>,
    pub status: String,
    pub referrals: u64,
    /// For each of `TIMED_STATUSES`: seconds spent in it (the current stay counted up to now)
    /// summed, and how many referrals were in it.
    pub time_in: [(i64, u64); 5],
}

/// A referral in one status since before a given time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StuckReferral {
    pub case_id: String,
    pub referral_id: String,
    pub service_type: Option<String>,
    pub provider: Option<String>,
    pub urgency: Option<String>,
    pub status: String,
    pub status_since: i64,
    /// The case's agent.
    pub agent: String,
}

/// A case's referrals and follow-ups as core reads them from its document, kept beside its
/// summary (`case_records`) so an export reads rows, not documents. Sealed on PostgreSQL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseRecords {
    pub referrals: Vec<suivi_core::case_doc::Referral>,
    pub followups: Vec<suivi_core::case_doc::FollowUp>,
}

/// A summary and the keys it is found by (`suivi_core::names`): kept by each store in the form
/// its protection at rest allows (on PostgreSQL, keyed hashes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummaryWrite {
    pub summary: CaseSummary,
    /// How many changes of the case it was computed from: a store holding more (another push
    /// committed meanwhile) marks it stale, for the service to recompute.
    pub change_count: u64,
    pub name_terms: Vec<String>,
    pub village_key: Option<String>,
    /// The child's name keys, sorted: equal for the same name however it was spelled.
    pub dup_key: Option<String>,
    pub commune_key: Option<String>,
    pub indicators: CaseIndicators,
    pub referrals: Vec<ReferralSummary>,
    pub records: CaseRecords,
}

/// One case as the console lists it: its summary and what the server knows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCase {
    pub summary: CaseSummary,
    pub created_by: String,
    pub team: String,
    /// When the server last stored a change of it.
    pub updated_at: i64,
}

/// The audit subject that binds a device to its actor (`<device> actor <actor hex>`), written in
/// the chained audit log when a phone enrolls (`device.enroll`, its actor the user) or a
/// console device is made (`device.console`): `verify` holds every device's user and actor to
/// it, so a device rebound in the database to another user or actor is seen.
pub fn device_binding_subject(device_id: &str, actor: &str) -> String {
    format!("{device_id} actor {actor}")
}

/// A binding subject read back: the device and, for rows written since bindings were chained,
/// its actor (rows before name the device alone).
pub fn parse_device_binding(subject: &str) -> (&str, Option<&str>) {
    match subject.split_once(" actor ") {
        Some((device, actor)) => (device, Some(actor)),
        None => (subject, None),
    }
}

/// The audit action of a console device's making (its binding, as `device.enroll` for phones).
pub const CONSOLE_DEVICE_ACTION: &str = "device.console";

/// The device id a user's console changes are stored under.
pub fn console_device_id(user_id: &str) -> String {
    format!("console-{user_id}")
}

/// What a console device keeps as its token hash: not a SHA-256, so no token matches it.
pub const CONSOLE_TOKEN_HASH: &str = "none: written by the server for the console";

/// Who pushed one stored change, as the server verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeOrigin {
    pub hash: String,
    pub user_id: String,
    pub device_id: String,
    pub received_at: i64,
}

/// A console login. The cookie holds a random token; the store keeps its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub token_hash: String,
    pub user_id: String,
    /// Sent back in every form; compared with the session's own.
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen: i64,
}

/// Failed logins for one key (an account, or an address): how many in a row, the last when.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginFailures {
    pub count: u32,
    pub last_at: i64,
}

/// Whose caseload a pull serves.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user_id: String,
    pub role: Role,
    pub team: String,
    pub device_id: String,
}

/// One feed row as a device receives it: the change and what the server verified about it.
#[derive(Debug, Clone)]
pub struct FeedRow {
    pub seq: u64,
    pub case_id: String,
    pub data: Vec<u8>,
    /// The user and device whose credential pushed the change.
    pub user_id: String,
    pub device_id: String,
    pub received_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct FeedPage {
    /// Rows in feed order.
    pub rows: Vec<FeedRow>,
    /// The feed position the page ends at: the last row, or the feed's end if nothing is left.
    pub cursor: u64,
    pub more: bool,
}

impl FeedPage {
    /// Adds a row unless the page's raw bytes already reached `raw_bytes_max`: the row that
    /// reaches the budget is still included, and a page always holds at least one row. `false`
    /// when the page is full: the cursor then stops at its last row and there is more.
    pub fn push_within(
        &mut self,
        row: FeedRow,
        raw_bytes: &mut usize,
        raw_bytes_max: usize,
    ) -> bool {
        if *raw_bytes >= raw_bytes_max {
            if let Some(last) = self.rows.last() {
                self.cursor = last.seq;
                self.more = true;
                return false;
            }
        }
        *raw_bytes += row.data.len();
        self.rows.push(row);
        true
    }
}

/// Where a device's cursor stands against this server's feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorCheck {
    /// The feed holds the history the device read up to its cursor.
    Matches,
    /// It does not (restored or replaced): the device must start again from 0.
    Reset,
    /// A cursor beyond the feed with no mark: not something an honest device sends.
    Invalid,
}

impl CursorCheck {
    /// The decision, whatever the store: `stored` is the feed's mark at the device's cursor
    /// (`None`: no row there; `Some(None)`: a row from before marks existed), `mark` the one the
    /// device holds for it (empty from a device that predates marks).
    pub fn decide(stored: Option<Option<&[u8]>>, mark: &[u8]) -> CursorCheck {
        match (stored, mark.is_empty()) {
            (Some(Some(stored)), false) if stored == mark => CursorCheck::Matches,
            (Some(_), false) => CursorCheck::Reset,
            // A device from before marks existed: its cursor is trusted as far as the feed goes.
            (Some(_), true) => CursorCheck::Matches,
            (None, false) => CursorCheck::Reset,
            (None, true) => CursorCheck::Invalid,
        }
    }
}

/// A device's daily limits: the default, or an admin's override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub new_cases_per_day: u64,
    pub bytes_per_day: u64,
}

/// What a device stored on one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub new_cases: u64,
    pub bytes: u64,
}

/// One row of the audit log: who did what on the server, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: u64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// The row's link in the audit chain (`next_audit_mark`).
    pub mark: Vec<u8>,
}

/// A filter of the audit log (`audit_search`); empty fields filter nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// A user: the rows she wrote, and those written under her devices (her phones' pushes,
    /// her console changes under `console-<user>`).
    pub actor: Option<String>,
    /// Case ids (32 hex digits), or any ids, such as a device's: rows whose subject names one
    /// of them (none given: any row).
    pub case_ids: Vec<String>,
    /// Rows whose action begins with one of these (none given: any action).
    pub action_prefixes: Vec<String>,
    /// Rows written at or after this time, and before that one (unix seconds).
    pub from: Option<i64>,
    pub until: Option<i64>,
    /// Rows with ids below this one (the next page); `None` from the newest.
    pub before: Option<u64>,
    pub limit: usize,
}

/// Where both chains stand: the feed's end and its mark, the last audit row and its mark. A
/// checkpoint journals these outside the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainHeads {
    pub feed_seq: u64,
    pub feed_mark: Vec<u8>,
    pub audit_id: u64,
    pub audit_mark: Vec<u8>,
}

/// One feed row as `verify` reads it: its position and stored mark, and what the mark is
/// computed from. A row an erasure removed keeps that too (`erased`), but no change; one
/// erased before erasures kept it has its mark only (`change` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedLink {
    pub seq: u64,
    pub mark: Vec<u8>,
    pub erased: bool,
    pub change: Option<FeedLinkChange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedLinkChange {
    pub case_id: String,
    /// `None`: the change the row points at is gone.
    pub hash: Option<String>,
    pub audience: Option<String>,
}

/// A stored change as `verify` reads it: its bytes (opened, on PostgreSQL), the hash stored
/// beside them, who pushed it, and whether a feed row holds it (a change no feed row holds
/// was not accepted through a push).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChange {
    pub id: u64,
    pub case_id: String,
    pub hash: String,
    pub data: Vec<u8>,
    pub origin_device: String,
    /// The Automerge actor the origin device was enrolled with (`None`: no such device).
    pub origin_actor: Option<String>,
    pub received_at: i64,
    pub in_feed: bool,
}

/// A case set aside by an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedCase {
    pub case_id: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_former_owner_keeps_a_moved_case_only_if_the_policy_lets_it_read_it() {
        let none: Vec<String> = Vec::new();
        let assigned = vec!["amina".to_string()];
        // (the former owner's role and team, her assignments, whether she still reads it):
        // an agent reads her own cases, so a moved one only by assignment; a supervisor reads
        // her team's, an officer every case; a user the store does not hold, her assignments.
        let cases = [
            (Some((Role::Agent, "sikasso")), &none, false),
            (Some((Role::Agent, "sikasso")), &assigned, true),
            (Some((Role::Supervisor, "sikasso")), &none, true),
            (Some((Role::Supervisor, "souk-sebt")), &none, false),
            (Some((Role::Officer, "")), &none, true),
            (None, &none, false),
            (None, &assigned, true),
        ];
        for (former, assignees, reads) in cases {
            let answer = still_reads_after_move("amina", former, "karim", "sikasso", assignees);
            assert_eq!(answer, reads, "{former:?} assigned {assignees:?}");
        }
    }
}
