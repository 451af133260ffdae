//! The SQL of `store encrypt` (`at_rest::encrypt_in_place`): a plaintext database copied into
//! an encrypted one with SQLCipher's export, and the table counts the copy is checked by.

use std::path::Path;

use rusqlite::Connection;

use super::backend;
use crate::storage::StorageResult;

/// A database's schema version and its tables' row counts, by table name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCounts {
    pub version: i64,
    pub rows: Vec<(String, u64)>,
}

/// Writes an encrypted copy of the plaintext database `db` at `copy` (an empty file), under
/// `key` (a `PRAGMA key` value), and returns what the original held.
pub fn export_encrypted(db: &Path, copy: &Path, key: &str) -> StorageResult<TableCounts> {
    suivi_core::store::sqlcipher::initialise().map_err(backend)?;
    let plain = Connection::open(db).map_err(backend)?;
    // Everything in the write-ahead log goes into the main file first, so the copy and the
    // count see every committed row.
    plain
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(backend)?;
    let original = table_counts_of(&plain).map_err(backend)?;
    plain
        .execute(
            "ATTACH DATABASE ?1 AS encrypted KEY ?2",
            rusqlite::params![copy.to_string_lossy(), key],
        )
        .map_err(backend)?;
    plain
        .query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))
        .map_err(backend)?;
    plain
        .execute_batch(&format!(
            "PRAGMA encrypted.user_version = {}; DETACH DATABASE encrypted;",
            original.version
        ))
        .map_err(backend)?;
    plain.close().map_err(|(_, e)| backend(e))?;
    Ok(original)
}

/// What the encrypted database at `path` holds, opened with `key`.
pub fn encrypted_table_counts(path: &Path, key: &str) -> StorageResult<TableCounts> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.pragma_update(None, "key", key).map_err(backend)?;
    table_counts_of(&conn).map_err(backend)
}

fn table_counts_of(conn: &Connection) -> rusqlite::Result<TableCounts> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: Vec<String> = {
        let mut stmt = conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let rows = tables
        .into_iter()
        .map(|t| {
            let n: i64 =
                conn.query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| r.get(0))?;
            Ok((t, n as u64))
        })
        .collect::<rusqlite::Result<_>>()?;
    Ok(TableCounts { version, rows })
}
