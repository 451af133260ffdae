//! The server store's traits, one per concern. `ServerStore` is all of them: callers hold
//! an `Arc<dyn ServerStore>` and never name a concern; each store implements a concern in a
//! file of its own (`sqlite/<concern>.rs`, `postgres/<concern>.rs`).

use std::collections::{HashMap, HashSet};

use super::*;

/// Every concern of a server store, in one object the service holds.
pub trait ServerStore:
    AccountStore
    + FeedStore
    + LifecycleStore
    + AuditStore
    + ProjectionStore
    + FormStore
    + SignInStore
    + Send
    + Sync
    + 'static
{
}

impl<T> ServerStore for T where
    T: AccountStore
        + FeedStore
        + LifecycleStore
        + AuditStore
        + ProjectionStore
        + FormStore
        + SignInStore
        + Send
        + Sync
        + 'static
{
}

/// Users, their devices and enrollment codes, each device's quota and last sync.
pub trait AccountStore {
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

    /// The users of a team.
    fn team_members(&self, team: &str) -> StorageResult<Vec<User>>;

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
}

/// Changes in and out: who owns a case, storing a checked push, the feed a pull reads and its marks.
pub trait FeedStore {
    /// Adds a user to a case's assignees, and queues the case's existing changes for them.
    fn assign_case(&self, case_id: &str, user_id: &str, now: i64) -> StorageResult<()>;

    fn case_access(&self, case_ids: &[String]) -> StorageResult<HashMap<String, CaseAccess>>;

    /// Which of these hashes the server holds for this case.
    fn known_changes(&self, case_id: &str, hashes: &[String]) -> StorageResult<HashSet<String>>;

    /// Writes what one admission decided, in one transaction: the accepted cases' changes (a
    /// change already held is skipped, so a retried push stores nothing twice) and projections,
    /// the audit row, the device's usage for the day (new cases and bytes really stored), the
    /// cases the changes gave to another agent (as `reassign_cases` moves them) and the
    /// removals a handover owes. `Moved` if a case no longer holds the number of changes
    /// admission read (another write landed since): nothing is written, and admission decides
    /// again. Returns how many changes were stored.
    fn write_admission(&self, write: &AdmissionWrite<'_>) -> StorageResult<usize>;

    /// Stores a checked batch (and `audit`, action and subject) in one transaction, with no
    /// check of what admission read: `write_admission` without moves.
    fn store_changes(
        &self,
        device_id: &str,
        batch: &[AcceptedCase],
        audit: Option<(&str, &str)>,
        now: i64,
    ) -> StorageResult<usize> {
        self.write_admission(&AdmissionWrite {
            audit,
            ..AdmissionWrite::new(device_id, batch, now)
        })
    }

    /// Checks a device's cursor and the mark it holds for it against the feed.
    fn check_cursor(&self, cursor: u64, mark: &[u8]) -> StorageResult<CursorCheck>;

    /// The feed mark at a position (empty at 0).
    fn feed_mark(&self, seq: u64) -> StorageResult<Vec<u8>>;

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

    fn feed_page(
        &self,
        viewer: &Viewer,
        cursor: u64,
        raw_bytes_max: usize,
    ) -> StorageResult<FeedPage>;

    /// Every change of one case in feed order, for the per-document fallback.
    fn case_changes(&self, case_id: &str) -> StorageResult<Vec<Vec<u8>>>;
}

/// A case leaving a caseload: erasure, quarantine, reassignment and its handover.
pub trait LifecycleStore {
    /// Erases a case: its changes, feed rows, assignments and case row go; a tombstone (the id
    /// and when) stays, with an audit row. `false` if it was already erased. A case the server
    /// never held gets its tombstone too, so a device that still holds it deletes it.
    fn erase_case(&self, case_id: &str, now: i64) -> StorageResult<bool>;

    fn is_erased(&self, case_id: &str) -> StorageResult<bool>;

    /// The last erasure's and the last removal's positions (0 when there are none): a phone
    /// that has seen further was served by a history this store no longer holds (a restore).
    fn lifecycle_heads(&self) -> StorageResult<(u64, u64)>;

    /// Erasures after `seq`, in order, at most `limit`: (seq, case id).
    fn erasures_after(&self, seq: u64, limit: usize) -> StorageResult<Vec<(u64, String)>>;

    fn quarantine_case(&self, case_id: &str, reason: &str, now: i64) -> StorageResult<bool>;

    fn quarantined_cases(&self) -> StorageResult<Vec<QuarantinedCase>>;

    fn is_quarantined(&self, case_id: &str) -> StorageResult<bool>;

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

    /// Tells `user_id`'s phones again to remove a case (a new removal row): after a former
    /// owner's push in its handover, a phone that kept the case for its unsent work removes it
    /// once that work is stored.
    fn queue_removal(&self, user_id: &str, case_id: &str, now: i64) -> StorageResult<()>;

    /// Whether `user_id` may still push to a case reassigned away from it.
    fn in_handover(&self, case_id: &str, user_id: &str, now: i64) -> StorageResult<bool>;

    /// Cases reassigned away from `user_id` after `seq`, in order, at most `limit`.
    fn removals_after(
        &self,
        user_id: &str,
        seq: u64,
        limit: usize,
    ) -> StorageResult<Vec<(u64, String)>>;
}

/// The audit log, and what `verify` reads of both chains (tamper evidence).
pub trait AuditStore {
    /// Whether the audit log holds a row of `action` about exactly `subject` (an index
    /// lookup: an erasure's `case.erased`, a phone's forgery report).
    fn audit_row_exists(&self, action: &str, subject: &str) -> StorageResult<bool>;

    fn audit(&self, now: i64, actor: &str, action: &str, subject: &str) -> StorageResult<()>;

    /// Audit rows after `after` (a row id; 0 for the start), in the order they were written, at
    /// most `limit`.
    fn audit_log(&self, after: u64, limit: usize) -> StorageResult<Vec<AuditRow>>;

    /// Audit rows newest first, filtered for the console's access log: by actor, by a case id
    /// the subject names, by action prefix (`console.`), before a row id, at most `limit`.
    fn audit_search(&self, query: &AuditQuery) -> StorageResult<Vec<AuditRow>>;

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

    /// Who pushed each of a case's changes.
    fn change_origins(&self, case_id: &str) -> StorageResult<Vec<ChangeOrigin>>;
}

/// The console's projections: case summaries and lists, indicators, referral views, duplicates.
pub trait ProjectionStore {
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

    /// Replaces the projections of cases already stored (a rebuild, a store written before
    /// projections existed). A case not held is skipped.
    fn write_summaries(&self, summaries: &[SummaryWrite]) -> StorageResult<()>;

    /// Stored cases whose projection is missing (stored before projections existed) or stale.
    fn summaries_to_refresh(&self, limit: usize) -> StorageResult<Vec<String>>;

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

    /// The referrals and follow-ups of these cases (`CaseRecords`), for an export: the cases
    /// held, in any order. The caller has read them through the reader's scope.
    fn case_records(&self, case_ids: &[String]) -> StorageResult<Vec<(String, CaseRecords)>>;

    /// The indicators of the cases `reader` reads (merged-away cases left out), grouped by
    /// month, province, commune, sector, sex, age, agent, team and days to a first service. `today` (YYYY-MM-DD) says
    /// which follow-ups are overdue.
    fn indicator_cells(&self, reader: &User, today: &str) -> StorageResult<Vec<IndicatorCell>>;

    /// Each spelling of a province, commune or village (or each agent) of `reader`'s cases,
    /// under its folded key, for the kinds asked (`PlaceSpelling::kind`; others are ignored).
    fn place_spellings(&self, reader: &User, kinds: &[&str]) -> StorageResult<Vec<PlaceSpelling>>;

    /// The referrals of `reader`'s cases grouped by service, provider and status, with the
    /// time spent in each status (a current stay counted up to `now`).
    fn referral_groups(&self, reader: &User, now: i64) -> StorageResult<Vec<ReferralGroup>>;

    /// Referrals of `reader`'s cases, not yet ended, in their status since before `before`,
    /// the longest first, at most `limit`.
    fn stuck_referrals(&self, reader: &User, query: &StuckQuery) -> StorageResult<StuckList>;

    /// One case's listing, whoever reads it (the caller decides access).
    fn listed_case(&self, case_id: &str) -> StorageResult<Option<ListedCase>>;
}

/// Published form versions and the forms feed, and the programme's outcome settings.
pub trait FormStore {
    /// The programme's outcome settings as last published; `None` if never (the defaults
    /// apply).
    fn outcome_settings(&self) -> StorageResult<Option<suivi_core::outcome::OutcomeSettings>>;

    /// Publishes outcome settings as the next version (the one given is ignored), audited as
    /// `outcome_settings.publish` by `by`, and marks every case's projections to be rebuilt
    /// with them. Returns them with their version.
    fn publish_outcome_settings(
        &self,
        settings: &suivi_core::outcome::OutcomeSettings,
        by_at: (&str, i64),
    ) -> StorageResult<suivi_core::outcome::OutcomeSettings>;

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
}

/// Console sign-in: passwords, sessions and the failed-login counts of the throttle.
pub trait SignInStore {
    /// Sets a user's password hash (`None` removes it) and ends the user's sessions.
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
