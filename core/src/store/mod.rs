//! The encrypted store: one SQLCipher database holding each case's Automerge document (a
//! snapshot plus incremental chunks, compacted now and then) and the projection rows that lists
//! and search read. Every write updates document and projections in one transaction.

mod arriving;
mod cases;
mod drafts;
mod exchange;
mod inputs;
mod open;
mod outcomes;
pub use outcomes::{ClosureStepWords, ClosureWords};
pub mod projection;
mod reads;
pub mod schema;
pub mod sqlcipher;
pub(crate) mod sync_state;
mod todo;
use open::*;

use std::path::Path;

use automerge::{ActorId, ChangeHash};
use chrono::NaiveDate;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use serde_json::Value as Json;

use crate::case_doc::{
    AuditNote, CaseDoc, ChangeContext, Conflict, FollowUp, HistoryEntry, Referral,
};
use crate::error::{Error, Result};
use crate::forms::{FormDefinition, FormRegistry, Record, IDENTIFICATION};
use crate::referral::Transition;
pub use drafts::Draft;
pub use inputs::date_input;
pub use projection::{fold, CaseRow, ReferralRow};
pub use sync_state::{
    Enrollment, QuarantinedCase, RefusedCase, SyncProgress, SyncReport, FORGED_REASON,
    FORGERIES_KEPT_MAX, PUSH_RAW_BYTES_MAX, SERVER_SPEAKS_TTL_SECS,
};
pub use todo::{Todo, TodoFilter, DUE_SOON_DAYS, WAITING_ON_AGENT};

/// A calendar day, as filters take it.
pub type Date = NaiveDate;

/// Parses a YYYY-MM-DD day.
pub fn parse_date(text: &str) -> Option<Date> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// Fold the incremental chunks into a fresh snapshot once a case has this many.
pub const CASE_CHUNKS_MAX: i64 = 32;
/// SQLite page cache, KiB: enough for the projections of a 10,000-case caseload.
pub const STORE_CACHE_KIB_MAX: i64 = 16 * 1024;
/// Upper bound on rows a list or search returns.
pub const LIST_ROWS_MAX: usize = 10_000;

/// Who this device is: the user recording cases and the device's persisted Automerge actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub user: String,
    pub device: String,
    pub actor: String,
}

/// Filters for listing cases; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Name search, as forgiving as the console's: "traore" finds "Traoré", "el idrissi"
    /// finds "El-Idrissi", "koulibaly" finds "Coulibaly", "moh" finds "Mohamed".
    pub query: Option<String>,
    /// A village, by its name or its beginning from three letters ("kala" finds Kalaké).
    pub village: Option<String>,
    pub risk_level: Option<String>,
    /// Cases with at least one referral in this status.
    pub referral_status: Option<String>,
    /// Cases whose next follow-up visit was due before this day.
    pub overdue_on: Option<NaiveDate>,
    pub limit: Option<usize>,
}

/// A conflict as a picker shows it: the field by its label, and each value to keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictChoice {
    /// What `resolve_conflict` settles (`identification.village`, `referrals.<id>.status`).
    pub path: String,
    pub label: String,
    pub options: Vec<ConflictOption>,
}

/// One value two phones set at once, for the agent to keep or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictOption {
    /// The value as `resolve_conflict` takes it.
    pub input: String,
    /// The value in the reader's words (a choice's label, yes or no, a date written out).
    pub value: String,
    /// Who wrote it: the author the server verified, else the one the change names.
    pub author: Option<String>,
    pub verified: bool,
    /// The phone that wrote it (its device id), when verified.
    pub phone: Option<String>,
    /// When, on the writing phone's clock, in the reader's words.
    pub at: String,
}

/// Everything about one case, for the case screen.
#[derive(Debug, Clone, Serialize)]
pub struct CaseDetail {
    pub summary: CaseRow,
    pub identification_form: u32,
    pub identification: Record,
    /// Identification fields an earlier version asked and the record's version no longer
    /// does: kept, shown read-only.
    pub former_fields: Record,
    pub referrals: Vec<Referral>,
    pub followups: Vec<FollowUp>,
    pub conflicts: Vec<Conflict>,
    pub audit_notes: Vec<AuditNote>,
    /// Set on a case merged into another (read-only): the survivor's id.
    pub merged_into: Option<String>,
    /// On a survivor: the cases merged into it, with what they hold.
    pub merged: Vec<MergedCase>,
    /// Its closure: status, reason and every step with who took it.
    pub closure: crate::case_doc::Closure,
}

/// A case merged into the one shown: its referrals and visits belong to the child too, and the
/// edits recorded on it without knowledge of the merge wait for a supervisor's review.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergedCase {
    pub case_id: String,
    /// False while this device has not received the merged case yet.
    pub held: bool,
    pub referrals: Vec<Referral>,
    pub followups: Vec<FollowUp>,
    pub edits_after_merge: Vec<HistoryEntry>,
}

/// Meta key: the app version reported at sync.
const META_APP_VERSION: &str = "app_version";

pub struct Store {
    conn: Connection,
    forms: std::sync::Mutex<FormsCache>,
    identity: Identity,
}

/// Meta key: where this device stands in the server's forms feed.
pub(crate) const META_FORMS: &str = "forms_cursor";
/// Meta key: the app version that last refused a form the server sent. An app of another
/// version (an update that may read it) asks for the whole forms feed again.
pub(crate) const META_FORMS_REFUSED_BY: &str = "forms_refused_by";
/// Meta key: how the forms this device holds were read ([`FORMS_READ_AS`]).
pub(crate) const META_FORMS_READ_AS: &str = "forms_read_as";
/// How this build reads a form definition. An app released before labels in further languages
/// kept the versions it received without them (and wrote no mark): a store not marked with
/// this reading asks for the whole forms feed once, and takes each version again whole.
pub(crate) const FORMS_READ_AS: &str = "labels in further languages";
/// Where a case stands with the server (`case_sync.dirty`). The numbers on disk are fixed by
/// the stores already in the field: 0, 1 and 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncState {
    /// The server holds every change of the case this phone has.
    Clean = 0,
    /// Changes wait to be pushed (a local save, or a push the server has not acknowledged).
    Pending = 1,
    /// The server refused the case's changes for good: set aside and reported, never pushed
    /// again on its own.
    Refused = 2,
}

impl rusqlite::ToSql for SyncState {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok((*self as i64).into())
    }
}

impl rusqlite::types::FromSql for SyncState {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        match value.as_i64()? {
            0 => Ok(SyncState::Clean),
            1 => Ok(SyncState::Pending),
            2 => Ok(SyncState::Refused),
            // Loud: a value no build wrote is a corrupt row, not a state to guess.
            other => Err(rusqlite::types::FromSqlError::OutOfRange(other)),
        }
    }
}

/// The enrolled user's role, as the server gave it at enrollment.
pub(crate) const META_ROLE: &str = "role";
/// The programme's outcome settings the server published (JSON), once received.
pub(crate) const META_OUTCOME_SETTINGS: &str = "outcome_settings";

/// The forms registry as last loaded, and what the forms table held then (versions,
/// retirements, definitions' length): a sync on the writer that stores a form changes it, and every connection
/// (readers too) reloads at its next use.
struct FormsCache {
    loaded_at: Option<(i64, i64, i64)>,
    registry: std::sync::Arc<FormRegistry>,
}

/// The built-in forms with every version received from the server.
fn load_forms(conn: &Connection) -> Result<FormRegistry> {
    let mut registry = FormRegistry::builtin();
    let mut stmt =
        conn.prepare_cached("SELECT definition, retired FROM forms ORDER BY form_id, version")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?;
    for row in rows {
        let (definition, retired) = row?;
        // Checked before it was stored: failing now means the file was changed.
        let form = FormDefinition::from_json(&definition)?;
        if retired {
            registry.retire(&form.id, form.version);
        }
        registry.add(form);
    }
    Ok(registry)
}

/// The heads the server is known to hold. One that does not read makes the whole list empty,
/// on purpose: the case's changes are all pushed again, and the server keeps only what it lacks
/// (dropping just that head would also push more, but hide that the row was damaged).
fn parse_heads(text: &str) -> Vec<ChangeHash> {
    text.split(' ')
        .filter(|h| !h.is_empty())
        .map(str::parse)
        .collect::<std::result::Result<Vec<ChangeHash>, _>>()
        .unwrap_or_default()
}

fn format_heads(heads: &[ChangeHash]) -> String {
    heads
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Store {
    /// Creates a new store for a user on a device, with a fresh Automerge actor id.
    pub fn create(path: &Path, key: &str, user: &str, device: &str) -> Result<Store> {
        if user.trim().is_empty() || device.trim().is_empty() {
            return Err(Error::InvalidInput(
                "user and device must not be empty".into(),
            ));
        }
        let mut conn = open_connection(path, key, Access::Create)?;
        if schema::user_version(&conn)? > 0 {
            return Err(Error::AlreadyInitialised);
        }
        schema::migrate_to(&mut conn, schema::LATEST_VERSION)?;
        let actor = crate::clock::new_actor().to_hex_string();
        let tx = conn.transaction()?;
        for (k, v) in [
            ("user", user),
            ("device", device),
            ("actor", actor.as_str()),
        ] {
            tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", [k, v])?;
        }
        tx.commit()?;
        Store::from_connection(conn)
    }

    /// Opens an existing store; upgrades its schema if this build is newer.
    pub fn open(path: &Path, key: &str) -> Result<Store> {
        let mut conn = open_connection(path, key, Access::ReadWrite)?;
        if schema::user_version(&conn)? == 0 {
            return Err(Error::NotFound {
                kind: "store",
                id: "initialised store".into(),
            });
        }
        schema::migrate_to(&mut conn, schema::LATEST_VERSION)?;
        projection::fill_search_keys(&mut conn)?;
        let mut store = Store::from_connection(conn)?;
        store.project_outcomes()?;
        Ok(store)
    }

    /// Deletes a store's files (database, write-ahead log, shared memory): a reset before a new
    /// enrollment, when the key is lost or the device was revoked. Missing files are fine.
    pub fn remove_files(path: &Path) -> Result<()> {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            match std::fs::remove_file(&name) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Storage(format!(
                        "cannot remove the store: {}",
                        e.kind()
                    )))
                }
            }
        }
        Ok(())
    }

    /// Opens a second, read-only connection to a store that is open for writing (which made
    /// it current): lists, searches and case screens read through it and never wait for a
    /// sync or a save, which SQLite's WAL mode lets write meanwhile.
    pub fn open_reader(path: &Path, key: &str) -> Result<Store> {
        let conn = open_connection(path, key, Access::ReadOnly)?;
        let version = schema::user_version(&conn)?;
        if version != schema::LATEST_VERSION {
            return Err(Error::Storage(format!(
                "a reader needs the store at schema {}, found {version}: open it for writing first",
                schema::LATEST_VERSION
            )));
        }
        Store::from_connection(conn)
    }

    fn from_connection(conn: Connection) -> Result<Store> {
        let get = |k: &str| -> Result<String> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .optional()?
                .ok_or_else(|| Error::Document(format!("store meta lacks {k}")))
        };
        let identity = Identity {
            user: get("user")?,
            device: get("device")?,
            actor: get("actor")?,
        };
        Ok(Store {
            conn,
            forms: std::sync::Mutex::new(FormsCache {
                loaded_at: None,
                registry: std::sync::Arc::new(FormRegistry::builtin()),
            }),
            identity,
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The forms this store knows: built in, and received from the server at sync.
    pub fn forms(&self) -> Result<std::sync::Arc<FormRegistry>> {
        // What the table holds (versions, retirements, and the definitions' length, which grows
        // when a version kept without its further languages is taken again whole): a sync that
        // stored a form moved it, even one that read the feed again and ended at the same position.
        let position: (i64, i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(retired), 0), coalesce(sum(length(definition)), 0)
             FROM forms",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut cache = self
            .forms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.loaded_at.as_ref() != Some(&position) {
            cache.registry = std::sync::Arc::new(load_forms(&self.conn)?);
            cache.loaded_at = Some(position);
        }
        Ok(cache.registry.clone())
    }

    fn actor(&self) -> Result<ActorId> {
        hex::decode(&self.identity.actor)
            .map(ActorId::from)
            .map_err(|_| Error::Document("bad actor id".into()))
    }

    fn context(&self) -> ChangeContext {
        ChangeContext::now(self.identity.user.clone())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    pub fn delete_meta(&self, key: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM meta WHERE key = ?1", [key])?;
        Ok(())
    }

    /// Loads a case document from its snapshot and chunks; `None` if the case is not here.
    pub fn load_doc(&self, case_id: &str) -> Result<Option<CaseDoc>> {
        let snapshot: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT snapshot FROM case_docs WHERE case_id = ?1",
                [case_id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(snapshot) = snapshot else {
            return Ok(None);
        };
        let mut doc = CaseDoc::load(&snapshot, self.actor()?)?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT data FROM case_chunks WHERE case_id = ?1 ORDER BY id")?;
        let mut rows = stmt.query([case_id])?;
        while let Some(row) = rows.next()? {
            let chunk: Vec<u8> = row.get(0)?;
            doc.load_incremental(&chunk)?;
        }
        Ok(Some(doc))
    }

    fn require_doc(&self, case_id: &str) -> Result<CaseDoc> {
        match self.load_doc(case_id)? {
            Some(doc) => Ok(doc),
            None if self.is_arriving(case_id)? => Err(Error::CaseArriving(case_id.to_string())),
            None => Err(Error::NotFound {
                kind: "case",
                id: case_id.to_string(),
            }),
        }
    }

    /// Saves a document and its projection in one transaction. `local` marks changes made on this
    /// device, which the next sync must push.
    pub(crate) fn save_doc(
        tx: &rusqlite::Transaction<'_>,
        forms: &FormRegistry,
        case_id: &str,
        doc: &mut CaseDoc,
        local: bool,
    ) -> Result<()> {
        let chunk_count: Option<i64> = tx
            .query_row(
                "SELECT chunk_count FROM case_docs WHERE case_id = ?1",
                [case_id],
                |r| r.get(0),
            )
            .optional()?;
        match chunk_count {
            None => {
                tx.execute(
                    "INSERT INTO case_docs (case_id, snapshot, chunk_count) VALUES (?1, ?2, 0)",
                    params![case_id, doc.save()],
                )?;
                let state = if local {
                    SyncState::Pending
                } else {
                    SyncState::Clean
                };
                tx.execute(
                    "INSERT INTO case_sync (case_id, dirty, synced_heads) VALUES (?1, ?2, '')",
                    params![case_id, state],
                )?;
            }
            Some(n) if n + 1 >= CASE_CHUNKS_MAX => {
                tx.execute("DELETE FROM case_chunks WHERE case_id = ?1", [case_id])?;
                tx.execute(
                    "UPDATE case_docs SET snapshot = ?2, chunk_count = 0 WHERE case_id = ?1",
                    params![case_id, doc.save()],
                )?;
            }
            Some(_) => {
                let chunk = doc.save_incremental();
                if !chunk.is_empty() {
                    tx.execute(
                        "INSERT INTO case_chunks (case_id, data) VALUES (?1, ?2)",
                        params![case_id, chunk],
                    )?;
                    tx.execute(
                        "UPDATE case_docs SET chunk_count = chunk_count + 1 WHERE case_id = ?1",
                        [case_id],
                    )?;
                }
            }
        }
        if local {
            tx.execute(
                "UPDATE case_sync SET dirty = ?2, edits = edits + 1 WHERE case_id = ?1",
                params![case_id, SyncState::Pending],
            )?;
        }
        let unacknowledged: bool = tx.query_row(
            "SELECT dirty != ?2 FROM case_sync WHERE case_id = ?1",
            params![case_id, SyncState::Clean],
            |r| r.get(0),
        )?;
        let settings = outcome_settings_in(tx)?;
        let projection = projection::project_on_phone(doc, forms, &settings, unacknowledged)?;
        projection::write(tx, &projection)?;
        Ok(())
    }

    pub(crate) fn connection_ref(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn actor_id(&self) -> Result<ActorId> {
        self.actor()
    }

    /// Cases with local changes the server has not acknowledged.
    /// The app's name and version this device reports when it syncs (its supervisor sees it):
    /// set by the app (`set_app_version`), or the library's own.
    pub fn app_version(&self) -> Result<String> {
        Ok(self
            .meta(META_APP_VERSION)?
            .unwrap_or_else(|| format!("suivi-core {}", env!("CARGO_PKG_VERSION"))))
    }

    pub fn set_app_version(&self, version: &str) -> Result<()> {
        let version: String = version
            .chars()
            .take(crate::protocol::APP_VERSION_CHARS_MAX)
            .collect();
        self.set_meta(META_APP_VERSION, &version)
    }

    pub fn unsynced_case_count(&self) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM case_sync WHERE dirty = ?1",
            [SyncState::Pending],
            |r| r.get(0),
        )?)
    }

    pub(crate) fn synced_heads(&self, case_id: &str) -> Result<Vec<ChangeHash>> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT synced_heads FROM case_sync WHERE case_id = ?1",
                [case_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(text.as_deref().map(parse_heads).unwrap_or_default())
    }

    pub(crate) fn format_heads(heads: &[ChangeHash]) -> String {
        format_heads(heads)
    }
}

/// The outcome settings this phone holds (the programme's, received at sync), or the
/// defaults until a server sends some.
pub(crate) fn outcome_settings_in(conn: &Connection) -> Result<crate::outcome::OutcomeSettings> {
    let held: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [META_OUTCOME_SETTINGS],
            |r| r.get(0),
        )
        .optional()?;
    Ok(held
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    /// The values stores in the field hold: a state reads back as itself, any other number is
    /// an error, never a guess.
    #[test]
    fn sync_states_are_the_numbers_on_disk_and_nothing_else_reads() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for (state, number) in [
            (SyncState::Clean, 0i64),
            (SyncState::Pending, 1),
            (SyncState::Refused, 2),
        ] {
            let stored: i64 = conn.query_row("SELECT ?1", [state], |r| r.get(0)).unwrap();
            assert_eq!(stored, number);
            let read: SyncState = conn.query_row("SELECT ?1", [number], |r| r.get(0)).unwrap();
            assert_eq!(read, state);
        }
        assert!(conn
            .query_row("SELECT 3", [], |r| r.get::<_, SyncState>(0))
            .is_err());
    }

    use super::*;

    const KEY: &str = "test key";

    /// A damaged `synced_heads` row is read as "the server holds nothing of this case": the
    /// whole case is pushed again (the server keeps only what it lacks), never a failing sync.
    #[test]
    fn damaged_synced_heads_push_the_whole_case_again() {
        let good = ChangeHash([7; 32]);
        assert_eq!(parse_heads(""), Vec::<ChangeHash>::new());
        assert_eq!(parse_heads(&format_heads(&[good, good])), vec![good, good]);
        assert_eq!(
            parse_heads(&format!("{good} not-a-hash")),
            Vec::<ChangeHash>::new(),
            "one bad head empties the list"
        );
    }

    /// A form stored by a sync that read the feed again and ended where it stood (an updated
    /// app taking a version the older one refused) is seen by the next read, without a restart.
    #[test]
    fn a_form_stored_at_the_same_feed_position_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&dir.path().join("s.db"), KEY, "amina", "phone").unwrap();
        assert_eq!(
            store.forms().unwrap().latest("referral").unwrap().version,
            1
        );
        let mut v2 = store.forms().unwrap().get("referral", 1).unwrap().clone();
        v2.version = 2;
        store
            .conn
            .execute(
                "INSERT INTO forms (form_id, version, definition) VALUES ('referral', 2, ?1)",
                [v2.canonical_json()],
            )
            .unwrap();
        assert_eq!(
            store.forms().unwrap().latest("referral").unwrap().version,
            2
        );
        store
            .conn
            .execute("UPDATE forms SET retired = 1", [])
            .unwrap();
        assert_eq!(
            store.forms().unwrap().latest("referral").unwrap().version,
            1
        );
    }

    fn schema_of(conn: &Connection) -> Vec<(String, String)> {
        let mut stmt = conn
            .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn an_old_schema_upgraded_equals_a_fresh_one_and_keeps_its_cases() {
        let dir = tempfile::tempdir().unwrap();
        // A store as the first release wrote it: migration 1 only.
        let old_path = dir.path().join("old.db");
        let forms = FormRegistry::builtin();
        let case_id = "0123456789abcdef0123456789abcdef";
        {
            let mut conn = open_connection(&old_path, KEY, Access::Create).unwrap();
            schema::migrate_to(&mut conn, 1).unwrap();
            assert_eq!(schema::user_version(&conn).unwrap(), 1);
            for (k, v) in [
                ("user", "amina"),
                ("device", "phone"),
                ("actor", "0a0b0c0d"),
            ] {
                conn.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", [k, v])
                    .unwrap();
            }
            let record: Record = serde_json::from_value(serde_json::json!({
                "child_first_name": "Aïcha", "child_last_name": "Traoré", "sex": "female",
                "dob_known": false, "estimated_age": 12, "province": "Sikasso", "commune": "Kignan",
                "village": "Fès", "school_status": "never_enrolled", "works": false,
                "risk_level": "low", "consent_to_share": true
            }))
            .unwrap();
            let form = forms.latest(IDENTIFICATION).unwrap();
            let ctx = ChangeContext::now("amina");
            let mut doc = CaseDoc::create(case_id, ActorId::random(), form, &record, &ctx).unwrap();
            let tx = conn.transaction().unwrap();
            tx.execute(
                "INSERT INTO case_docs (case_id, snapshot, chunk_count) VALUES (?1, ?2, 0)",
                params![case_id, doc.save()],
            )
            .unwrap();
            // The projection row as the first release wrote it: its own columns only.
            let p = projection::project(&mut doc, &forms).unwrap().case;
            tx.execute(
                "INSERT INTO cases (case_id, first_name, last_name, name_folded, village,
                    village_folded, risk_level, created_at, created_by, updated_at,
                    referral_count, followup_count, conflict_count)
                 VALUES (?1, ?2, ?3, 'aicha traore', ?4, 'fes', ?5, ?6, ?7, ?8, 0, 0, 0)",
                params![
                    case_id,
                    p.first_name,
                    p.last_name,
                    p.village,
                    p.risk_level,
                    p.created_at,
                    p.created_by,
                    p.updated_at
                ],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let upgraded = Store::open(&old_path, KEY).unwrap();
        let fresh = Store::create(&dir.path().join("fresh.db"), KEY, "u", "d").unwrap();
        assert_eq!(
            schema::user_version(&upgraded.conn).unwrap(),
            schema::LATEST_VERSION
        );
        assert_eq!(schema_of(&upgraded.conn), schema_of(&fresh.conn));
        assert_eq!(upgraded.case(case_id).unwrap().summary.first_name, "Aïcha");
        // Its search keys were filled in at opening: found by the family name first, and by
        // its village's beginning.
        let found = upgraded
            .list_cases(&CaseFilter {
                query: Some("traore aicha".into()),
                village: Some("Fe".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(
            found.is_empty(),
            "two letters are not a village's beginning"
        );
        let found = upgraded
            .list_cases(&CaseFilter {
                query: Some("traore aicha".into()),
                village: Some("FÈS".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(found.len(), 1);
        // Cases from before sync existed are waiting to be pushed.
        assert_eq!(upgraded.unsynced_case_count().unwrap(), 1);
    }

    #[test]
    fn a_newer_schema_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        drop(Store::create(&path, KEY, "u", "d").unwrap());
        {
            let conn = open_connection(&path, KEY, Access::ReadWrite).unwrap();
            conn.pragma_update(None, "user_version", schema::LATEST_VERSION + 1)
                .unwrap();
        }
        assert!(matches!(
            Store::open(&path, KEY),
            Err(Error::SchemaTooNew { .. })
        ));
    }
}
