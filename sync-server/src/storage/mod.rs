//! Server storage behind a trait: SQLite is the embedded default; PostgreSQL implements the same
//! trait and runs the same conformance tests. The trait stores and fetches; the decisions
//! (who may read and write what) live in `service`, shared by every implementation.

mod case_list;
mod indicators;
pub mod migrate;
pub mod postgres;
pub mod sealed;
pub mod sqlite;

use std::collections::{HashMap, HashSet};

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
use suivi_core::policy::{Ownership, Subject};

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

impl User {
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
    /// A referral past its draft.
    pub referred: bool,
    /// A referral in service or completed, or a follow-up that lists a service received.
    pub service: bool,
    /// At the latest follow-up that says (`None`: none says).
    pub stopped_working: Option<bool>,
    /// From identification to the first service (a referral taken into service, or a visit
    /// listing a service received).
    pub days_to_service: Option<i64>,
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
    pub provider: Option<String>,
    pub provider_key: Option<String>,
    pub status: String,
    /// Unix times from the devices' clocks.
    pub created_at: Option<i64>,
    pub status_since: Option<i64>,
    /// Seconds spent in each of `TIMED_STATUSES` it has left (`None`: never in it).
    pub secs_in: [Option<i64>; 5],
}

/// Indicator counts of the cases sharing a month, province, commune, sector and number of
/// days to a first service (`ServerStore::indicator_cells`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndicatorCell {
    /// YYYY-MM of identification.
    pub month: String,
    pub province_key: Option<String>,
    pub commune_key: Option<String>,
    pub sector: Option<String>,
    pub days_to_service: Option<i64>,
    pub cases: u64,
    pub referred: u64,
    pub service: u64,
    pub stopped_working: u64,
    pub overdue: u64,
}

/// A place as typed, under the folded key it is grouped by, and how many cases typed it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceSpelling {
    /// `province` or `commune`.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckReferral {
    pub case_id: String,
    pub referral_id: String,
    pub service_type: Option<String>,
    pub provider: Option<String>,
    pub status: String,
    pub status_since: i64,
}

/// A summary and the keys it is found by (`suivi_core::names`): kept by each store in the form
/// its protection at rest allows (on PostgreSQL, keyed hashes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// A console query over the caseload a user reads: every given criterion must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseQuery {
    /// Name keys (`suivi_core::names::query_terms`): a case matches when it has every one.
    pub name_terms: Vec<String>,
    pub village_key: Option<String>,
    /// The agent who created the case.
    pub agent: Option<String>,
    pub risk_level: Option<String>,
    pub referral_status: Option<String>,
    /// Cases whose next follow-up is due before this date (YYYY-MM-DD): overdue on it.
    pub due_before: Option<String>,
    pub conflicts_only: bool,
    pub offset: u64,
    pub limit: u64,
}

/// A page of listed cases, newest first, and how many match in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseList {
    pub cases: Vec<ListedCase>,
    pub total: u64,
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
    /// A case id (32 hex digits), or any id, such as a device's: rows whose subject names it.
    pub case_id: Option<String>,
    pub action_prefix: Option<String>,
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

pub trait ServerStore: Send + Sync + 'static {
    fn add_user(&self, user: &User, now: i64) -> StorageResult<()>;
    fn user(&self, user_id: &str) -> StorageResult<Option<User>>;
    fn add_enrollment_code(
        &self,
        code_hash: &str,
        user_id: &str,
        expires_at: i64,
    ) -> StorageResult<()>;
    /// Uses a code once and registers the device, atomically. `None`: no valid code for this
    /// user (a code issued for someone else stays unused).
    fn redeem_enrollment_code(
        &self,
        code_hash: &str,
        user_id: &str,
        now: i64,
        device: &Device,
    ) -> StorageResult<Option<User>>;
    fn device(&self, device_id: &str) -> StorageResult<Option<Device>>;
    fn devices(&self) -> StorageResult<Vec<Device>>;
    fn revoke_device(&self, device_id: &str, now: i64) -> StorageResult<bool>;
    fn confirm_wipe(&self, device_id: &str, now: i64) -> StorageResult<()>;
    /// Adds a user to a case's assignees, and queues the case's existing changes for them.
    fn assign_case(&self, case_id: &str, user_id: &str, now: i64) -> StorageResult<()>;
    fn case_access(&self, case_ids: &[String]) -> StorageResult<HashMap<String, CaseAccess>>;
    /// Which of these hashes the server holds for this case.
    fn known_changes(&self, case_id: &str, hashes: &[String]) -> StorageResult<HashSet<String>>;
    /// Stores a checked batch in one transaction; a change already held is skipped, so a retried
    /// push stores nothing twice. `audit` (action, subject) is written in the same transaction,
    /// and so is the device's usage for the day (new cases and bytes really stored).
    fn store_changes(
        &self,
        device_id: &str,
        batch: &[AcceptedCase],
        audit: Option<(&str, &str)>,
        now: i64,
    ) -> StorageResult<usize>;
    /// Erases a case: its changes, feed rows, assignments and case row go; a tombstone (the id
    /// and when) stays, with an audit row. `false` if it was already erased. A case the server
    /// never held gets its tombstone too, so a device that still holds it deletes it.
    fn erase_case(&self, case_id: &str, now: i64) -> StorageResult<bool>;
    fn is_erased(&self, case_id: &str) -> StorageResult<bool>;
    /// Erasures after `seq`, in order, at most `limit`: (seq, case id).
    fn erasures_after(&self, seq: u64, limit: usize) -> StorageResult<Vec<(u64, String)>>;
    /// What a device stored on a UTC day (`unix time / 86400`).
    fn device_usage(&self, device_id: &str, day: i64) -> StorageResult<Usage>;
    /// An admin's override of the default quotas, if any.
    fn device_quota(&self, device_id: &str) -> StorageResult<Option<Quota>>;
    /// Sets (or with `None` clears) a device's override, with an audit row.
    fn set_device_quota(
        &self,
        device_id: &str,
        quota: Option<Quota>,
        now: i64,
    ) -> StorageResult<()>;
    /// Checks a device's cursor and the mark it holds for it against the feed.
    fn check_cursor(&self, cursor: u64, mark: &[u8]) -> StorageResult<CursorCheck>;
    /// The feed mark at a position (empty at 0).
    fn feed_mark(&self, seq: u64) -> StorageResult<Vec<u8>>;
    /// Whether the audit log holds a row of `action` about exactly `subject` (an index
    /// lookup: an erasure's `case.erased`, a phone's forgery report).
    fn audit_row_exists(&self, action: &str, subject: &str) -> StorageResult<bool>;
    /// Where the feed marks' formula covers the case id from (`FeedMarks`).
    fn feed_marks(&self) -> StorageResult<FeedMarks>;
    /// Feed rows after `after` and up to `upto` holding changes `device_id` pushed, in feed
    /// order, at most `limit`: (seq, case, change hash). Listed back to the device so it can
    /// witness a change under its name that it never wrote.
    fn own_feed_rows(
        &self,
        device_id: &str,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> StorageResult<Vec<(u64, String, String)>>;
    /// Every case with stored changes, for `case check`.
    fn case_ids(&self) -> StorageResult<Vec<String>>;
    fn quarantine_case(&self, case_id: &str, reason: &str, now: i64) -> StorageResult<bool>;
    fn quarantined_cases(&self) -> StorageResult<Vec<QuarantinedCase>>;
    fn is_quarantined(&self, case_id: &str) -> StorageResult<bool>;
    fn feed_page(
        &self,
        viewer: &Viewer,
        cursor: u64,
        raw_bytes_max: usize,
    ) -> StorageResult<FeedPage>;
    /// Every change of one case in feed order, for the per-document fallback.
    fn case_changes(&self, case_id: &str) -> StorageResult<Vec<Vec<u8>>>;
    fn audit(&self, now: i64, actor: &str, action: &str, subject: &str) -> StorageResult<()>;
    /// Audit rows after `after` (a row id; 0 for the start), in the order they were written, at
    /// most `limit`.
    fn audit_log(&self, after: u64, limit: usize) -> StorageResult<Vec<AuditRow>>;

    /// Audit rows newest first, filtered for the console's access log: by actor, by a case id
    /// the subject names, by action prefix (`console.`), before a row id, at most `limit`.
    fn audit_search(&self, query: &AuditQuery) -> StorageResult<Vec<AuditRow>>;

    // --- tamper evidence (`verify`) ---

    /// Where the feed and the audit log stand, each with its mark.
    fn chain_heads(&self) -> StorageResult<ChainHeads>;
    /// Feed rows after `after` (rows an erasure removed included), in order, at most `limit`.
    fn feed_links(&self, after: u64, limit: usize) -> StorageResult<Vec<FeedLink>>;
    /// Stored changes with ids after `after`, in id order, at most `limit`.
    fn stored_changes(&self, after: u64, limit: usize) -> StorageResult<Vec<StoredChange>>;
    /// Every stored change of one case, in id order.
    fn case_stored_changes(&self, case_id: &str) -> StorageResult<Vec<StoredChange>>;
    /// The first and last feed positions of a case's rows, if it has any.
    fn case_feed_span(&self, case_id: &str) -> StorageResult<Option<(u64, u64)>>;

    // --- the console ---

    /// Moves cases to `to`, an agent of their team: the owner changes; the new owner's phones
    /// get each case's history at their next sync; the former owner may still push to it until
    /// `grace_until`, and its phones are told to remove it unless it still reads the case (an
    /// assignment). One audit row per case, by `by`, in the same transaction. Returns the cases
    /// moved, skipping those not held, of another team, or already `to`'s.
    fn reassign_cases(
        &self,
        case_ids: &[String],
        to: &User,
        by: &str,
        now: i64,
        grace_until: i64,
    ) -> StorageResult<Vec<String>>;
    /// Whether `user_id` may still push to a case reassigned away from it.
    fn in_handover(&self, case_id: &str, user_id: &str, now: i64) -> StorageResult<bool>;
    /// Cases reassigned away from `user_id` after `seq`, in order, at most `limit`.
    fn removals_after(
        &self,
        user_id: &str,
        seq: u64,
        limit: usize,
    ) -> StorageResult<Vec<(u64, String)>>;
    /// The users of a team.
    fn team_members(&self, team: &str) -> StorageResult<Vec<User>>;
    /// Pairs of cases `reader` reads that may be one child registered twice: the same name
    /// keys and commune, estimated birth years at most a year apart, not marked as two
    /// children. Each pair is (smaller id, larger id), at most `limit`.
    fn duplicate_candidates(
        &self,
        reader: &User,
        limit: usize,
    ) -> StorageResult<Vec<(String, String)>>;
    /// Records that two cases are two children, with an audit row by `by`.
    fn mark_distinct(&self, a: &str, b: &str, by: &str, now: i64) -> StorageResult<()>;

    /// Records a device's sync: when, and what it reported (`None` from a version 3 app).
    fn record_device_sync(
        &self,
        device_id: &str,
        at: i64,
        app_version: Option<&str>,
        waiting_cases: Option<u64>,
    ) -> StorageResult<()>;
    /// Every device of a person (console devices left out), with its status.
    fn device_statuses(&self) -> StorageResult<Vec<DeviceStatus>>;

    /// The device a user's console changes are written under (`console-<user>`, named
    /// `console`), registered with `actor` the first time; it has no credential a request could
    /// present. Returns the stored device.
    fn console_device(&self, user_id: &str, actor: &str, now: i64) -> StorageResult<Device>;

    /// Replaces the projections of cases already stored (a rebuild, a store written before
    /// projections existed). A case not held is skipped.
    fn write_summaries(&self, summaries: &[SummaryWrite]) -> StorageResult<()>;
    /// Stored cases whose projection is missing (stored before projections existed) or stale.
    fn summaries_to_refresh(&self, limit: usize) -> StorageResult<Vec<String>>;
    /// Which of these cases have a stale projection.
    fn stale_summaries(&self, case_ids: &[String]) -> StorageResult<Vec<String>>;
    /// The cases `reader` reads that match `query`, newest first.
    fn list_cases(&self, reader: &User, query: &CaseQuery) -> StorageResult<CaseList>;
    /// The cases `reader` reads, in case id order after `after` ("" from the start), at most
    /// `limit`: an export walks the reader's scope with it, a page at a time.
    fn scoped_cases(
        &self,
        reader: &User,
        after: &str,
        limit: usize,
    ) -> StorageResult<Vec<ListedCase>>;
    /// The indicators of the cases `reader` reads (merged-away cases left out), grouped by
    /// month, province, commune, sector and days to a first service. `today` (YYYY-MM-DD) says
    /// which follow-ups are overdue.
    fn indicator_cells(&self, reader: &User, today: &str) -> StorageResult<Vec<IndicatorCell>>;
    /// Each spelling of a province or commune in `reader`'s cases, under its folded key.
    fn place_spellings(&self, reader: &User) -> StorageResult<Vec<PlaceSpelling>>;
    /// The referrals of `reader`'s cases grouped by service, provider and status, with the
    /// time spent in each status (a current stay counted up to `now`).
    fn referral_groups(&self, reader: &User, now: i64) -> StorageResult<Vec<ReferralGroup>>;
    /// Referrals of `reader`'s cases, not yet ended, in their status since before `before`,
    /// the longest first, at most `limit`.
    fn stuck_referrals(
        &self,
        reader: &User,
        before: i64,
        limit: usize,
    ) -> StorageResult<Vec<StuckReferral>>;
    /// One case's listing, whoever reads it (the caller decides access).
    fn listed_case(&self, case_id: &str) -> StorageResult<Option<ListedCase>>;
    /// Who pushed each of a case's changes.
    fn change_origins(&self, case_id: &str) -> StorageResult<Vec<ChangeOrigin>>;
    /// Sets a user's password hash (`None` removes it) and ends the user's sessions.
    /// Publishes a form version, audited as `form.publish` by `by`, unless that id and
    /// version exist: either way returns the stored version, and whether it is new. The
    /// version was checked against the forms feed at `expected_head`: if the feed moved since
    /// (another publisher), nothing is written and the answer is `Conflict`, to check again.
    fn publish_form(
        &self,
        form_id: &str,
        version: u32,
        definition: &str,
        by_at: (&str, i64),
        expected_head: u64,
    ) -> StorageResult<(PublishedForm, bool)>;
    /// Every published version, by form id and version.
    fn forms(&self) -> StorageResult<Vec<PublishedForm>>;
    /// The versions published or retired after `seq` in the forms feed, in feed order.
    fn forms_after(&self, seq: u64, limit: usize) -> StorageResult<Vec<PublishedForm>>;
    /// The forms feed's end (0 when nothing is published).
    fn forms_head(&self) -> StorageResult<u64>;
    /// Retires a version (audited as `form.retire` by `by`); `None` if it was never published.
    /// Retiring a retired version changes nothing. Checked at `expected_head`, as
    /// `publish_form`.
    fn retire_form(
        &self,
        form_id: &str,
        version: u32,
        by_at: (&str, i64),
        expected_head: u64,
    ) -> StorageResult<Option<PublishedForm>>;

    fn set_password(&self, user_id: &str, hash: Option<&str>, now: i64) -> StorageResult<bool>;
    fn add_session(&self, session: &ConsoleSession) -> StorageResult<()>;
    fn session(&self, token_hash: &str) -> StorageResult<Option<ConsoleSession>>;
    fn touch_session(&self, token_hash: &str, now: i64) -> StorageResult<()>;
    fn end_session(&self, token_hash: &str) -> StorageResult<()>;
    /// Removes sessions idle since before `idle_before` or created before `created_before`.
    fn end_expired_sessions(&self, idle_before: i64, created_before: i64) -> StorageResult<()>;
    fn login_failures(&self, key: &str) -> StorageResult<LoginFailures>;
    /// Counts one failure at `now`. A count whose last failure is older than `forget_before`
    /// starts again at one: failures decay, so an office behind one address is not slowed for
    /// ever by a few typos.
    fn record_login_failure(
        &self,
        key: &str,
        now: i64,
        forget_before: i64,
    ) -> StorageResult<LoginFailures>;
    fn clear_login_failures(&self, key: &str) -> StorageResult<()>;
    /// Takes one failure back (a try counted before its password proved right).
    fn forgive_login_failure(&self, key: &str) -> StorageResult<()>;
}
