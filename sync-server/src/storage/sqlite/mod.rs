//! The embedded default: one SQLite file (SQLCipher-encrypted when a key is given) in WAL mode.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};
use suivi_core::policy::ReadScope;

use super::{
    next_audit_mark, next_feed_mark, AdmissionWrite, AuditQuery, AuditRow, CaseAccess, CaseList,
    CaseQuery, CaseRecords, CaseSummary, ChainHeads, ChangeOrigin, ConsoleSession, CursorCheck,
    Device, DeviceStatus, FeedLink, FeedLinkChange, FeedMarks, FeedPage, FeedRow, IndicatorCell,
    ListedCase, LoginFailures, PlaceSpelling, PublishedForm, QuarantinedCase, Quota, ReferralGroup,
    Role, StorageError, StorageResult, StoredChange, StuckList, StuckQuery, StuckReferral,
    SummaryWrite, Usage, User, Viewer,
};

mod accounts;
mod audit;
pub mod encrypt;
mod feed;
mod forms;
mod lifecycle;
mod projections;
mod sign_in;

const MIGRATIONS: [&str; 15] = [
    include_str!("../migrations/001_server.sql"),
    include_str!("../migrations/002_trust.sql"),
    include_str!("../migrations/003_quotas.sql"),
    include_str!("../migrations/004_erasure.sql"),
    include_str!("../migrations/005_pull_by_caseload.sql"),
    include_str!("../migrations/006_console.sql"),
    include_str!("../migrations/007_device_status.sql"),
    include_str!("../migrations/008_reassignment.sql"),
    include_str!("../migrations/009_duplicates.sql"),
    include_str!("../migrations/010_audit_chain.sql"),
    include_str!("../migrations/011_indicators.sql"),
    include_str!("../migrations/012_forms.sql"),
    include_str!("../migrations/013_feed_marks.sql"),
    include_str!("../migrations/014_exports.sql"),
    include_str!("../migrations/015_outcomes.sql"),
];
/// Days of per-device usage kept (for `device quota` to show recent days).
const USAGE_DAYS_KEPT: i64 = 7;
/// Every feed mark, of live rows and of rows an erasure removed.
const ALL_MARKS: &str =
    "(SELECT seq, mark FROM feed UNION ALL SELECT seq, mark FROM erased_feed_marks)";
/// The feed's end, rows an erasure removed included: two primary-key lookups (an aggregate over
/// `ALL_MARKS` would read every row of both tables).
const FEED_END: &str = "SELECT max(coalesce((SELECT max(seq) FROM feed), 0),
                                    coalesce((SELECT max(seq) FROM erased_feed_marks), 0))";
/// Rows read per query while filling a page.
const FEED_ROWS_PER_QUERY: usize = 512;

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

/// Keeps SQLite's message (tables and constraints, never row values) and says whether a retry
/// can succeed: a database busy or locked past the busy timeout is worth another try.
pub(super) fn backend(err: rusqlite::Error) -> StorageError {
    use rusqlite::ffi::ErrorCode;
    match &err {
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
        {
            StorageError::Retryable(err.to_string())
        }
        _ => StorageError::Backend(err.to_string()),
    }
}

/// A role stored by an older or newer server, or edited by hand, is an error, never read as
/// `Agent`: access follows the role, so a guess could widen or narrow a caseload silently.
fn parse_role(text: &str) -> rusqlite::Result<Role> {
    Role::parse(text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Text,
            format!("unknown role {text:?}").into(),
        )
    })
}

fn row_to_device(r: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        device_id: r.get(0)?,
        user_id: r.get(1)?,
        actor: r.get(2)?,
        name: r.get(3)?,
        token_hash: r.get(4)?,
        revoked: r.get::<_, Option<i64>>(5)?.is_some(),
        wiped: r.get::<_, Option<i64>>(6)?.is_some(),
    })
}

/// One row of the audit log, inside the caller's transaction when it has one, so an action and
/// its record land together.
fn audit_row(
    conn: &Connection,
    now: i64,
    actor: &str,
    action: &str,
    subject: &str,
) -> StorageResult<()> {
    // The id is the last one plus one, chosen here: two writers racing for it (a command run
    // beside the server) collide on the key, one fails, and the chain never forks.
    let (last, previous): (i64, Option<Vec<u8>>) = conn
        .prepare_cached("SELECT id, mark FROM audit_log ORDER BY id DESC LIMIT 1")
        .map_err(backend)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(backend)?
        .unwrap_or((0, None));
    let id = last + 1;
    let mark = next_audit_mark(
        &previous.unwrap_or_default(),
        id as u64,
        now,
        actor,
        action,
        subject,
    );
    conn.prepare_cached(
        "INSERT INTO audit_log (id, at, actor, action, subject, mark) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .map_err(backend)?
    .execute(params![id, now, actor, action, subject, mark])
    .map_err(backend)?;
    Ok(())
}

fn row_to_audit(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        id: r.get::<_, i64>(0)? as u64,
        at: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        subject: r.get(4)?,
        mark: r.get::<_, Option<Vec<u8>>>(5)?.unwrap_or_default(),
    })
}

fn row_to_stored_change(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredChange> {
    Ok(StoredChange {
        id: r.get::<_, i64>(0)? as u64,
        case_id: r.get(1)?,
        hash: r.get(2)?,
        data: r.get(3)?,
        origin_device: r.get(4)?,
        origin_actor: r.get(5)?,
        received_at: r.get(6)?,
        in_feed: r.get(7)?,
    })
}

const STORED_CHANGE_COLUMNS: &str = "c.id, c.case_id, c.hash, c.data, c.origin_device, d.actor,
    c.received_at,
    EXISTS (SELECT 1 FROM feed f
            WHERE f.change_id = c.id AND f.audience IS NULL AND f.case_id = c.case_id)
    FROM changes c LEFT JOIN devices d ON d.device_id = c.origin_device";

/// Fills the marks of audit rows written before the log was chained, in id order.
fn backfill_audit_marks(conn: &mut Connection) -> StorageResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let unmarked: Vec<AuditRow> = {
        let mut stmt = tx
            .prepare(
                "SELECT id, at, actor, action, subject, mark FROM audit_log
                 WHERE mark IS NULL ORDER BY id",
            )
            .map_err(backend)?;
        let rows = stmt.query_map([], row_to_audit).map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)?
    };
    for row in unmarked {
        let previous: Vec<u8> = tx
            .query_row(
                "SELECT mark FROM audit_log WHERE id < ?1 ORDER BY id DESC LIMIT 1",
                [row.id as i64],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()
            .map_err(backend)?
            .flatten()
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
            "UPDATE audit_log SET mark = ?2 WHERE id = ?1",
            params![row.id as i64, mark],
        )
        .map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

fn sqlite_dialect() -> super::case_list::Dialect {
    super::case_list::Dialect {
        param: |n| format!("?{n}"),
        contains: |needle, haystack| format!("instr({haystack}, {needle}) > 0"),
    }
}

/// `text` for a LIKE pattern, its wildcards taken literally.
fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Replaces a case's projection row and search terms, inside the caller's transaction.
fn write_summary(conn: &Connection, write: &SummaryWrite, now: i64) -> StorageResult<()> {
    let s = &write.summary;
    let shown = serde_json::to_vec(s).map_err(|e| StorageError::Backend(e.to_string()))?;
    let held: i64 = conn
        .prepare_cached("SELECT count(*) FROM changes WHERE case_id = ?1")
        .map_err(backend)?
        .query_row([&s.case_id], |r| r.get(0))
        .map_err(backend)?;
    let stale = held as u64 != write.change_count;
    let written = conn
        .prepare_cached(
            "INSERT INTO case_summaries (case_id, owner, team, shown, village_key, risk_level,
            referral_statuses, next_followup_due, conflict_count, birth_year, updated_at, stale,
            dup_key, commune_key, change_count)
         SELECT ?1, k.created_by, k.team, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13
         FROM cases k WHERE k.case_id = ?1
         ON CONFLICT (case_id) DO UPDATE SET shown = excluded.shown,
            village_key = excluded.village_key, risk_level = excluded.risk_level,
            referral_statuses = excluded.referral_statuses,
            next_followup_due = excluded.next_followup_due,
            conflict_count = excluded.conflict_count, birth_year = excluded.birth_year,
            updated_at = max(updated_at, excluded.updated_at), stale = excluded.stale,
            owner = excluded.owner, team = excluded.team, dup_key = excluded.dup_key,
            commune_key = excluded.commune_key, change_count = excluded.change_count
         WHERE excluded.change_count >= case_summaries.change_count",
        )
        .map_err(backend)?
        .execute(params![
            s.case_id,
            shown,
            write.village_key,
            s.risk_level,
            super::statuses_column(&s.referral_statuses),
            s.next_followup_due,
            s.conflict_count,
            s.birth_year,
            now,
            stale,
            write.dup_key,
            write.commune_key,
            i64::try_from(write.change_count).unwrap_or(i64::MAX)
        ])
        .map_err(backend)?;
    if written > 0 {
        write_indicators(conn, write)?;
        let records =
            serde_json::to_vec(&write.records).map_err(|e| StorageError::Backend(e.to_string()))?;
        conn.prepare_cached("INSERT OR REPLACE INTO case_records (case_id, body) VALUES (?1, ?2)")
            .map_err(backend)?
            .execute(params![s.case_id, records])
            .map_err(backend)?;
    }
    conn.prepare_cached("DELETE FROM case_search_terms WHERE case_id = ?1")
        .map_err(backend)?
        .execute([&s.case_id])
        .map_err(backend)?;
    let mut insert = conn
        .prepare_cached("INSERT OR IGNORE INTO case_search_terms (term, case_id) VALUES (?1, ?2)")
        .map_err(backend)?;
    for term in &write.name_terms {
        insert.execute([term, &s.case_id]).map_err(backend)?;
    }
    Ok(())
}

/// Replaces a case's indicator row and referral rows (`summary::indicators`), with its summary.
fn write_indicators(conn: &Connection, write: &SummaryWrite) -> StorageResult<()> {
    let case_id = &write.summary.case_id;
    let i = &write.indicators;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO case_indicators (case_id, counted, identified_on, province,
            province_key, commune, commune_key, sector, referred, service, stopped_working,
            days_to_service, next_followup_due, sex, village, village_key, stage, classification,
            closure, closed_reason, reopenings, visits_scheduled, visits_on_time)
         SELECT ?1, ?2, coalesce(?3, date(k.created_at, 'unixepoch')), ?4, ?5, ?6, ?7, ?8, ?9,
                ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23
         FROM cases k WHERE k.case_id = ?1",
    )
    .map_err(backend)?
    .execute(params![
        case_id,
        i.counted,
        i.identified_on,
        i.province,
        i.province_key,
        i.commune,
        i.commune_key,
        i.sector,
        i.referred,
        i.service,
        i.stopped_working,
        i.days_to_service,
        write.summary.next_followup_due,
        i.sex,
        i.village,
        i.village_key,
        i.stage,
        i.classification,
        i.closure,
        i.closed_reason,
        i.reopenings,
        i.visits_scheduled,
        i.visits_on_time,
    ])
    .map_err(backend)?;
    conn.prepare_cached("DELETE FROM referral_summaries WHERE case_id = ?1")
        .map_err(backend)?
        .execute([case_id])
        .map_err(backend)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO referral_summaries (case_id, referral_id, service_type,
                provider, provider_key, status, created_at, status_since, secs_draft, secs_sent,
                secs_accepted, secs_declined, secs_in_service, urgency)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .map_err(backend)?;
    for r in &write.referrals {
        insert
            .execute(params![
                case_id,
                r.referral_id,
                r.service_type,
                r.provider,
                r.provider_key,
                r.status,
                r.created_at,
                r.status_since,
                r.secs_in[0],
                r.secs_in[1],
                r.secs_in[2],
                r.secs_in[3],
                r.secs_in[4],
                r.urgency,
            ])
            .map_err(backend)?;
    }
    Ok(())
}

fn row_to_listed(r: &rusqlite::Row<'_>) -> rusqlite::Result<ListedCase> {
    let shown: Vec<u8> = r.get(0)?;
    let summary: CaseSummary = serde_json::from_slice(&shown).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, e.into())
    })?;
    Ok(ListedCase {
        summary,
        created_by: r.get(1)?,
        team: r.get(2)?,
        updated_at: r.get(3)?,
    })
}

/// Appends a copy of every change of a case for `user` only (an assignment, a reassignment):
/// that user's phones may have passed the case's rows already.
fn queue_case_for(
    tx: &Connection,
    feed: &mut FeedAppender,
    case_id: &str,
    user: &str,
) -> StorageResult<()> {
    let changes: Vec<(i64, String)> = tx
        .prepare_cached("SELECT id, hash FROM changes WHERE case_id = ?1 ORDER BY id")
        .map_err(backend)?
        .query_map([case_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(backend)?
        .collect::<rusqlite::Result<_>>()
        .map_err(backend)?;
    for (id, hash) in changes {
        feed.append(tx, id, case_id, &hash, Some(user))?;
    }
    Ok(())
}

/// Appends feed rows inside a write transaction, chaining each row's mark to the last.
struct FeedAppender {
    previous: Vec<u8>,
    marks: FeedMarks,
}

/// The feed marks' formula, as the database records it.
fn feed_marks(tx: &Connection) -> StorageResult<FeedMarks> {
    let from: i64 = tx
        .query_row(
            "SELECT case_id_from FROM feed_mark_formula WHERE one = 1",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    Ok(FeedMarks {
        case_id_from: u64::try_from(from).map_err(|_| {
            StorageError::Backend(format!("feed_mark_formula holds {from}, not a position"))
        })?,
    })
}

impl FeedAppender {
    fn start(tx: &Connection) -> StorageResult<FeedAppender> {
        let previous: Option<Vec<u8>> = tx
            .query_row(
                &format!("SELECT mark FROM {ALL_MARKS} WHERE seq = ({FEED_END})"),
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?
            .flatten();
        Ok(FeedAppender {
            previous: previous.unwrap_or_default(),
            marks: feed_marks(tx)?,
        })
    }

    fn append(
        &mut self,
        tx: &Connection,
        change_id: i64,
        case_id: &str,
        hash: &str,
        audience: Option<&str>,
    ) -> StorageResult<()> {
        // The case's owner and team go on the row, so a pull finds its caseload's rows by index.
        let (owner, team): (String, String) = tx
            .query_row(
                "SELECT created_by, team FROM cases WHERE case_id = ?1",
                [case_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(backend)?;
        tx.execute(
            "INSERT INTO feed (change_id, case_id, audience, owner, team) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![change_id, case_id, audience, owner, team],
        )
        .map_err(backend)?;
        let seq = tx.last_insert_rowid();
        let mark = self
            .marks
            .next(&self.previous, seq as u64, hash, audience, case_id);
        tx.execute(
            "UPDATE feed SET mark = ?2 WHERE seq = ?1",
            params![seq, mark],
        )
        .map_err(backend)?;
        self.previous = mark;
        Ok(())
    }
}

/// The feed query of a read scope (parameters: ?1 cursor, ?2 end, ?3 user, ?4 team, ?5 the
/// reading device).
fn feed_sql(scope: ReadScope) -> String {
    // The policy's read scope, translated (`ReadScope::includes` is what this must match):
    // one arm per way a row enters the caseload, each an index range scan from the cursor
    // (owner or team, audience rows, assigned cases), merged in feed order. Officers and
    // admins read the whole project: their arm walks every row after the cursor. A device is
    // not sent its own changes back, except in rows queued for its user (an assignment, a case
    // reassigned back to it after its phones removed it).
    let assigned = "f.case_id IN (SELECT a.case_id FROM assignments a WHERE a.user_id = ?3)";
    let arms: Vec<String> = match scope {
        ReadScope::Own => vec![
            "f.audience IS NULL AND f.owner = ?3".into(),
            format!("f.audience IS NULL AND f.owner != ?3 AND {assigned}"),
            format!("f.audience = ?3 AND (f.owner = ?3 OR {assigned})"),
        ],
        ReadScope::Team => vec![
            "f.audience IS NULL AND f.team = ?4".into(),
            format!("f.audience IS NULL AND f.team != ?4 AND {assigned}"),
            format!("f.audience = ?3 AND (f.team = ?4 OR {assigned})"),
        ],
        ReadScope::All => {
            vec!["(f.audience IS NULL OR f.audience = ?3) AND ?4 IS NOT NULL".into()]
        }
    };
    arms
        .iter()
        .map(|arm| {
            format!(
                "SELECT f.seq, f.case_id, c.data, coalesce(d.user_id, ''), c.origin_device, c.received_at
                 FROM feed f
                 JOIN changes c ON c.id = f.change_id
                 LEFT JOIN devices d ON d.device_id = c.origin_device
                 WHERE f.seq > ?1 AND f.seq <= ?2 AND {arm}
                   AND (f.audience IS NOT NULL OR c.origin_device != ?5)
                   AND NOT EXISTS (SELECT 1 FROM quarantined_cases q WHERE q.case_id = f.case_id)"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
        + &format!(" ORDER BY 1 LIMIT {FEED_ROWS_PER_QUERY}")
}

/// Fills the marks of rows written before marks existed, in feed order.
fn backfill_marks(conn: &mut Connection) -> StorageResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    let rows: Vec<(i64, String, Option<String>)> = {
        let mut stmt = tx
            .prepare(
                "SELECT f.seq, c.hash, f.audience FROM feed f JOIN changes c ON c.id = f.change_id
                 WHERE f.mark IS NULL ORDER BY f.seq",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)?
    };
    for (seq, hash, audience) in rows {
        let previous: Vec<u8> = tx
            .query_row(
                "SELECT mark FROM feed WHERE seq < ?1 ORDER BY seq DESC LIMIT 1",
                [seq],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()
            .map_err(backend)?
            .flatten()
            .unwrap_or_default();
        let mark = next_feed_mark(&previous, seq as u64, &hash, audience.as_deref());
        tx.execute(
            "UPDATE feed SET mark = ?2 WHERE seq = ?1",
            params![seq, mark],
        )
        .map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

const DEVICE_COLUMNS: &str = "device_id, user_id, actor, name, token_hash, revoked_at, wiped_at";
const FORM_COLUMNS: &str =
    "form_id, version, definition, published_at, published_by, retired_at, seq";

/// `Moved` unless the forms feed still ends at `expected`: a check made on it still holds.
fn sqlite_forms_head_is(conn: &Connection, expected: u64) -> StorageResult<()> {
    let head: i64 = conn
        .query_row("SELECT coalesce(max(seq), 0) FROM forms", [], |r| r.get(0))
        .map_err(backend)?;
    if head as u64 != expected {
        return Err(StorageError::Moved(format!(
            "the forms feed is at {head}, not {expected}"
        )));
    }
    Ok(())
}

fn form_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PublishedForm> {
    Ok(PublishedForm {
        form_id: r.get(0)?,
        version: r.get(1)?,
        definition: r.get(2)?,
        published_at: r.get(3)?,
        published_by: r.get(4)?,
        retired_at: r.get(5)?,
        seq: r.get::<_, i64>(6)? as u64,
    })
}

impl SqliteStore {
    /// Opens (or creates) the server database. With `key`, the file is encrypted with SQLCipher.
    pub fn open(path: &Path, key: Option<&str>) -> StorageResult<SqliteStore> {
        suivi_core::store::sqlcipher::initialise().map_err(backend)?;
        let mut conn = Connection::open(path).map_err(backend)?;
        if let Some(key) = key {
            conn.pragma_update(None, "key", key).map_err(backend)?;
        }
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                StorageError::Backend(
                    "cannot read the database: wrong key or not a database".into(),
                )
            }
            // A full disk or an I/O error says so: it is not a key problem.
            _ => backend(e),
        })?;
        // 64 MiB of decrypted pages: a SQLCipher page read from disk is decrypted and checked
        // again, so a console list over a large team must find its pages here.
        conn.pragma_update(None, "cache_size", -65_536)
            .map_err(backend)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(backend)?;
        // FULL: a push the device was told is stored survives a power cut.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(backend)?;
        // Deleted rows are overwritten, not left in free pages: an erased child's name must not
        // survive in the file.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(backend)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(backend)?;
        if version > MIGRATIONS.len() as i64 {
            return Err(StorageError::Backend(format!(
                "database schema {version} is newer than this server"
            )));
        }
        for v in version + 1..=MIGRATIONS.len() as i64 {
            let tx = conn.transaction().map_err(backend)?;
            tx.execute_batch(MIGRATIONS[(v - 1) as usize])
                .map_err(backend)?;
            tx.pragma_update(None, "user_version", v).map_err(backend)?;
            tx.commit().map_err(backend)?;
        }
        backfill_marks(&mut conn)?;
        backfill_audit_marks(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    /// The rows of a query run once per arm of `reader`'s scope (`indicators::scope`), each run
    /// given the arm's parameters then `extra`: the officer's views, merged by their caller.
    fn per_arm<T>(
        &self,
        reader: &User,
        sql: &dyn Fn(&super::case_list::Arm, &super::case_list::Dialect) -> String,
        extra: Vec<rusqlite::types::Value>,
        row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> StorageResult<Vec<T>> {
        let dialect = sqlite_dialect();
        let conn = self.conn();
        let mut out = Vec::new();
        for arm in super::indicators::scope(reader, &dialect, &|t| t.to_string()) {
            let mut args: Vec<rusqlite::types::Value> =
                arm.args.iter().map(|a| a.clone().into()).collect();
            args.extend(extra.iter().cloned());
            let mut stmt = conn.prepare_cached(&sql(&arm, &dialect)).map_err(backend)?;
            let rows = stmt
                .query_map(params_from_iter(args), &row)
                .map_err(backend)?;
            for r in rows {
                out.push(r.map_err(backend)?);
            }
        }
        Ok(out)
    }

    pub(super) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::prelude::*;

    fn audit_count(store: &SqliteStore, action: &str) -> i64 {
        store
            .conn()
            .query_row(
                "SELECT count(*) FROM audit_log WHERE action = ?1",
                [action],
                |r| r.get(0),
            )
            .unwrap()
    }

    #[test]
    fn revocation_and_wipe_are_audited_only_when_they_happen() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db"), None).unwrap();
        let user = User {
            user_id: "amina".into(),
            role: Role::Agent,
            team: "t".into(),
            password_hash: None,
        };
        store.add_user(&user, 1).unwrap();
        store.add_enrollment_code("code", "amina", 100).unwrap();
        let device = Device {
            device_id: "dev-1".into(),
            user_id: String::new(),
            actor: "00112233445566778899aabbccddeeff".into(),
            name: "phone".into(),
            token_hash: "h".into(),
            revoked: false,
            wiped: false,
        };
        assert!(store
            .redeem_enrollment_code("code", "amina", 2, &device)
            .unwrap()
            .is_some());
        assert!(!store.revoke_device("dev-unknown", 3).unwrap());
        store.confirm_wipe("dev-1", 3).unwrap(); // not revoked: nothing to confirm
        assert_eq!(audit_count(&store, "device.revoke"), 0);
        assert_eq!(audit_count(&store, "device.wiped"), 0);
        assert!(store.revoke_device("dev-1", 4).unwrap());
        assert!(!store.revoke_device("dev-1", 5).unwrap());
        store.confirm_wipe("dev-1", 6).unwrap();
        assert_eq!(audit_count(&store, "device.revoke"), 1);
        assert_eq!(audit_count(&store, "device.wiped"), 1);
        assert_eq!(audit_count(&store, "device.enroll"), 1);
        assert!(store.device("dev-1").unwrap().unwrap().wiped);
    }

    /// A server's database from before pulls by caseload (schema 4, feed rows without owner or
    /// team) is migrated in place: its rows get their case's owner and team, and every caseload
    /// reads exactly what it read before.
    #[test]
    fn an_older_database_gets_its_feed_rows_placed_in_their_caseloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let conn = Connection::open(&path).unwrap();
            for (v, sql) in MIGRATIONS[..4].iter().enumerate() {
                conn.execute_batch(sql).unwrap();
                conn.pragma_update(None, "user_version", v as i64 + 1)
                    .unwrap();
            }
            conn.execute_batch(
                "INSERT INTO users (user_id, role, team, created_at) VALUES
                   ('amina', 'agent', 'sikasso', 0), ('karim', 'agent', 'sikasso', 0),
                   ('fatima', 'supervisor', 'sikasso', 0), ('ali', 'supervisor', 'souk-sebt', 0);
                 INSERT INTO cases (case_id, created_by, team, created_at) VALUES
                   ('c1', 'amina', 'sikasso', 0), ('c2', 'karim', 'sikasso', 0);
                 INSERT INTO changes (id, hash, case_id, origin_device, received_at, data) VALUES
                   (1, 'h1', 'c1', 'dev-a', 0, x'01'), (2, 'h2', 'c2', 'dev-k', 0, x'02');
                 INSERT INTO feed (change_id, case_id) VALUES (1, 'c1'), (2, 'c2');",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path, None).unwrap();
        let read = |user: &str, role, team: &str| -> Vec<String> {
            let viewer = Viewer {
                user_id: user.into(),
                role,
                team: team.into(),
                device_id: "d".into(),
            };
            let page = store.feed_page(&viewer, 0, usize::MAX).unwrap();
            page.rows.into_iter().map(|r| r.case_id).collect()
        };
        assert_eq!(read("amina", Role::Agent, "sikasso"), ["c1"]);
        assert_eq!(read("karim", Role::Agent, "sikasso"), ["c2"]);
        assert_eq!(read("fatima", Role::Supervisor, "sikasso"), ["c1", "c2"]);
        assert!(read("ali", Role::Supervisor, "souk-sebt").is_empty());
    }

    #[test]
    fn an_unknown_stored_role_is_an_error_never_read_as_an_agent() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db"), None).unwrap();
        // The schema's CHECK keeps it out; a database edited by hand (or by another version)
        // may not.
        store
            .conn()
            .execute_batch(
                "PRAGMA ignore_check_constraints = ON;
                 INSERT INTO users (user_id, role, team, created_at) VALUES ('x', 'chief', 't', 0);
                 PRAGMA ignore_check_constraints = OFF;",
            )
            .unwrap();
        assert!(matches!(store.user("x"), Err(StorageError::Backend(m)) if m.contains("chief")));
    }

    #[test]
    fn a_busy_database_is_a_retryable_error_and_others_are_not() {
        let failure = |code| {
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("x".into()))
        };
        assert!(backend(failure(rusqlite::ffi::SQLITE_BUSY)).is_retryable());
        assert!(backend(failure(rusqlite::ffi::SQLITE_LOCKED)).is_retryable());
        assert!(!backend(failure(rusqlite::ffi::SQLITE_CONSTRAINT)).is_retryable());
        assert!(!backend(failure(rusqlite::ffi::SQLITE_FULL)).is_retryable());
    }

    /// A pull in a caseload scope reads the feed through its scope's indexes, from the cursor:
    /// it never walks other caseloads' rows (the cost of "anything new?" follows the caseload,
    /// not the project). Only the whole-project scope scans the feed after the cursor.
    #[test]
    fn a_pull_in_a_caseload_seeks_by_index_and_never_walks_the_feed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db"), None).unwrap();
        let conn = store.conn();
        let plan = |scope| -> Vec<String> {
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {}", feed_sql(scope)))
                .unwrap();
            let rows = stmt
                .query_map(params![0, 10, "amina", "sikasso", "dev-1"], |r| {
                    r.get::<_, String>(3)
                })
                .unwrap();
            rows.map(Result::unwrap).collect()
        };
        for (scope, index) in [
            (ReadScope::Own, "feed_by_owner"),
            (ReadScope::Team, "feed_by_team"),
        ] {
            let plan = plan(scope);
            let feed_steps: Vec<&String> = plan
                .iter()
                .filter(|step| step.contains(" f ") || step.ends_with(" f"))
                .collect();
            assert!(
                feed_steps.iter().any(|s| s.contains(index)),
                "{scope:?}: {plan:#?}"
            );
            assert!(
                feed_steps.iter().any(|s| s.contains("feed_by_audience")),
                "{scope:?}: {plan:#?}"
            );
            assert!(
                feed_steps.iter().all(|s| s.starts_with("SEARCH")),
                "{scope:?} walks the feed: {plan:#?}"
            );
        }
        assert!(
            plan(ReadScope::All)
                .iter()
                .any(|s| s.starts_with("SEARCH f USING INTEGER PRIMARY KEY")),
            "the whole project is read from the cursor on"
        );
        // The feed's end and the marks a pull checks are lookups too.
        for sql in [
            FEED_END.to_string(),
            format!("SELECT mark FROM {ALL_MARKS} WHERE seq = 7"),
            format!("SELECT mark FROM {ALL_MARKS} WHERE seq = ({FEED_END})"),
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let steps: Vec<String> = stmt
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert!(
                steps
                    .iter()
                    .all(|s| !s.starts_with("SCAN") || s == "SCAN CONSTANT ROW"),
                "{sql}: {steps:#?}"
            );
        }
    }
}
