//! The encrypted store: one SQLCipher database holding each case's Automerge document (a
//! snapshot plus incremental chunks, compacted now and then) and the projection rows that lists
//! and search read. Every write updates document and projections in one transaction.

pub mod projection;
pub mod schema;
pub mod sqlcipher;

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
pub use projection::{fold, CaseRow, ReferralRow};

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

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

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
    /// Name search, folded: "traore" finds "Traoré".
    pub query: Option<String>,
    pub village: Option<String>,
    pub risk_level: Option<String>,
    /// Cases with at least one referral in this status.
    pub referral_status: Option<String>,
    /// Cases whose next follow-up visit was due before this day.
    pub overdue_on: Option<NaiveDate>,
    pub limit: Option<usize>,
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

/// The forms registry as last loaded, and what the forms table held then (versions,
/// retirements): a sync on the writer that stores a form changes it, and every connection
/// (readers too) reloads at its next use.
struct FormsCache {
    loaded_at: Option<(i64, i64)>,
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

/// Opens the SQLCipher connection and proves the key before anything is written: a wrong key,
/// a plaintext SQLite file or another application's database is a typed error and the file is
/// left exactly as it was.
fn open_connection(path: &Path, key: &str, mode: Access) -> Result<Connection> {
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
enum Access {
    Create,
    ReadWrite,
    ReadOnly,
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

fn row_to_case(row: &rusqlite::Row<'_>) -> rusqlite::Result<CaseRow> {
    Ok(CaseRow {
        case_id: row.get("case_id")?,
        first_name: row.get("first_name")?,
        last_name: row.get("last_name")?,
        sex: row.get("sex")?,
        province: row.get("province")?,
        commune: row.get("commune")?,
        village: row.get("village")?,
        work_sector: row.get("work_sector")?,
        risk_level: row.get("risk_level")?,
        created_at: row.get("created_at")?,
        created_by: row.get("created_by")?,
        updated_at: row.get("updated_at")?,
        next_followup_due: row.get("next_followup_due")?,
        referral_count: row.get("referral_count")?,
        followup_count: row.get("followup_count")?,
        conflict_count: row.get("conflict_count")?,
    })
}

fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
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
        let actor = ActorId::random().to_hex_string();
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
        Store::from_connection(conn)
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
        // What the table holds (versions, retirements): a sync that stored a form moved it,
        // even one that read the feed again and ended at the same position.
        let position: (i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(retired), 0) FROM forms",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
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
        self.load_doc(case_id)?.ok_or_else(|| Error::NotFound {
            kind: "case",
            id: case_id.to_string(),
        })
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
        let projection = projection::project(doc, forms)?;
        projection::write(tx, &projection)?;
        Ok(())
    }

    /// Runs one change on one case: load, change, save and project, all or nothing.
    fn change_case<T>(
        &mut self,
        case_id: &str,
        op: impl FnOnce(&mut CaseDoc, &FormRegistry, &ChangeContext) -> Result<T>,
    ) -> Result<T> {
        let forms = self.forms()?;
        let mut doc = self.require_doc(case_id)?;
        if let Some(into) = doc.merged_into()? {
            return Err(Error::CaseMerged {
                case_id: case_id.to_string(),
                into,
            });
        }
        let ctx = self.context();
        let out = op(&mut doc, &forms, &ctx)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Store::save_doc(&tx, &forms, case_id, &mut doc, true)?;
        tx.commit()?;
        Ok(out)
    }

    /// Records a new child; returns the case id.
    pub fn create_case(&mut self, identification: &Record) -> Result<String> {
        let forms = self.forms()?;
        let case_id = uuid::Uuid::new_v4().simple().to_string();
        let form = forms.latest(IDENTIFICATION)?;
        let mut doc = CaseDoc::create(
            &case_id,
            self.actor()?,
            form,
            identification,
            &self.context(),
        )?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Store::save_doc(&tx, &forms, &case_id, &mut doc, true)?;
        tx.commit()?;
        Ok(case_id)
    }

    /// Edits identification fields (`null` clears one); returns the fields that changed.
    pub fn edit_case(&mut self, case_id: &str, patch: &Record) -> Result<Vec<String>> {
        self.change_case(case_id, |doc, forms, ctx| {
            doc.edit_identification(forms, patch, ctx)
        })
    }

    /// The identification form version a case follows: what its edits are read and checked
    /// with.
    pub fn case_form(&self, case_id: &str) -> Result<FormDefinition> {
        let doc = self.require_doc(case_id)?;
        let forms = self.forms()?;
        Ok(forms
            .get(IDENTIFICATION, doc.identification_form_version()?)?
            .clone())
    }

    /// Moves a case's identification to the newest active form version, as the user fills
    /// that version's new questions (`patch`); the record is checked against the new version.
    /// Until then a record stays on the version it was written with, whatever is published.
    pub fn move_case_form(&mut self, case_id: &str, patch: &Record) -> Result<Vec<String>> {
        self.change_case(case_id, |doc, forms, ctx| {
            doc.move_identification(forms, patch, ctx)
        })
    }

    pub fn refer(&mut self, case_id: &str, referral: &Record) -> Result<String> {
        self.change_case(case_id, |doc, forms, ctx| {
            doc.add_referral(forms, referral, ctx)
        })
    }

    /// Moves a referral; for `transfer`, returns the id of the next referral in the chain.
    pub fn transition_referral(
        &mut self,
        referral_id: &str,
        transition: Transition,
        note: Option<&str>,
        next_provider: Option<&str>,
    ) -> Result<Option<String>> {
        let (referral_id, case_id) = self.resolve_referral(referral_id)?;
        self.change_case(&case_id, |doc, forms, ctx| {
            doc.transition_referral(forms, &referral_id, transition, note, next_provider, ctx)
        })
    }

    pub fn add_followup(&mut self, case_id: &str, visit: &Record) -> Result<String> {
        self.change_case(case_id, |doc, forms, ctx| {
            doc.add_followup(forms, visit, ctx)
        })
    }

    pub fn add_audit_note(&mut self, case_id: &str, text: &str) -> Result<String> {
        self.change_case(case_id, |doc, _, ctx| doc.add_audit_note(text, ctx))
    }

    /// Gives a case to another agent of the team: a supervisor's reassignment, made offline if
    /// need be. The server moves the case when this reaches it (the agent's phones receive it,
    /// the former owner's hand over what they recorded, then remove it); two made at once are a
    /// conflict (`assigned_to`) for a supervisor to settle. Only a supervisor's or admin's
    /// device may; the server checks the agent.
    pub fn reassign_case(&mut self, case_id: &str, agent: &str) -> Result<bool> {
        self.require_reassigner()?;
        self.change_case(case_id, |doc, _, ctx| doc.assign_to(agent, ctx))
    }

    /// Only a supervisor's or admin's device writes `assigned_to`: anyone else's change would be
    /// refused by the server, and the case's later edits stuck behind it on this phone.
    fn require_reassigner(&self) -> Result<()> {
        let role = self.meta(META_ROLE)?;
        if !matches!(role.as_deref(), Some("supervisor" | "admin")) {
            return Err(Error::Forbidden(
                "supervisors and admins reassign cases".into(),
            ));
        }
        Ok(())
    }

    /// Settles a conflict (a path `case(..).conflicts` lists): `input` is typed as the form
    /// takes it for an identification field (a choice id, `oui`/`true`, a date), or is one of
    /// a disputed referral's statuses. The other devices see it settled at their next sync.
    pub fn resolve_conflict(&mut self, case_id: &str, path: &str, input: &str) -> Result<()> {
        if path == "assigned_to" {
            self.require_reassigner()?;
        }
        let value = match path.strip_prefix("identification.") {
            Some(field) => {
                let doc = self.require_doc(case_id)?;
                let forms = self.forms()?;
                let form = forms.get(IDENTIFICATION, doc.identification_form_version()?)?;
                form.parse_input(field, input)?
            }
            None => Json::String(input.trim().to_string()),
        };
        self.change_case(case_id, |doc, forms, ctx| {
            doc.resolve_conflict(forms, path, &value, ctx)
        })
    }

    pub fn case(&self, case_id: &str) -> Result<CaseDetail> {
        let forms = self.forms()?;
        // One snapshot for the document and its summary row, though a sync may commit between
        // the two reads (the app reads on its own connection while the sync writes).
        let _snapshot = self.conn.unchecked_transaction()?;
        let mut doc = self.require_doc(case_id)?;
        let summary = self.conn.query_row(
            "SELECT * FROM cases WHERE case_id = ?1",
            [case_id],
            row_to_case,
        )?;
        Ok(CaseDetail {
            summary,
            identification_form: doc.identification_form_version()?,
            identification: doc.identification(&forms)?,
            former_fields: doc.former_identification_fields(&forms)?,
            referrals: doc.referrals(&forms)?,
            followups: doc.followups(&forms)?,
            conflicts: doc.conflicts_with_sources(&forms)?,
            audit_notes: doc.audit_notes()?,
            merged_into: doc.merged_into()?,
            merged: self.merged_cases_of(&doc)?,
        })
    }

    fn merged_cases_of(&self, survivor: &CaseDoc) -> Result<Vec<MergedCase>> {
        let forms = self.forms()?;
        let mut out = Vec::new();
        for case_id in survivor.merged_cases()? {
            let merged = match self.load_doc(&case_id)? {
                Some(mut doc) => MergedCase {
                    referrals: doc.referrals(&forms)?,
                    followups: doc.followups(&forms)?,
                    edits_after_merge: doc.edits_after_merge()?,
                    held: true,
                    case_id,
                },
                None => MergedCase {
                    case_id,
                    held: false,
                    referrals: Vec::new(),
                    followups: Vec::new(),
                    edits_after_merge: Vec::new(),
                },
            };
            out.push(merged);
        }
        Ok(out)
    }

    pub fn history(&self, case_id: &str) -> Result<Vec<HistoryEntry>> {
        let mut doc = self.require_doc(case_id)?;
        let mut history = doc.history()?;
        let own_actor = self.actor()?;
        let own_device = self
            .meta("device_id")?
            .unwrap_or_else(|| self.identity.device.clone());
        let mut stmt = self.conn.prepare_cached(
            "SELECT user_id, device_id, received_at FROM change_origins WHERE hash = ?1",
        )?;
        for entry in &mut history {
            let origin = stmt
                .query_row([&entry.hash], |r| {
                    Ok(crate::case_doc::VerifiedOrigin {
                        user: r.get(0)?,
                        device: r.get(1)?,
                        received_at: chrono::DateTime::from_timestamp(r.get(2)?, 0),
                    })
                })
                .optional()?;
            entry.verified = match origin {
                Some(origin) => Some(origin),
                None => {
                    let hash: Option<automerge::ChangeHash> = entry.hash.parse().ok();
                    let own = hash
                        .and_then(|h| doc.automerge().get_change_by_hash(&h))
                        .is_some_and(|c| *c.actor_id() == own_actor);
                    own.then(|| crate::case_doc::VerifiedOrigin {
                        user: self.identity.user.clone(),
                        device: own_device.clone(),
                        received_at: None,
                    })
                }
            };
        }
        Ok(history)
    }

    /// Lists cases from the projection only: no document is loaded.
    pub fn list_cases(&self, filter: &CaseFilter) -> Result<Vec<CaseRow>> {
        let mut sql = String::from("SELECT * FROM cases WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        if let Some(q) = filter
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
        {
            args.push(like_pattern(&fold(q)));
            sql.push_str(&format!(
                " AND name_folded LIKE ?{} ESCAPE '\\'",
                args.len()
            ));
        }
        if let Some(village) = &filter.village {
            args.push(fold(village.trim()));
            sql.push_str(&format!(" AND village_folded = ?{}", args.len()));
        }
        if let Some(risk) = &filter.risk_level {
            args.push(risk.clone());
            sql.push_str(&format!(" AND risk_level = ?{}", args.len()));
        }
        if let Some(status) = &filter.referral_status {
            args.push(status.clone());
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM referrals r WHERE r.case_id = cases.case_id AND r.status = ?{})",
                args.len()
            ));
        }
        if let Some(day) = filter.overdue_on {
            args.push(day.format("%Y-%m-%d").to_string());
            sql.push_str(&format!(" AND next_followup_due < ?{}", args.len()));
        }
        let limit = filter.limit.unwrap_or(LIST_ROWS_MAX).min(LIST_ROWS_MAX);
        sql.push_str(&format!(" ORDER BY updated_at DESC, case_id LIMIT {limit}"));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), row_to_case)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn referrals_of(&self, case_id: &str) -> Result<Vec<ReferralRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT referral_id, case_id, service_type, provider, urgency, status, created_at,
                created_by, updated_at, previous_referral, next_referral
             FROM referrals WHERE case_id = ?1 ORDER BY created_at, referral_id",
        )?;
        let rows = stmt.query_map([case_id], |r| {
            Ok(ReferralRow {
                referral_id: r.get(0)?,
                case_id: r.get(1)?,
                service_type: r.get(2)?,
                provider: r.get(3)?,
                urgency: r.get(4)?,
                status: r.get(5)?,
                created_at: r.get(6)?,
                created_by: r.get(7)?,
                updated_at: r.get(8)?,
                previous_referral: r.get(9)?,
                next_referral: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn case_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM cases", [], |r| r.get(0))?)
    }

    /// Finds a case by its id or a unique prefix of it (at least 4 characters), as typed by hand.
    pub fn resolve_case_id(&self, prefix: &str) -> Result<String> {
        self.resolve(
            "SELECT case_id FROM case_docs WHERE case_id LIKE ?1 ESCAPE '\\' LIMIT 2",
            prefix,
            "case",
        )
        .map(|ids| ids.0)
    }

    /// Finds a referral (by id or unique prefix) and the case it belongs to.
    pub fn resolve_referral(&self, prefix: &str) -> Result<(String, String)> {
        self.resolve(
            "SELECT referral_id, case_id FROM referrals WHERE referral_id LIKE ?1 ESCAPE '\\' LIMIT 2",
            prefix,
            "referral",
        )
    }

    fn resolve(&self, sql: &str, prefix: &str, kind: &'static str) -> Result<(String, String)> {
        let not_found = || Error::NotFound {
            kind,
            id: prefix.to_string(),
        };
        if prefix.len() < 4 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let pattern = format!("{}%", prefix.to_ascii_lowercase());
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows: Vec<(String, String)> = stmt
            .query_map([pattern], |r| {
                let first: String = r.get(0)?;
                let second: String = r.get(r.as_ref().column_count() - 1)?;
                Ok((first, second))
            })?
            .collect::<rusqlite::Result<_>>()?;
        match rows.len() {
            0 => Err(not_found()),
            1 => Ok(rows.into_iter().next().ok_or_else(not_found)?),
            _ => Err(Error::InvalidInput(format!(
                "{kind} id prefix {prefix} is ambiguous"
            ))),
        }
    }

    /// Every case in full, for reports and backups (`suivi export`).
    pub fn export(&self) -> Result<Json> {
        let mut ids: Vec<String> = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT case_id FROM cases ORDER BY created_at, case_id")?;
            for id in stmt.query_map([], |r| r.get(0))? {
                ids.push(id?);
            }
        }
        let mut cases = Vec::with_capacity(ids.len());
        for id in ids {
            let detail = self.case(&id)?;
            cases.push(serde_json::json!({
                "case_id": id,
                "identification_form": detail.identification_form,
                "identification": detail.identification,
                "referrals": detail.referrals,
                "followups": detail.followups,
            }));
        }
        Ok(serde_json::json!({"format": "suivi-export", "version": 1, "cases": cases}))
    }

    /// Imports cases, all or nothing: either a spreadsheet turned into a JSON array of rows
    /// (one object per child, keys are identification field ids, values may be text), or a
    /// `suivi export`. Every problem in every row is reported with its row number.
    pub fn import(&mut self, data: &Json) -> Result<Vec<String>> {
        let forms = self.forms()?;
        let rows: Vec<ImportRow> = parse_import(data)?;
        let form = forms.latest(IDENTIFICATION)?.clone();
        let referral_form = forms.latest(crate::forms::REFERRAL)?.clone();
        let followup_form = forms.latest(crate::forms::FOLLOWUP)?.clone();
        let mut errors = Vec::new();
        let mut prepared = Vec::new();
        for (i, row) in rows.into_iter().enumerate() {
            let mut row_errors = Vec::new();
            let ident = coerce_record(&form, row.identification, &mut row_errors);
            if let Err(Error::Validation(e)) = form.validate(&ident) {
                row_errors.extend(e);
            }
            let mut referrals = Vec::new();
            for r in row.referrals {
                let r = coerce_record(&referral_form, r, &mut row_errors);
                if let Err(Error::Validation(e)) = referral_form.validate(&r) {
                    row_errors.extend(e);
                }
                referrals.push(r);
            }
            let mut followups = Vec::new();
            for f in row.followups {
                let f = coerce_record(&followup_form, f, &mut row_errors);
                if let Err(Error::Validation(e)) = followup_form.validate(&f) {
                    row_errors.extend(e);
                }
                followups.push(f);
            }
            for mut e in row_errors {
                e.field = format!("row{}.{}", i + 1, e.field);
                errors.push(e);
            }
            prepared.push((ident, referrals, followups));
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        let actor = self.actor()?;
        let ctx = ChangeContext::now(self.identity.user.clone());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut ids = Vec::new();
        for (ident, referrals, followups) in prepared {
            let case_id = uuid::Uuid::new_v4().simple().to_string();
            let mut doc = CaseDoc::create(&case_id, actor.clone(), &form, &ident, &ctx)?;
            for r in &referrals {
                doc.add_referral(&forms, r, &ctx)?;
            }
            for f in &followups {
                doc.add_followup(&forms, f, &ctx)?;
            }
            Store::save_doc(&tx, &forms, &case_id, &mut doc, true)?;
            ids.push(case_id);
        }
        tx.commit()?;
        Ok(ids)
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
            .take(crate::sync::protocol::APP_VERSION_CHARS_MAX)
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

struct ImportRow {
    identification: serde_json::Map<String, Json>,
    referrals: Vec<serde_json::Map<String, Json>>,
    followups: Vec<serde_json::Map<String, Json>>,
}

fn parse_import(data: &Json) -> Result<Vec<ImportRow>> {
    let bad = |what: &str| Error::InvalidInput(format!("import: {what}"));
    let as_object = |v: &Json| {
        v.as_object()
            .cloned()
            .ok_or_else(|| bad("expected an object"))
    };
    let list = |v: Option<&Json>| -> Result<Vec<serde_json::Map<String, Json>>> {
        match v {
            None | Some(Json::Null) => Ok(Vec::new()),
            Some(Json::Array(items)) => items
                .iter()
                .map(|item| {
                    // An export carries each record's fields beside its metadata.
                    let fields = item.get("fields").unwrap_or(item);
                    as_object(fields)
                })
                .collect(),
            Some(_) => Err(bad("expected a list")),
        }
    };
    match data {
        Json::Array(rows) => rows
            .iter()
            .map(|row| {
                Ok(ImportRow {
                    identification: as_object(row)?,
                    referrals: Vec::new(),
                    followups: Vec::new(),
                })
            })
            .collect(),
        Json::Object(obj) => obj
            .get("cases")
            .and_then(Json::as_array)
            .ok_or_else(|| bad("expected an array of rows or an export with \"cases\""))?
            .iter()
            .map(|case| {
                Ok(ImportRow {
                    identification: as_object(
                        case.get("identification")
                            .ok_or_else(|| bad("case without identification"))?,
                    )?,
                    referrals: list(case.get("referrals"))?,
                    followups: list(case.get("followups"))?,
                })
            })
            .collect(),
        _ => Err(bad("expected JSON array or object")),
    }
}

/// Spreadsheet cells arrive as text: convert them by field type; empty cells are absent.
fn coerce_record(
    form: &crate::forms::FormDefinition,
    raw: serde_json::Map<String, Json>,
    errors: &mut Vec<crate::error::FieldError>,
) -> Record {
    let mut record = Record::new();
    for (key, value) in raw {
        let value = match value {
            Json::String(s) if form.field(&key).is_some() => match form.parse_input(&key, &s) {
                Ok(v) => v,
                Err(Error::Validation(e)) => {
                    errors.extend(e);
                    continue;
                }
                Err(_) => continue,
            },
            other => other,
        };
        if !value.is_null() {
            record.insert(key, value);
        }
    }
    record
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
            projection::write(&tx, &projection::project(&mut doc, &forms).unwrap()).unwrap();
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
