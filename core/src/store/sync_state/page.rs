//! One round trip committed: what the server accepted and refused of a push, and the page it sent.

use super::*;
use crate::protocol::SyncResponse;

impl Store {
    /// Commits cases fetched by id (`sync::fetch_cases`): their changes or documents go through
    /// everything a page's go through (checks, verified authors, quarantine), and nothing else
    /// of the reply is read: no position moves, nothing is acknowledged, erased or removed, no
    /// form is taken. The stream brings the same cases later, which changes nothing then.
    pub(crate) fn commit_fetched(&mut self, response: &SyncResponse) -> Result<SyncReport> {
        let fetched = SyncResponse {
            version: response.version,
            authors: response.authors.clone(),
            pull: response.pull.clone(),
            documents: response.documents.clone(),
            ..SyncResponse::nothing_new(0, 0)
        };
        let mut plan = plan_page(&[], &fetched, false);
        plan.moves_positions = false;
        plan.forms_cursor = None;
        plan.settings = None;
        plan.removals_cursor = None;
        let mut report = SyncReport::default();
        self.commit_page(&plan, &mut report)?;
        Ok(report)
    }

    /// Commits one round trip in one transaction, as its plan says (`plan_page`): what the
    /// server accepted and refused, the forms and page of changes it sent, the new cursors. A
    /// pulled case that fails to apply, load or project is set aside in quarantine; the others
    /// and the cursor go on. Returns the pulled cases saved, each with whether it now holds a
    /// conflict.
    pub(crate) fn commit_page(
        &mut self,
        plan: &PagePlan<'_>,
        report: &mut SyncReport,
    ) -> Result<Vec<(String, bool)>> {
        // A case sent as one document is taken apart into its changes, which then go through
        // everything a pulled change goes through; one that does not read is set aside. Pure
        // work on the page's bytes, done before the transaction holds the writer.
        let mut unreadable = Vec::new();
        let mut expanded = Vec::new();
        for document in plan.documents {
            match changes_of(document) {
                Ok(case) => expanded.push(case),
                Err(reason) => unreadable.push((document, reason)),
            }
        }
        let mut forms = self.forms()?;
        let tx = self.connection_ref().unchecked_transaction()?;
        // Forms first: the pulled cases below may use a version that arrives with them.
        let forms_before = report.forms_received;
        let mut refused_here = false;
        for update in plan.forms {
            match accept_form(&tx, std::sync::Arc::make_mut(&mut forms), update)? {
                Ok(()) => report.forms_received += 1,
                Err(why) => {
                    report.forms_refused.push(why);
                    refused_here = true;
                }
            }
        }
        if let Some(forms_cursor) = plan.forms_cursor {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![crate::store::META_FORMS, forms_cursor.to_string()],
            )?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![crate::store::META_FORMS_READ_AS, crate::store::FORMS_READ_AS],
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
        for ack in &plan.acknowledged {
            let heads = match &ack.heads {
                SyncedHeads::Exactly(heads) => heads.clone(),
                SyncedHeads::Adding(hashes) => {
                    let mut have = self.synced_heads(&ack.case_id)?;
                    have.extend(hashes.iter().copied());
                    have
                }
            };
            // A save while the request was on the network leaves the case pending.
            tx.execute(
                "UPDATE case_sync SET synced_heads = ?2,
                    dirty = CASE WHEN edits = ?4 THEN ?3 ELSE ?5 END, refusal = NULL
                 WHERE case_id = ?1",
                params![
                    ack.case_id,
                    Store::format_heads(&heads),
                    ack.state,
                    ack.edits,
                    SyncState::Pending
                ],
            )?;
            // Every visit of a case the server has wholly acknowledged is verified: its
            // outcome is no longer provisional.
            tx.execute(
                "UPDATE cases SET outcome_provisional = 0 WHERE case_id = ?1
                 AND (SELECT dirty FROM case_sync s WHERE s.case_id = ?1) = ?2",
                params![ack.case_id, SyncState::Clean],
            )?;
            report.cases_up += 1;
            report.changes_up += ack.changes;
        }
        for (refusal, on) in &plan.refusals {
            match on {
                OnRefusal::Fallback => continue,
                OnRefusal::EraseHere => {
                    if erase_locally(&tx, &refusal.case_id)? {
                        report.erased += 1;
                    }
                }
                OnRefusal::RetryLater => {
                    // After a restore, a case may hold another device's change the server
                    // lost: this device cannot push it for them. Kept pending, reported, and
                    // tried again at the next sync, by when that device may have pushed it.
                    tx.execute(
                        "UPDATE case_sync SET refusal = ?2 WHERE case_id = ?1",
                        params![refusal.case_id, refusal_text(refusal)],
                    )?;
                }
                OnRefusal::LeaveUnlessOwnWork if !self.holds_own_changes(&refusal.case_id)? => {
                    // Planted by a hostile server, or reassigned away and never edited here:
                    // nothing of this phone's is in it, so it leaves the phone.
                    self.remember_own_changes(&tx, &refusal.case_id)?;
                    if erase_locally(&tx, &refusal.case_id)? {
                        report.removed += 1;
                    }
                }
                OnRefusal::LeaveUnlessOwnWork | OnRefusal::SetAside => {
                    tx.execute(
                        "UPDATE case_sync SET dirty = ?2, refusal = ?3 WHERE case_id = ?1",
                        params![refusal.case_id, SyncState::Refused, refusal_text(refusal)],
                    )?;
                }
            }
            report.refused.push((*refusal).clone());
        }
        if plan.reset {
            // The server's feed does not hold the history this device read: it was replaced or
            // restored from a backup. Push everything again; the server keeps what it lacks,
            // and what it refuses is reported.
            tx.execute(
                "UPDATE case_sync SET dirty = ?1, synced_heads = '' WHERE dirty != ?2",
                params![SyncState::Pending, SyncState::Refused],
            )?;
            report.server_reset = true;
        }
        let mut saved = Vec::new();
        report.documents_down += plan.documents.len();
        for case in plan.pulled.iter().chain(&expanded) {
            report.changes_down += case.changes.len();
            tx.execute_batch("SAVEPOINT pulled_case")?;
            let set_aside = match self.commit_pulled_case(&tx, &forms, plan.authors, case) {
                Ok(Pulled::Saved { conflicts }) => {
                    tx.execute_batch("RELEASE pulled_case")?;
                    saved.push((case.case_id.clone(), conflicts));
                    report.cases_down += 1;
                    None
                }
                Ok(Pulled::Waiting) => {
                    tx.execute_batch("RELEASE pulled_case")?;
                    None
                }
                Ok(Pulled::Forged(hashes)) => {
                    tx.execute_batch("ROLLBACK TO pulled_case; RELEASE pulled_case")?;
                    for hash in &hashes {
                        report.forgeries += record_forgery(&tx, &case.case_id, hash)?;
                    }
                    Some(FORGED_REASON.to_string())
                }
                // A full disk or a broken database stops the page: nothing of it is committed.
                Err(e @ (Error::StorageFull | Error::Storage(_) | Error::WrongKeyOrCorrupt)) => {
                    return Err(e)
                }
                Err(e) => {
                    tx.execute_batch("ROLLBACK TO pulled_case; RELEASE pulled_case")?;
                    Some(e.to_string())
                }
            };
            // Set aside with why, the rest of the page going on.
            if let Some(reason) = set_aside {
                let pulled: Vec<&[u8]> = case.changes.iter().map(|c| c.data.as_slice()).collect();
                self.quarantine(&tx, &case.case_id, &pulled, &reason)?;
                report.quarantined.push(QuarantinedCase {
                    case_id: case.case_id.clone(),
                    reason,
                });
            }
        }
        for (document, reason) in unreadable {
            self.quarantine(
                &tx,
                &document.case_id,
                &[document.document.as_slice()],
                &reason,
            )?;
            report.quarantined.push(QuarantinedCase {
                case_id: document.case_id.clone(),
                reason,
            });
        }
        // The feed's changes under this phone's name, listed back (version 6 on): one missing
        // from a case this phone holds was never written here (every change it writes is saved
        // in its case first). A case it does not hold (never had, or removed) tells nothing.
        let mut by_case: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for own in plan.own {
            by_case.entry(&own.case_id).or_default().push(&own.hash);
        }
        for (case_id, hashes) in by_case {
            for hash in self.forged_among(case_id, &hashes)? {
                report.forgeries += record_forgery(&tx, case_id, &hash)?;
            }
        }
        // After the pulls: nothing of an erased case is left behind by this page.
        for case_id in plan.erased {
            if erase_locally(&tx, case_id)? {
                report.erased += 1;
            }
        }
        if plan.moves_positions {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![META_ERASURES, plan.erasures_cursor.to_string()],
            )?;
        }
        // Cases reassigned away from this user leave the phone, with what was only theirs to
        // read, once the server holds everything recorded here: a case still holding changes
        // it has not accepted stays (and is pushed again) rather than lose them.
        for case_id in plan.removed {
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
        // Newer outcome settings, checked like any server input: every case's outcome is
        // derived again with them once the page is in.
        let mut settings_changed = false;
        if let Some(settings) = plan.settings {
            let held = crate::store::outcome_settings_in(&tx)?;
            match settings.check() {
                // The server sends them only when newer than the version this phone said it
                // holds: whatever passes the checks is taken as the programme's.
                Ok(()) if *settings != held => {
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        params![
                            crate::store::META_OUTCOME_SETTINGS,
                            serde_json::to_string(settings).unwrap_or_default()
                        ],
                    )?;
                    tx.execute("UPDATE cases SET stage = NULL", [])?;
                    settings_changed = true;
                }
                Ok(()) => {}
                Err(e) => report.settings_refused = Some(e.to_string()),
            }
        }
        if let Some(removals_cursor) = plan.removals_cursor {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![META_REMOVALS, removals_cursor.to_string()],
            )?;
        }
        if plan.moves_positions {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![META_CURSOR, plan.cursor.to_string()],
            )?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![META_MARK, hex::encode(plan.mark)],
            )?;
        }
        tx.commit()?;
        report.pages += 1;
        if report.forms_received > forms_before {
            // A case set aside for a form version this device lacked may read now.
            self.retry_quarantined()?;
        }
        if settings_changed {
            self.project_outcomes()?;
        }
        if plan.erases() {
            // Old page images stay in the write-ahead log until a checkpoint.
            self.connection_ref()
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(saved)
    }

    /// Applies one pulled case with the changes still waiting for it, checks the result and
    /// saves it; records who the server says wrote each change.
    pub(crate) fn commit_pulled_case(
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
        // A document set aside whole (it did not read when it came) is taken apart now: a
        // later build may read what this one could not.
        if raw.iter().any(|r| crate::case_doc::check::is_document(r)) {
            let mut changes = Vec::with_capacity(raw.len());
            for r in raw {
                if crate::case_doc::check::is_document(&r) {
                    changes.extend(
                        crate::case_doc::check::changes_of_document(&r)
                            .map_err(|e| Error::Protocol(e.to_string()))?,
                    );
                } else {
                    changes.push(r);
                }
            }
            raw = changes;
        }
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
}

/// A case's document as the changes it holds, each with the origin the server lists for it.
fn changes_of(document: &protocol::PulledDocument) -> std::result::Result<PulledCase, String> {
    let changes = crate::case_doc::check::changes_of_document(&document.document)
        .map_err(|e| e.to_string())?;
    if changes.len() != document.origins.len() {
        return Err(format!(
            "a document of {} changes with {} origins",
            changes.len(),
            document.origins.len()
        ));
    }
    Ok(PulledCase {
        case_id: document.case_id.clone(),
        changes: changes
            .into_iter()
            .zip(document.origins.iter().zip(document.received_at()))
            .map(|(data, (origin, received_at))| protocol::PulledChange {
                data: serde_bytes::ByteBuf::from(data),
                author: origin.author,
                received_at,
            })
            .collect(),
    })
}

/// Checks a form version the server sent and keeps it: a definition that does not parse or
/// check, or that differs from the version this device holds under the same number (a
/// published version never changes), is refused with why, and nothing of it is kept.
pub(crate) fn accept_form(
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
        // An app released before further languages kept this version without them: the same
        // version, now read whole.
        if held != &form && held != &form.in_app_languages() {
            return Ok(Err(format!(
                "{} v{} differs from the version this device holds: a published version never changes",
                form.id, form.version
            )));
        }
    }
    // A full disk stops the page like any other write.
    tx.execute(
        "INSERT INTO forms (form_id, version, definition, retired) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(form_id, version) DO UPDATE SET retired = max(retired, excluded.retired),
             definition = excluded.definition",
        params![form.id, form.version, form.canonical_json(), update.retired],
    )?;
    if update.retired {
        forms.retire(&form.id, form.version);
    }
    forms.add(form);
    Ok(Ok(()))
}

/// Deletes every trace of a case on this device: its document, projections and sync state (by
/// cascade), waiting changes, verified origins, quarantine and drafts. Whether it was here.
pub(crate) fn erase_locally(tx: &rusqlite::Transaction<'_>, case_id: &str) -> Result<bool> {
    let held = tx.execute("DELETE FROM case_docs WHERE case_id = ?1", [case_id])? > 0;
    tx.execute("DELETE FROM pending_changes WHERE case_id = ?1", [case_id])?;
    tx.execute("DELETE FROM change_origins WHERE case_id = ?1", [case_id])?;
    tx.execute("DELETE FROM quarantine WHERE case_id = ?1", [case_id])?;
    tx.execute("DELETE FROM drafts WHERE case_id = ?1", [case_id])?;
    Ok(held)
}

pub(crate) enum Pulled {
    Saved {
        conflicts: bool,
    },
    Waiting,
    /// Changes under this phone's actor that it never wrote (their hashes): refused, the case
    /// set aside, each reported to the server.
    Forged(Vec<String>),
}

/// Keeps a pulled change waiting for its case, once: a server that sends the same page again
/// (it never acknowledged, or the link cut) must not grow the store at every round trip.
pub(crate) fn keep_pending(
    tx: &rusqlite::Transaction<'_>,
    case_id: &str,
    data: &[u8],
) -> Result<()> {
    tx.execute(
        "INSERT INTO pending_changes (case_id, data)
         SELECT ?1, ?2 WHERE NOT EXISTS
           (SELECT 1 FROM pending_changes WHERE case_id = ?1 AND data = ?2)",
        params![case_id, data],
    )?;
    Ok(())
}
