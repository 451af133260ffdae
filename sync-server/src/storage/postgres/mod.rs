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
    next_audit_mark, AdmissionWrite, AuditQuery, AuditRow, CaseAccess, CaseList, CaseQuery,
    CaseRecords, CaseSummary, ChainHeads, ChangeOrigin, ConsoleSession, CursorCheck, Device,
    DeviceStatus, FeedLink, FeedLinkChange, FeedMarks, FeedPage, FeedRow, IndicatorCell,
    ListedCase, LoginFailures, PlaceSpelling, PublishedForm, QuarantinedCase, Quota, ReferralGroup,
    Role, StorageError, StorageResult, StoredChange, StuckList, StuckQuery, StuckReferral,
    SummaryWrite, Usage, User, Viewer,
};

mod accounts;
mod audit;
mod feed;
mod forms;
mod lifecycle;
mod projections;
mod sign_in;
use audit::*;
use feed::*;

const MIGRATIONS: [&str; 11] = [
    include_str!("../migrations/postgres/001_server.sql"),
    include_str!("../migrations/postgres/002_console.sql"),
    include_str!("../migrations/postgres/003_device_status.sql"),
    include_str!("../migrations/postgres/004_reassignment.sql"),
    include_str!("../migrations/postgres/005_duplicates.sql"),
    include_str!("../migrations/postgres/006_audit_chain.sql"),
    include_str!("../migrations/postgres/007_indicators.sql"),
    include_str!("../migrations/postgres/008_forms.sql"),
    include_str!("../migrations/postgres/009_feed_marks.sql"),
    include_str!("../migrations/postgres/010_exports.sql"),
    include_str!("../migrations/postgres/011_outcomes.sql"),
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

/// Replaces a case's indicator row and referral rows (`summary::indicators`), with its summary.
/// Province, commune and provider are kept as typed (see `007_indicators.sql`).
fn write_indicators(tx: &mut impl GenericClient, write: &SummaryWrite) -> StorageResult<()> {
    let case_id = &write.summary.case_id;
    let i = &write.indicators;
    let flag = |b: bool| i64::from(b);
    tx.execute(
        "INSERT INTO case_indicators (case_id, counted, identified_on, province, province_key,
            commune, commune_key, sector, referred, service, stopped_working, days_to_service,
            next_followup_due, sex, village, village_key, stage, classification, closure,
            closed_reason, reopenings, visits_scheduled, visits_on_time)
         SELECT $1, $2, coalesce($3, to_char(to_timestamp(k.created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')),
                $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                $21, $22, $23
         FROM cases k WHERE k.case_id = $1
         ON CONFLICT (case_id) DO UPDATE SET counted = excluded.counted,
            identified_on = excluded.identified_on, province = excluded.province,
            province_key = excluded.province_key, commune = excluded.commune,
            commune_key = excluded.commune_key, sector = excluded.sector,
            referred = excluded.referred, service = excluded.service,
            stopped_working = excluded.stopped_working,
            days_to_service = excluded.days_to_service,
            next_followup_due = excluded.next_followup_due, sex = excluded.sex,
            village = excluded.village, village_key = excluded.village_key,
            stage = excluded.stage, classification = excluded.classification,
            closure = excluded.closure, closed_reason = excluded.closed_reason,
            reopenings = excluded.reopenings, visits_scheduled = excluded.visits_scheduled,
            visits_on_time = excluded.visits_on_time",
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
            &i.sex,
            &i.village,
            &i.village_key,
            &i.stage,
            &i.classification,
            &i.closure,
            &i.closed_reason,
            &i.reopenings,
            &i.visits_scheduled,
            &i.visits_on_time,
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
    let urgencies = column(&|r| r.urgency.clone());
    tx.execute(
        "INSERT INTO referral_summaries (case_id, referral_id, service_type, provider,
            provider_key, status, created_at, status_since, secs_draft, secs_sent,
            secs_accepted, secs_declined, secs_in_service, urgency)
         SELECT $1, i, sv, p, pk, st, c, sn, d, se, a, de, ins, u
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
                     $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[],
                     $13::bigint[], $14::text[])
              AS t(i, sv, p, pk, st, c, sn, d, se, a, de, ins, u)
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
            &urgencies,
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
            let records = serde_json::to_vec(&write.records)
                .map_err(|e| StorageError::Backend(e.to_string()))?;
            let records = self.sealer.seal_records(&s.case_id, &records);
            tx.execute(
                "INSERT INTO case_records (case_id, body) VALUES ($1, $2)
                 ON CONFLICT (case_id) DO UPDATE SET body = excluded.body",
                &[&s.case_id, &records],
            )
            .map_err(backend)?;
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
