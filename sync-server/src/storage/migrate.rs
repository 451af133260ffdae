//! Moving a server from its SQLite store to PostgreSQL, so that devices notice nothing: every
//! table is copied row for row with its keys (feed positions and marks, change ids, audit ids),
//! change payloads are sealed on the way, and the sequencer is set to the feed's end. The copy
//! is then read back from both sides and compared table by table (payloads opened) before the
//! command says it is done. The same key file serves both stores: device tokens, pending
//! enrollment codes (keyed hashes) and feed marks stay valid.

use postgres::types::{ToSql, Type};
use rusqlite::types::Value;
use sha2::{Digest, Sha256};

use super::postgres::{self as pg, PostgresStore};
use super::sqlite::{self, SqliteStore};
use super::{StorageError, StorageResult};

/// Every table, its columns, and the order that makes a dump canonical. `changes` is first among
/// the feed's tables because feed rows point at it.
/// The console's projections are not among them: they are sealed and keyed differently on each
/// store, and the target rebuilds them from the changes once the copy is checked.
const TABLES: [(&str, &str, &str); 19] = [
    (
        "users",
        "user_id, role, team, password_hash, created_at",
        "user_id",
    ),
    (
        "enrollment_codes",
        "code_hash, user_id, expires_at, used_at",
        "code_hash",
    ),
    (
        "devices",
        "device_id, user_id, actor, name, token_hash, enrolled_at, revoked_at, wiped_at, \
         last_sync_at, app_version, waiting_cases",
        "device_id",
    ),
    ("cases", "case_id, created_by, team, created_at", "case_id"),
    (
        "assignments",
        "case_id, user_id, assigned_at",
        "case_id, user_id",
    ),
    (
        "changes",
        "id, hash, case_id, origin_device, received_at, data",
        "id",
    ),
    (
        "feed",
        "seq, change_id, case_id, audience, owner, team, mark",
        "seq",
    ),
    ("audit_log", "id, at, actor, action, subject, mark", "id"),
    ("quarantined_cases", "case_id, reason, at", "case_id"),
    (
        "device_usage",
        "device_id, day, new_cases, bytes",
        "device_id, day",
    ),
    (
        "device_quotas",
        "device_id, new_cases_per_day, bytes_per_day",
        "device_id",
    ),
    ("erasures", "seq, case_id, at", "seq"),
    (
        "erased_feed_marks",
        "seq, mark, case_id, hash, audience",
        "seq",
    ),
    (
        "console_sessions",
        "token_hash, user_id, csrf_token, created_at, last_seen",
        "token_hash",
    ),
    ("login_failures", "key, count, last_at", "key"),
    (
        "case_handovers",
        "case_id, user_id, until",
        "case_id, user_id",
    ),
    ("removals", "seq, user_id, case_id, at", "seq"),
    (
        "distinct_cases",
        "case_a, case_b, marked_by, at",
        "case_a, case_b",
    ),
    (
        "forms",
        "form_id, version, definition, published_at, published_by, retired_at, seq",
        "form_id, version",
    ),
];

/// What a migration moved, per table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub tables: Vec<(String, u64)>,
    pub feed_end: u64,
}

impl MigrationReport {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

fn boxed(value: Value, ty: &Type) -> StorageResult<Box<dyn ToSql + Sync>> {
    Ok(match value {
        Value::Integer(i) => Box::new(i),
        Value::Text(t) => Box::new(t),
        Value::Blob(b) => Box::new(b),
        // A null takes the column's type: PostgreSQL checks it.
        Value::Null if *ty == Type::INT8 => Box::new(None::<i64>),
        Value::Null if *ty == Type::BYTEA => Box::new(None::<Vec<u8>>),
        Value::Null => Box::new(None::<String>),
        Value::Real(_) => {
            return Err(StorageError::Backend(
                "a real number in the server database: not something Suivi writes".into(),
            ))
        }
    })
}

/// One row of a table as both stores can give it, payloads in the clear.
fn canonical(hasher: &mut Sha256, row: &[Value]) {
    for value in row {
        let (tag, bytes): (u8, Vec<u8>) = match value {
            Value::Null => (0, Vec::new()),
            Value::Integer(i) => (1, i.to_be_bytes().to_vec()),
            Value::Real(r) => (2, r.to_be_bytes().to_vec()),
            Value::Text(t) => (3, t.as_bytes().to_vec()),
            Value::Blob(b) => (4, b.clone()),
        };
        hasher.update([tag]);
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(&bytes);
    }
}

/// Reads one table from SQLite in key order, row by row (one statement, streamed).
fn sqlite_rows(
    source: &SqliteStore,
    table: &str,
    columns: &str,
    order: &str,
    mut each: impl FnMut(Vec<Value>) -> StorageResult<()>,
) -> StorageResult<u64> {
    let conn = source.conn();
    let width = columns.split(',').count();
    let mut stmt = conn
        .prepare(&format!("SELECT {columns} FROM {table} ORDER BY {order}"))
        .map_err(sqlite::backend)?;
    let mut rows = stmt.query([]).map_err(sqlite::backend)?;
    let mut n = 0;
    while let Some(r) = rows.next().map_err(sqlite::backend)? {
        let row = (0..width)
            .map(|i| r.get::<_, Value>(i))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sqlite::backend)?;
        each(row)?;
        n += 1;
    }
    Ok(n)
}

/// The same table read back from PostgreSQL, as SQLite values, payloads opened.
fn postgres_digest(
    target: &PostgresStore,
    table: &str,
    columns: &str,
    order: &str,
) -> StorageResult<(u64, Vec<u8>)> {
    use postgres::fallible_iterator::FallibleIterator;
    let mut client = target.client()?;
    // Streamed: a server's whole history is never held in memory at once.
    let mut rows = client
        .query_raw(
            &format!("SELECT {columns} FROM {table} ORDER BY {order}"),
            std::iter::empty::<&str>(),
        )
        .map_err(pg::backend)?;
    let mut hasher = Sha256::new();
    let mut n = 0u64;
    while let Some(r) = rows.next().map_err(pg::backend)? {
        n += 1;
        let mut row = Vec::with_capacity(r.len());
        for (i, column) in r.columns().iter().enumerate() {
            let ty = column.type_();
            row.push(if *ty == Type::INT8 {
                r.get::<_, Option<i64>>(i)
                    .map_or(Value::Null, Value::Integer)
            } else if *ty == Type::BYTEA {
                r.get::<_, Option<Vec<u8>>>(i)
                    .map_or(Value::Null, Value::Blob)
            } else {
                r.get::<_, Option<String>>(i)
                    .map_or(Value::Null, Value::Text)
            });
        }
        if table == "changes" {
            if let (Value::Text(hash), Value::Text(case_id), Value::Blob(sealed)) =
                (&row[1], &row[2], &row[5])
            {
                row[5] = Value::Blob(target.open_change(case_id, hash, sealed)?);
            }
        }
        canonical(&mut hasher, &row);
    }
    Ok((n, hasher.finalize().to_vec()))
}

/// Copies every table of `source` into `target`, which must be empty, then compares both.
pub fn sqlite_to_postgres(
    source: &SqliteStore,
    target: &PostgresStore,
) -> StorageResult<MigrationReport> {
    let mut client = target.client()?;
    let mut tx = client.transaction().map_err(pg::backend)?;
    let busy: bool = tx
        .query_one(
            "SELECT (SELECT seq FROM feed_head) > 0 OR EXISTS (SELECT 1 FROM users)
                    OR EXISTS (SELECT 1 FROM erasures)",
            &[],
        )
        .map_err(pg::backend)?
        .get(0);
    if busy {
        return Err(StorageError::Conflict(
            "the PostgreSQL database already holds a server's data: migrate into an empty one"
                .into(),
        ));
    }
    // The sequencer, locked: no instance started early can append meanwhile.
    tx.query("SELECT seq FROM feed_head FOR UPDATE", &[])
        .map_err(pg::backend)?;
    let mut report = MigrationReport {
        tables: Vec::new(),
        feed_end: 0,
    };
    let mut digests = Vec::new();
    for (table, columns, order) in TABLES {
        let width = columns.split(',').count();
        let placeholders: Vec<String> = (1..=width).map(|i| format!("${i}")).collect();
        let insert = tx
            .prepare(&format!(
                "INSERT INTO {table} ({columns}) VALUES ({})",
                placeholders.join(", ")
            ))
            .map_err(pg::backend)?;
        let types = insert.params().to_vec();
        let mut hasher = Sha256::new();
        let copied = sqlite_rows(source, table, columns, order, |mut row| {
            // Marks of erased rows from before marks were kept everywhere: empty, as the
            // PostgreSQL column requires a value.
            if table == "erased_feed_marks" && row[1] == Value::Null {
                row[1] = Value::Blob(Vec::new());
            }
            canonical(&mut hasher, &row);
            if table == "changes" {
                if let (Value::Text(hash), Value::Text(case_id), Value::Blob(data)) =
                    (&row[1], &row[2], &row[5])
                {
                    row[5] = Value::Blob(target.sealer.seal_change(case_id, hash, data));
                }
            }
            let params: Vec<Box<dyn ToSql + Sync>> = row
                .into_iter()
                .zip(&types)
                .map(|(v, ty)| boxed(v, ty))
                .collect::<StorageResult<_>>()?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
            tx.execute(&insert, &refs).map_err(pg::backend)?;
            Ok(())
        })?;
        digests.push((table, copied, hasher.finalize().to_vec()));
        report.tables.push((table.to_string(), copied));
    }
    // The feed marks' formula carries over as it is: rows keep their marks either side of it.
    let marks = super::FeedStore::feed_marks(source)?;
    tx.execute(
        "UPDATE feed_mark_formula SET case_id_from = $1 WHERE one = 1",
        &[&i64::try_from(marks.case_id_from).unwrap_or(i64::MAX)],
    )
    .map_err(pg::backend)?;
    // Ids PostgreSQL hands out next follow the copied ones; the sequencer stands at the feed's
    // end (rows an erasure removed included) with its mark.
    for (table, column) in [("changes", "id"), ("audit_log", "id"), ("removals", "seq")] {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                               greatest((SELECT max({column}) FROM {table}), 1),
                               (SELECT max({column}) FROM {table}) IS NOT NULL)"
            ),
            &[],
        )
        .map_err(pg::backend)?;
    }
    let head = tx
        .query_one(
            "SELECT coalesce(max(seq), 0) FROM (SELECT seq FROM feed UNION ALL SELECT seq FROM erased_feed_marks) s",
            &[],
        )
        .map_err(pg::backend)?
        .get::<_, i64>(0);
    let mark: Vec<u8> = tx
        .query_opt(
            "SELECT mark FROM feed WHERE seq = $1 UNION ALL SELECT mark FROM erased_feed_marks WHERE seq = $1",
            &[&head],
        )
        .map_err(pg::backend)?
        .map(|r| r.get(0))
        .unwrap_or_default();
    tx.execute(
        "UPDATE feed_head SET seq = $1, mark = $2,
                erasure_seq = (SELECT coalesce(max(seq), 0) FROM erasures)",
        &[&head, &mark],
    )
    .map_err(pg::backend)?;
    // The audit log's sequencer stands at its last row, with that row's mark.
    tx.execute(
        "UPDATE audit_head SET id = coalesce((SELECT max(id) FROM audit_log), 0),
                mark = coalesce((SELECT mark FROM audit_log ORDER BY id DESC LIMIT 1), '')",
        &[],
    )
    .map_err(pg::backend)?;
    tx.commit().map_err(pg::backend)?;
    drop(client);
    report.feed_end = head as u64;
    for (table, copied, digest) in digests {
        let (_, columns, order) = TABLES
            .iter()
            .find(|(t, _, _)| *t == table)
            .expect("listed above");
        let (n, back) = postgres_digest(target, table, columns, order)?;
        if n != copied || back != digest {
            return Err(StorageError::Backend(format!(
                "{table}: the PostgreSQL copy differs from the SQLite original ({n} rows read back, {copied} copied)"
            )));
        }
    }
    if super::FeedStore::feed_marks(target)? != marks {
        return Err(StorageError::Backend(
            "feed_mark_formula: the PostgreSQL copy differs from the SQLite original".into(),
        ));
    }
    Ok(report)
}
