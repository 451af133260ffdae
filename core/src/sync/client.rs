//! The sync client: push local changes and pull a page of the caseload in one round trip,
//! commit each page as it arrives, and repeat until nothing is left. Being offline is normal: a
//! failed sync has committed whole pages only, and the next one continues from there.

use std::collections::HashSet;

use automerge::ChangeHash;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::protocol::{
    self, EnrollRequest, EnrollResponse, ErrorBody, ForgeryReport, PulledCase, Refusal,
    RefusalReason, SyncResponse,
};
use super::transport::{Credentials, HttpReply, Transport};
use crate::case_doc::CaseDoc;
use crate::error::{Error, Result};
use crate::store::{Store, SyncState};

/// Raw change bytes gathered into one push before the rest waits for the next round trip.
pub const PUSH_RAW_BYTES_MAX: usize = 2 * 1024 * 1024;
const META_SERVER: &str = "server";
const META_DEVICE_ID: &str = "device_id";
pub(super) const META_TOKEN: &str = "device_token";
const META_CURSOR: &str = "cursor";
/// The last erasure this device applied (the server's erasure sequence).
pub(super) const META_ERASURES: &str = "erasures_cursor";
/// The last removal (a case reassigned away from this user) applied.
pub(super) const META_REMOVALS: &str = "removals_cursor";
/// The server's feed mark at the cursor: proves at the next sync that the server still holds
/// the same history up to there.
pub(super) const META_MARK: &str = "feed_mark";
pub(super) const META_LAST_SYNC: &str = "last_sync";
const META_SERVER_CA: &str = "server_ca";

/// `case_sync.dirty`: 0 the server has everything; 1 local changes wait; 2 the server refused them.

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SyncReport {
    pub cases_up: usize,
    pub cases_down: usize,
    pub changes_up: usize,
    pub changes_down: usize,
    /// Request and response bodies, compressed, as sent.
    pub bytes_up: usize,
    pub bytes_down: usize,
    pub round_trips: usize,
    pub pages: usize,
    /// Cases that hold a conflict (concurrent values of one field) after this sync.
    pub conflicts: usize,
    pub refused: Vec<Refusal>,
    /// Pulled cases set aside because they failed to apply, load or project; the rest of the
    /// page went on.
    pub quarantined: Vec<QuarantinedCase>,
    /// Cases synced with the per-document fallback.
    pub fallbacks: usize,
    /// The server had lost data (restored from a backup) and this device pushed its cases again.
    pub server_reset: bool,
    /// Cases erased on the server (consent withdrawn) and deleted here, history included.
    pub erased: usize,
    /// Cases removed from this phone: reassigned to another agent, or refused by the server as
    /// never granted to this user while holding nothing this phone wrote.
    pub removed: usize,
    /// Form versions received from the server (new versions and retirements), kept here.
    pub forms_received: usize,
    /// Positions the store held that did not read, restarted from the beginning (see
    /// `Store::positions`): "feed cursor", "erasures cursor", "removals cursor".
    pub restarted: Vec<String>,
    /// Changes the server holds under this phone's name that it never wrote, found at this
    /// sync (each reported to the server, which sets its case aside).
    pub forgeries: usize,
    /// Form versions the server sent that this device refused, each with why: their records
    /// wait in quarantine until a good definition comes.
    pub forms_refused: Vec<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QuarantinedCase {
    pub case_id: String,
    pub reason: String,
}

/// Checks a form version the server sent and keeps it: a definition that does not parse or
/// check, or that differs from the version this device holds under the same number (a
/// published version never changes), is refused with why, and nothing of it is kept.
fn accept_form(
    tx: &rusqlite::Transaction<'_>,
    forms: &mut crate::forms::FormRegistry,
    update: &protocol::FormUpdate,
) -> Result<std::result::Result<(), String>> {
    let form = match crate::forms::FormDefinition::from_json(&update.definition) {
        Ok(form) => form,
        Err(e) => return Ok(Err(format!("a form the server sent does not check: {e}"))),
    };
    if !crate::forms::FORM_IDS.contains(&form.id.as_str()) {
        return Ok(Err(format!(
            "{} v{}: no record of a case uses a form of that id",
            form.id, form.version
        )));
    }
    if let Some(change) = forms.kind_change(&form) {
        return Ok(Err(format!(
            "{} v{}: field {} was {} in version {} and is {} here: a field keeps its kind",
            form.id, form.version, change.field, change.was, change.in_version, change.now
        )));
    }
    if let Ok(held) = forms.get(&form.id, form.version) {
        if held != &form {
            return Ok(Err(format!(
                "{} v{} differs from the version this device holds: a published version never changes",
                form.id, form.version
            )));
        }
    }
    // A full disk stops the page like any other write.
    tx.execute(
        "INSERT INTO forms (form_id, version, definition, retired) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(form_id, version) DO UPDATE SET retired = max(retired, excluded.retired)",
        params![form.id, form.version, form.canonical_json(), update.retired],
    )?;
    if update.retired {
        forms.retire(&form.id, form.version);
    }
    forms.add(form);
    Ok(Ok(()))
}

/// A case whose own changes the server refused: still readable here, its later edits kept.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RefusedCase {
    pub case_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncProgress {
    pub round_trips: usize,
    pub cases_down: usize,
    pub bytes_down: usize,
    pub more: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Enrollment {
    pub server: String,
    pub device_id: String,
    pub user: String,
    pub role: String,
}

pub(super) struct Pushed {
    pub(super) case_id: String,
    pub(super) changes: Vec<Vec<u8>>,
    hashes: Vec<ChangeHash>,
    heads: Vec<ChangeHash>,
    /// The case's local save count when it was gathered (`case_sync.edits`).
    edits: i64,
}

fn json_reply<T: for<'de> serde::Deserialize<'de>>(reply: &HttpReply) -> Result<T> {
    serde_json::from_slice(&reply.body).map_err(|e| Error::Protocol(format!("bad reply: {e}")))
}

impl Store {
    /// Enrolls this device with a one-time code from an admin. The credential is kept in the
    /// encrypted store; the store's user must be the user the code was issued for.
    pub fn enroll(
        &mut self,
        transport: &dyn Transport,
        server: &str,
        code: &str,
    ) -> Result<Enrollment> {
        let body = self.enrollment_request(code)?;
        let reply = transport.post("/v1/enroll", "application/json", body, None)?;
        self.finish_enrollment(server, &reply)
    }

    /// The body of `POST /v1/enroll` for this device. Split from `finish_enrollment` so an app
    /// holds the store only before and after the request, never during it.
    pub fn enrollment_request(&self, code: &str) -> Result<Vec<u8>> {
        let request = EnrollRequest {
            code: code.trim().to_string(),
            user: self.identity().user.clone(),
            actor: self.identity().actor.clone(),
            device_name: self.identity().device.clone(),
        };
        serde_json::to_vec(&request).map_err(|e| Error::Protocol(e.to_string()))
    }

    /// Keeps the credential the server's reply to `enrollment_request` carries.
    pub fn finish_enrollment(&mut self, server: &str, reply: &HttpReply) -> Result<Enrollment> {
        if reply.status != 200 {
            return Err(status_error(reply));
        }
        let enrolled: EnrollResponse = json_reply(reply)?;
        if enrolled.user != self.identity().user {
            return Err(Error::InvalidInput(format!(
                "this store belongs to {} but the code was issued for {}",
                self.identity().user,
                enrolled.user
            )));
        }
        let tx = self.connection_ref().unchecked_transaction()?;
        for (k, v) in [
            (META_SERVER, server),
            (META_DEVICE_ID, enrolled.device_id.as_str()),
            (META_TOKEN, enrolled.token.as_str()),
            (crate::store::META_ROLE, enrolled.role.as_str()),
        ] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [k, v],
            )?;
        }
        tx.commit()?;
        Ok(Enrollment {
            server: server.to_string(),
            device_id: enrolled.device_id,
            user: enrolled.user,
            role: enrolled.role,
        })
    }

    /// Creates a store at `path` for `user` and enrolls it, trusting `ca_pem` (a project's own
    /// certificate authority) for the enrollment request itself and every sync after it. If
    /// anything fails the new files are removed, so the app can simply try again; an existing
    /// store is never touched (`AlreadyInitialised`: reset it explicitly first).
    pub fn create_enrolled(
        path: &std::path::Path,
        key: &str,
        user: &str,
        device: &str,
        server: &str,
        code: &str,
        ca_pem: Option<&str>,
    ) -> Result<(Store, Enrollment)> {
        if path.exists() {
            return Err(Error::AlreadyInitialised);
        }
        let transport =
            crate::sync::HttpTransport::with_root_certificate(server, ca_pem.map(str::as_bytes))?;
        let attempt = Store::create(path, key, user, device).and_then(|mut store| {
            if let Some(pem) = ca_pem {
                store.set_server_ca(pem)?;
            }
            let enrolled = store.enroll(&transport, server, code)?;
            Ok((store, enrolled))
        });
        if attempt.is_err() {
            Store::remove_files(path)?;
        }
        attempt
    }

    /// This device's enrollment, if it has a credential (`None` before enrolling or once a
    /// revocation's wipe was confirmed).
    pub fn enrollment(&self) -> Result<Option<Enrollment>> {
        let (Some(server), Some(device_id), Some(_)) = (
            self.meta(META_SERVER)?,
            self.meta(META_DEVICE_ID)?,
            self.meta(META_TOKEN)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(Enrollment {
            server,
            device_id,
            user: self.identity().user.clone(),
            role: self.meta(crate::store::META_ROLE)?.unwrap_or_default(),
        }))
    }

    pub fn server_url(&self) -> Result<String> {
        self.meta(META_SERVER)?.ok_or(Error::NotEnrolled)
    }

    /// Trusts a project's own certificate authority (PEM) for this device's server; kept in
    /// the encrypted store.
    pub fn set_server_ca(&self, pem: &str) -> Result<()> {
        crate::sync::HttpTransport::with_root_certificate("https://check", Some(pem.as_bytes()))?;
        self.set_meta(META_SERVER_CA, pem)
    }

    /// The transport to this device's server, trusting its CA if one was set.
    pub fn transport(&self) -> Result<crate::sync::HttpTransport> {
        let ca = self.meta(META_SERVER_CA)?;
        crate::sync::HttpTransport::with_root_certificate(
            &self.server_url()?,
            ca.as_deref().map(str::as_bytes),
        )
    }

    pub fn credentials(&self) -> Result<Credentials> {
        match (self.meta(META_DEVICE_ID)?, self.meta(META_TOKEN)?) {
            (Some(device_id), Some(token)) => Ok(Credentials { device_id, token }),
            _ => Err(Error::NotEnrolled),
        }
    }

    /// The feed position this phone has committed (0 before its first page). A stored value
    /// that is not a number is an error here; a sync restarts it (`positions`).
    pub fn cursor(&self) -> Result<u64> {
        match self.meta(META_CURSOR)? {
            None => Ok(0),
            Some(text) => text
                .parse()
                .map_err(|_| Error::Storage(format!("the feed cursor {text:?} is not a number"))),
        }
    }

    /// Where this phone stands with the server, for a sync request. A value that does not read
    /// (a damaged row, a hand edit) is never taken for 0 silently: the feed cursor and its mark
    /// restart together from the beginning (a full re-pull: every change is applied again, and
    /// applying one twice changes nothing), an erasures or removals cursor restarts at 0 (each
    /// listed again, applied again, harmlessly). The restart is written before the request is
    /// built, so the next sync does not meet it again, and reported in `restarted`.
    pub(super) fn positions(&self, restarted: &mut Vec<String>) -> Result<Positions> {
        let cursor = self.meta(META_CURSOR)?;
        let mark = self.meta(META_MARK)?;
        let feed = match (
            cursor.as_deref().map(str::parse::<u64>),
            mark.as_deref().map(hex::decode),
        ) {
            (None, _) => (0, Vec::new()),
            (Some(Ok(cursor)), Some(Ok(mark))) => (cursor, mark),
            // A cursor from before marks existed: the server trusts it as far as its feed goes.
            (Some(Ok(cursor)), None) => (cursor, Vec::new()),
            _ => {
                self.set_meta(META_CURSOR, "0")?;
                self.set_meta(META_MARK, "")?;
                restarted.push("feed cursor".into());
                (0, Vec::new())
            }
        };
        let mut counter = |key: &str, name: &str| -> Result<u64> {
            match self.meta(key)?.map(|t| t.parse::<u64>()) {
                None => Ok(0),
                Some(Ok(n)) => Ok(n),
                Some(Err(_)) => {
                    self.set_meta(key, "0")?;
                    restarted.push(name.into());
                    Ok(0)
                }
            }
        };
        Ok(Positions {
            cursor: feed.0,
            mark: feed.1,
            erasures_seen: counter(META_ERASURES, "erasures cursor")?,
            removals_seen: counter(META_REMOVALS, "removals cursor")?,
        })
    }

    pub fn last_sync(&self) -> Result<Option<String>> {
        self.meta(META_LAST_SYNC)
    }

    pub(super) fn has_pending(&self, skip: &[String]) -> Result<bool> {
        let mut stmt = self
            .connection_ref()
            .prepare_cached("SELECT case_id FROM case_sync WHERE dirty = ?1")?;
        let mut rows = stmt.query([SyncState::Pending])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            if !skip.contains(&id) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Gathers the changes of pending cases, one document in memory at a time, up to the limits.
    pub(super) fn collect_push(&self, skip: &[String]) -> Result<Vec<Pushed>> {
        let ids: Vec<(String, i64)> = {
            let mut stmt = self.connection_ref().prepare_cached(
                "SELECT case_id, edits FROM case_sync WHERE dirty = ?1 ORDER BY case_id",
            )?;
            let rows = stmt.query_map([SyncState::Pending], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut pushed = Vec::new();
        let mut bytes = 0usize;
        for (case_id, edits) in ids.into_iter().filter(|(id, _)| !skip.contains(id)) {
            if pushed.len() >= protocol::PUSH_CASES_MAX || bytes >= PUSH_RAW_BYTES_MAX {
                break;
            }
            let Some(mut doc) = self.load_doc(&case_id)? else {
                continue;
            };
            let have = self.synced_heads(&case_id)?;
            let mut changes = doc.automerge().get_changes(&have);
            changes.truncate(protocol::PUSH_CHANGES_PER_CASE_MAX);
            let hashes: Vec<ChangeHash> = changes.iter().map(|c| c.hash()).collect();
            let raw: Vec<Vec<u8>> = changes.iter().map(|c| c.raw_bytes().to_vec()).collect();
            bytes += raw.iter().map(Vec::len).sum::<usize>();
            pushed.push(Pushed {
                heads: doc.heads(),
                case_id,
                changes: raw,
                hashes,
                edits,
            });
        }
        Ok(pushed)
    }

    /// Commits one round trip in one transaction: what the server accepted, refused, and the
    /// page of changes it sent, with the new cursor. A pulled case that fails to apply, load or
    /// project is set aside in quarantine; the others and the cursor go on.
    pub(super) fn commit_page(
        &mut self,
        pushed: &[Pushed],
        response: &SyncResponse,
        report: &mut SyncReport,
        fallback: &mut Vec<String>,
        later: &mut Vec<String>,
        conflicted: &mut HashSet<String>,
    ) -> Result<()> {
        let mut forms = self.forms()?;
        let tx = self.connection_ref().unchecked_transaction()?;
        // Forms first: the pulled cases below may use a version that arrives with them.
        let forms_before = report.forms_received;
        let mut refused_here = false;
        for update in &response.forms {
            match accept_form(&tx, std::sync::Arc::make_mut(&mut forms), update)? {
                Ok(()) => report.forms_received += 1,
                Err(why) => {
                    report.forms_refused.push(why);
                    refused_here = true;
                }
            }
        }
        if response.version >= 5 {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![crate::store::META_FORMS, response.forms_cursor.to_string()],
            )?;
            // A refused form is remembered with this app's version: an updated app asks for the
            // whole feed again, and a page it refuses nothing in clears the older version's note.
            if refused_here {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![crate::store::META_FORMS_REFUSED_BY, self.app_version()?],
                )?;
            } else {
                tx.execute(
                    "DELETE FROM meta WHERE key = ?1 AND value != ?2",
                    params![crate::store::META_FORMS_REFUSED_BY, self.app_version()?],
                )?;
            }
        }
        for p in pushed {
            if response.accepted.contains(&p.case_id) {
                let heads = if p.changes.len() < protocol::PUSH_CHANGES_PER_CASE_MAX {
                    p.heads.clone()
                } else {
                    let mut have = self.synced_heads(&p.case_id)?;
                    have.extend(p.hashes.iter().copied());
                    have
                };
                let dirty = if p.changes.len() < protocol::PUSH_CHANGES_PER_CASE_MAX {
                    SyncState::Clean
                } else {
                    SyncState::Pending
                };
                // A save while the request was on the network leaves the case pending.
                tx.execute(
                    "UPDATE case_sync SET synced_heads = ?2,
                        dirty = CASE WHEN edits = ?4 THEN ?3 ELSE ?5 END, refusal = NULL
                     WHERE case_id = ?1",
                    params![
                        p.case_id,
                        Store::format_heads(&heads),
                        dirty,
                        p.edits,
                        SyncState::Pending
                    ],
                )?;
                report.cases_up += 1;
                report.changes_up += p.changes.len();
            }
        }
        for refusal in &response.refused {
            if refusal.reason == RefusalReason::MissingDeps {
                if !fallback.contains(&refusal.case_id) {
                    fallback.push(refusal.case_id.clone());
                }
            } else if refusal.reason == RefusalReason::Erased {
                // Erased while this device held it: deleted here too, never pushed again.
                if erase_locally(&tx, &refusal.case_id)? {
                    report.erased += 1;
                }
                report.refused.push(refusal.clone());
            } else if refusal.reason.is_retryable()
                || (report.server_reset && refusal.reason == RefusalReason::WrongActor)
            {
                // After a restore, a case may hold another device's change the server lost:
                // this device cannot push it for them. Kept pending, reported, and tried again
                // at the next sync, by when that device may have pushed it back itself.
                tx.execute(
                    "UPDATE case_sync SET refusal = ?2 WHERE case_id = ?1",
                    params![refusal.case_id, refusal_text(refusal)],
                )?;
                if !later.contains(&refusal.case_id) {
                    later.push(refusal.case_id.clone());
                }
                report.refused.push(refusal.clone());
            } else if refusal.reason == RefusalReason::Forbidden
                && refusal.detail.is_empty()
                && !self.holds_own_changes(&refusal.case_id)?
            {
                // The server holds this case and never granted it to this user (planted by a
                // hostile server, or reassigned away and never edited here): nothing of this
                // phone's is in it, so it leaves the phone. Reported as refused too.
                self.remember_own_changes(&tx, &refusal.case_id)?;
                if erase_locally(&tx, &refusal.case_id)? {
                    report.removed += 1;
                }
                report.refused.push(refusal.clone());
            } else {
                // Set aside and reported, never deleted: it may hold this phone's offline work
                // (a case reassigned away after its grace, say).
                tx.execute(
                    "UPDATE case_sync SET dirty = ?2, refusal = ?3 WHERE case_id = ?1",
                    params![refusal.case_id, SyncState::Refused, refusal_text(refusal)],
                )?;
                report.refused.push(refusal.clone());
            }
        }
        if response.reset {
            // The server's feed does not hold the history this device read: it was replaced or
            // restored from a backup. Push everything again; the server keeps what it lacks,
            // and what it refuses is reported.
            tx.execute(
                "UPDATE case_sync SET dirty = ?1, synced_heads = '' WHERE dirty != ?2",
                params![SyncState::Pending, SyncState::Refused],
            )?;
            report.server_reset = true;
        }
        for case in &response.pull {
            report.changes_down += case.changes.len();
            tx.execute_batch("SAVEPOINT pulled_case")?;
            match self.commit_pulled_case(&tx, &forms, &response.authors, case) {
                Ok(Pulled::Saved { conflicts }) => {
                    tx.execute_batch("RELEASE pulled_case")?;
                    if conflicts {
                        conflicted.insert(case.case_id.clone());
                    } else {
                        conflicted.remove(&case.case_id);
                    }
                    report.cases_down += 1;
                }
                Ok(Pulled::Waiting) => tx.execute_batch("RELEASE pulled_case")?,
                Ok(Pulled::Forged(hashes)) => {
                    tx.execute_batch("ROLLBACK TO pulled_case; RELEASE pulled_case")?;
                    for hash in &hashes {
                        report.forgeries += record_forgery(&tx, &case.case_id, hash)?;
                    }
                    let reason = FORGED_REASON.to_string();
                    let pulled: Vec<&[u8]> =
                        case.changes.iter().map(|c| c.data.as_slice()).collect();
                    self.quarantine(&tx, &case.case_id, &pulled, &reason)?;
                    report.quarantined.push(QuarantinedCase {
                        case_id: case.case_id.clone(),
                        reason,
                    });
                }
                // A full disk or a broken database stops the page: nothing of it is committed.
                Err(e @ (Error::StorageFull | Error::Storage(_) | Error::WrongKeyOrCorrupt)) => {
                    return Err(e)
                }
                Err(e) => {
                    tx.execute_batch("ROLLBACK TO pulled_case; RELEASE pulled_case")?;
                    let reason = e.to_string();
                    let pulled: Vec<&[u8]> =
                        case.changes.iter().map(|c| c.data.as_slice()).collect();
                    self.quarantine(&tx, &case.case_id, &pulled, &reason)?;
                    report.quarantined.push(QuarantinedCase {
                        case_id: case.case_id.clone(),
                        reason,
                    });
                }
            }
        }
        // The feed's changes under this phone's name, listed back (version 6 on): one missing
        // from a case this phone holds was never written here (every change it writes is saved
        // in its case first). A case it does not hold (never had, or removed) tells nothing.
        let mut by_case: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for own in &response.own {
            by_case.entry(&own.case_id).or_default().push(&own.hash);
        }
        for (case_id, hashes) in by_case {
            for hash in self.forged_among(case_id, &hashes)? {
                report.forgeries += record_forgery(&tx, case_id, &hash)?;
            }
        }
        // After the pulls: nothing of an erased case is left behind by this page.
        for case_id in &response.erased {
            if erase_locally(&tx, case_id)? {
                report.erased += 1;
            }
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![META_ERASURES, response.erasures_cursor.to_string()],
        )?;
        // Cases reassigned away from this user leave the phone, with what was only theirs to
        // read, once the server holds everything recorded here: a case still holding changes
        // it has not accepted stays (and is pushed again) rather than lose them.
        for case_id in &response.removed {
            let dirty: Option<SyncState> = tx
                .query_row(
                    "SELECT dirty FROM case_sync WHERE case_id = ?1",
                    [case_id],
                    |r| r.get(0),
                )
                .optional()?;
            if dirty.unwrap_or(SyncState::Clean) == SyncState::Clean {
                self.remember_own_changes(&tx, case_id)?;
                if erase_locally(&tx, case_id)? {
                    report.removed += 1;
                }
            }
        }
        if response.version >= 4 {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![META_REMOVALS, response.removals_cursor.to_string()],
            )?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![META_CURSOR, response.cursor.to_string()],
        )?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![META_MARK, hex::encode(&response.mark)],
        )?;
        tx.commit()?;
        report.pages += 1;
        if report.forms_received > forms_before {
            // A case set aside for a form version this device lacked may read now.
            self.retry_quarantined()?;
        }
        if !response.erased.is_empty()
            || response
                .refused
                .iter()
                .any(|r| r.reason == RefusalReason::Erased)
        {
            // Old page images stay in the write-ahead log until a checkpoint.
            self.connection_ref()
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(())
    }

    /// Applies one pulled case with the changes still waiting for it, checks the result and
    /// saves it; records who the server says wrote each change.
    fn commit_pulled_case(
        &self,
        tx: &rusqlite::Transaction<'_>,
        forms: &crate::forms::FormRegistry,
        authors: &[protocol::Author],
        case: &PulledCase,
    ) -> Result<Pulled> {
        let mut raw: Vec<Vec<u8>> = {
            let mut stmt = tx.prepare_cached(
                "SELECT data FROM pending_changes WHERE case_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([&case.case_id], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for c in &case.changes {
            let change = crate::case_doc::check::parse_change(&c.data)
                .map_err(|e| Error::Protocol(e.to_string()))?;
            let author = authors
                .get(c.author as usize)
                .ok_or_else(|| Error::Protocol("pulled change without an author".into()))?;
            tx.execute(
                "INSERT OR REPLACE INTO change_origins (hash, case_id, user_id, device_id, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    change.hash().to_string(),
                    case.case_id,
                    author.user,
                    author.device,
                    c.received_at
                ],
            )?;
            raw.push(c.data.to_vec());
        }
        let mut held = self.load_doc(&case.case_id)?;
        // A change under this phone's actor that the case it holds lacks: never written here.
        if let Some(doc) = held.as_mut() {
            let mine = self.actor_id()?;
            let forged: Vec<String> = raw
                .iter()
                .filter_map(|r| crate::case_doc::check::parse_change(r).ok())
                .filter(|c| *c.actor_id() == mine)
                .filter(|c| doc.automerge().get_change_meta_by_hash(&c.hash()).is_none())
                .map(|c| c.hash().to_string())
                .collect();
            if !forged.is_empty() {
                return Ok(Pulled::Forged(forged));
            }
        }
        let mut doc = match held {
            Some(doc) => doc,
            None => CaseDoc::empty(self.actor_id()?),
        };
        // A server is untrusted too: a case past the server's own operation cap would cost this
        // phone's memory, so it is set aside (quarantined) before Automerge builds it.
        // From the changes' metadata (operation counters): nothing is re-encoded.
        let held: u64 = doc
            .automerge()
            .get_changes_meta(&[])
            .iter()
            .map(|c| (c.max_op + 1).saturating_sub(c.start_op))
            .sum();
        let adding: u64 = raw
            .iter()
            .filter_map(|r| crate::case_doc::check::parse_change(r).ok())
            .map(|c| c.len() as u64)
            .sum();
        if held.saturating_add(adding) > crate::case_doc::check::CASE_OPS_MAX as u64 {
            return Err(Error::Document(format!(
                "more than {} operations in the case",
                crate::case_doc::check::CASE_OPS_MAX
            )));
        }
        doc.apply_changes(&raw)?;
        if !doc.missing_deps().is_empty()
            || doc.case_id().ok().as_deref() != Some(case.case_id.as_str())
        {
            // Their history has not arrived yet: keep them until it does, so the cursor can
            // move on and nothing is lost.
            for c in &case.changes {
                keep_pending(tx, &case.case_id, c.data.as_slice())?;
            }
            return Ok(Pulled::Waiting);
        }
        crate::case_doc::check::check_document(doc.automerge(), &case.case_id, forms)
            .map_err(|e| Error::Document(e.to_string()))?;
        tx.execute(
            "DELETE FROM pending_changes WHERE case_id = ?1",
            [&case.case_id],
        )?;
        tx.execute("DELETE FROM quarantine WHERE case_id = ?1", [&case.case_id])?;
        Store::save_doc(tx, forms, &case.case_id, &mut doc, false)?;
        let dirty: SyncState = tx.query_row(
            "SELECT dirty FROM case_sync WHERE case_id = ?1",
            [&case.case_id],
            |r| r.get(0),
        )?;
        let synced = if dirty == SyncState::Clean {
            doc.heads()
        } else {
            let mut have = self.synced_heads(&case.case_id)?;
            for c in &raw {
                if let Ok(change) = crate::case_doc::check::parse_change(c) {
                    have.push(change.hash());
                }
            }
            have
        };
        tx.execute(
            "UPDATE case_sync SET synced_heads = ?2 WHERE case_id = ?1",
            params![case.case_id, Store::format_heads(&synced)],
        )?;
        Ok(Pulled::Saved {
            conflicts: !doc.conflicts(forms)?.is_empty(),
        })
    }

    /// Which of `hashes`, listed back as this phone's in one case, were never written here.
    /// The case this phone holds tells (every change it writes is saved there first); a case
    /// that left it tells by the own changes kept when it left; a case it never held, or that
    /// left before they were kept, tells nothing.
    fn forged_among(&self, case_id: &str, hashes: &[&str]) -> Result<Vec<String>> {
        let parsed = hashes
            .iter()
            .map(|h| {
                h.parse::<automerge::ChangeHash>()
                    .map_err(|_| Error::Protocol(format!("{h:?} is not a change hash")))
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(mut doc) = self.load_doc(case_id)? {
            return Ok(parsed
                .into_iter()
                .filter(|h| doc.automerge().get_change_meta_by_hash(h).is_none())
                .map(|h| h.to_string())
                .collect());
        }
        let left: bool = self.connection_ref().query_row(
            "SELECT EXISTS (SELECT 1 FROM removed_cases WHERE case_id = ?1)",
            [case_id],
            |r| r.get(0),
        )?;
        if !left {
            return Ok(Vec::new());
        }
        let mut written = self.connection_ref().prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM removed_own_changes WHERE hash = ?1 AND case_id = ?2)",
        )?;
        let mut forged = Vec::new();
        for h in parsed {
            let hash = h.to_string();
            if !written.query_row(params![hash, case_id], |r| r.get::<_, bool>(0))? {
                forged.push(hash);
            }
        }
        Ok(forged)
    }

    /// Before a case leaves this phone, the changes it wrote there are kept (their hashes): the
    /// feed may list them back, and the phone must still tell its own from a forged one.
    fn remember_own_changes(&self, tx: &rusqlite::Transaction<'_>, case_id: &str) -> Result<()> {
        let Some(mut doc) = self.load_doc(case_id)? else {
            return Ok(());
        };
        let mine = self.actor_id()?;
        tx.execute(
            "INSERT OR IGNORE INTO removed_cases (case_id) VALUES (?1)",
            [case_id],
        )?;
        for change in doc.automerge().get_changes_meta(&[]) {
            if *change.actor == mine {
                tx.execute(
                    "INSERT OR IGNORE INTO removed_own_changes (hash, case_id) VALUES (?1, ?2)",
                    params![change.hash.to_string(), case_id],
                )?;
            }
        }
        Ok(())
    }

    /// Forgeries found and not yet reported, oldest first, at most `limit`.
    pub(super) fn unreported_forgeries(&self, limit: usize) -> Result<Vec<ForgeryReport>> {
        let mut stmt = self.connection_ref().prepare_cached(
            "SELECT case_id, hash FROM forgeries WHERE reported = 0 ORDER BY found_at, hash LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(ForgeryReport {
                case_id: r.get(0)?,
                hash: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks forgeries as reported: a server of version 6 or later answered the request that
    /// carried them.
    pub(super) fn forgeries_reported(&self, sent: &[ForgeryReport]) -> Result<()> {
        for report in sent {
            self.connection_ref().execute(
                "UPDATE forgeries SET reported = 1 WHERE hash = ?1",
                [&report.hash],
            )?;
        }
        Ok(())
    }

    /// Every change under this phone's name that it never wrote, found so far: (case, hash,
    /// reported to the server).
    pub fn forgeries(&self) -> Result<Vec<(String, String, bool)>> {
        let mut stmt = self.connection_ref().prepare_cached(
            "SELECT case_id, hash, reported FROM forgeries ORDER BY found_at, hash",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether a case this phone holds carries a change this phone wrote (under its actor).
    fn holds_own_changes(&self, case_id: &str) -> Result<bool> {
        let Some(mut doc) = self.load_doc(case_id)? else {
            return Ok(false);
        };
        let mine = self.actor_id()?;
        Ok(doc
            .automerge()
            .get_changes_meta(&[])
            .iter()
            .any(|c| *c.actor == mine))
    }

    /// Tries the cases set aside again, with what this build knows: a case an older version of
    /// the app quarantined (a document key added since, such as a merge link) is taken in after
    /// the update, from the changes kept with it; one that still fails stays aside. Run at the
    /// start of each sync. Returns how many were taken in.
    pub fn retry_quarantined(&mut self) -> Result<usize> {
        let ids: Vec<String> = {
            let mut stmt = self
                .connection_ref()
                .prepare_cached("SELECT case_id FROM quarantine ORDER BY case_id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if ids.is_empty() {
            return Ok(0);
        }
        let forms = self.forms()?;
        let tx = self.connection_ref().unchecked_transaction()?;
        let mut taken = 0;
        for case_id in ids {
            tx.execute_batch("SAVEPOINT retried_case")?;
            let kept = PulledCase {
                case_id,
                changes: Vec::new(),
            };
            match self.commit_pulled_case(&tx, &forms, &[], &kept) {
                Ok(Pulled::Saved { .. }) => {
                    tx.execute_batch("RELEASE retried_case")?;
                    taken += 1;
                }
                Ok(Pulled::Waiting) => tx.execute_batch("RELEASE retried_case")?,
                Ok(Pulled::Forged(_)) => {
                    tx.execute_batch("ROLLBACK TO retried_case; RELEASE retried_case")?
                }
                Err(e @ (Error::StorageFull | Error::Storage(_) | Error::WrongKeyOrCorrupt)) => {
                    return Err(e)
                }
                Err(_) => tx.execute_batch("ROLLBACK TO retried_case; RELEASE retried_case")?,
            }
        }
        tx.commit()?;
        Ok(taken)
    }

    /// Sets a pulled case aside: its changes wait with it (retried with its next pulled
    /// changes), its last good state stays readable.
    fn quarantine(
        &self,
        tx: &rusqlite::Transaction<'_>,
        case_id: &str,
        pulled: &[&[u8]],
        reason: &str,
    ) -> Result<()> {
        for data in pulled {
            keep_pending(tx, case_id, data)?;
        }
        tx.execute(
            "INSERT INTO quarantine (case_id, reason, at) VALUES (?1, ?2, ?3)
             ON CONFLICT(case_id) DO UPDATE SET reason = excluded.reason, at = excluded.at",
            params![case_id, reason, chrono::Utc::now().to_rfc3339()],
        )?;
        Ok(())
    }

    /// Pulled cases set aside, with why.
    pub fn quarantined_cases(&self) -> Result<Vec<QuarantinedCase>> {
        let mut stmt = self
            .connection_ref()
            .prepare_cached("SELECT case_id, reason FROM quarantine ORDER BY case_id")?;
        let rows = stmt.query_map([], |r| {
            Ok(QuarantinedCase {
                case_id: r.get(0)?,
                reason: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Cases whose own changes the server refused, with its reason.
    pub fn refused_cases(&self) -> Result<Vec<RefusedCase>> {
        let mut stmt = self.connection_ref().prepare_cached(
            "SELECT case_id, coalesce(refusal, 'refused') FROM case_sync WHERE dirty = ?1 OR refusal IS NOT NULL ORDER BY case_id",
        )?;
        let rows = stmt.query_map([SyncState::Refused], |r| {
            Ok(RefusedCase {
                case_id: r.get(0)?,
                reason: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Erases every case, its documents, projections and sync state; keeps the empty store.
    pub fn wipe_case_data(&mut self) -> Result<()> {
        let tx = self.connection_ref().unchecked_transaction()?;
        tx.execute("DELETE FROM case_docs", [])?;
        tx.execute("DELETE FROM pending_changes", [])?;
        tx.execute("DELETE FROM change_origins", [])?;
        tx.execute("DELETE FROM quarantine", [])?;
        tx.execute(
            "DELETE FROM meta WHERE key IN (?1, ?2)",
            params![META_CURSOR, META_MARK],
        )?;
        tx.commit()?;
        let conn = self.connection_ref();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        conn.execute_batch("VACUUM")?;
        Ok(())
    }

    /// Whether a revoked device's wipe happened (for tests and the app's status screen).
    pub fn is_wiped(&self) -> Result<bool> {
        let any: Option<i64> = self
            .connection_ref()
            .query_row("SELECT 1 FROM case_docs LIMIT 1", [], |r| r.get(0))
            .optional()?;
        Ok(any.is_none()
            && self.meta(META_TOKEN)?.is_none()
            && self.meta(META_DEVICE_ID)?.is_some())
    }
}

/// Deletes every trace of a case on this device: its document, projections and sync state (by
/// cascade), waiting changes, verified origins and quarantine. Whether it was here.
pub(super) fn erase_locally(tx: &rusqlite::Transaction<'_>, case_id: &str) -> Result<bool> {
    let held = tx.execute("DELETE FROM case_docs WHERE case_id = ?1", [case_id])? > 0;
    tx.execute("DELETE FROM pending_changes WHERE case_id = ?1", [case_id])?;
    tx.execute("DELETE FROM change_origins WHERE case_id = ?1", [case_id])?;
    tx.execute("DELETE FROM quarantine WHERE case_id = ?1", [case_id])?;
    Ok(held)
}

pub(super) fn skip_after(fallback: &[String], later: &[String]) -> Vec<String> {
    fallback.iter().chain(later).cloned().collect()
}

/// How a refusal is kept beside a case: its reason's name and detail.
pub(super) fn refusal_text(refusal: &Refusal) -> String {
    if refusal.detail.is_empty() {
        refusal.reason.as_str().to_string()
    } else {
        format!("{}: {}", refusal.reason.as_str(), refusal.detail)
    }
}

enum Pulled {
    Saved {
        conflicts: bool,
    },
    Waiting,
    /// Changes under this phone's actor that it never wrote (their hashes): refused, the case
    /// set aside, each reported to the server.
    Forged(Vec<String>),
}

pub(super) fn status_error(reply: &HttpReply) -> Error {
    let body: Option<ErrorBody> = serde_json::from_slice(&reply.body).ok();
    if reply.status == protocol::UPGRADE_REQUIRED_STATUS
        || body
            .as_ref()
            .is_some_and(|b| b.error == protocol::UPGRADE_REQUIRED)
    {
        return Error::UpgradeRequired;
    }
    let message = body
        .map(|b| b.message)
        .unwrap_or_else(|| format!("HTTP {}", reply.status));
    match reply.status {
        401 | 403 => Error::Forbidden(message),
        // Busy or broken server, or a link too slow for the server to wait on (408: a body
        // below the minimum rate): transient, like being offline; the next sync continues.
        408 | 429 | 500..=599 => Error::Offline(message),
        _ => Error::Protocol(message),
    }
}

/// Where a phone stands with the server: its feed cursor and mark, and the last erasure and
/// removal it applied.
pub(super) struct Positions {
    pub(super) cursor: u64,
    pub(super) mark: Vec<u8>,
    pub(super) erasures_seen: u64,
    pub(super) removals_seen: u64,
}

/// Keeps a pulled change waiting for its case, once: a server that sends the same page again
/// (it never acknowledged, or the link cut) must not grow the store at every round trip.
fn keep_pending(tx: &rusqlite::Transaction<'_>, case_id: &str, data: &[u8]) -> Result<()> {
    tx.execute(
        "INSERT INTO pending_changes (case_id, data)
         SELECT ?1, ?2 WHERE NOT EXISTS
           (SELECT 1 FROM pending_changes WHERE case_id = ?1 AND data = ?2)",
        params![case_id, data],
    )?;
    Ok(())
}

/// Why a case is set aside when a pulled change under this phone's name was never written here.
pub const FORGED_REASON: &str = "forged: a change under this phone's name that it never wrote";

/// Forgeries a phone keeps: a hostile server listing made-up changes at every round trip must
/// not grow the store without end (the real server ignores what is not its). Real ones are
/// rare; a phone whose list is full reports what it holds and records no more.
pub const FORGERIES_KEPT_MAX: i64 = 1_000;

/// Records a forgery found (once per change, while fewer than `FORGERIES_KEPT_MAX` are kept);
/// 1 if it was kept.
fn record_forgery(tx: &rusqlite::Transaction<'_>, case_id: &str, hash: &str) -> Result<usize> {
    Ok(tx.execute(
        "INSERT OR IGNORE INTO forgeries (hash, case_id, found_at)
         SELECT ?1, ?2, ?3
         WHERE (SELECT count(*) FROM forgeries) < ?4",
        params![
            hash,
            case_id,
            chrono::Utc::now().to_rfc3339(),
            FORGERIES_KEPT_MAX
        ],
    )?)
}
