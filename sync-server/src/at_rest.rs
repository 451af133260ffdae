//! At rest: the server database is encrypted with SQLCipher under a key kept outside the data
//! directory, so a copy of the data directory alone (a stolen disk image, a careless backup)
//! reads as noise. The key file also holds the secret for keyed hashes of enrollment codes.
//!
//! The key file is generated on first start, 0600, beside the data directory (`./data.key` for
//! `./data`), or the database key comes from `SUIVI_SERVER_KEY`. The data directory is 0700 and
//! the database files 0600. A plaintext database left by an older server is detected and never
//! opened as if it were empty: `suivi-server store encrypt` encrypts it in place.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::Rng;

use crate::auth::CodeKey;
use crate::storage::sqlite::{encrypt, SqliteStore};
use crate::storage::{postgres::PostgresStore, AuditStore, StorageError};
use crate::ServerStore;
use crate::DATABASE_FILE;

/// The database passphrase, when the environment supplies it instead of a key file.
pub const KEY_ENV: &str = "SUIVI_SERVER_KEY";
/// Held shared by every process using a data directory, exclusively by `store encrypt`.
const LOCK_FILE: &str = "suivi-server.lock";
const ENCRYPTING_SUFFIX: &str = ".encrypting";
const PLAINTEXT_HEADER: &[u8; 16] = b"SQLite format 3\0";

#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    #[error("{db}: this database is not encrypted (it was written by an older suivi-server). Nothing is lost: stop the server and run `suivi-server store encrypt` to encrypt it in place")]
    Plaintext { db: PathBuf },
    #[error("{db} is encrypted but its key file {key_file} is missing: restore the key file from its backup (a new key cannot open this database)")]
    KeyMissing { db: PathBuf, key_file: PathBuf },
    #[error("{db}: {key} does not open this database (it belongs to another one, or the database is damaged); restore this database's key file from its backup")]
    WrongKey { db: PathBuf, key: String },
    #[error("the key file {0} is inside the data directory: keep it outside, so a copy of the data alone is unreadable")]
    KeyInsideData(PathBuf),
    #[error("key file {path}: {why}")]
    BadKeyFile { path: PathBuf, why: String },
    #[error("{0}: another suivi-server process is using this data directory; stop it first")]
    InUse(PathBuf),
    #[error("{db}: the database is already encrypted")]
    AlreadyEncrypted { db: PathBuf },
    #[error("{0}: no database to encrypt")]
    NoDatabase(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the encrypted copy does not match the original ({0}); the original is untouched")]
    CopyMismatch(String),
    #[error("SUIVI_SERVER_KEY (a passphrase) is for the embedded SQLite store; with PostgreSQL give every instance the same key file (--key-file), whose random key seals change payloads")]
    PassphraseOnPostgres,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AtRestError + '_ {
    move |source| AtRestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where the database key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A passphrase from the environment (`SUIVI_SERVER_KEY`); SQLCipher derives the key.
    Passphrase(String),
    /// A key file, generated on first start when neither it nor a database exists.
    File(PathBuf),
}

impl KeySource {
    /// `SUIVI_SERVER_KEY` when set, else the key file.
    pub fn from_env_or(key_file: PathBuf) -> KeySource {
        match std::env::var(KEY_ENV) {
            Ok(passphrase) if !passphrase.is_empty() => KeySource::Passphrase(passphrase),
            _ => KeySource::File(key_file),
        }
    }

    /// Where the key is, for messages ("the key file ./data.key").
    pub fn describe(&self) -> String {
        match self {
            KeySource::Passphrase(_) => format!("the key in {KEY_ENV}"),
            KeySource::File(path) => format!("the key file {}", path.display()),
        }
    }
}

/// The default key file for a data directory: beside it, `<data>.key`.
pub fn default_key_file(data_dir: &Path) -> PathBuf {
    let mut name = data_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "suivi-server".into());
    name.push(".key");
    data_dir.with_file_name(name)
}

/// What the database key and the enrollment-code secret are, once loaded.
pub struct ServerKeys {
    /// The value given to `PRAGMA key`: a raw key (`x'…'`) from a key file, or a passphrase.
    database: String,
    /// The key file's raw database key (none for a passphrase): what seals change payloads on
    /// PostgreSQL.
    raw_database: Option<[u8; 32]>,
    pub codes: CodeKey,
}

impl ServerKeys {
    fn from_raw(database: [u8; 32], codes: [u8; 32]) -> ServerKeys {
        ServerKeys {
            // A raw 256-bit key: SQLCipher skips its passphrase derivation, which a random key
            // does not need.
            database: format!("x'{}'", hex::encode(database)),
            raw_database: Some(database),
            codes: CodeKey::new(codes.to_vec()),
        }
    }

    fn from_passphrase(passphrase: &str) -> ServerKeys {
        ServerKeys {
            database: passphrase.to_string(),
            raw_database: None,
            codes: CodeKey::derive(passphrase.as_bytes()),
        }
    }

    fn file_text(database: &[u8; 32], codes: &[u8; 32]) -> String {
        format!(
            "# suivi-server keys. Back this file up apart from the data directory:\n\
             # without it the database cannot be read, and with the data it reads everything.\n\
             database-key = {}\ncode-key = {}\n",
            hex::encode(database),
            hex::encode(codes)
        )
    }

    fn parse(path: &Path, text: &str) -> Result<ServerKeys, AtRestError> {
        let bad = |why: &str| AtRestError::BadKeyFile {
            path: path.to_path_buf(),
            why: why.to_string(),
        };
        let mut database = None;
        let mut codes = None;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| bad("lines are `name = hex`"))?;
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(value.trim(), &mut bytes)
                .map_err(|_| bad("a key is 64 hexadecimal digits"))?;
            match name.trim() {
                "database-key" => database = Some(bytes),
                "code-key" => codes = Some(bytes),
                _ => {
                    return Err(bad(
                        "unknown entry (database-key and code-key are expected)",
                    ))
                }
            }
        }
        match (database, codes) {
            (Some(d), Some(c)) => Ok(ServerKeys::from_raw(d, c)),
            _ => Err(bad("database-key or code-key is missing")),
        }
    }
}

/// How the database file looks before it is opened.
#[derive(Debug, PartialEq, Eq)]
enum DatabaseFile {
    Absent,
    Plaintext,
    Encrypted,
}

fn database_file(db: &Path) -> Result<DatabaseFile, AtRestError> {
    let mut file = match File::open(db) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DatabaseFile::Absent),
        Err(e) => return Err(io(db)(e)),
    };
    let mut header = Vec::with_capacity(16);
    Read::by_ref(&mut file)
        .take(16)
        .read_to_end(&mut header)
        .map_err(io(db))?;
    Ok(if header.is_empty() {
        // SQLite treats an empty file as a new database.
        DatabaseFile::Absent
    } else if header == PLAINTEXT_HEADER {
        DatabaseFile::Plaintext
    } else {
        DatabaseFile::Encrypted
    })
}

/// A store opened at rest: the store, the enrollment-code secret, and the lock that tells
/// `store encrypt` this directory is in use (held while this value lives).
pub struct OpenedStore {
    pub store: Arc<dyn ServerStore>,
    pub codes: CodeKey,
    /// None on PostgreSQL: several instances share the database by design.
    _lock: Option<File>,
}

/// Opens (or creates) the encrypted store in `data_dir`.
pub fn open(data_dir: &Path, source: &KeySource) -> Result<OpenedStore, AtRestError> {
    prepare_data_dir(data_dir)?;
    let lock = lock_file(data_dir)?;
    lock.try_lock_shared()
        .map_err(|_| AtRestError::InUse(data_dir.to_path_buf()))?;
    let db = data_dir.join(DATABASE_FILE);
    let state = database_file(&db)?;
    if state == DatabaseFile::Plaintext {
        return Err(AtRestError::Plaintext { db });
    }
    if let KeySource::File(path) = source {
        check_outside(data_dir, path)?;
    }
    let keys = match source {
        KeySource::Passphrase(p) => ServerKeys::from_passphrase(p),
        KeySource::File(path) => match (load_key_file(path)?, state) {
            (Some(keys), _) => keys,
            (None, DatabaseFile::Absent) => create_key_file(path)?,
            (None, _) => {
                return Err(AtRestError::KeyMissing {
                    db,
                    key_file: path.clone(),
                })
            }
        },
    };
    create_private_file(&db)?;
    let store = SqliteStore::open(&db, Some(&keys.database)).map_err(opening(&db, source))?;
    tighten_database_files(&db)?;
    let store: Arc<dyn ServerStore> = Arc::new(store);
    replay_journals(store.as_ref(), data_dir)?;
    Ok(OpenedStore {
        store,
        codes: keys.codes,
        _lock: Some(lock),
    })
}

/// Journals beside the data directory are applied again on every start (see `journal`).
fn replay_journals(store: &dyn ServerStore, data_dir: &Path) -> Result<(), AtRestError> {
    // An erasure journalled after the backup this database came from is applied again
    // (`journal`).
    let replayed = crate::erasure::replay(store, &crate::erasure::journal_path(data_dir))
        .map_err(|e| AtRestError::Storage(StorageError::Backend(e.to_string())))?;
    if replayed > 0 {
        tracing::warn!(
            replayed,
            "erasures from the journal applied again: the database was restored from a backup \
             older than them; changes stored after that backup are lost unless phones still \
             hold them (their authors' phones push them again)"
        );
    }
    // So is a revocation: a lost phone must not come back with an older database.
    let revoked =
        crate::admin::replay_revocations(store, &crate::admin::revocation_journal(data_dir))
            .map_err(|e| AtRestError::Storage(StorageError::Backend(e)))?;
    if revoked > 0 {
        tracing::warn!(
            revoked,
            "revocations from the journal applied again: the database was restored from a \
             backup older than them; changes stored after that backup are lost unless phones \
             still hold them (their authors' phones push them again)"
        );
    }
    Ok(())
}

/// Opens (or creates) the store in a PostgreSQL database, for one of several instances.
///
/// PostgreSQL has no SQLCipher: the server seals change payloads with a key derived from the
/// key file's database key (`storage::sealed`). Every instance must be given the same key file;
/// one whose key is not the database's refuses to start. The key file is generated only for a
/// new database. The data directory keeps this host's erasure and revocation journals.
pub fn open_postgres(
    url: &str,
    data_dir: &Path,
    source: &KeySource,
) -> Result<OpenedStore, AtRestError> {
    prepare_data_dir(data_dir)?;
    let KeySource::File(path) = source else {
        return Err(AtRestError::PassphraseOnPostgres);
    };
    check_outside(data_dir, path)?;
    let keys = match load_key_file(path)? {
        Some(keys) => keys,
        None if !PostgresStore::holds_data(url)? => create_key_file(path)?,
        None => {
            return Err(AtRestError::KeyMissing {
                db: PathBuf::from(redact_url(url)),
                key_file: path.clone(),
            })
        }
    };
    let raw = keys
        .raw_database
        .expect("a key file always holds a raw database key");
    let store =
        PostgresStore::open(url, &raw).map_err(opening(Path::new(&redact_url(url)), source))?;
    let store: Arc<dyn ServerStore> = Arc::new(store);
    replay_journals(store.as_ref(), data_dir)?;
    Ok(OpenedStore {
        store,
        codes: keys.codes,
        _lock: None,
    })
}

/// Moves the SQLite store in `data_dir` into the (empty) PostgreSQL database at `url`, with the
/// same key file, so devices notice nothing (`storage::migrate`). Stop the server first: the
/// data directory is locked exclusively meanwhile. The SQLite file is left as it was.
pub fn migrate_to_postgres(
    data_dir: &Path,
    source: &KeySource,
    url: &str,
) -> Result<crate::storage::migrate::MigrationReport, AtRestError> {
    let lock = lock_file(data_dir)?;
    lock.try_lock()
        .map_err(|_| AtRestError::InUse(data_dir.to_path_buf()))?;
    let db = data_dir.join(DATABASE_FILE);
    match database_file(&db)? {
        DatabaseFile::Encrypted => {}
        DatabaseFile::Plaintext => return Err(AtRestError::Plaintext { db }),
        DatabaseFile::Absent => return Err(AtRestError::NoDatabase(db)),
    }
    let KeySource::File(path) = source else {
        return Err(AtRestError::PassphraseOnPostgres);
    };
    let keys = load_key_file(path)?.ok_or_else(|| AtRestError::KeyMissing {
        db: db.clone(),
        key_file: path.clone(),
    })?;
    let sqlite = SqliteStore::open(&db, Some(&keys.database)).map_err(opening(&db, source))?;
    let raw = keys
        .raw_database
        .expect("a key file always holds a raw database key");
    let target =
        PostgresStore::open(url, &raw).map_err(opening(Path::new(&redact_url(url)), source))?;
    let report = crate::storage::migrate::sqlite_to_postgres(&sqlite, &target)?;
    let target = std::sync::Arc::new(target);
    // The console's projections are sealed and keyed for this store: built from the changes.
    crate::service::SyncService::new(target.clone(), crate::auth::CodeKey::generate())
        .refresh_all_summaries()
        .map_err(|e| AtRestError::Storage(crate::storage::StorageError::Backend(e.to_string())))?;
    target.audit(
        chrono::Utc::now().timestamp(),
        "admin",
        "store.migrate",
        &format!(
            "from sqlite: {} rows, feed end {}",
            report.rows(),
            report.feed_end
        ),
    )?;
    drop(lock);
    Ok(report)
}

/// What a store's opening error means here: a key that does not open the database names the
/// key's source; anything else stays a storage error.
fn opening<'a>(
    db: &'a Path,
    source: &'a KeySource,
) -> impl FnOnce(StorageError) -> AtRestError + 'a {
    move |e| match e {
        StorageError::Backend(why) if why.contains("wrong key") => AtRestError::WrongKey {
            db: db.to_path_buf(),
            key: source.describe(),
        },
        other => AtRestError::Storage(other),
    }
}

/// A database URL for messages and logs: its password replaced.
pub fn redact_url(url: &str) -> String {
    match url.parse::<postgres::Config>() {
        Ok(config) if config.get_password().is_some() => {
            // user:password@ → user:***@ (the URL form is the only one that reaches here).
            match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    let creds = &url[scheme + 3..at];
                    let user = creds.split(':').next().unwrap_or_default();
                    format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
                }
                _ => "a PostgreSQL database".into(),
            }
        }
        _ => url.to_string(),
    }
}

/// What `store encrypt` did.
#[derive(Debug)]
pub struct EncryptReport {
    pub db: PathBuf,
    pub tables: usize,
    pub rows: u64,
    pub key_file_created: Option<PathBuf>,
}

/// Encrypts a plaintext database in place: an encrypted copy is written beside it, checked
/// table by table against the original, then renamed over it. Until that rename the original is
/// untouched; a crash leaves either the original or the encrypted copy, never a mix.
pub fn encrypt_in_place(data_dir: &Path, source: &KeySource) -> Result<EncryptReport, AtRestError> {
    prepare_data_dir(data_dir)?;
    let lock = lock_file(data_dir)?;
    lock.try_lock()
        .map_err(|_| AtRestError::InUse(data_dir.to_path_buf()))?;
    let db = data_dir.join(DATABASE_FILE);
    match database_file(&db)? {
        DatabaseFile::Plaintext => {}
        DatabaseFile::Encrypted => return Err(AtRestError::AlreadyEncrypted { db }),
        DatabaseFile::Absent => return Err(AtRestError::NoDatabase(db)),
    }
    if let KeySource::File(path) = source {
        check_outside(data_dir, path)?;
    }
    let mut key_file_created = None;
    let keys = match source {
        KeySource::Passphrase(p) => ServerKeys::from_passphrase(p),
        KeySource::File(path) => match load_key_file(path)? {
            Some(keys) => keys,
            None => {
                let keys = create_key_file(path)?;
                key_file_created = Some(path.clone());
                keys
            }
        },
    };
    let copy = db.with_file_name(format!("{DATABASE_FILE}{ENCRYPTING_SUFFIX}"));
    let _ = std::fs::remove_file(&copy);
    create_private_file(&copy)?;

    let original = encrypt::export_encrypted(&db, &copy, &keys.database)?;
    let copied = encrypt::encrypted_table_counts(&copy, &keys.database)?;
    if copied != original {
        let _ = std::fs::remove_file(&copy);
        return Err(AtRestError::CopyMismatch(format!(
            "{} tables and schema {} before, {} tables and schema {} after",
            original.rows.len(),
            original.version,
            copied.rows.len(),
            copied.version
        )));
    }
    File::open(&copy)
        .and_then(|f| f.sync_all())
        .map_err(io(&copy))?;
    // After the checkpoint and the close the log is empty; an old log beside the encrypted file
    // would otherwise be read as its own.
    for suffix in ["-wal", "-shm"] {
        let side = db.with_file_name(format!("{DATABASE_FILE}{suffix}"));
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&side)(e)),
        }
    }
    std::fs::rename(&copy, &db).map_err(io(&db))?;
    File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(io(data_dir))?;
    Ok(EncryptReport {
        db,
        tables: original.rows.len(),
        rows: original.rows.iter().map(|(_, n)| n).sum(),
        key_file_created,
    })
}

/// The data directory exists and only its owner can enter it.
fn prepare_data_dir(data_dir: &Path) -> Result<(), AtRestError> {
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700)).map_err(io(data_dir))
}

fn lock_file(data_dir: &Path) -> Result<File, AtRestError> {
    let path = data_dir.join(LOCK_FILE);
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(io(&path))
}

/// Creates `path` empty and 0600 when it does not exist. SQLite gives its log and shared-memory
/// files the database file's mode, so they follow.
fn create_private_file(path: &Path) -> Result<(), AtRestError> {
    match OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

/// Files an older server left readable by everyone become 0600.
fn tighten_database_files(db: &Path) -> Result<(), AtRestError> {
    for suffix in ["", "-wal", "-shm"] {
        let path = db.with_file_name(format!("{DATABASE_FILE}{suffix}"));
        match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
    }
    Ok(())
}

/// Refuses a key file inside the data directory (links resolved), which would make a copy of the
/// data directory readable again.
fn check_outside(data_dir: &Path, key_file: &Path) -> Result<(), AtRestError> {
    let data = std::fs::canonicalize(data_dir).map_err(io(data_dir))?;
    let absolute = std::path::absolute(key_file).map_err(io(key_file))?;
    // The nearest directory that exists decides: nothing below it can be a link elsewhere.
    let existing = absolute
        .ancestors()
        .skip(1)
        .find(|a| a.exists())
        .unwrap_or(Path::new("/"));
    let existing = std::fs::canonicalize(existing).map_err(io(existing))?;
    if existing.starts_with(&data) {
        return Err(AtRestError::KeyInsideData(key_file.to_path_buf()));
    }
    Ok(())
}

fn load_key_file(path: &Path) -> Result<Option<ServerKeys>, AtRestError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    ServerKeys::parse(path, &text).map(Some)
}

fn create_key_file(path: &Path) -> Result<ServerKeys, AtRestError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let mut rng = rand::thread_rng();
    let (database, codes): ([u8; 32], [u8; 32]) = (rng.gen(), rng.gen());
    // create_new: two servers started at once never overwrite each other's key.
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    file.write_all(ServerKeys::file_text(&database, &codes).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(path))?;
    tracing::warn!(key_file = %path.display(), "generated the server's key file: back it up apart from the data directory");
    Ok(ServerKeys::from_raw(database, codes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_parse_strictly() {
        let path = Path::new("k");
        let good = ServerKeys::file_text(&[1; 32], &[2; 32]);
        let keys = ServerKeys::parse(path, &good).unwrap();
        assert_eq!(keys.database, format!("x'{}'", "01".repeat(32)));
        for bad in [
            "database-key = 00\ncode-key = 00\n".to_string(),
            good.replace("code-key", "other"),
            good.lines().take(3).collect::<Vec<_>>().join("\n"),
            "nonsense".to_string(),
        ] {
            assert!(
                matches!(
                    ServerKeys::parse(path, &bad),
                    Err(AtRestError::BadKeyFile { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn default_key_file_sits_beside_the_data_directory() {
        assert_eq!(
            default_key_file(Path::new("./data")),
            PathBuf::from("./data.key")
        );
        assert_eq!(
            default_key_file(Path::new("/srv/suivi/data")),
            PathBuf::from("/srv/suivi/data.key")
        );
    }
}
