//! The PostgreSQL store: one database shared by several server instances.
//!
//! Two things differ from the SQLite store, both explained in `migrations/postgres/001_server.sql`:
//! the feed's positions come from a one-row sequencer (`feed_head`) locked until commit, so the
//! feed is in commit order by construction; and change payloads are sealed by the server
//! (`sealed`), since PostgreSQL has no SQLCipher.
//!
//! The trait is synchronous (the service calls it from blocking threads), so this uses the
//! synchronous `postgres` client over an r2d2 pool. Never call it from an async task.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::Type;
use postgres::{GenericClient, IsolationLevel, NoTls};
use r2d2_postgres::PostgresConnectionManager;
use suivi_core::policy::ReadScope;

use super::sealed::Sealer;
use super::{
    next_audit_mark, AcceptedCase, AuditQuery, AuditRow, CaseAccess, CaseList, CaseQuery,
    CaseSummary, ChainHeads, ChangeOrigin, ConsoleSession, CursorCheck, Device, DeviceStatus,
    FeedLink, FeedLinkChange, FeedMarks, FeedPage, FeedRow, IndicatorCell, ListedCase,
    LoginFailures, PlaceSpelling, PublishedForm, QuarantinedCase, Quota, ReferralGroup, Role,
    ServerStore, StorageError, StorageResult, StoredChange, StuckReferral, SummaryWrite, Usage,
    User, Viewer,
};

const MIGRATIONS: [&str; 9] = [
    include_str!("migrations/postgres/001_server.sql"),
    include_str!("migrations/postgres/002_console.sql"),
    include_str!("migrations/postgres/003_device_status.sql"),
    include_str!("migrations/postgres/004_reassignment.sql"),
    include_str!("migrations/postgres/005_duplicates.sql"),
    include_str!("migrations/postgres/006_audit_chain.sql"),
    include_str!("migrations/postgres/007_indicators.sql"),
    include_str!("migrations/postgres/008_forms.sql"),
    include_str!("migrations/postgres/009_feed_marks.sql"),
];
/// Taken (transaction-scoped) while migrating: instances starting together migrate once.
const MIGRATION_LOCK: i64 = 0x5375_6976_6900_0001;
const USAGE_DAYS_KEPT: i64 = 7;
const FEED_ROWS_PER_QUERY: i64 = 512;
/// Connections per server instance. PostgreSQL's default `max_connections` is 100: three
/// instances and the admin commands fit.
pub const POOL_SIZE: u32 = 16;
const DEVICE_COLUMNS: &str = "device_id, user_id, actor, name, token_hash, revoked_at, wiped_at";
const FORM_COLUMNS: &str =
    "form_id, version, definition, published_at, published_by, retired_at, seq";

fn form_of(r: &postgres::Row) -> StorageResult<PublishedForm> {
    let version: i64 = r.get(1);
    Ok(PublishedForm {
        form_id: r.get(0),
        version: u32::try_from(version)
            .map_err(|_| StorageError::Backend(format!("a stored form version {version}")))?,
        definition: r.get(2),
        published_at: r.get(3),
        published_by: r.get(4),
        retired_at: r.get(5),
        seq: r.get::<_, i64>(6) as u64,
    })
}

/// `Moved` unless the forms feed still ends at `expected` (the table is locked).
fn pg_forms_head_is(tx: &mut impl GenericClient, expected: u64) -> StorageResult<()> {
    let head: i64 = tx
        .query_one("SELECT coalesce(max(seq), 0)::BIGINT FROM forms", &[])
        .map_err(backend)?
        .get(0);
    if head as u64 != expected {
        return Err(StorageError::Moved(format!(
            "the forms feed is at {head}, not {expected}"
        )));
    }
    Ok(())
}

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

pub struct PostgresStore {
    pool: Pool,
    pub(super) sealer: Sealer,
}

/// Keeps PostgreSQL's message (never its DETAIL, which quotes row values) and says whether a
/// retry can succeed: serialization failures, deadlocks, lock and statement time-outs, a
/// server shutting down and a lost connection all can.
pub(super) fn backend(err: postgres::Error) -> StorageError {
    let retryable = err.is_closed()
        || err.code().is_some_and(|code| {
            [
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::LOCK_NOT_AVAILABLE,
                SqlState::QUERY_CANCELED,
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::TOO_MANY_CONNECTIONS,
            ]
            .contains(code)
        })
        // No database error at all: the connection failed (I/O), worth another try.
        || err.as_db_error().is_none();
    let message = match err.as_db_error() {
        Some(db) => format!("postgres: {} ({})", db.message(), db.code().code()),
        None => format!("postgres: {err}"),
    };
    if retryable {
        StorageError::Retryable(message)
    } else {
        StorageError::Backend(message)
    }
}

fn pool_error(err: r2d2::Error) -> StorageError {
    StorageError::Retryable(format!("postgres: no connection: {err}"))
}

fn role(text: &str) -> StorageResult<Role> {
    Role::parse(text).ok_or_else(|| StorageError::Backend(format!("unknown role {text:?}")))
}

fn row_to_device(r: &postgres::Row) -> Device {
    Device {
        device_id: r.get(0),
        user_id: r.get(1),
        actor: r.get(2),
        name: r.get(3),
        token_hash: r.get(4),
        revoked: r.get::<_, Option<i64>>(5).is_some(),
        wiped: r.get::<_, Option<i64>>(6).is_some(),
    }
}

fn pg_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn audit_row(
    tx: &mut impl GenericClient,
    now: i64,
    actor: &str,
    action: &str,
    subject: &str,
) -> StorageResult<()> {
    let mut head = AuditHead::lock(tx)?;
    head.append(tx, now, actor, action, &[subject])?;
    head.save(tx)
}

/// The audit log's sequencer, locked for the rest of the transaction: rows get the ids after
/// the head, each chained to the one before. Transactions take it last (after `feed_head`),
/// so the two locks never wait on each other in opposite orders.
struct AuditHead {
    id: i64,
    mark: Vec<u8>,
}

impl AuditHead {
    fn lock(tx: &mut impl GenericClient) -> StorageResult<AuditHead> {
        let row = tx
            .query_one("SELECT id, mark FROM audit_head FOR UPDATE", &[])
            .map_err(backend)?;
        Ok(AuditHead {
            id: row.get(0),
            mark: row.get(1),
        })
    }

    /// One row per subject, by `actor`, for `action`, in one statement.
    fn append(
        &mut self,
        tx: &mut impl GenericClient,
        now: i64,
        actor: &str,
        action: &str,
        subjects: &[&str],
    ) -> StorageResult<()> {
        let mut ids = Vec::with_capacity(subjects.len());
        let mut marks = Vec::with_capacity(subjects.len());
        for subject in subjects {
            self.id += 1;
            self.mark = next_audit_mark(&self.mark, self.id as u64, now, actor, action, subject);
            ids.push(self.id);
            marks.push(self.mark.clone());
        }
        tx.execute(
            "INSERT INTO audit_log (id, at, actor, action, subject, mark)
             SELECT i, $2, $3, $4, s, m FROM UNNEST($1::bigint[], $5::text[], $6::bytea[]) AS t(i, s, m)",
            &[&ids, &now, &actor, &action, &subjects, &marks],
        )
        .map_err(backend)?;
        Ok(())
    }

    fn save(&self, tx: &mut impl GenericClient) -> StorageResult<()> {
        tx.execute(
            "UPDATE audit_head SET id = $1, mark = $2",
            &[&self.id, &self.mark],
        )
        .map_err(backend)?;
        Ok(())
    }
}

/// Chains audit rows written before the log was chained (their marks are NULL), in id order,
/// and moves the head to the last row: inside the migration's transaction and lock.
fn backfill_audit_marks(tx: &mut impl GenericClient) -> StorageResult<()> {
    let unmarked = tx
        .query(
            "SELECT id, at, actor, action, subject, mark FROM audit_log WHERE mark IS NULL ORDER BY id",
            &[],
        )
        .map_err(backend)?;
    if unmarked.is_empty() {
        return Ok(());
    }
    let mut head = AuditHead::lock(tx)?;
    for row in unmarked.iter().map(row_to_audit) {
        let previous: Vec<u8> = tx
            .query_opt(
                "SELECT mark FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT 1",
                &[&(row.id as i64)],
            )
            .map_err(backend)?
            .and_then(|r| r.get::<_, Option<Vec<u8>>>(0))
            .unwrap_or_default();
        let mark = next_audit_mark(
            &previous,
            row.id,
            row.at,
            &row.actor,
            &row.action,
            &row.subject,
        );
        tx.execute(
            "UPDATE audit_log SET mark = $2 WHERE id = $1",
            &[&(row.id as i64), &mark],
        )
        .map_err(backend)?;
    }
    let last = tx
        .query_one(
            "SELECT id, mark FROM audit_log ORDER BY id DESC LIMIT 1",
            &[],
        )
        .map_err(backend)?;
    head.id = last.get(0);
    head.mark = last.get(1);
    head.save(tx)
}

/// Replaces a case's indicator row and referral rows (`summary::indicators`), with its summary.
/// Province, commune and provider are kept as typed (see `007_indicators.sql`).
fn write_indicators(tx: &mut impl GenericClient, write: &SummaryWrite) -> StorageResult<()> {
    let case_id = &write.summary.case_id;
    let i = &write.indicators;
    let flag = |b: bool| i64::from(b);
    tx.execute(
        "INSERT INTO case_indicators (case_id, counted, identified_on, province, province_key,
            commune, commune_key, sector, referred, service, stopped_working, days_to_service,
            next_followup_due)
         SELECT $1, $2, coalesce($3, to_char(to_timestamp(k.created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')),
                $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
         FROM cases k WHERE k.case_id = $1
         ON CONFLICT (case_id) DO UPDATE SET counted = excluded.counted,
            identified_on = excluded.identified_on, province = excluded.province,
            province_key = excluded.province_key, commune = excluded.commune,
            commune_key = excluded.commune_key, sector = excluded.sector,
            referred = excluded.referred, service = excluded.service,
            stopped_working = excluded.stopped_working,
            days_to_service = excluded.days_to_service,
            next_followup_due = excluded.next_followup_due",
        &[
            case_id,
            &flag(i.counted),
            &i.identified_on,
            &i.province,
            &i.province_key,
            &i.commune,
            &i.commune_key,
            &i.sector,
            &flag(i.referred),
            &flag(i.service),
            &i.stopped_working.map(flag),
            &i.days_to_service,
            &write.summary.next_followup_due,
        ],
    )
    .map_err(backend)?;
    tx.execute(
        "DELETE FROM referral_summaries WHERE case_id = $1",
        &[case_id],
    )
    .map_err(backend)?;
    if write.referrals.is_empty() {
        return Ok(());
    }
    // Every referral of the case in one statement.
    let rs = &write.referrals;
    let column = |f: &dyn Fn(&super::ReferralSummary) -> Option<String>| -> Vec<Option<String>> {
        rs.iter().map(f).collect()
    };
    let ids: Vec<String> = rs.iter().map(|r| r.referral_id.clone()).collect();
    let statuses: Vec<String> = rs.iter().map(|r| r.status.clone()).collect();
    let services = column(&|r| r.service_type.clone());
    let providers = column(&|r| r.provider.clone());
    let provider_keys = column(&|r| r.provider_key.clone());
    let created: Vec<Option<i64>> = rs.iter().map(|r| r.created_at).collect();
    let since: Vec<Option<i64>> = rs.iter().map(|r| r.status_since).collect();
    let secs = |k: usize| -> Vec<Option<i64>> { rs.iter().map(|r| r.secs_in[k]).collect() };
    let (s0, s1, s2, s3, s4) = (secs(0), secs(1), secs(2), secs(3), secs(4));
    tx.execute(
        "INSERT INTO referral_summaries (case_id, referral_id, service_type, provider,
            provider_key, status, created_at, status_since, secs_draft, secs_sent,
            secs_accepted, secs_declined, secs_in_service)
         SELECT $1, i, sv, p, pk, st, c, sn, d, se, a, de, ins
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
                     $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[],
                     $13::bigint[])
              AS t(i, sv, p, pk, st, c, sn, d, se, a, de, ins)
         ON CONFLICT DO NOTHING",
        &[
            case_id,
            &ids,
            &services,
            &providers,
            &provider_keys,
            &statuses,
            &created,
            &since,
            &s0,
            &s1,
            &s2,
            &s3,
            &s4,
        ],
    )
    .map_err(backend)?;
    Ok(())
}

fn pg_dialect() -> super::case_list::Dialect {
    super::case_list::Dialect {
        param: |n| format!("${n}"),
        contains: |needle, haystack| format!("strpos({haystack}, {needle}) > 0"),
    }
}

fn row_to_audit(r: &postgres::Row) -> AuditRow {
    AuditRow {
        id: r.get::<_, i64>(0) as u64,
        at: r.get(1),
        actor: r.get(2),
        action: r.get(3),
        subject: r.get(4),
        mark: r.get::<_, Option<Vec<u8>>>(5).unwrap_or_default(),
    }
}

const STORED_CHANGE_COLUMNS: &str = "c.id, c.case_id, c.hash, c.data, c.origin_device, d.actor,
    c.received_at,
    EXISTS (SELECT 1 FROM feed f
            WHERE f.change_id = c.id AND f.audience IS NULL AND f.case_id = c.case_id)
    FROM changes c LEFT JOIN devices d ON d.device_id = c.origin_device";

/// The feed's sequencer, locked for the rest of the transaction: rows appended through it get
/// the positions after the head, and the head moves when the transaction commits.
struct FeedHead {
    /// Prepared at the first append: an erasure locks the head without appending.
    insert: Option<postgres::Statement>,
    seq: i64,
    mark: Vec<u8>,
    erasure_seq: i64,
    marks: FeedMarks,
}

/// The feed marks' formula, as the database records it.
fn feed_marks(client: &mut impl GenericClient) -> StorageResult<FeedMarks> {
    let from: i64 = client
        .query_one(
            "SELECT case_id_from FROM feed_mark_formula WHERE one = 1",
            &[],
        )
        .map_err(backend)?
        .get(0);
    Ok(FeedMarks {
        case_id_from: u64::try_from(from).map_err(|_| {
            StorageError::Backend(format!("feed_mark_formula holds {from}, not a position"))
        })?,
    })
}

impl FeedHead {
    fn lock(tx: &mut impl GenericClient) -> StorageResult<FeedHead> {
        let row = tx
            .query_one(
                "SELECT seq, mark, erasure_seq FROM feed_head FOR UPDATE",
                &[],
            )
            .map_err(backend)?;
        Ok(FeedHead {
            insert: None,
            seq: row.get(0),
            mark: row.get(1),
            erasure_seq: row.get(2),
            marks: feed_marks(tx)?,
        })
    }

    /// Appends a copy of every change of a case, in feed order, for `user` only (an
    /// assignment, a reassignment): that user's phones may have passed the case's rows already.
    fn queue_case_for(
        &mut self,
        tx: &mut impl GenericClient,
        case_id: &str,
        user: &str,
        owner_team: (&str, &str),
    ) -> StorageResult<()> {
        let changes = tx
            .query(
                "SELECT c.id, c.hash FROM changes c
                 JOIN feed f ON f.change_id = c.id AND f.audience IS NULL
                 WHERE c.case_id = $1 ORDER BY f.seq",
                &[&case_id],
            )
            .map_err(backend)?;
        for row in changes {
            let hash: String = row.get(1);
            self.append(tx, row.get(0), case_id, &hash, Some(user), owner_team)?;
        }
        Ok(())
    }

    fn append(
        &mut self,
        tx: &mut impl GenericClient,
        change_id: i64,
        case_id: &str,
        hash: &str,
        audience: Option<&str>,
        (owner, team): (&str, &str),
    ) -> StorageResult<()> {
        self.seq += 1;
        self.mark = self
            .marks
            .next(&self.mark, self.seq as u64, hash, audience, case_id);
        let insert = match &self.insert {
            Some(insert) => insert,
            None => self
                .insert
                .insert(tx.prepare(INSERT_FEED_ROW).map_err(backend)?),
        };
        tx.execute(
            insert,
            &[
                &self.seq, &change_id, &case_id, &audience, &owner, &team, &self.mark,
            ],
        )
        .map_err(backend)?;
        Ok(())
    }

    /// Appends many rows in one statement, each `(case, change id, hash)` for `audience` only:
    /// positions and marks are chained here as `append` chains them, one by one.
    fn append_all(
        &mut self,
        tx: &mut impl GenericClient,
        rows: &[(String, i64, String)],
        audience: &str,
        (owner, team): (&str, &str),
    ) -> StorageResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut seqs = Vec::with_capacity(rows.len());
        let mut marks = Vec::with_capacity(rows.len());
        for (case_id, _, hash) in rows {
            self.seq += 1;
            self.mark = self
                .marks
                .next(&self.mark, self.seq as u64, hash, Some(audience), case_id);
            seqs.push(self.seq);
            marks.push(self.mark.clone());
        }
        let change_ids: Vec<i64> = rows.iter().map(|(_, id, _)| *id).collect();
        let case_ids: Vec<&str> = rows.iter().map(|(case, _, _)| case.as_str()).collect();
        tx.execute(
            "INSERT INTO feed (seq, change_id, case_id, audience, owner, team, mark)
             SELECT s, c, k, $4, $5, $6, m
             FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $7::bytea[]) AS t(s, c, k, m)",
            &[
                &seqs,
                &change_ids,
                &case_ids,
                &audience,
                &owner,
                &team,
                &marks,
            ],
        )
        .map_err(backend)?;
        Ok(())
    }

    fn save(&self, tx: &mut impl GenericClient) -> StorageResult<()> {
        tx.execute(
            "UPDATE feed_head SET seq = $1, mark = $2, erasure_seq = $3",
            &[&self.seq, &self.mark, &self.erasure_seq],
        )
        .map_err(backend)?;
        Ok(())
    }
}

const INSERT_FEED_ROW: &str =
    "INSERT INTO feed (seq, change_id, case_id, audience, owner, team, mark)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The feed query of a read scope ($1 cursor, $2 end, $3 user, $4 team, $5 the reading
/// device): one arm per way a row enters the caseload, each an index range scan, merged in
/// feed order. The same translation of `ReadScope` as the SQLite store's.
fn feed_sql(scope: ReadScope) -> String {
    // Rows of cases assigned to the user, found from the user's assignments: a lateral join, so
    // the plan starts from the few assignments and seeks each case's rows by index, whatever
    // the statistics say (before autovacuum's first analyze, PostgreSQL otherwise walked every
    // feed row after the cursor: 100 ms with 50,000 other rows).
    let assigned_rows = format!(
        "assignments a CROSS JOIN LATERAL (
             SELECT * FROM feed f0
             WHERE f0.case_id = a.case_id AND f0.audience IS NULL AND f0.seq > $1 AND f0.seq <= $2
             ORDER BY f0.seq LIMIT {FEED_ROWS_PER_QUERY}) f"
    );
    let assigned = "f.case_id IN (SELECT a.case_id FROM assignments a WHERE a.user_id = $3)";
    // (rows, condition) per way a row enters the caseload.
    let arms: Vec<(String, String)> = match scope {
        ReadScope::Own => vec![
            (
                "feed f".into(),
                "f.audience IS NULL AND f.owner = $3".into(),
            ),
            (assigned_rows, "a.user_id = $3 AND f.owner <> $3".into()),
            (
                "feed f".into(),
                format!("f.audience = $3 AND (f.owner = $3 OR {assigned})"),
            ),
        ],
        ReadScope::Team => vec![
            ("feed f".into(), "f.audience IS NULL AND f.team = $4".into()),
            (assigned_rows, "a.user_id = $3 AND f.team <> $4".into()),
            (
                "feed f".into(),
                format!("f.audience = $3 AND (f.team = $4 OR {assigned})"),
            ),
        ],
        ReadScope::All => vec![(
            "feed f".into(),
            "f.audience IS NULL OR f.audience = $3".into(),
        )],
    };
    let select = arms
        .iter()
        .map(|(rows, arm)| {
            format!(
                "(SELECT f.seq, f.case_id, c.hash, c.data, coalesce(d.user_id, ''), c.origin_device, c.received_at
                  FROM {rows}
                  JOIN changes c ON c.id = f.change_id
                  LEFT JOIN devices d ON d.device_id = c.origin_device
                  WHERE f.seq > $1 AND f.seq <= $2 AND ({arm})
                    AND (f.audience IS NOT NULL OR c.origin_device <> $5)
                    AND NOT EXISTS (SELECT 1 FROM quarantined_cases q WHERE q.case_id = f.case_id)
                  ORDER BY f.seq LIMIT {FEED_ROWS_PER_QUERY})"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    if arms.len() == 1 {
        // One arm is already ordered and limited; PostgreSQL refuses a second ORDER BY on it.
        return select;
    }
    format!("{select} ORDER BY 1 LIMIT {FEED_ROWS_PER_QUERY}")
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`), migrates the schema,
    /// and checks that `database_key` is this database's (a new database keeps a check value
    /// of it). Several instances may open the same database at once.
    pub fn open(url: &str, database_key: &[u8; 32]) -> StorageResult<PostgresStore> {
        Self::open_with_pool_size(url, database_key, POOL_SIZE)
    }

    pub fn open_with_pool_size(
        url: &str,
        database_key: &[u8; 32],
        pool_size: u32,
    ) -> StorageResult<PostgresStore> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StorageError::Backend(format!("database URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // A stuck lock or query ends in an error a device retries, never in a request that
        // waits forever; a transaction left open by a crashed caller is ended by the server.
        // The URL's own options come last, so they win (`?options=-c%20lock_timeout%3D2s`).
        let options = format!(
            "-c lock_timeout=10s -c statement_timeout=120s -c idle_in_transaction_session_timeout=60s {}",
            config.get_options().unwrap_or_default()
        );
        config.options(options.trim());
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            // A dead connection shows itself on use and is reported retryable.
            .test_on_check_out(false)
            .build(manager)
            .map_err(|e| StorageError::Backend(format!("postgres: cannot connect: {e}")))?;
        let store = PostgresStore {
            pool,
            sealer: Sealer::from_database_key(database_key),
        };
        store.migrate()?;
        store.check_key()?;
        Ok(store)
    }

    /// Replaces a case's projection row and search terms inside the caller's transaction: the
    /// shown part sealed, the keys blinded.
    fn write_summary(
        &self,
        tx: &mut impl GenericClient,
        write: &SummaryWrite,
        now: i64,
    ) -> StorageResult<()> {
        let s = &write.summary;
        let shown = serde_json::to_vec(s).map_err(|e| StorageError::Backend(e.to_string()))?;
        let shown = self.sealer.seal_summary(&s.case_id, &shown);
        let held: i64 = tx
            .query_one(
                "SELECT count(*) FROM changes WHERE case_id = $1",
                &[&s.case_id],
            )
            .map_err(backend)?
            .get(0);
        let stale = held as u64 != write.change_count;
        let village_key = write.village_key.as_deref().map(|v| self.sealer.blind(v));
        let dup_key = write.dup_key.as_deref().map(|v| self.sealer.blind(v));
        let commune_key = write.commune_key.as_deref().map(|v| self.sealer.blind(v));
        let written = tx
            .execute(
                "INSERT INTO case_summaries (case_id, owner, team, shown, village_key, risk_level,
                referral_statuses, next_followup_due, conflict_count, birth_year, updated_at, stale,
                dup_key, commune_key, change_count)
             SELECT $1, k.created_by, k.team, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
             FROM cases k WHERE k.case_id = $1
             ON CONFLICT (case_id) DO UPDATE SET shown = excluded.shown,
                village_key = excluded.village_key, risk_level = excluded.risk_level,
                referral_statuses = excluded.referral_statuses,
                next_followup_due = excluded.next_followup_due,
                conflict_count = excluded.conflict_count, birth_year = excluded.birth_year,
                updated_at = greatest(case_summaries.updated_at, excluded.updated_at),
                stale = excluded.stale, owner = excluded.owner, team = excluded.team,
                dup_key = excluded.dup_key, commune_key = excluded.commune_key,
                change_count = excluded.change_count
             WHERE excluded.change_count >= case_summaries.change_count",
                &[
                    &s.case_id,
                    &shown,
                    &village_key,
                    &s.risk_level,
                    &super::statuses_column(&s.referral_statuses),
                    &s.next_followup_due,
                    &i64::from(s.conflict_count),
                    &s.birth_year,
                    &now,
                    &stale,
                    &dup_key,
                    &commune_key,
                    &i64::try_from(write.change_count).unwrap_or(i64::MAX),
                ],
            )
            .map_err(backend)?;
        if written > 0 {
            write_indicators(tx, write)?;
        }
        tx.execute(
            "DELETE FROM case_search_terms WHERE case_id = $1",
            &[&s.case_id],
        )
        .map_err(backend)?;
        let terms: Vec<String> = write
            .name_terms
            .iter()
            .map(|t| self.sealer.blind(t))
            .collect();
        tx.execute(
            "INSERT INTO case_search_terms (term, case_id)
             SELECT DISTINCT t, $2 FROM unnest($1::text[]) AS t",
            &[&terms, &s.case_id],
        )
        .map_err(backend)?;
        Ok(())
    }

    fn row_to_listed(&self, r: &postgres::Row) -> StorageResult<ListedCase> {
        let case_id: String = r.get(4);
        let sealed: Vec<u8> = r.get(0);
        let shown = self
            .sealer
            .open_summary(&case_id, &sealed)
            .map_err(|e| StorageError::Backend(e.to_string()))?;
        let summary: CaseSummary =
            serde_json::from_slice(&shown).map_err(|e| StorageError::Backend(e.to_string()))?;
        Ok(ListedCase {
            summary,
            created_by: r.get(1),
            team: r.get(2),
            updated_at: r.get(3),
        })
    }

    pub(super) fn client(
        &self,
    ) -> StorageResult<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>> {
        self.pool.get().map_err(pool_error)
    }

    fn migrate(&self) -> StorageResult<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(backend)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS suivi_schema (version INTEGER NOT NULL)")
            .map_err(backend)?;
        let version: i32 = tx
            .query_opt("SELECT version FROM suivi_schema", &[])
            .map_err(backend)?
            .map(|r| r.get(0))
            .unwrap_or(0);
        if version as usize > MIGRATIONS.len() {
            return Err(StorageError::Backend(format!(
                "database schema {version} is newer than this server"
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.batch_execute(sql).map_err(backend)?;
            let v = i as i32 + 1;
            tx.execute("DELETE FROM suivi_schema", &[])
                .map_err(backend)?;
            tx.execute("INSERT INTO suivi_schema (version) VALUES ($1)", &[&v])
                .map_err(backend)?;
        }
        backfill_audit_marks(&mut tx)?;
        tx.commit().map_err(backend)
    }

    /// A new database keeps a value sealed under this key; an existing one must open with it.
    fn check_key(&self) -> StorageResult<()> {
        let mut client = self.client()?;
        let check = self.sealer.key_check();
        client
            .execute(
                "INSERT INTO server_meta (name, value) VALUES ('key_check', $1) ON CONFLICT DO NOTHING",
                &[&check],
            )
            .map_err(backend)?;
        let stored: Vec<u8> = client
            .query_one(
                "SELECT value FROM server_meta WHERE name = 'key_check'",
                &[],
            )
            .map_err(backend)?
            .get(0);
        if self.sealer.verify_key_check(&stored) {
            Ok(())
        } else {
            Err(StorageError::Backend(
                "cannot read the database: wrong key (this key file is not the one this database was created with)".into(),
            ))
        }
    }

    /// The rows of a query run once per arm of `reader`'s scope (`indicators::scope`), each run
    /// given the arm's parameters then `extra`: the officer's views, merged by their caller.
    fn per_arm<T>(
        &self,
        reader: &User,
        sql: &dyn Fn(&super::case_list::Arm, &super::case_list::Dialect) -> String,
        extra: &[&(dyn postgres::types::ToSql + Sync)],
        row: impl Fn(&postgres::Row) -> T,
    ) -> StorageResult<Vec<T>> {
        let dialect = pg_dialect();
        let mut client = self.client()?;
        let mut out = Vec::new();
        for arm in super::indicators::scope(reader, &dialect, &|t| self.sealer.blind(t)) {
            let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = arm
                .args
                .iter()
                .map(|a| a as &(dyn postgres::types::ToSql + Sync))
                .collect();
            params.extend_from_slice(extra);
            for r in client
                .query(&sql(&arm, &dialect), &params)
                .map_err(backend)?
            {
                out.push(row(&r));
            }
        }
        Ok(out)
    }

    /// A `STORED_CHANGE_COLUMNS` row, its payload opened. A payload that does not open (edited
    /// in the database, or sealed for another case) is an error naming the change.
    fn row_to_stored_change(&self, r: &postgres::Row) -> StorageResult<StoredChange> {
        let case_id: String = r.get(1);
        let hash: String = r.get(2);
        // A payload that does not open (edited in the database) comes back empty: `verify`
        // reports it as bytes that are not the stored change, and goes on.
        let data = self
            .open_change(&case_id, &hash, r.get(3))
            .unwrap_or_default();
        Ok(StoredChange {
            id: r.get::<_, i64>(0) as u64,
            case_id,
            hash,
            data,
            origin_device: r.get(4),
            origin_actor: r.get(5),
            received_at: r.get(6),
            in_feed: r.get(7),
        })
    }

    pub(super) fn open_change(
        &self,
        case_id: &str,
        hash: &str,
        sealed: &[u8],
    ) -> StorageResult<Vec<u8>> {
        self.sealer
            .open_change(case_id, hash, sealed)
            .map_err(|e| StorageError::Backend(format!("change {hash} of case {case_id}: {e}")))
    }

    /// Whether the database at `url` already holds a Suivi server's data (its key check): a
    /// missing key file is then an error, never a reason to make a new key.
    pub fn holds_data(url: &str) -> StorageResult<bool> {
        let mut client = postgres::Client::connect(url, NoTls).map_err(backend)?;
        let row = client
            .query_one("SELECT to_regclass('server_meta') IS NOT NULL", &[])
            .map_err(backend)?;
        if !row.get::<_, bool>(0) {
            return Ok(false);
        }
        Ok(client
            .query_opt("SELECT 1 FROM server_meta WHERE name = 'key_check'", &[])
            .map_err(backend)?
            .is_some())
    }

    /// A query as the database holds the data, for tests that look at it as a thief would.
    #[doc(hidden)]
    pub fn raw_query(&self, sql: &str) -> StorageResult<Vec<postgres::Row>> {
        self.client()?.query(sql, &[]).map_err(backend)
    }
}

impl ServerStore for PostgresStore {
    fn add_user(&self, user: &User, now: i64) -> StorageResult<()> {
        let n = self
            .client()?
            .execute(
                "INSERT INTO users (user_id, role, team, password_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    &user.user_id,
                    &user.role.as_str(),
                    &user.team,
                    &user.password_hash,
                    &now,
                ],
            )
            .map_err(backend)?;
        if n == 0 {
            return Err(StorageError::Conflict(format!("user {}", user.user_id)));
        }
        Ok(())
    }

    fn user(&self, user_id: &str) -> StorageResult<Option<User>> {
        let row = self
            .client()?
            .query_opt(
                "SELECT user_id, role, team, password_hash FROM users WHERE user_id = $1",
                &[&user_id],
            )
            .map_err(backend)?;
        row.map(|r| {
            Ok(User {
                user_id: r.get(0),
                role: role(r.get(1))?,
                team: r.get(2),
                password_hash: r.get(3),
            })
        })
        .transpose()
    }

    fn add_enrollment_code(
        &self,
        code_hash: &str,
        user_id: &str,
        expires_at: i64,
    ) -> StorageResult<()> {
        self.client()?
            .execute(
                "INSERT INTO enrollment_codes (code_hash, user_id, expires_at) VALUES ($1, $2, $3)",
                &[&code_hash, &user_id, &expires_at],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn redeem_enrollment_code(
        &self,
        code_hash: &str,
        user_id: &str,
        now: i64,
        device: &Device,
    ) -> StorageResult<Option<User>> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        // The row lock makes a second redeemer wait, then find the code used.
        let Some(row) = tx
            .query_opt(
                "UPDATE enrollment_codes SET used_at = $2
                 WHERE code_hash = $1 AND user_id = $3 AND used_at IS NULL AND expires_at > $2
                 RETURNING user_id",
                &[&code_hash, &now, &user_id],
            )
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let user_id: String = row.get(0);
        let inserted = tx
            .execute(
                "INSERT INTO devices (device_id, user_id, actor, name, token_hash, enrolled_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &device.device_id,
                    &user_id,
                    &device.actor,
                    &device.name,
                    &device.token_hash,
                    &now,
                ],
            )
            .map_err(backend)?;
        if inserted == 0 {
            // The actor id is taken: the transaction rolls back, the code stays unused.
            return Err(StorageError::Conflict("actor already enrolled".into()));
        }
        audit_row(
            &mut tx,
            now,
            &user_id,
            "device.enroll",
            &super::device_binding_subject(&device.device_id, &device.actor),
        )?;
        let r = tx
            .query_one(
                "SELECT user_id, role, team FROM users WHERE user_id = $1",
                &[&user_id],
            )
            .map_err(backend)?;
        let user = User {
            user_id: r.get(0),
            role: role(r.get(1))?,
            team: r.get(2),
            password_hash: None,
        };
        tx.commit().map_err(backend)?;
        Ok(Some(user))
    }

    fn device(&self, device_id: &str) -> StorageResult<Option<Device>> {
        Ok(self
            .client()?
            .query_opt(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = $1"),
                &[&device_id],
            )
            .map_err(backend)?
            .map(|r| row_to_device(&r)))
    }

    fn devices(&self) -> StorageResult<Vec<Device>> {
        Ok(self
            .client()?
            .query(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY enrolled_at, device_id"),
                &[],
            )
            .map_err(backend)?
            .iter()
            .map(row_to_device)
            .collect())
    }

    fn revoke_device(&self, device_id: &str, now: i64) -> StorageResult<bool> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        let revoked = tx
            .execute(
                "UPDATE devices SET revoked_at = $2 WHERE device_id = $1 AND revoked_at IS NULL",
                &[&device_id, &now],
            )
            .map_err(backend)?
            > 0;
        if revoked {
            audit_row(&mut tx, now, "admin", "device.revoke", device_id)?;
        }
        tx.commit().map_err(backend)?;
        Ok(revoked)
    }

    fn confirm_wipe(&self, device_id: &str, now: i64) -> StorageResult<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        let wiped = tx
            .execute(
                "UPDATE devices SET wiped_at = $2
                 WHERE device_id = $1 AND revoked_at IS NOT NULL AND wiped_at IS NULL",
                &[&device_id, &now],
            )
            .map_err(backend)?
            > 0;
        if wiped {
            audit_row(&mut tx, now, device_id, "device.wiped", device_id)?;
        }
        tx.commit().map_err(backend)
    }

    fn assign_case(&self, case_id: &str, user_id: &str, now: i64) -> StorageResult<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        // The sequencer first: the case's rows are re-appended in one block, and an erasure of
        // the case cannot interleave.
        let mut head = FeedHead::lock(&mut tx)?;
        let Some(case) = tx
            .query_opt(
                "SELECT created_by, team FROM cases WHERE case_id = $1",
                &[&case_id],
            )
            .map_err(backend)?
        else {
            return Err(StorageError::NotFound(format!("case {case_id}")));
        };
        let (owner, team): (String, String) = (case.get(0), case.get(1));
        if tx
            .query_opt("SELECT 1 FROM users WHERE user_id = $1", &[&user_id])
            .map_err(backend)?
            .is_none()
        {
            return Err(StorageError::NotFound(format!("user {user_id}")));
        }
        let n = tx
            .execute(
                "INSERT INTO assignments (case_id, user_id, assigned_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&case_id, &user_id, &now],
            )
            .map_err(backend)?;
        if n > 0 {
            // The new assignee's devices may have passed these changes already: queue them
            // again for that user only, in feed order.
            head.queue_case_for(&mut tx, case_id, user_id, (&owner, &team))?;
            head.save(&mut tx)?;
            audit_row(
                &mut tx,
                now,
                "admin",
                "case.assign",
                &format!("{case_id} -> {user_id}"),
            )?;
        }
        tx.commit().map_err(backend)
    }

    fn case_access(&self, case_ids: &[String]) -> StorageResult<HashMap<String, CaseAccess>> {
        let mut client = self.client()?;
        let mut out: HashMap<String, CaseAccess> = client
            .query(
                "SELECT case_id, created_by, team FROM cases WHERE case_id = ANY($1)",
                &[&case_ids],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| {
                (
                    r.get(0),
                    CaseAccess {
                        created_by: r.get(1),
                        team: r.get(2),
                        assignees: Vec::new(),
                    },
                )
            })
            .collect();
        for r in client
            .query(
                "SELECT case_id, user_id FROM assignments WHERE case_id = ANY($1) ORDER BY assigned_at, user_id",
                &[&case_ids],
            )
            .map_err(backend)?
        {
            if let Some(access) = out.get_mut(r.get::<_, &str>(0)) {
                access.assignees.push(r.get(1));
            }
        }
        Ok(out)
    }

    fn known_changes(&self, case_id: &str, hashes: &[String]) -> StorageResult<HashSet<String>> {
        Ok(self
            .client()?
            .query(
                "SELECT hash FROM changes WHERE case_id = $1 AND hash = ANY($2)",
                &[&case_id, &hashes],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn store_changes(
        &self,
        device_id: &str,
        batch: &[AcceptedCase],
        audit: Option<(&str, &str)>,
        now: i64,
    ) -> StorageResult<usize> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        // Changes are inserted before the sequencer is taken, so the lock is held only to
        // number feed rows and commit.
        struct Inserted<'a> {
            case_id: &'a str,
            id: i64,
            hash: &'a str,
            bytes: u64,
        }
        let mut inserted = Vec::new();
        let mut new_cases: HashSet<&str> = HashSet::new();
        {
            let insert_case = tx
                .prepare(
                    "INSERT INTO cases (case_id, created_by, team, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                )
                .map_err(backend)?;
            let insert_change = tx
                .prepare(
                    "INSERT INTO changes (hash, case_id, origin_device, received_at, data)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO NOTHING RETURNING id",
                )
                .map_err(backend)?;
            for case in batch {
                if let Some((created_by, team)) = &case.new_case {
                    if tx
                        .execute(&insert_case, &[&case.case_id, created_by, team, &now])
                        .map_err(backend)?
                        > 0
                    {
                        new_cases.insert(&case.case_id);
                    }
                }
                for (hash, data) in &case.changes {
                    let sealed = self.sealer.seal_change(&case.case_id, hash, data);
                    if let Some(row) = tx
                        .query_opt(
                            &insert_change,
                            &[hash, &case.case_id, &device_id, &now, &sealed],
                        )
                        .map_err(backend)?
                    {
                        inserted.push(Inserted {
                            case_id: &case.case_id,
                            id: row.get(0),
                            hash,
                            bytes: data.len() as u64,
                        });
                    }
                }
            }
        }
        let mut head = FeedHead::lock(&mut tx)?;
        // An erasure that committed after the service checked this batch: its cases keep
        // nothing of it (the erasure held the sequencer, so it is visible now).
        let batch_cases: Vec<&str> = batch.iter().map(|c| c.case_id.as_str()).collect();
        let erased: HashSet<String> = tx
            .query(
                "SELECT case_id FROM erasures WHERE case_id = ANY($1)",
                &[&batch_cases],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        if !erased.is_empty() {
            let erased_list: Vec<&String> = erased.iter().collect();
            for sql in [
                "DELETE FROM changes WHERE case_id = ANY($1)",
                "DELETE FROM cases WHERE case_id = ANY($1)",
            ] {
                tx.execute(sql, &[&erased_list]).map_err(backend)?;
            }
            inserted.retain(|c| !erased.contains(c.case_id));
            new_cases.retain(|c| !erased.contains(*c));
        }
        let mut usage = Usage {
            new_cases: new_cases.len() as u64,
            bytes: 0,
        };
        let mut owners: HashMap<&str, (String, String)> = HashMap::new();
        for change in &inserted {
            if !owners.contains_key(change.case_id) {
                let r = tx
                    .query_one(
                        "SELECT created_by, team FROM cases WHERE case_id = $1",
                        &[&change.case_id],
                    )
                    .map_err(backend)?;
                owners.insert(change.case_id, (r.get(0), r.get(1)));
            }
            let (owner, team) = &owners[change.case_id];
            head.append(
                &mut tx,
                change.id,
                change.case_id,
                change.hash,
                None,
                (owner, team),
            )?;
            usage.bytes += change.bytes;
        }
        head.save(&mut tx)?;
        // Under the sequencer, every other push to these cases has committed or will count
        // these changes: the count a summary is checked against is exact.
        for case in batch {
            if let Some(summary) = &case.summary {
                if !erased.contains(&case.case_id) {
                    self.write_summary(&mut tx, summary, now)?;
                }
            }
        }
        if let Some((action, subject)) = audit {
            audit_row(&mut tx, now, device_id, action, subject)?;
        }
        if usage != Usage::default() {
            let day = now.div_euclid(86_400);
            tx.execute(
                "INSERT INTO device_usage (device_id, day, new_cases, bytes) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (device_id, day) DO UPDATE
                 SET new_cases = device_usage.new_cases + excluded.new_cases,
                     bytes = device_usage.bytes + excluded.bytes",
                &[&device_id, &day, &(usage.new_cases as i64), &(usage.bytes as i64)],
            )
            .map_err(backend)?;
            tx.execute(
                "DELETE FROM device_usage WHERE device_id = $1 AND day < $2",
                &[&device_id, &(day - USAGE_DAYS_KEPT)],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(inserted.len())
    }

    fn erase_case(&self, case_id: &str, now: i64) -> StorageResult<bool> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        // The sequencer orders erasures as it orders feed rows, and keeps a push of this case
        // from interleaving (see `store_changes`).
        let mut head = FeedHead::lock(&mut tx)?;
        if tx
            .query_opt("SELECT 1 FROM erasures WHERE case_id = $1", &[&case_id])
            .map_err(backend)?
            .is_some()
        {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO erased_feed_marks (seq, mark, case_id, hash, audience)
             SELECT f.seq, f.mark, f.case_id, c.hash, f.audience
             FROM feed f LEFT JOIN changes c ON c.id = f.change_id WHERE f.case_id = $1",
            &[&case_id],
        )
        .map_err(backend)?;
        for sql in [
            "DELETE FROM feed WHERE case_id = $1",
            "DELETE FROM changes WHERE case_id = $1",
            "DELETE FROM assignments WHERE case_id = $1",
            "DELETE FROM quarantined_cases WHERE case_id = $1",
            "DELETE FROM case_search_terms WHERE case_id = $1",
            "DELETE FROM case_summaries WHERE case_id = $1",
            "DELETE FROM case_indicators WHERE case_id = $1",
            "DELETE FROM referral_summaries WHERE case_id = $1",
            "DELETE FROM case_handovers WHERE case_id = $1",
            "DELETE FROM distinct_cases WHERE case_a = $1 OR case_b = $1",
            "DELETE FROM cases WHERE case_id = $1",
        ] {
            tx.execute(sql, &[&case_id]).map_err(backend)?;
        }
        head.erasure_seq += 1;
        tx.execute(
            "INSERT INTO erasures (seq, case_id, at) VALUES ($1, $2, $3)",
            &[&head.erasure_seq, &case_id, &now],
        )
        .map_err(backend)?;
        head.save(&mut tx)?;
        audit_row(&mut tx, now, "admin", "case.erased", case_id)?;
        tx.commit().map_err(backend)?;
        Ok(true)
    }

    fn is_erased(&self, case_id: &str) -> StorageResult<bool> {
        Ok(self
            .client()?
            .query_opt("SELECT 1 FROM erasures WHERE case_id = $1", &[&case_id])
            .map_err(backend)?
            .is_some())
    }

    fn erasures_after(&self, seq: u64, limit: usize) -> StorageResult<Vec<(u64, String)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .client()?
            .query(
                "SELECT seq, case_id FROM erasures WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&pg_seq(seq), &limit],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
            .collect())
    }

    fn device_usage(&self, device_id: &str, day: i64) -> StorageResult<Usage> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT new_cases, bytes FROM device_usage WHERE device_id = $1 AND day = $2",
                &[&device_id, &day],
            )
            .map_err(backend)?
            .map(|r| Usage {
                new_cases: r.get::<_, i64>(0) as u64,
                bytes: r.get::<_, i64>(1) as u64,
            })
            .unwrap_or_default())
    }

    fn device_quota(&self, device_id: &str) -> StorageResult<Option<Quota>> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT new_cases_per_day, bytes_per_day FROM device_quotas WHERE device_id = $1",
                &[&device_id],
            )
            .map_err(backend)?
            .map(|r| Quota {
                new_cases_per_day: r.get::<_, i64>(0) as u64,
                bytes_per_day: r.get::<_, i64>(1) as u64,
            }))
    }

    fn set_device_quota(
        &self,
        device_id: &str,
        quota: Option<Quota>,
        now: i64,
    ) -> StorageResult<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        if tx
            .query_opt("SELECT 1 FROM devices WHERE device_id = $1", &[&device_id])
            .map_err(backend)?
            .is_none()
        {
            return Err(StorageError::NotFound(format!("device {device_id}")));
        }
        let subject = match quota {
            Some(q) => {
                let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                tx.execute(
                    "INSERT INTO device_quotas (device_id, new_cases_per_day, bytes_per_day)
                     VALUES ($1, $2, $3) ON CONFLICT (device_id) DO UPDATE
                     SET new_cases_per_day = excluded.new_cases_per_day,
                         bytes_per_day = excluded.bytes_per_day",
                    &[
                        &device_id,
                        &clamp(q.new_cases_per_day),
                        &clamp(q.bytes_per_day),
                    ],
                )
                .map_err(backend)?;
                format!(
                    "{device_id} {} new cases/day {} bytes/day",
                    q.new_cases_per_day, q.bytes_per_day
                )
            }
            None => {
                tx.execute(
                    "DELETE FROM device_quotas WHERE device_id = $1",
                    &[&device_id],
                )
                .map_err(backend)?;
                format!("{device_id} default")
            }
        };
        audit_row(&mut tx, now, "admin", "device.quota", &subject)?;
        tx.commit().map_err(backend)
    }

    fn check_cursor(&self, cursor: u64, mark: &[u8]) -> StorageResult<CursorCheck> {
        if cursor == 0 {
            return Ok(CursorCheck::Matches);
        }
        let Ok(seq) = i64::try_from(cursor) else {
            return Ok(CursorCheck::Invalid);
        };
        let stored: Option<Vec<u8>> = self
            .client()?
            .query_opt(
                "SELECT mark FROM feed WHERE seq = $1 UNION ALL SELECT mark FROM erased_feed_marks WHERE seq = $1",
                &[&seq],
            )
            .map_err(backend)?
            .map(|r| r.get(0));
        Ok(CursorCheck::decide(stored.as_deref().map(Some), mark))
    }

    fn audit_row_exists(&self, action: &str, subject: &str) -> StorageResult<bool> {
        Ok(self
            .client()?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM audit_log WHERE action = $1 AND subject = $2)",
                &[&action, &subject],
            )
            .map_err(backend)?
            .get(0))
    }

    fn feed_marks(&self) -> StorageResult<FeedMarks> {
        feed_marks(&mut *self.client()?)
    }

    fn own_feed_rows(
        &self,
        device_id: &str,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> StorageResult<Vec<(u64, String, String)>> {
        Ok(self
            .client()?
            .query(
                "SELECT f.seq, f.case_id, c.hash FROM changes c
                 JOIN feed f ON f.change_id = c.id
                 WHERE c.origin_device = $1 AND f.seq > $2 AND f.seq <= $3
                 ORDER BY f.seq LIMIT $4",
                &[
                    &device_id,
                    &pg_seq(after),
                    &pg_seq(upto),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
            )
            .map_err(backend)?
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1), r.get(2)))
            .collect())
    }

    fn feed_mark(&self, seq: u64) -> StorageResult<Vec<u8>> {
        if seq == 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .client()?
            .query_opt(
                "SELECT mark FROM feed WHERE seq = $1 UNION ALL SELECT mark FROM erased_feed_marks WHERE seq = $1",
                &[&pg_seq(seq)],
            )
            .map_err(backend)?
            .map(|r| r.get(0))
            .unwrap_or_default())
    }

    fn case_ids(&self) -> StorageResult<Vec<String>> {
        Ok(self
            .client()?
            .query("SELECT case_id FROM cases ORDER BY case_id", &[])
            .map_err(backend)?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn quarantine_case(&self, case_id: &str, reason: &str, now: i64) -> StorageResult<bool> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        if tx
            .query_opt("SELECT 1 FROM cases WHERE case_id = $1", &[&case_id])
            .map_err(backend)?
            .is_none()
        {
            return Err(StorageError::NotFound(format!("case {case_id}")));
        }
        let n = tx
            .execute(
                "INSERT INTO quarantined_cases (case_id, reason, at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&case_id, &reason, &now],
            )
            .map_err(backend)?;
        if n > 0 {
            audit_row(&mut tx, now, "admin", "case.quarantine", case_id)?;
        }
        tx.commit().map_err(backend)?;
        Ok(n > 0)
    }

    fn quarantined_cases(&self) -> StorageResult<Vec<QuarantinedCase>> {
        Ok(self
            .client()?
            .query(
                "SELECT case_id, reason FROM quarantined_cases ORDER BY case_id",
                &[],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| QuarantinedCase {
                case_id: r.get(0),
                reason: r.get(1),
            })
            .collect())
    }

    fn is_quarantined(&self, case_id: &str) -> StorageResult<bool> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT 1 FROM quarantined_cases WHERE case_id = $1",
                &[&case_id],
            )
            .map_err(backend)?
            .is_some())
    }

    fn feed_page(
        &self,
        viewer: &Viewer,
        cursor: u64,
        raw_bytes_max: usize,
    ) -> StorageResult<FeedPage> {
        let mut client = self.client()?;
        // One snapshot for the head and the page. The head moves only when a writer holding the
        // sequencer commits, so every row up to it is visible here; reading takes no lock and
        // never waits for a writer.
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(backend)?;
        let end: i64 = tx
            .query_one("SELECT seq FROM feed_head", &[])
            .map_err(backend)?
            .get(0);
        // Typed: a scope's query need not use every parameter (an agent's ignores the team).
        let stmt = tx
            .prepare_typed(
                &feed_sql(ReadScope::of(viewer.role)),
                &[Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT],
            )
            .map_err(backend)?;
        let mut page = FeedPage {
            rows: Vec::new(),
            cursor: end as u64,
            more: false,
        };
        let mut from = pg_seq(cursor);
        let mut bytes = 0usize;
        'outer: loop {
            let rows = tx
                .query(
                    &stmt,
                    &[
                        &from,
                        &end,
                        &viewer.user_id,
                        &viewer.team,
                        &viewer.device_id,
                    ],
                )
                .map_err(backend)?;
            let fetched = rows.len() as i64;
            for r in rows {
                let seq: i64 = r.get(0);
                let case_id: String = r.get(1);
                let hash: &str = r.get(2);
                let row = FeedRow {
                    seq: seq as u64,
                    data: self.open_change(&case_id, hash, r.get(3))?,
                    case_id,
                    user_id: r.get(4),
                    device_id: r.get(5),
                    received_at: r.get(6),
                };
                from = seq;
                if !page.push_within(row, &mut bytes, raw_bytes_max) {
                    break 'outer;
                }
            }
            if fetched < FEED_ROWS_PER_QUERY {
                break;
            }
        }
        tx.commit().map_err(backend)?;
        Ok(page)
    }

    fn case_changes(&self, case_id: &str) -> StorageResult<Vec<Vec<u8>>> {
        self.client()?
            .query(
                "SELECT c.hash, c.data FROM changes c
                 JOIN feed f ON f.change_id = c.id AND f.audience IS NULL
                 WHERE c.case_id = $1 ORDER BY f.seq",
                &[&case_id],
            )
            .map_err(backend)?
            .iter()
            .map(|r| self.open_change(case_id, r.get(0), r.get(1)))
            .collect()
    }

    fn audit(&self, now: i64, actor: &str, action: &str, subject: &str) -> StorageResult<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        audit_row(&mut tx, now, actor, action, subject)?;
        tx.commit().map_err(backend)
    }

    fn audit_log(&self, after: u64, limit: usize) -> StorageResult<Vec<AuditRow>> {
        // Ids are handed out under the `audit_head` lock, in commit order: a page read after
        // `after` never misses a row committed later.
        Ok(self
            .client()?
            .query(
                "SELECT id, at, actor, action, subject, mark FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
                &[&pg_seq(after), &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .map_err(backend)?
            .iter()
            .map(row_to_audit)
            .collect())
    }

    fn audit_search(&self, query: &AuditQuery) -> StorageResult<Vec<AuditRow>> {
        let before = query.before.map_or(i64::MAX, pg_seq);
        let like = |text: &str| {
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        };
        let case = query.case_id.as_deref().map(|c| format!("%{}%", like(c)));
        let prefix = query
            .action_prefix
            .as_deref()
            .map(|p| format!("{}%", like(p)));
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        Ok(self
            .client()?
            .query(
                "SELECT id, at, actor, action, subject, mark FROM audit_log
                 WHERE id < $1
                   AND ($2::text IS NULL OR actor = $2
                        OR actor IN (SELECT device_id FROM devices WHERE user_id = $2))
                   AND ($3::text IS NULL OR subject LIKE $3)
                   AND ($4::text IS NULL OR action LIKE $4)
                 ORDER BY id DESC LIMIT $5",
                &[&before, &query.actor, &case, &prefix, &limit],
            )
            .map_err(backend)?
            .iter()
            .map(row_to_audit)
            .collect())
    }

    fn chain_heads(&self) -> StorageResult<ChainHeads> {
        let mut client = self.client()?;
        let feed = client
            .query_one("SELECT seq, mark FROM feed_head", &[])
            .map_err(backend)?;
        let audit = client
            .query_one("SELECT id, mark FROM audit_head", &[])
            .map_err(backend)?;
        Ok(ChainHeads {
            feed_seq: feed.get::<_, i64>(0) as u64,
            feed_mark: feed.get(1),
            audit_id: audit.get::<_, i64>(0) as u64,
            audit_mark: audit.get(1),
        })
    }

    fn feed_links(&self, after: u64, limit: usize) -> StorageResult<Vec<FeedLink>> {
        Ok(self
            .client()?
            .query(
                "SELECT f.seq, f.mark, f.case_id, c.hash, f.audience, FALSE
                 FROM feed f LEFT JOIN changes c ON c.id = f.change_id WHERE f.seq > $1
                 UNION ALL
                 SELECT seq, mark, case_id, hash, audience, TRUE FROM erased_feed_marks
                 WHERE seq > $1
                 ORDER BY 1 LIMIT $2",
                &[&pg_seq(after), &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .map_err(backend)?
            .iter()
            .map(|r| FeedLink {
                seq: r.get::<_, i64>(0) as u64,
                mark: r.get::<_, Option<Vec<u8>>>(1).unwrap_or_default(),
                erased: r.get(5),
                change: r.get::<_, Option<String>>(2).map(|case_id| FeedLinkChange {
                    case_id,
                    hash: r.get(3),
                    audience: r.get(4),
                }),
            })
            .collect())
    }

    fn stored_changes(&self, after: u64, limit: usize) -> StorageResult<Vec<StoredChange>> {
        let rows = self
            .client()?
            .query(
                &format!("SELECT {STORED_CHANGE_COLUMNS} WHERE c.id > $1 ORDER BY c.id LIMIT $2"),
                &[&pg_seq(after), &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .map_err(backend)?;
        rows.iter().map(|r| self.row_to_stored_change(r)).collect()
    }

    fn case_stored_changes(&self, case_id: &str) -> StorageResult<Vec<StoredChange>> {
        let rows = self
            .client()?
            .query(
                &format!("SELECT {STORED_CHANGE_COLUMNS} WHERE c.case_id = $1 ORDER BY c.id"),
                &[&case_id],
            )
            .map_err(backend)?;
        rows.iter().map(|r| self.row_to_stored_change(r)).collect()
    }

    fn case_feed_span(&self, case_id: &str) -> StorageResult<Option<(u64, u64)>> {
        let row = self
            .client()?
            .query_one(
                "SELECT min(seq), max(seq) FROM feed WHERE case_id = $1",
                &[&case_id],
            )
            .map_err(backend)?;
        Ok(
            match (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) {
                (Some(first), Some(last)) => Some((first as u64, last as u64)),
                _ => None,
            },
        )
    }

    fn reassign_cases(
        &self,
        case_ids: &[String],
        to: &User,
        by: &str,
        now: i64,
        grace_until: i64,
    ) -> StorageResult<Vec<String>> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        // The sequencer first, as an assignment: each case's rows for its new owner are appended
        // in one block, and an erasure cannot interleave.
        let mut head = FeedHead::lock(&mut tx)?;
        // Set-based, a statement for all the cases at each step: a list of 1,000 cases is a
        // dozen round trips, not ten per case.
        let mut owners: HashMap<String, (String, String)> = HashMap::new();
        for row in tx
            .query(
                "SELECT case_id, created_by, team FROM cases WHERE case_id = ANY($1)",
                &[&case_ids],
            )
            .map_err(backend)?
        {
            owners.insert(row.get(0), (row.get(1), row.get(2)));
        }
        let mut seen = HashSet::new();
        let (moved, former): (Vec<String>, Vec<String>) = case_ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .filter_map(|id| {
                let (old, team) = owners.get(id)?;
                (*old != to.user_id && *team == to.team).then(|| (id.clone(), old.clone()))
            })
            .unzip();
        if moved.is_empty() {
            tx.commit().map_err(backend)?;
            return Ok(moved);
        }
        for sql in [
            "UPDATE cases SET created_by = $2 WHERE case_id = ANY($1)",
            "UPDATE case_summaries SET owner = $2 WHERE case_id = ANY($1)",
            // Every row of the case, those queued for an earlier owner too: a case moved back
            // leaves nothing behind for the owner it left.
            "UPDATE feed SET owner = $2 WHERE case_id = ANY($1)",
            // A removal still waiting for the new owner (the case moved away from it and
            // back) would take the case off its phones again.
            "DELETE FROM removals WHERE case_id = ANY($1) AND user_id = $2",
        ] {
            tx.execute(sql, &[&moved, &to.user_id]).map_err(backend)?;
        }
        // The new owner's phones may have passed these rows: its own copy of each, case by
        // case in the list's order, each case's in feed order.
        let mut rows_of: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        for row in tx
            .query(
                "SELECT c.case_id, c.id, c.hash FROM changes c
                 JOIN feed f ON f.change_id = c.id AND f.audience IS NULL
                 WHERE c.case_id = ANY($1) ORDER BY f.seq",
                &[&moved],
            )
            .map_err(backend)?
        {
            rows_of
                .entry(row.get(0))
                .or_default()
                .push((row.get(1), row.get(2)));
        }
        let queued: Vec<(String, i64, String)> = moved
            .iter()
            .flat_map(|case_id| {
                rows_of
                    .remove(case_id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |(id, hash)| (case_id.clone(), id, hash))
            })
            .collect();
        head.append_all(&mut tx, &queued, &to.user_id, (&to.user_id, &to.team))?;
        tx.execute(
            "INSERT INTO case_handovers (case_id, user_id, until)
             SELECT c, u, $3 FROM UNNEST($1::text[], $2::text[]) AS t(c, u)
             ON CONFLICT (case_id, user_id) DO UPDATE SET until = excluded.until",
            &[&moved, &former, &grace_until],
        )
        .map_err(backend)?;
        // The former owner's phones remove the case, unless that user still reads it.
        tx.execute(
            "INSERT INTO removals (user_id, case_id, at)
             SELECT u, c, $3 FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS t(c, u, n)
             WHERE NOT EXISTS (SELECT 1 FROM assignments a WHERE a.case_id = t.c AND a.user_id = t.u)
               AND NOT EXISTS (SELECT 1 FROM users WHERE user_id = t.u AND role <> 'agent')
             ORDER BY n",
            &[&moved, &former, &now],
        )
        .map_err(backend)?;
        let subjects: Vec<String> = moved
            .iter()
            .zip(&former)
            .map(|(case_id, old)| format!("{case_id} {old} -> {}", to.user_id))
            .collect();
        let subjects: Vec<&str> = subjects.iter().map(String::as_str).collect();
        let mut audit = AuditHead::lock(&mut tx)?;
        audit.append(&mut tx, now, by, "case.reassign", &subjects)?;
        audit.save(&mut tx)?;
        head.save(&mut tx)?;
        tx.commit().map_err(backend)?;
        Ok(moved)
    }

    fn in_handover(&self, case_id: &str, user_id: &str, now: i64) -> StorageResult<bool> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT 1 FROM case_handovers WHERE case_id = $1 AND user_id = $2 AND until > $3",
                &[&case_id, &user_id, &now],
            )
            .map_err(backend)?
            .is_some())
    }

    fn removals_after(
        &self,
        user_id: &str,
        seq: u64,
        limit: usize,
    ) -> StorageResult<Vec<(u64, String)>> {
        Ok(self
            .client()?
            .query(
                "SELECT seq, case_id FROM removals WHERE user_id = $1 AND seq > $2
                 ORDER BY seq LIMIT $3",
                &[
                    &user_id,
                    &pg_seq(seq),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
            .collect())
    }

    fn duplicate_candidates(
        &self,
        reader: &User,
        limit: usize,
    ) -> StorageResult<Vec<(String, String)>> {
        let (scope, arg): (&str, Option<String>) = match ReadScope::of(reader.role) {
            ReadScope::All => ("", None),
            ReadScope::Team => ("AND a.team = $2 AND b.team = $2", Some(reader.team.clone())),
            ReadScope::Own => (
                "AND a.owner = $2 AND b.owner = $2",
                Some(reader.user_id.clone()),
            ),
        };
        let sql = format!(
            "SELECT a.case_id, b.case_id FROM case_summaries a
             JOIN case_summaries b ON b.dup_key = a.dup_key AND b.case_id > a.case_id
             WHERE a.dup_key IN (SELECT dup_key FROM case_summaries WHERE dup_key IS NOT NULL
                                 GROUP BY dup_key HAVING count(*) <= 50)
               AND coalesce(a.commune_key, '') = coalesce(b.commune_key, '')
               AND (a.birth_year IS NULL OR b.birth_year IS NULL
                    OR abs(a.birth_year - b.birth_year) <= 1)
               AND NOT EXISTS (SELECT 1 FROM distinct_cases d
                               WHERE d.case_a = a.case_id AND d.case_b = b.case_id)
               {scope}
             ORDER BY a.case_id, b.case_id LIMIT $1"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut client = self.client()?;
        let rows = match &arg {
            Some(arg) => client.query(&sql, &[&limit, arg]),
            None => client.query(&sql, &[&limit]),
        }
        .map_err(backend)?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn publish_form(
        &self,
        form_id: &str,
        version: u32,
        definition: &str,
        (by, now): (&str, i64),
        expected_head: u64,
    ) -> StorageResult<(PublishedForm, bool)> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        // Publications and retirements take the forms feed's next position one at a time, so a
        // device never reads a position before an earlier one commits (instances share it).
        tx.batch_execute("LOCK TABLE forms IN SHARE ROW EXCLUSIVE MODE")
            .map_err(backend)?;
        let version_key = i64::from(version);
        let select =
            format!("SELECT {FORM_COLUMNS} FROM forms WHERE form_id = $1 AND version = $2");
        if let Some(row) = tx
            .query_opt(&select, &[&form_id, &version_key])
            .map_err(backend)?
        {
            return Ok((form_of(&row)?, false));
        }
        pg_forms_head_is(&mut tx, expected_head)?;
        tx.execute(
            "INSERT INTO forms (form_id, version, definition, published_at, published_by, seq)
             VALUES ($1, $2, $3, $4, $5, (SELECT coalesce(max(seq), 0) + 1 FROM forms))",
            &[&form_id, &version_key, &definition, &now, &by],
        )
        .map_err(backend)?;
        audit_row(
            &mut tx,
            now,
            by,
            "form.publish",
            &format!("{form_id} v{version}"),
        )?;
        let row = tx
            .query_one(&select, &[&form_id, &version_key])
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok((form_of(&row)?, true))
    }

    fn forms(&self) -> StorageResult<Vec<PublishedForm>> {
        self.client()?
            .query(
                &format!("SELECT {FORM_COLUMNS} FROM forms ORDER BY form_id, version"),
                &[],
            )
            .map_err(backend)?
            .iter()
            .map(form_of)
            .collect()
    }

    fn forms_after(&self, seq: u64, limit: usize) -> StorageResult<Vec<PublishedForm>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.client()?
            .query(
                &format!("SELECT {FORM_COLUMNS} FROM forms WHERE seq > $1 ORDER BY seq LIMIT $2"),
                &[&pg_seq(seq), &limit],
            )
            .map_err(backend)?
            .iter()
            .map(form_of)
            .collect()
    }

    fn forms_head(&self) -> StorageResult<u64> {
        Ok(self
            .client()?
            .query_one("SELECT coalesce(max(seq), 0)::BIGINT FROM forms", &[])
            .map_err(backend)?
            .get::<_, i64>(0) as u64)
    }

    fn retire_form(
        &self,
        form_id: &str,
        version: u32,
        (by, now): (&str, i64),
        expected_head: u64,
    ) -> StorageResult<Option<PublishedForm>> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        tx.batch_execute("LOCK TABLE forms IN SHARE ROW EXCLUSIVE MODE")
            .map_err(backend)?;
        pg_forms_head_is(&mut tx, expected_head)?;
        let version_key = i64::from(version);
        let retired = tx
            .execute(
                "UPDATE forms SET retired_at = $3, seq = (SELECT max(seq) + 1 FROM forms)
                 WHERE form_id = $1 AND version = $2 AND retired_at IS NULL",
                &[&form_id, &version_key, &now],
            )
            .map_err(backend)?;
        if retired > 0 {
            audit_row(
                &mut tx,
                now,
                by,
                "form.retire",
                &format!("{form_id} v{version}"),
            )?;
        }
        let form = tx
            .query_opt(
                &format!("SELECT {FORM_COLUMNS} FROM forms WHERE form_id = $1 AND version = $2"),
                &[&form_id, &version_key],
            )
            .map_err(backend)?
            .as_ref()
            .map(form_of)
            .transpose()?;
        tx.commit().map_err(backend)?;
        Ok(form)
    }

    fn mark_distinct(&self, a: &str, b: &str, by: &str, now: i64) -> StorageResult<()> {
        let (a, b) = if a < b { (a, b) } else { (b, a) };
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        let n = tx
            .execute(
                "INSERT INTO distinct_cases (case_a, case_b, marked_by, at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&a, &b, &by, &now],
            )
            .map_err(backend)?;
        if n > 0 {
            audit_row(&mut tx, now, by, "case.not_duplicate", &format!("{a} {b}"))?;
        }
        tx.commit().map_err(backend)
    }

    fn team_members(&self, team: &str) -> StorageResult<Vec<User>> {
        self.client()?
            .query(
                "SELECT user_id, role, team FROM users WHERE team = $1 ORDER BY user_id",
                &[&team],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| {
                let role: String = r.get(1);
                Ok(User {
                    user_id: r.get(0),
                    role: Role::parse(&role)
                        .ok_or_else(|| StorageError::Backend(format!("unknown role {role:?}")))?,
                    team: r.get(2),
                    password_hash: None,
                })
            })
            .collect()
    }

    fn record_device_sync(
        &self,
        device_id: &str,
        at: i64,
        app_version: Option<&str>,
        waiting_cases: Option<u64>,
    ) -> StorageResult<()> {
        self.client()?
            .execute(
                "UPDATE devices SET last_sync_at = greatest(coalesce(last_sync_at, 0), $2),
                    app_version = $3, waiting_cases = $4 WHERE device_id = $1",
                &[
                    &device_id,
                    &at,
                    &app_version,
                    &waiting_cases.map(|w| i64::try_from(w).unwrap_or(i64::MAX)),
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn device_statuses(&self) -> StorageResult<Vec<DeviceStatus>> {
        let rows = self
            .client()?
            .query(
                "SELECT d.device_id, d.user_id, d.actor, d.name, d.token_hash, d.revoked_at,
                    d.wiped_at, u.role, u.team, d.last_sync_at, d.app_version, d.waiting_cases
                 FROM devices d JOIN users u ON u.user_id = d.user_id
                 WHERE d.token_hash <> $1 ORDER BY u.team, d.user_id, d.device_id",
                &[&super::CONSOLE_TOKEN_HASH],
            )
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let role: String = r.get(7);
                Ok(DeviceStatus {
                    device: row_to_device(r),
                    role: Role::parse(&role)
                        .ok_or_else(|| StorageError::Backend(format!("unknown role {role:?}")))?,
                    team: r.get(8),
                    last_sync_at: r.get(9),
                    app_version: r.get(10),
                    waiting_cases: r.get::<_, Option<i64>>(11).map(|w| w.max(0) as u64),
                })
            })
            .collect()
    }

    fn console_device(&self, user_id: &str, actor: &str, now: i64) -> StorageResult<Device> {
        let device_id = super::console_device_id(user_id);
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        let made = tx
            .execute(
                "INSERT INTO devices (device_id, user_id, actor, name, token_hash, enrolled_at)
                 VALUES ($1, $2, $3, 'console', $4, $5) ON CONFLICT (device_id) DO NOTHING",
                &[
                    &device_id,
                    &user_id,
                    &actor,
                    &super::CONSOLE_TOKEN_HASH,
                    &now,
                ],
            )
            .map_err(backend)?;
        if made > 0 {
            audit_row(
                &mut tx,
                now,
                user_id,
                super::CONSOLE_DEVICE_ACTION,
                &super::device_binding_subject(&device_id, actor),
            )?;
        }
        tx.commit().map_err(backend)?;
        let r = client
            .query_one(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = $1"),
                &[&device_id],
            )
            .map_err(backend)?;
        Ok(row_to_device(&r))
    }

    fn write_summaries(&self, summaries: &[SummaryWrite]) -> StorageResult<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        // The sequencer, as a push: the change count is exact while it is held.
        let head = FeedHead::lock(&mut tx)?;
        for write in summaries {
            let updated_at: Option<i64> = tx
                .query_one(
                    "SELECT max(received_at) FROM changes WHERE case_id = $1",
                    &[&write.summary.case_id],
                )
                .map_err(backend)?
                .get(0);
            if let Some(updated_at) = updated_at {
                self.write_summary(&mut tx, write, updated_at)?;
            }
        }
        drop(head);
        tx.commit().map_err(backend)
    }

    fn summaries_to_refresh(&self, limit: usize) -> StorageResult<Vec<String>> {
        let mut client = self.client()?;
        Ok(client
            .query(
                "SELECT case_id FROM (
                    SELECT k.case_id FROM cases k WHERE NOT EXISTS
                        (SELECT 1 FROM case_summaries s WHERE s.case_id = k.case_id)
                    UNION SELECT case_id FROM case_summaries WHERE stale) AS r
                 ORDER BY case_id LIMIT $1",
                &[&i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn stale_summaries(&self, case_ids: &[String]) -> StorageResult<Vec<String>> {
        let mut client = self.client()?;
        Ok(client
            .query(
                "SELECT case_id FROM case_summaries WHERE case_id = ANY($1) AND stale",
                &[&case_ids],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn list_cases(&self, reader: &User, query: &CaseQuery) -> StorageResult<CaseList> {
        use super::case_list::{arm_limit, arms, page_of, Dialect};
        let dialect = Dialect {
            param: |n| format!("${n}"),
            contains: |needle, haystack| format!("strpos({haystack}, {needle}) > 0"),
        };
        let arms = arms(reader, query, &dialect, &|t| self.sealer.blind(t));
        let mut client = self.client()?;
        // One snapshot for the counts and the page.
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(backend)?;
        let mut total = 0u64;
        let mut keys: Vec<(i64, String)> = Vec::new();
        for arm in &arms {
            let params: Vec<&(dyn postgres::types::ToSql + Sync)> = arm
                .args
                .iter()
                .map(|a| a as &(dyn postgres::types::ToSql + Sync))
                .collect();
            let count: i64 = tx
                .query_one(
                    &format!("SELECT count(*) FROM case_summaries s {}", arm.filter),
                    &params,
                )
                .map_err(backend)?
                .get(0);
            total += count as u64;
            for r in tx
                .query(
                    &format!(
                        "SELECT s.updated_at, s.case_id FROM case_summaries s {}
                         ORDER BY s.updated_at DESC, s.case_id LIMIT {}",
                        arm.filter,
                        arm_limit(query)
                    ),
                    &params,
                )
                .map_err(backend)?
            {
                keys.push((r.get(0), r.get(1)));
            }
        }
        let page = page_of(keys, query);
        let rows = tx
            .query(
                "SELECT shown, owner, team, updated_at, case_id FROM case_summaries
                 WHERE case_id = ANY($1)",
                &[&page],
            )
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        let mut by_id: HashMap<String, ListedCase> = HashMap::new();
        for r in &rows {
            let listed = self.row_to_listed(r)?;
            by_id.insert(listed.summary.case_id.clone(), listed);
        }
        let cases = page.iter().filter_map(|id| by_id.remove(id)).collect();
        Ok(CaseList { cases, total })
    }

    fn scoped_cases(
        &self,
        reader: &User,
        after: &str,
        limit: usize,
    ) -> StorageResult<Vec<ListedCase>> {
        use super::case_list::{and, arms, merged_ids, Dialect};
        let dialect = Dialect {
            param: |n| format!("${n}"),
            contains: |needle, haystack| format!("strpos({haystack}, {needle}) > 0"),
        };
        let arms = arms(reader, &CaseQuery::default(), &dialect, &|t| {
            self.sealer.blind(t)
        });
        let limit_arg = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = after.to_string();
        let mut client = self.client()?;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(backend)?;
        let mut ids = Vec::new();
        for arm in &arms {
            let n = arm.args.len();
            let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = arm
                .args
                .iter()
                .map(|a| a as &(dyn postgres::types::ToSql + Sync))
                .collect();
            params.push(&after);
            params.push(&limit_arg);
            for r in tx
                .query(
                    &format!(
                        "SELECT s.case_id FROM case_summaries s {} ORDER BY s.case_id LIMIT ${}",
                        and(&arm.filter, &format!("s.case_id > ${}", n + 1)),
                        n + 2
                    ),
                    &params,
                )
                .map_err(backend)?
            {
                ids.push(r.get::<_, String>(0));
            }
        }
        let page = merged_ids(ids, limit);
        let rows = tx
            .query(
                "SELECT shown, owner, team, updated_at, case_id FROM case_summaries
                 WHERE case_id = ANY($1) ORDER BY case_id",
                &[&page],
            )
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        rows.iter().map(|r| self.row_to_listed(r)).collect()
    }

    fn indicator_cells(&self, reader: &User, today: &str) -> StorageResult<Vec<IndicatorCell>> {
        use super::indicators::{cells_sql, merge_cells};
        let today = today.to_string();
        let cells = self.per_arm(reader, &cells_sql, &[&today], |r| {
            let count = |i: usize| r.get::<_, Option<i64>>(i).unwrap_or(0) as u64;
            IndicatorCell {
                month: r.get::<_, Option<String>>(0).unwrap_or_default(),
                province_key: r.get(1),
                commune_key: r.get(2),
                sector: r.get(3),
                days_to_service: r.get(4),
                cases: count(5),
                referred: count(6),
                service: count(7),
                stopped_working: count(8),
                overdue: count(9),
            }
        })?;
        Ok(merge_cells(cells))
    }

    fn place_spellings(&self, reader: &User) -> StorageResult<Vec<PlaceSpelling>> {
        use super::indicators::{merge_spellings, spellings_sql};
        let mut spellings = Vec::new();
        for kind in ["province", "commune"] {
            spellings.extend(self.per_arm(
                reader,
                &|arm, _| spellings_sql(arm, kind),
                &[],
                |r| PlaceSpelling {
                    kind: kind.to_string(),
                    key: r.get(0),
                    spelling: r.get(1),
                    cases: r.get::<_, i64>(2) as u64,
                },
            )?);
        }
        Ok(merge_spellings(spellings))
    }

    fn referral_groups(&self, reader: &User, now: i64) -> StorageResult<Vec<ReferralGroup>> {
        use super::indicators::{groups_sql, merge_groups};
        let groups = self.per_arm(reader, &groups_sql, &[&now], |r| {
            let mut time_in = [(0i64, 0u64); 5];
            for (k, slot) in time_in.iter_mut().enumerate() {
                *slot = (
                    r.get::<_, Option<i64>>(5 + 2 * k).unwrap_or(0),
                    r.get::<_, Option<i64>>(6 + 2 * k).unwrap_or(0) as u64,
                );
            }
            ReferralGroup {
                service_type: r.get(0),
                provider_key: r.get(1),
                provider: r.get(2),
                status: r.get(3),
                referrals: r.get::<_, i64>(4) as u64,
                time_in,
            }
        })?;
        Ok(merge_groups(groups))
    }

    fn stuck_referrals(
        &self,
        reader: &User,
        before: i64,
        limit: usize,
    ) -> StorageResult<Vec<StuckReferral>> {
        use super::indicators::{merge_stuck, stuck_sql};
        let limit_arg = i64::try_from(limit).unwrap_or(i64::MAX);
        let stuck = self.per_arm(reader, &stuck_sql, &[&before, &limit_arg], |r| {
            StuckReferral {
                case_id: r.get(0),
                referral_id: r.get(1),
                service_type: r.get(2),
                provider: r.get(3),
                status: r.get(4),
                status_since: r.get(5),
            }
        })?;
        Ok(merge_stuck(stuck, limit))
    }

    fn listed_case(&self, case_id: &str) -> StorageResult<Option<ListedCase>> {
        let mut client = self.client()?;
        client
            .query_opt(
                "SELECT shown, owner, team, updated_at, case_id FROM case_summaries
                 WHERE case_id = $1",
                &[&case_id],
            )
            .map_err(backend)?
            .map(|r| self.row_to_listed(&r))
            .transpose()
    }

    fn change_origins(&self, case_id: &str) -> StorageResult<Vec<ChangeOrigin>> {
        let mut client = self.client()?;
        Ok(client
            .query(
                "SELECT c.hash, coalesce(d.user_id, ''), c.origin_device, c.received_at
                 FROM changes c LEFT JOIN devices d ON d.device_id = c.origin_device
                 WHERE c.case_id = $1 ORDER BY c.id",
                &[&case_id],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| ChangeOrigin {
                hash: r.get(0),
                user_id: r.get(1),
                device_id: r.get(2),
                received_at: r.get(3),
            })
            .collect())
    }

    fn set_password(&self, user_id: &str, hash: Option<&str>, now: i64) -> StorageResult<bool> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        let changed = tx
            .execute(
                "UPDATE users SET password_hash = $2 WHERE user_id = $1",
                &[&user_id, &hash],
            )
            .map_err(backend)?;
        if changed == 0 {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM console_sessions WHERE user_id = $1",
            &[&user_id],
        )
        .map_err(backend)?;
        audit_row(&mut tx, now, "admin", "user.password", user_id)?;
        tx.commit().map_err(backend)?;
        Ok(true)
    }

    fn add_session(&self, session: &ConsoleSession) -> StorageResult<()> {
        self.client()?
            .execute(
                "INSERT INTO console_sessions (token_hash, user_id, csrf_token, created_at, last_seen)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &session.token_hash,
                    &session.user_id,
                    &session.csrf_token,
                    &session.created_at,
                    &session.last_seen,
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn session(&self, token_hash: &str) -> StorageResult<Option<ConsoleSession>> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT token_hash, user_id, csrf_token, created_at, last_seen
                 FROM console_sessions WHERE token_hash = $1",
                &[&token_hash],
            )
            .map_err(backend)?
            .map(|r| ConsoleSession {
                token_hash: r.get(0),
                user_id: r.get(1),
                csrf_token: r.get(2),
                created_at: r.get(3),
                last_seen: r.get(4),
            }))
    }

    fn touch_session(&self, token_hash: &str, now: i64) -> StorageResult<()> {
        self.client()?
            .execute(
                "UPDATE console_sessions SET last_seen = greatest(last_seen, $2)
                 WHERE token_hash = $1",
                &[&token_hash, &now],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn end_session(&self, token_hash: &str) -> StorageResult<()> {
        self.client()?
            .execute(
                "DELETE FROM console_sessions WHERE token_hash = $1",
                &[&token_hash],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn end_expired_sessions(&self, idle_before: i64, created_before: i64) -> StorageResult<()> {
        self.client()?
            .execute(
                "DELETE FROM console_sessions WHERE last_seen < $1 OR created_at < $2",
                &[&idle_before, &created_before],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn login_failures(&self, key: &str) -> StorageResult<LoginFailures> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT count, last_at FROM login_failures WHERE key = $1",
                &[&key],
            )
            .map_err(backend)?
            .map(|r| LoginFailures {
                count: u32::try_from(r.get::<_, i64>(0)).unwrap_or(u32::MAX),
                last_at: r.get(1),
            })
            .unwrap_or_default())
    }

    fn record_login_failure(
        &self,
        key: &str,
        now: i64,
        forget_before: i64,
    ) -> StorageResult<LoginFailures> {
        let r = self
            .client()?
            .query_one(
                "INSERT INTO login_failures (key, count, last_at) VALUES ($1, 1, $2)
                 ON CONFLICT (key) DO UPDATE
                 SET count = CASE WHEN login_failures.last_at < $3 THEN 1
                                  ELSE login_failures.count + 1 END,
                     last_at = excluded.last_at
                 RETURNING count, last_at",
                &[&key, &now, &forget_before],
            )
            .map_err(backend)?;
        Ok(LoginFailures {
            count: u32::try_from(r.get::<_, i64>(0)).unwrap_or(u32::MAX),
            last_at: r.get(1),
        })
    }

    fn forgive_login_failure(&self, key: &str) -> StorageResult<()> {
        self.client()?
            .execute(
                "UPDATE login_failures SET count = greatest(count - 1, 0) WHERE key = $1",
                &[&key],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn clear_login_failures(&self, key: &str) -> StorageResult<()> {
        self.client()?
            .execute("DELETE FROM login_failures WHERE key = $1", &[&key])
            .map_err(backend)?;
        Ok(())
    }
}
