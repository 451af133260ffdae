//! The embedded default: one SQLite file (SQLCipher-encrypted when a key is given) in WAL mode.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};
use suivi_core::policy::ReadScope;

use super::{
    next_audit_mark, next_feed_mark, AcceptedCase, AuditQuery, AuditRow, CaseAccess, CaseList,
    CaseQuery, CaseSummary, ChainHeads, ChangeOrigin, ConsoleSession, CursorCheck, Device,
    DeviceStatus, FeedLink, FeedLinkChange, FeedMarks, FeedPage, FeedRow, IndicatorCell,
    ListedCase, LoginFailures, PlaceSpelling, PublishedForm, QuarantinedCase, Quota, ReferralGroup,
    Role, ServerStore, StorageError, StorageResult, StoredChange, StuckReferral, SummaryWrite,
    Usage, User, Viewer,
};

const MIGRATIONS: [&str; 13] = [
    include_str!("migrations/001_server.sql"),
    include_str!("migrations/002_trust.sql"),
    include_str!("migrations/003_quotas.sql"),
    include_str!("migrations/004_erasure.sql"),
    include_str!("migrations/005_pull_by_caseload.sql"),
    include_str!("migrations/006_console.sql"),
    include_str!("migrations/007_device_status.sql"),
    include_str!("migrations/008_reassignment.sql"),
    include_str!("migrations/009_duplicates.sql"),
    include_str!("migrations/010_audit_chain.sql"),
    include_str!("migrations/011_indicators.sql"),
    include_str!("migrations/012_forms.sql"),
    include_str!("migrations/013_feed_marks.sql"),
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
            days_to_service, next_followup_due)
         SELECT ?1, ?2, coalesce(?3, date(k.created_at, 'unixepoch')), ?4, ?5, ?6, ?7, ?8, ?9,
                ?10, ?11, ?12, ?13
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
                secs_accepted, secs_declined, secs_in_service)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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

impl ServerStore for SqliteStore {
    fn add_user(&self, user: &User, now: i64) -> StorageResult<()> {
        let conn = self.conn();
        let n = conn
            .execute(
                "INSERT OR IGNORE INTO users (user_id, role, team, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![user.user_id, user.role.as_str(), user.team, user.password_hash, now],
            )
            .map_err(backend)?;
        if n == 0 {
            return Err(StorageError::Conflict(format!("user {}", user.user_id)));
        }
        Ok(())
    }

    fn user(&self, user_id: &str) -> StorageResult<Option<User>> {
        self.conn()
            .query_row(
                "SELECT user_id, role, team, password_hash FROM users WHERE user_id = ?1",
                [user_id],
                |r| {
                    let role: String = r.get(1)?;
                    Ok(User {
                        user_id: r.get(0)?,
                        role: parse_role(&role)?,
                        team: r.get(2)?,
                        password_hash: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(backend)
    }

    fn add_enrollment_code(
        &self,
        code_hash: &str,
        user_id: &str,
        expires_at: i64,
    ) -> StorageResult<()> {
        self.conn()
            .execute(
                "INSERT INTO enrollment_codes (code_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
                params![code_hash, user_id, expires_at],
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
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let user_id: Option<String> = tx
            .query_row(
                "UPDATE enrollment_codes SET used_at = ?2
                 WHERE code_hash = ?1 AND user_id = ?3 AND used_at IS NULL AND expires_at > ?2 RETURNING user_id",
                params![code_hash, now, user_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO devices (device_id, user_id, actor, name, token_hash, enrolled_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![device.device_id, user_id, device.actor, device.name, device.token_hash, now],
            )
            .map_err(backend)?;
        if inserted == 0 {
            // The actor id is taken: leave the code unused so the device can retry.
            return Err(StorageError::Conflict("actor already enrolled".into()));
        }
        audit_row(
            &tx,
            now,
            &user_id,
            "device.enroll",
            &super::device_binding_subject(&device.device_id, &device.actor),
        )?;
        let user = tx
            .query_row(
                "SELECT user_id, role, team FROM users WHERE user_id = ?1",
                [&user_id],
                |r| {
                    let role: String = r.get(1)?;
                    Ok(User {
                        user_id: r.get(0)?,
                        role: parse_role(&role)?,
                        team: r.get(2)?,
                        password_hash: None,
                    })
                },
            )
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(Some(user))
    }

    fn device(&self, device_id: &str) -> StorageResult<Option<Device>> {
        self.conn()
            .query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = ?1"),
                [device_id],
                row_to_device,
            )
            .optional()
            .map_err(backend)
    }

    fn devices(&self) -> StorageResult<Vec<Device>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices ORDER BY enrolled_at, device_id"
            ))
            .map_err(backend)?;
        let rows = stmt.query_map([], row_to_device).map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn revoke_device(&self, device_id: &str, now: i64) -> StorageResult<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(backend)?;
        let revoked = tx
            .execute(
                "UPDATE devices SET revoked_at = ?2 WHERE device_id = ?1 AND revoked_at IS NULL",
                params![device_id, now],
            )
            .map_err(backend)?
            > 0;
        if revoked {
            audit_row(&tx, now, "admin", "device.revoke", device_id)?;
        }
        tx.commit().map_err(backend)?;
        Ok(revoked)
    }

    fn confirm_wipe(&self, device_id: &str, now: i64) -> StorageResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(backend)?;
        let wiped = tx
            .execute(
                // The first confirmation is the one kept; a repeat changes and audits nothing.
                "UPDATE devices SET wiped_at = ?2
                 WHERE device_id = ?1 AND revoked_at IS NOT NULL AND wiped_at IS NULL",
                params![device_id, now],
            )
            .map_err(backend)?
            > 0;
        if wiped {
            audit_row(&tx, now, device_id, "device.wiped", device_id)?;
        }
        tx.commit().map_err(backend)?;
        Ok(())
    }

    fn assign_case(&self, case_id: &str, user_id: &str, now: i64) -> StorageResult<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let exists: Option<i64> = tx
            .query_row("SELECT 1 FROM cases WHERE case_id = ?1", [case_id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(backend)?;
        if exists.is_none() {
            return Err(StorageError::NotFound(format!("case {case_id}")));
        }
        let n = tx
            .execute(
                "INSERT OR IGNORE INTO assignments (case_id, user_id, assigned_at) VALUES (?1, ?2, ?3)",
                params![case_id, user_id, now],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    StorageError::NotFound(format!("user {user_id}"))
                }
                other => backend(other),
            })?;
        if n > 0 {
            // The new assignee's devices may have passed these changes already: queue them again
            // for that user only.
            let mut feed = FeedAppender::start(&tx)?;
            queue_case_for(&tx, &mut feed, case_id, user_id)?;
            audit_row(
                &tx,
                now,
                "admin",
                "case.assign",
                &format!("{case_id} -> {user_id}"),
            )?;
        }
        tx.commit().map_err(backend)?;
        Ok(())
    }

    fn case_access(&self, case_ids: &[String]) -> StorageResult<HashMap<String, CaseAccess>> {
        let conn = self.conn();
        let mut out = HashMap::new();
        let mut case_stmt = conn
            .prepare_cached("SELECT created_by, team FROM cases WHERE case_id = ?1")
            .map_err(backend)?;
        let mut assignee_stmt = conn
            .prepare_cached("SELECT user_id FROM assignments WHERE case_id = ?1")
            .map_err(backend)?;
        for id in case_ids {
            let row: Option<(String, String)> = case_stmt
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(backend)?;
            if let Some((created_by, team)) = row {
                let assignees = assignee_stmt
                    .query_map([id], |r| r.get(0))
                    .map_err(backend)?
                    .collect::<rusqlite::Result<Vec<String>>>()
                    .map_err(backend)?;
                out.insert(
                    id.clone(),
                    CaseAccess {
                        created_by,
                        team,
                        assignees,
                    },
                );
            }
        }
        Ok(out)
    }

    fn known_changes(&self, case_id: &str, hashes: &[String]) -> StorageResult<HashSet<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT 1 FROM changes WHERE hash = ?1 AND case_id = ?2")
            .map_err(backend)?;
        let mut known = HashSet::new();
        for h in hashes {
            if stmt.exists(params![h, case_id]).map_err(backend)? {
                known.insert(h.clone());
            }
        }
        Ok(known)
    }

    fn store_changes(
        &self,
        device_id: &str,
        batch: &[AcceptedCase],
        audit: Option<(&str, &str)>,
        now: i64,
    ) -> StorageResult<usize> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let mut stored = 0;
        let mut usage = Usage::default();
        {
            let mut feed = FeedAppender::start(&tx)?;
            let mut insert_change = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO changes (hash, case_id, origin_device, received_at, data)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(backend)?;
            let mut erased = tx
                .prepare_cached("SELECT 1 FROM erasures WHERE case_id = ?1")
                .map_err(backend)?;
            for case in batch {
                // An erasure that landed after the service checked this batch wins: the case
                // keeps nothing of it.
                if erased.exists([&case.case_id]).map_err(backend)? {
                    continue;
                }
                if let Some((created_by, team)) = &case.new_case {
                    usage.new_cases += tx.execute(
                        "INSERT OR IGNORE INTO cases (case_id, created_by, team, created_at) VALUES (?1, ?2, ?3, ?4)",
                        params![case.case_id, created_by, team, now],
                    )
                    .map_err(backend)? as u64;
                }
                for (hash, data) in &case.changes {
                    if insert_change
                        .execute(params![hash, case.case_id, device_id, now, data])
                        .map_err(backend)?
                        > 0
                    {
                        feed.append(&tx, tx.last_insert_rowid(), &case.case_id, hash, None)?;
                        stored += 1;
                        usage.bytes += data.len() as u64;
                    }
                }
                if let Some(summary) = &case.summary {
                    write_summary(&tx, summary, now)?;
                }
            }
        }
        if let Some((action, subject)) = audit {
            audit_row(&tx, now, device_id, action, subject)?;
        }
        if usage != Usage::default() {
            let day = now.div_euclid(86_400);
            tx.execute(
                "INSERT INTO device_usage (device_id, day, new_cases, bytes) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (device_id, day) DO UPDATE
                 SET new_cases = new_cases + excluded.new_cases, bytes = bytes + excluded.bytes",
                params![device_id, day, usage.new_cases as i64, usage.bytes as i64],
            )
            .map_err(backend)?;
            tx.execute(
                "DELETE FROM device_usage WHERE device_id = ?1 AND day < ?2",
                params![device_id, day - USAGE_DAYS_KEPT],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(stored)
    }

    fn erase_case(&self, case_id: &str, now: i64) -> StorageResult<bool> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let known: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM erasures WHERE case_id = ?1",
                [case_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        if known.is_some() {
            return Ok(false);
        }
        // Feed rows first (they point at changes; their marks are kept), then everything else
        // the case owns.
        tx.execute(
            "INSERT INTO erased_feed_marks (seq, mark, case_id, hash, audience)
             SELECT f.seq, f.mark, f.case_id, c.hash, f.audience
             FROM feed f LEFT JOIN changes c ON c.id = f.change_id WHERE f.case_id = ?1",
            [case_id],
        )
        .map_err(backend)?;
        for sql in [
            "DELETE FROM feed WHERE case_id = ?1",
            "DELETE FROM changes WHERE case_id = ?1",
            "DELETE FROM assignments WHERE case_id = ?1",
            "DELETE FROM quarantined_cases WHERE case_id = ?1",
            "DELETE FROM case_search_terms WHERE case_id = ?1",
            "DELETE FROM case_summaries WHERE case_id = ?1",
            "DELETE FROM case_indicators WHERE case_id = ?1",
            "DELETE FROM referral_summaries WHERE case_id = ?1",
            "DELETE FROM case_handovers WHERE case_id = ?1",
            "DELETE FROM distinct_cases WHERE case_a = ?1 OR case_b = ?1",
            "DELETE FROM cases WHERE case_id = ?1",
        ] {
            tx.execute(sql, [case_id]).map_err(backend)?;
        }
        tx.execute(
            "INSERT INTO erasures (case_id, at) VALUES (?1, ?2)",
            params![case_id, now],
        )
        .map_err(backend)?;
        audit_row(&tx, now, "admin", "case.erased", case_id)?;
        tx.commit().map_err(backend)?;
        Ok(true)
    }

    fn is_erased(&self, case_id: &str) -> StorageResult<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM erasures WHERE case_id = ?1",
                [case_id],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map_err(backend)?
            .is_some())
    }

    fn erasures_after(&self, seq: u64, limit: usize) -> StorageResult<Vec<(u64, String)>> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, case_id FROM erasures WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![seq, limit as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn device_usage(&self, device_id: &str, day: i64) -> StorageResult<Usage> {
        Ok(self
            .conn()
            .query_row(
                "SELECT new_cases, bytes FROM device_usage WHERE device_id = ?1 AND day = ?2",
                params![device_id, day],
                |r| {
                    Ok(Usage {
                        new_cases: r.get::<_, i64>(0)? as u64,
                        bytes: r.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .optional()
            .map_err(backend)?
            .unwrap_or_default())
    }

    fn device_quota(&self, device_id: &str) -> StorageResult<Option<Quota>> {
        self.conn()
            .query_row(
                "SELECT new_cases_per_day, bytes_per_day FROM device_quotas WHERE device_id = ?1",
                [device_id],
                |r| {
                    Ok(Quota {
                        new_cases_per_day: r.get::<_, i64>(0)? as u64,
                        bytes_per_day: r.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .optional()
            .map_err(backend)
    }

    fn set_device_quota(
        &self,
        device_id: &str,
        quota: Option<Quota>,
        now: i64,
    ) -> StorageResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(backend)?;
        let known: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM devices WHERE device_id = ?1",
                [device_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        if known.is_none() {
            return Err(StorageError::NotFound(format!("device {device_id}")));
        }
        let subject = match quota {
            Some(q) => {
                let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                tx.execute(
                    "INSERT INTO device_quotas (device_id, new_cases_per_day, bytes_per_day)
                     VALUES (?1, ?2, ?3) ON CONFLICT (device_id) DO UPDATE
                     SET new_cases_per_day = excluded.new_cases_per_day,
                         bytes_per_day = excluded.bytes_per_day",
                    params![
                        device_id,
                        clamp(q.new_cases_per_day),
                        clamp(q.bytes_per_day)
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
                    "DELETE FROM device_quotas WHERE device_id = ?1",
                    [device_id],
                )
                .map_err(backend)?;
                format!("{device_id} default")
            }
        };
        audit_row(&tx, now, "admin", "device.quota", &subject)?;
        tx.commit().map_err(backend)
    }

    fn check_cursor(&self, cursor: u64, mark: &[u8]) -> StorageResult<CursorCheck> {
        if cursor == 0 {
            return Ok(CursorCheck::Matches);
        }
        let Ok(seq) = i64::try_from(cursor) else {
            return Ok(CursorCheck::Invalid);
        };
        let row: Option<Option<Vec<u8>>> = self
            .conn()
            .query_row(
                &format!("SELECT mark FROM {ALL_MARKS} WHERE seq = ?1"),
                [seq],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        Ok(CursorCheck::decide(
            row.as_ref().map(|m| m.as_deref()),
            mark,
        ))
    }

    fn audit_row_exists(&self, action: &str, subject: &str) -> StorageResult<bool> {
        self.conn()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM audit_log WHERE action = ?1 AND subject = ?2)",
                params![action, subject],
                |r| r.get(0),
            )
            .map_err(backend)
    }

    fn feed_marks(&self) -> StorageResult<FeedMarks> {
        feed_marks(&self.conn())
    }

    fn own_feed_rows(
        &self,
        device_id: &str,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> StorageResult<Vec<(u64, String, String)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT f.seq, f.case_id, c.hash FROM changes c
                 JOIN feed f ON f.change_id = c.id
                 WHERE c.origin_device = ?1 AND f.seq > ?2 AND f.seq <= ?3
                 ORDER BY f.seq LIMIT ?4",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![
                    device_id,
                    i64::try_from(after).unwrap_or(i64::MAX),
                    i64::try_from(upto).unwrap_or(i64::MAX),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?)),
            )
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn feed_mark(&self, seq: u64) -> StorageResult<Vec<u8>> {
        if seq == 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT mark FROM {ALL_MARKS} WHERE seq = ?1"),
                [i64::try_from(seq).unwrap_or(i64::MAX)],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()
            .map_err(backend)?
            .flatten()
            .unwrap_or_default())
    }

    fn case_ids(&self) -> StorageResult<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT case_id FROM cases ORDER BY case_id")
            .map_err(backend)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn quarantine_case(&self, case_id: &str, reason: &str, now: i64) -> StorageResult<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(backend)?;
        let known: bool = tx
            .query_row("SELECT 1 FROM cases WHERE case_id = ?1", [case_id], |_| {
                Ok(())
            })
            .optional()
            .map_err(backend)?
            .is_some();
        if !known {
            return Err(StorageError::NotFound(format!("case {case_id}")));
        }
        let n = tx
            .execute(
                "INSERT OR IGNORE INTO quarantined_cases (case_id, reason, at) VALUES (?1, ?2, ?3)",
                params![case_id, reason, now],
            )
            .map_err(backend)?;
        if n > 0 {
            audit_row(&tx, now, "admin", "case.quarantine", case_id)?;
        }
        tx.commit().map_err(backend)?;
        Ok(n > 0)
    }

    fn quarantined_cases(&self) -> StorageResult<Vec<QuarantinedCase>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT case_id, reason FROM quarantined_cases ORDER BY case_id")
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(QuarantinedCase {
                    case_id: r.get(0)?,
                    reason: r.get(1)?,
                })
            })
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn is_quarantined(&self, case_id: &str) -> StorageResult<bool> {
        self.conn()
            .prepare_cached("SELECT 1 FROM quarantined_cases WHERE case_id = ?1")
            .and_then(|mut s| s.exists([case_id]))
            .map_err(backend)
    }

    fn feed_page(
        &self,
        viewer: &Viewer,
        cursor: u64,
        raw_bytes_max: usize,
    ) -> StorageResult<FeedPage> {
        let mut conn = self.conn();
        // One read transaction: the feed's end and the page come from the same snapshot, so a
        // row committed meanwhile is never skipped.
        let tx = conn.transaction().map_err(backend)?;
        let end: u64 = tx
            // Rows an erasure removed count: the end never moves back past a device's cursor.
            .query_row(FEED_END, [], |r| r.get::<_, i64>(0))
            .map_err(backend)? as u64;
        let sql = feed_sql(ReadScope::of(viewer.role));
        let mut page = FeedPage {
            rows: Vec::new(),
            cursor: end,
            more: false,
        };
        let mut from = cursor;
        let mut bytes = 0usize;
        let mut stmt = tx.prepare_cached(&sql).map_err(backend)?;
        'outer: loop {
            let rows = stmt
                .query_map(
                    params_from_iter([
                        rusqlite::types::Value::Integer(from as i64),
                        rusqlite::types::Value::Integer(end as i64),
                        rusqlite::types::Value::Text(viewer.user_id.clone()),
                        rusqlite::types::Value::Text(viewer.team.clone()),
                        rusqlite::types::Value::Text(viewer.device_id.clone()),
                    ]),
                    |r| {
                        Ok(FeedRow {
                            seq: r.get::<_, i64>(0)? as u64,
                            case_id: r.get(1)?,
                            data: r.get(2)?,
                            user_id: r.get(3)?,
                            device_id: r.get(4)?,
                            received_at: r.get(5)?,
                        })
                    },
                )
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            let fetched = rows.len();
            for row in rows {
                from = row.seq;
                if !page.push_within(row, &mut bytes, raw_bytes_max) {
                    break 'outer;
                }
            }
            if fetched < FEED_ROWS_PER_QUERY {
                break;
            }
        }
        drop(stmt);
        tx.commit().map_err(backend)?;
        Ok(page)
    }

    fn case_changes(&self, case_id: &str) -> StorageResult<Vec<Vec<u8>>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT data FROM changes WHERE case_id = ?1 ORDER BY id")
            .map_err(backend)?;
        let rows = stmt.query_map([case_id], |r| r.get(0)).map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<Vec<u8>>>>()
            .map_err(backend)
    }

    fn audit(&self, now: i64, actor: &str, action: &str, subject: &str) -> StorageResult<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        audit_row(&tx, now, actor, action, subject)?;
        tx.commit().map_err(backend)
    }

    fn audit_log(&self, after: u64, limit: usize) -> StorageResult<Vec<AuditRow>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, at, actor, action, subject, mark FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![
                    i64::try_from(after).unwrap_or(i64::MAX),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                row_to_audit,
            )
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn audit_search(&self, query: &AuditQuery) -> StorageResult<Vec<AuditRow>> {
        let mut sql = String::from(
            "SELECT id, at, actor, action, subject, mark FROM audit_log WHERE id < ?1",
        );
        let mut args: Vec<rusqlite::types::Value> = vec![query
            .before
            .map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX))
            .into()];
        if let Some(actor) = &query.actor {
            // A user's rows, and those of her devices: her phones' pushes and her console
            // changes (`console-<user>`) are recorded under a device id.
            args.push(actor.clone().into());
            let n = args.len();
            sql.push_str(&format!(
                " AND (actor = ?{n} OR actor IN (SELECT device_id FROM devices WHERE user_id = ?{n}))"
            ));
        }
        if let Some(case_id) = &query.case_id {
            args.push(format!("%{}%", like_escaped(case_id)).into());
            sql.push_str(&format!(" AND subject LIKE ?{} ESCAPE '\\'", args.len()));
        }
        if let Some(prefix) = &query.action_prefix {
            args.push(format!("{}%", like_escaped(prefix)).into());
            sql.push_str(&format!(" AND action LIKE ?{} ESCAPE '\\'", args.len()));
        }
        args.push(i64::try_from(query.limit).unwrap_or(i64::MAX).into());
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", args.len()));
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql).map_err(backend)?;
        let rows = stmt
            .query_map(params_from_iter(args), row_to_audit)
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn chain_heads(&self) -> StorageResult<ChainHeads> {
        let conn = self.conn();
        let (feed_seq, feed_mark): (i64, Option<Vec<u8>>) = conn
            .query_row(
                &format!(
                    "SELECT e.n, (SELECT mark FROM {ALL_MARKS} WHERE seq = e.n)
                     FROM ({FEED_END} AS n) e"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(backend)?;
        let (audit_id, audit_mark): (i64, Option<Vec<u8>>) = conn
            .query_row(
                "SELECT id, mark FROM audit_log ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(backend)?
            .unwrap_or((0, None));
        Ok(ChainHeads {
            feed_seq: feed_seq as u64,
            feed_mark: feed_mark.unwrap_or_default(),
            audit_id: audit_id as u64,
            audit_mark: audit_mark.unwrap_or_default(),
        })
    }

    fn feed_links(&self, after: u64, limit: usize) -> StorageResult<Vec<FeedLink>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT f.seq, f.mark, f.case_id, c.hash, f.audience, 0
                 FROM feed f LEFT JOIN changes c ON c.id = f.change_id WHERE f.seq > ?1
                 UNION ALL
                 SELECT seq, mark, case_id, hash, audience, 1 FROM erased_feed_marks
                 WHERE seq > ?1
                 ORDER BY 1 LIMIT ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![
                    i64::try_from(after).unwrap_or(i64::MAX),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    let case_id: Option<String> = r.get(2)?;
                    Ok(FeedLink {
                        seq: r.get::<_, i64>(0)? as u64,
                        mark: r.get::<_, Option<Vec<u8>>>(1)?.unwrap_or_default(),
                        erased: r.get(5)?,
                        change: match case_id {
                            Some(case_id) => Some(FeedLinkChange {
                                case_id,
                                hash: r.get(3)?,
                                audience: r.get(4)?,
                            }),
                            None => None,
                        },
                    })
                },
            )
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn stored_changes(&self, after: u64, limit: usize) -> StorageResult<Vec<StoredChange>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {STORED_CHANGE_COLUMNS} WHERE c.id > ?1 ORDER BY c.id LIMIT ?2"
            ))
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![
                    i64::try_from(after).unwrap_or(i64::MAX),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                row_to_stored_change,
            )
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn case_stored_changes(&self, case_id: &str) -> StorageResult<Vec<StoredChange>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {STORED_CHANGE_COLUMNS} WHERE c.case_id = ?1 ORDER BY c.id"
            ))
            .map_err(backend)?;
        let rows = stmt
            .query_map([case_id], row_to_stored_change)
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn case_feed_span(&self, case_id: &str) -> StorageResult<Option<(u64, u64)>> {
        let span: (Option<i64>, Option<i64>) = self
            .conn()
            .query_row(
                "SELECT min(seq), max(seq) FROM feed WHERE case_id = ?1",
                [case_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(backend)?;
        Ok(match span {
            (Some(first), Some(last)) => Some((first as u64, last as u64)),
            _ => None,
        })
    }
    fn reassign_cases(
        &self,
        case_ids: &[String],
        to: &User,
        by: &str,
        now: i64,
        grace_until: i64,
    ) -> StorageResult<Vec<String>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let mut moved = Vec::new();
        {
            let mut feed = FeedAppender::start(&tx)?;
            let mut owner_of = tx
                .prepare_cached("SELECT created_by, team FROM cases WHERE case_id = ?1")
                .map_err(backend)?;
            for case_id in case_ids {
                let Some((old, team)) = owner_of
                    .query_row([case_id], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })
                    .optional()
                    .map_err(backend)?
                else {
                    continue;
                };
                if old == to.user_id || team != to.team {
                    continue;
                }
                for sql in [
                    "UPDATE cases SET created_by = ?2 WHERE case_id = ?1",
                    "UPDATE case_summaries SET owner = ?2 WHERE case_id = ?1",
                    // Later pulls find the case's rows under its new owner.
                    // Every row of the case, those queued for an earlier owner too: a case moved
                    // back leaves nothing behind for the owner it left.
                    "UPDATE feed SET owner = ?2 WHERE case_id = ?1",
                    // A removal still waiting for the new owner (the case moved away from it
                    // and back) would take the case off its phones again.
                    "DELETE FROM removals WHERE case_id = ?1 AND user_id = ?2",
                ] {
                    tx.prepare_cached(sql)
                        .map_err(backend)?
                        .execute(params![case_id, to.user_id])
                        .map_err(backend)?;
                }
                // The new owner's phones may have passed these rows: its own copy of each.
                queue_case_for(&tx, &mut feed, case_id, &to.user_id)?;
                tx.prepare_cached(
                    "INSERT INTO case_handovers (case_id, user_id, until) VALUES (?1, ?2, ?3)
                     ON CONFLICT (case_id, user_id) DO UPDATE SET until = excluded.until",
                )
                .map_err(backend)?
                .execute(params![case_id, old, grace_until])
                .map_err(backend)?;
                let still_reads = tx
                    .prepare_cached(
                        "SELECT 1 FROM assignments WHERE case_id = ?1 AND user_id = ?2
                         UNION ALL SELECT 1 FROM users WHERE user_id = ?2 AND role <> 'agent'",
                    )
                    .map_err(backend)?
                    .exists(params![case_id, old])
                    .map_err(backend)?;
                if !still_reads {
                    tx.prepare_cached(
                        "INSERT INTO removals (user_id, case_id, at) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(backend)?
                    .execute(params![old, case_id, now])
                    .map_err(backend)?;
                }
                audit_row(
                    &tx,
                    now,
                    by,
                    "case.reassign",
                    &format!("{case_id} {old} -> {}", to.user_id),
                )?;
                moved.push(case_id.clone());
            }
        }
        tx.commit().map_err(backend)?;
        Ok(moved)
    }

    fn in_handover(&self, case_id: &str, user_id: &str, now: i64) -> StorageResult<bool> {
        self.conn()
            .prepare_cached(
                "SELECT 1 FROM case_handovers WHERE case_id = ?1 AND user_id = ?2 AND until > ?3",
            )
            .map_err(backend)?
            .exists(params![case_id, user_id, now])
            .map_err(backend)
    }

    fn removals_after(
        &self,
        user_id: &str,
        seq: u64,
        limit: usize,
    ) -> StorageResult<Vec<(u64, String)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, case_id FROM removals WHERE user_id = ?1 AND seq > ?2
                 ORDER BY seq LIMIT ?3",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![
                    user_id,
                    i64::try_from(seq).unwrap_or(i64::MAX),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn duplicate_candidates(
        &self,
        reader: &User,
        limit: usize,
    ) -> StorageResult<Vec<(String, String)>> {
        let (scope, args): (&str, Vec<String>) = match ReadScope::of(reader.role) {
            ReadScope::All => ("", vec![]),
            ReadScope::Team => ("AND a.team = ?2 AND b.team = ?2", vec![reader.team.clone()]),
            ReadScope::Own => (
                "AND a.owner = ?2 AND b.owner = ?2",
                vec![reader.user_id.clone()],
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
             ORDER BY a.case_id, b.case_id LIMIT ?1"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
        let mut params: Vec<rusqlite::types::Value> = vec![rusqlite::types::Value::Integer(
            i64::try_from(limit).unwrap_or(i64::MAX),
        )];
        params.extend(args.into_iter().map(rusqlite::types::Value::Text));
        let rows = stmt
            .query_map(params_from_iter(params), |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn publish_form(
        &self,
        form_id: &str,
        version: u32,
        definition: &str,
        (by, now): (&str, i64),
        expected_head: u64,
    ) -> StorageResult<(PublishedForm, bool)> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let stored = |tx: &rusqlite::Transaction<'_>| {
            tx.query_row(
                &format!("SELECT {FORM_COLUMNS} FROM forms WHERE form_id = ?1 AND version = ?2"),
                params![form_id, version],
                form_row,
            )
            .optional()
            .map_err(backend)
        };
        if let Some(existing) = stored(&tx)? {
            return Ok((existing, false));
        }
        sqlite_forms_head_is(&tx, expected_head)?;
        tx.execute(
            "INSERT INTO forms (form_id, version, definition, published_at, published_by, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, (SELECT coalesce(max(seq), 0) + 1 FROM forms))",
            params![form_id, version, definition, now, by],
        )
        .map_err(backend)?;
        audit_row(
            &tx,
            now,
            by,
            "form.publish",
            &format!("{form_id} v{version}"),
        )?;
        let published = stored(&tx)?.ok_or_else(|| {
            StorageError::Backend("a published form is not there to read back".into())
        })?;
        tx.commit().map_err(backend)?;
        Ok((published, true))
    }

    fn forms(&self) -> StorageResult<Vec<PublishedForm>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {FORM_COLUMNS} FROM forms ORDER BY form_id, version"
            ))
            .map_err(backend)?;
        let rows = stmt.query_map([], form_row).map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn forms_after(&self, seq: u64, limit: usize) -> StorageResult<Vec<PublishedForm>> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {FORM_COLUMNS} FROM forms WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![seq, limit as i64], form_row)
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn forms_head(&self) -> StorageResult<u64> {
        self.conn()
            .query_row("SELECT coalesce(max(seq), 0) FROM forms", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|seq| seq as u64)
            .map_err(backend)
    }

    fn retire_form(
        &self,
        form_id: &str,
        version: u32,
        (by, now): (&str, i64),
        expected_head: u64,
    ) -> StorageResult<Option<PublishedForm>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        sqlite_forms_head_is(&tx, expected_head)?;
        let retired = tx
            .execute(
                "UPDATE forms SET retired_at = ?3, seq = (SELECT max(seq) + 1 FROM forms)
                 WHERE form_id = ?1 AND version = ?2 AND retired_at IS NULL",
                params![form_id, version, now],
            )
            .map_err(backend)?;
        if retired > 0 {
            audit_row(
                &tx,
                now,
                by,
                "form.retire",
                &format!("{form_id} v{version}"),
            )?;
        }
        let form = tx
            .query_row(
                &format!("SELECT {FORM_COLUMNS} FROM forms WHERE form_id = ?1 AND version = ?2"),
                params![form_id, version],
                form_row,
            )
            .optional()
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(form)
    }

    fn mark_distinct(&self, a: &str, b: &str, by: &str, now: i64) -> StorageResult<()> {
        let (a, b) = if a < b { (a, b) } else { (b, a) };
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let n = tx
            .execute(
                "INSERT OR IGNORE INTO distinct_cases (case_a, case_b, marked_by, at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![a, b, by, now],
            )
            .map_err(backend)?;
        if n > 0 {
            audit_row(&tx, now, by, "case.not_duplicate", &format!("{a} {b}"))?;
        }
        tx.commit().map_err(backend)
    }

    fn team_members(&self, team: &str) -> StorageResult<Vec<User>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT user_id, role, team FROM users WHERE team = ?1 ORDER BY user_id",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map([team], |r| {
                Ok(User {
                    user_id: r.get(0)?,
                    role: parse_role(&r.get::<_, String>(1)?)?,
                    team: r.get(2)?,
                    password_hash: None,
                })
            })
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn record_device_sync(
        &self,
        device_id: &str,
        at: i64,
        app_version: Option<&str>,
        waiting_cases: Option<u64>,
    ) -> StorageResult<()> {
        self.conn()
            .prepare_cached(
                "UPDATE devices SET last_sync_at = max(coalesce(last_sync_at, 0), ?2),
                    app_version = ?3, waiting_cases = ?4 WHERE device_id = ?1",
            )
            .map_err(backend)?
            .execute(params![
                device_id,
                at,
                app_version,
                waiting_cases.map(|w| i64::try_from(w).unwrap_or(i64::MAX))
            ])
            .map_err(backend)?;
        Ok(())
    }

    fn device_statuses(&self) -> StorageResult<Vec<DeviceStatus>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT d.device_id, d.user_id, d.actor, d.name, d.token_hash, d.revoked_at,
                    d.wiped_at, u.role, u.team, d.last_sync_at, d.app_version, d.waiting_cases
                 FROM devices d JOIN users u ON u.user_id = d.user_id
                 WHERE d.token_hash <> ?1 ORDER BY u.team, d.user_id, d.device_id",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map([super::CONSOLE_TOKEN_HASH], |r| {
                Ok(DeviceStatus {
                    device: row_to_device(r)?,
                    role: parse_role(&r.get::<_, String>(7)?)?,
                    team: r.get(8)?,
                    last_sync_at: r.get(9)?,
                    app_version: r.get(10)?,
                    waiting_cases: r.get::<_, Option<i64>>(11)?.map(|w| w.max(0) as u64),
                })
            })
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn console_device(&self, user_id: &str, actor: &str, now: i64) -> StorageResult<Device> {
        let device_id = super::console_device_id(user_id);
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let made = tx
            .execute(
                "INSERT OR IGNORE INTO devices (device_id, user_id, actor, name, token_hash, enrolled_at)
                 VALUES (?1, ?2, ?3, 'console', ?4, ?5)",
                params![device_id, user_id, actor, super::CONSOLE_TOKEN_HASH, now],
            )
            .map_err(backend)?;
        if made > 0 {
            audit_row(
                &tx,
                now,
                user_id,
                super::CONSOLE_DEVICE_ACTION,
                &super::device_binding_subject(&device_id, actor),
            )?;
        }
        tx.commit().map_err(backend)?;
        conn.query_row(
            "SELECT device_id, user_id, actor, name, token_hash, revoked_at, wiped_at
             FROM devices WHERE device_id = ?1",
            [&device_id],
            row_to_device,
        )
        .map_err(backend)
    }

    fn write_summaries(&self, summaries: &[SummaryWrite]) -> StorageResult<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        for write in summaries {
            let updated_at: Option<i64> = tx
                .query_row(
                    "SELECT max(received_at) FROM changes WHERE case_id = ?1",
                    [&write.summary.case_id],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if let Some(updated_at) = updated_at {
                write_summary(&tx, write, updated_at)?;
            }
        }
        tx.commit().map_err(backend)
    }

    fn summaries_to_refresh(&self, limit: usize) -> StorageResult<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT case_id FROM (
                    SELECT k.case_id FROM cases k WHERE NOT EXISTS
                        (SELECT 1 FROM case_summaries s WHERE s.case_id = k.case_id)
                    UNION SELECT case_id FROM case_summaries WHERE stale = 1)
                 ORDER BY case_id LIMIT ?1",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(backend)
    }

    fn stale_summaries(&self, case_ids: &[String]) -> StorageResult<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT 1 FROM case_summaries WHERE case_id = ?1 AND stale = 1")
            .map_err(backend)?;
        let mut out = Vec::new();
        for id in case_ids {
            if stmt.exists([id]).map_err(backend)? {
                out.push(id.clone());
            }
        }
        Ok(out)
    }

    fn list_cases(&self, reader: &User, query: &CaseQuery) -> StorageResult<CaseList> {
        use super::case_list::{arm_limit, arms, page_of, Dialect};
        let dialect = Dialect {
            param: |n| format!("?{n}"),
            contains: |needle, haystack| format!("instr({haystack}, {needle}) > 0"),
        };
        let arms = arms(reader, query, &dialect, &|t| t.to_string());
        let mut conn = self.conn();
        // One snapshot for the counts and the page.
        let tx = conn.transaction().map_err(backend)?;
        let mut total = 0u64;
        let mut keys: Vec<(i64, String)> = Vec::new();
        for arm in &arms {
            let count: i64 = tx
                .prepare_cached(&format!(
                    "SELECT count(*) FROM case_summaries s {}",
                    arm.filter
                ))
                .map_err(backend)?
                .query_row(params_from_iter(arm.args.iter()), |r| r.get(0))
                .map_err(backend)?;
            total += count as u64;
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT s.updated_at, s.case_id FROM case_summaries s {}
                     ORDER BY s.updated_at DESC, s.case_id LIMIT {}",
                    arm.filter,
                    arm_limit(query)
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params_from_iter(arm.args.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(backend)?;
            for row in rows {
                keys.push(row.map_err(backend)?);
            }
        }
        let mut cases = Vec::new();
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT shown, owner, team, updated_at FROM case_summaries WHERE case_id = ?1",
                )
                .map_err(backend)?;
            for id in page_of(keys, query) {
                cases.push(stmt.query_row([&id], row_to_listed).map_err(backend)?);
            }
        }
        tx.commit().map_err(backend)?;
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
            param: |n| format!("?{n}"),
            contains: |needle, haystack| format!("instr({haystack}, {needle}) > 0"),
        };
        let arms = arms(reader, &CaseQuery::default(), &dialect, &|t| t.to_string());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(backend)?;
        let mut ids = Vec::new();
        for arm in &arms {
            let n = arm.args.len();
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT s.case_id FROM case_summaries s {} ORDER BY s.case_id LIMIT ?{}",
                    and(&arm.filter, &format!("s.case_id > ?{}", n + 1)),
                    n + 2
                ))
                .map_err(backend)?;
            let mut args: Vec<rusqlite::types::Value> =
                arm.args.iter().map(|a| a.clone().into()).collect();
            args.push(after.to_string().into());
            args.push(limit.into());
            let rows = stmt
                .query_map(params_from_iter(args), |r| r.get::<_, String>(0))
                .map_err(backend)?;
            for row in rows {
                ids.push(row.map_err(backend)?);
            }
        }
        let mut cases = Vec::new();
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT shown, owner, team, updated_at FROM case_summaries WHERE case_id = ?1",
                )
                .map_err(backend)?;
            for id in merged_ids(ids, limit as usize) {
                cases.push(stmt.query_row([&id], row_to_listed).map_err(backend)?);
            }
        }
        tx.commit().map_err(backend)?;
        Ok(cases)
    }

    fn indicator_cells(&self, reader: &User, today: &str) -> StorageResult<Vec<IndicatorCell>> {
        use super::indicators::{cells_sql, merge_cells};
        let cells = self.per_arm(reader, &cells_sql, vec![today.to_string().into()], |r| {
            let count = |i: usize| -> rusqlite::Result<u64> {
                Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0) as u64)
            };
            Ok(IndicatorCell {
                month: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                province_key: r.get(1)?,
                commune_key: r.get(2)?,
                sector: r.get(3)?,
                days_to_service: r.get(4)?,
                cases: count(5)?,
                referred: count(6)?,
                service: count(7)?,
                stopped_working: count(8)?,
                overdue: count(9)?,
            })
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
                Vec::new(),
                |r| {
                    Ok(PlaceSpelling {
                        kind: kind.to_string(),
                        key: r.get(0)?,
                        spelling: r.get(1)?,
                        cases: r.get::<_, i64>(2)? as u64,
                    })
                },
            )?);
        }
        Ok(merge_spellings(spellings))
    }

    fn referral_groups(&self, reader: &User, now: i64) -> StorageResult<Vec<ReferralGroup>> {
        use super::indicators::{groups_sql, merge_groups};
        let groups = self.per_arm(reader, &groups_sql, vec![now.into()], |r| {
            let mut time_in = [(0i64, 0u64); 5];
            for (k, slot) in time_in.iter_mut().enumerate() {
                *slot = (
                    r.get::<_, Option<i64>>(5 + 2 * k)?.unwrap_or(0),
                    r.get::<_, Option<i64>>(6 + 2 * k)?.unwrap_or(0) as u64,
                );
            }
            Ok(ReferralGroup {
                service_type: r.get(0)?,
                provider_key: r.get(1)?,
                provider: r.get(2)?,
                status: r.get(3)?,
                referrals: r.get::<_, i64>(4)? as u64,
                time_in,
            })
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
        let stuck = self.per_arm(
            reader,
            &stuck_sql,
            vec![
                before.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
            |r| {
                Ok(StuckReferral {
                    case_id: r.get(0)?,
                    referral_id: r.get(1)?,
                    service_type: r.get(2)?,
                    provider: r.get(3)?,
                    status: r.get(4)?,
                    status_since: r.get(5)?,
                })
            },
        )?;
        Ok(merge_stuck(stuck, limit))
    }

    fn listed_case(&self, case_id: &str) -> StorageResult<Option<ListedCase>> {
        self.conn()
            .query_row(
                "SELECT shown, owner, team, updated_at FROM case_summaries WHERE case_id = ?1",
                [case_id],
                row_to_listed,
            )
            .optional()
            .map_err(backend)
    }

    fn change_origins(&self, case_id: &str) -> StorageResult<Vec<ChangeOrigin>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT c.hash, coalesce(d.user_id, ''), c.origin_device, c.received_at
                 FROM changes c LEFT JOIN devices d ON d.device_id = c.origin_device
                 WHERE c.case_id = ?1 ORDER BY c.id",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map([case_id], |r| {
                Ok(ChangeOrigin {
                    hash: r.get(0)?,
                    user_id: r.get(1)?,
                    device_id: r.get(2)?,
                    received_at: r.get(3)?,
                })
            })
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn set_password(&self, user_id: &str, hash: Option<&str>, now: i64) -> StorageResult<bool> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let changed = tx
            .execute(
                "UPDATE users SET password_hash = ?2 WHERE user_id = ?1",
                params![user_id, hash],
            )
            .map_err(backend)?;
        if changed == 0 {
            return Ok(false);
        }
        tx.execute("DELETE FROM console_sessions WHERE user_id = ?1", [user_id])
            .map_err(backend)?;
        audit_row(&tx, now, "admin", "user.password", user_id)?;
        tx.commit().map_err(backend)?;
        Ok(true)
    }

    fn add_session(&self, session: &ConsoleSession) -> StorageResult<()> {
        self.conn()
            .execute(
                "INSERT INTO console_sessions (token_hash, user_id, csrf_token, created_at, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    session.token_hash,
                    session.user_id,
                    session.csrf_token,
                    session.created_at,
                    session.last_seen
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn session(&self, token_hash: &str) -> StorageResult<Option<ConsoleSession>> {
        self.conn()
            .query_row(
                "SELECT token_hash, user_id, csrf_token, created_at, last_seen
                 FROM console_sessions WHERE token_hash = ?1",
                [token_hash],
                |r| {
                    Ok(ConsoleSession {
                        token_hash: r.get(0)?,
                        user_id: r.get(1)?,
                        csrf_token: r.get(2)?,
                        created_at: r.get(3)?,
                        last_seen: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(backend)
    }

    fn touch_session(&self, token_hash: &str, now: i64) -> StorageResult<()> {
        self.conn()
            .execute(
                "UPDATE console_sessions SET last_seen = max(last_seen, ?2) WHERE token_hash = ?1",
                params![token_hash, now],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn end_session(&self, token_hash: &str) -> StorageResult<()> {
        self.conn()
            .execute(
                "DELETE FROM console_sessions WHERE token_hash = ?1",
                [token_hash],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn end_expired_sessions(&self, idle_before: i64, created_before: i64) -> StorageResult<()> {
        self.conn()
            .execute(
                "DELETE FROM console_sessions WHERE last_seen < ?1 OR created_at < ?2",
                params![idle_before, created_before],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn login_failures(&self, key: &str) -> StorageResult<LoginFailures> {
        Ok(self
            .conn()
            .query_row(
                "SELECT count, last_at FROM login_failures WHERE key = ?1",
                [key],
                |r| {
                    Ok(LoginFailures {
                        count: r.get(0)?,
                        last_at: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(backend)?
            .unwrap_or_default())
    }

    fn record_login_failure(
        &self,
        key: &str,
        now: i64,
        forget_before: i64,
    ) -> StorageResult<LoginFailures> {
        self.conn()
            .query_row(
                "INSERT INTO login_failures (key, count, last_at) VALUES (?1, 1, ?2)
                 ON CONFLICT (key) DO UPDATE
                 SET count = CASE WHEN last_at < ?3 THEN 1 ELSE count + 1 END,
                     last_at = excluded.last_at
                 RETURNING count, last_at",
                params![key, now, forget_before],
                |r| {
                    Ok(LoginFailures {
                        count: r.get(0)?,
                        last_at: r.get(1)?,
                    })
                },
            )
            .map_err(backend)
    }

    fn forgive_login_failure(&self, key: &str) -> StorageResult<()> {
        self.conn()
            .execute(
                "UPDATE login_failures SET count = max(count - 1, 0) WHERE key = ?1",
                [key],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn clear_login_failures(&self, key: &str) -> StorageResult<()> {
        self.conn()
            .execute("DELETE FROM login_failures WHERE key = ?1", [key])
            .map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
