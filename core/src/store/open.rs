//! Opening the SQLCipher database: the key, the connection settings, a wrong key told apart from damage.

use super::*;

pub(super) const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Opens the SQLCipher connection and proves the key before anything is written: a wrong key,
/// a plaintext SQLite file or another application's database is a typed error and the file is
/// left exactly as it was.
pub(super) fn open_connection(path: &Path, key: &str, mode: Access) -> Result<Connection> {
    let create = mode == Access::Create;
    if let Ok(mut file) = std::fs::File::open(path) {
        use std::io::Read;
        let mut header = [0u8; 16];
        if file.read_exact(&mut header).is_ok() && &header == SQLITE_HEADER {
            return Err(Error::PlaintextDatabase);
        }
    } else if !create {
        return Err(Error::NotFound {
            kind: "store",
            id: "database file".into(),
        });
    }
    let mut flags = match mode {
        Access::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        Access::Create | Access::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    sqlcipher::initialise()?;
    let conn = Connection::open_with_flags(path, flags)?;
    // A failed decryption is our typed error; SQLCipher's own stderr lines would only be noise.
    let _ = conn.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(()));
    conn.pragma_update(None, "key", key)?;
    // The first read decrypts page 1: this is where a wrong key shows.
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        // Only a page that does not decrypt or parse is the key's or the file's fault
        // (`WrongKeyOrCorrupt`); a full disk or an I/O error keeps its own error, so that it
        // never sends the user to key recovery.
        .map_err(Error::from)?;
    let app_id: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version = schema::user_version(&conn)?;
    if (version == 0 && tables > 0) || (version > 0 && app_id != schema::APPLICATION_ID) {
        return Err(Error::ForeignDatabase);
    }
    if version > schema::LATEST_VERSION {
        return Err(Error::SchemaTooNew {
            found: version,
            known: schema::LATEST_VERSION,
        });
    }
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Temporary tables and sorts stay in memory: nothing about a case reaches disk unencrypted.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Keep decrypted pages of the projections in memory: lists and searches read them again and
    // again, and SQLCipher decrypts every page it reads from disk.
    conn.pragma_update(None, "cache_size", -STORE_CACHE_KIB_MAX)?;
    if mode == Access::ReadOnly {
        // The writer set WAL mode, which lets this connection read while it writes.
        let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Err(Error::Storage(format!(
                "a reader needs the store in WAL mode, found {journal}"
            )));
        }
    } else {
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    }
    // FULL: an acknowledged save survives a power cut, not only a killed process.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted rows are overwritten in the file, not left in free pages: an erased or wiped
    // child's name must not survive in it.
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(conn)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Create,
    ReadWrite,
    ReadOnly,
}
