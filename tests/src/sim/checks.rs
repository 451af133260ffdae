//! The end of a run: quiet, then every acknowledged record found and every device converged.

use super::*;

impl World {
    // ---- the end: quiet, then the checks ---------------------------------------------------

    pub(super) fn finish(&mut self) -> Result<(), String> {
        self.step = usize::MAX;
        self.link.heal();
        self.start_server()?;
        // Everyone syncs until quiet: a round carries every change up, the next every change
        // down, a third settles what a pending refusal or a reset sent again.
        for _ in 0..3 {
            for index in self.active_devices() {
                match self.sync(index)? {
                    SyncOutcome::Done(_) => {}
                    other => {
                        return Err(format!(
                            "{} cannot sync on a healed link: {other}",
                            self.devices[index].name
                        ))
                    }
                }
            }
        }
        for index in self.active_devices() {
            self.check_opens(index)?;
        }
        // The server: stopped, its stored history validated by its own command, then read.
        self.kill_server();
        let check = run_with_timeout(self.site.command(&["case", "check"]))?;
        if !check.status.success() {
            return Err(format!(
                "suivi-server case check: {}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            ));
        }
        let server = ServerView::read(&self.site)?;
        // Duplicates, replays and retried pushes stored nothing twice.
        let (changes, feed) = stored_counts(&self.site)?;
        if changes != feed {
            return Err(format!(
                "the server holds {changes} changes but {feed} feed rows"
            ));
        }
        self.check_acknowledged(&server)?;
        self.check_converged(&server)?;
        Ok(())
    }

    pub(super) fn check_acknowledged(&mut self, server: &ServerView) -> Result<(), String> {
        let stores: HashMap<usize, DeviceView> = self
            .active_devices()
            .into_iter()
            .map(|i| DeviceView::read(&self.devices[i]).map(|v| (i, v)))
            .collect::<Result<_, _>>()?;
        for ack in &self.acks {
            let device = &self.devices[ack.device];
            let on_server = server.holds(&ack.case_id, &ack.heads);
            self.tally.records_checked += 1;
            if !on_server {
                // Held by a device that reports it cannot push it (another device's change the
                // restored server lost)?
                let stranded = stores
                    .values()
                    .any(|v| v.holds(&ack.case_id, &ack.heads) && v.stranded(&ack.case_id));
                let synced = device.synced_at_step.is_some_and(|s| s > ack.step);
                let exception = if stranded {
                    Some(Exception::StrandedByRestore)
                } else if device.revoked && !synced {
                    // Saved, never synced, wiped by the revocation: the revoked sync said so.
                    Some(Exception::RevokedBeforeSync)
                } else if device.revoked && (self.reset_reported || self.server_reported_restore())
                {
                    Some(Exception::LostWithRestore)
                } else {
                    None
                };
                if let Some(exception) = exception {
                    *self.tally.exceptions.entry(exception).or_default() += 1;
                    continue;
                }
                self.tally.records_lost += 1;
                return Err(format!(
                    "the save {} acknowledged at step {} on case {} is not on the server",
                    device.name,
                    ack.step,
                    short(&ack.case_id)
                ));
            }
            for (&i, view) in &stores {
                let user = &self.devices[i].user;
                if server.may_read(user, &ack.case_id)? {
                    self.tally.records_checked += 1;
                    if !view.holds(&ack.case_id, &ack.heads) {
                        self.tally.records_lost += 1;
                        return Err(format!(
                            "the save {} acknowledged at step {} on case {} is missing on {}",
                            device.name,
                            ack.step,
                            short(&ack.case_id),
                            self.devices[i].name
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) fn check_converged(&mut self, server: &ServerView) -> Result<(), String> {
        for index in self.active_devices() {
            let device = &self.devices[index];
            let view = DeviceView::read(device)?;
            let mut expected = Vec::new();
            for id in server.heads.keys() {
                if server.may_read(&device.user, id)? {
                    expected.push(id.clone());
                }
            }
            // Cases the server lost with a restore and this phone may not push back: kept,
            // reported as refused, counted.
            let held: Vec<String> = view
                .heads
                .keys()
                .filter(|id| server.heads.contains_key(*id) || !view.stranded(id))
                .cloned()
                .collect();
            if held != expected {
                return Err(format!(
                    "{} holds {} cases, its caseload on the server is {}",
                    device.name,
                    held.len(),
                    expected.len()
                ));
            }
            for id in &expected {
                if view.heads[id] != server.heads[id] && !view.stranded(id) {
                    return Err(format!(
                        "{} and the server differ on case {} after syncing until quiet",
                        device.name,
                        short(id)
                    ));
                }
            }
            if let Some((id, reason)) = view.refused.iter().find(|(id, _)| !view.stranded(id)) {
                return Err(format!(
                    "{}: case {} refused ({reason})",
                    device.name,
                    short(id)
                ));
            }
        }
        Ok(())
    }
}

/// What the server holds at the end, read from its database with its key.
pub(super) struct ServerView {
    pub(super) store: SqliteStore,
    pub(super) heads: BTreeMap<String, Vec<ChangeHash>>,
    pub(super) docs: HashMap<String, automerge::AutoCommit>,
    pub(super) access: HashMap<String, CaseAccess>,
}

impl ServerView {
    pub(super) fn read(site: &ServerSite) -> Result<ServerView, String> {
        let store = SqliteStore::open(&site.db(), Some(&site.database_key()))
            .map_err(|e| format!("the server's database does not open: {e}"))?;
        let ids = store.case_ids().map_err(|e| e.to_string())?;
        let mut heads = BTreeMap::new();
        let mut docs = HashMap::new();
        for id in &ids {
            let mut doc = automerge::AutoCommit::new();
            let changes: Vec<automerge::Change> = store
                .case_changes(id)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|raw| automerge::Change::from_bytes(raw).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            doc.apply_changes(changes).map_err(|e| e.to_string())?;
            let mut h = doc.get_heads();
            h.sort();
            heads.insert(id.clone(), h);
            docs.insert(id.clone(), doc);
        }
        let access = store.case_access(&ids).map_err(|e| e.to_string())?;
        Ok(ServerView {
            store,
            heads,
            docs,
            access,
        })
    }

    pub(super) fn holds(&self, case_id: &str, hashes: &[ChangeHash]) -> bool {
        holds(&self.docs, case_id, hashes)
    }

    pub(super) fn may_read(&self, user: &str, case_id: &str) -> Result<bool, String> {
        let user = self
            .store
            .user(user)
            .map_err(|e| e.to_string())?
            .ok_or("a user of the simulation is unknown to the server")?;
        Ok(self
            .access
            .get(case_id)
            .is_some_and(|a| suivi_core::policy::may_read(&user.subject(), &a.ownership())))
    }
}

/// Whether a copy of the case holds every one of these changes.
pub(super) fn holds(
    docs: &HashMap<String, automerge::AutoCommit>,
    case_id: &str,
    hashes: &[ChangeHash],
) -> bool {
    docs.get(case_id).is_some_and(|doc| {
        // Looking a change up needs the document mutable (it may build an index).
        let mut doc = doc.clone();
        hashes.iter().all(|h| doc.get_change_by_hash(h).is_some())
    })
}

/// What a device holds at the end, read from its store with its key.
pub(super) struct DeviceView {
    pub(super) heads: BTreeMap<String, Vec<ChangeHash>>,
    pub(super) docs: HashMap<String, automerge::AutoCommit>,
    pub(super) refused: BTreeMap<String, String>,
}

impl DeviceView {
    pub(super) fn read(device: &Device) -> Result<DeviceView, String> {
        let store = Store::open(&device.db, KEY)
            .map_err(|e| format!("{} does not open: {e}", device.name))?;
        let mut heads = BTreeMap::new();
        let mut docs = HashMap::new();
        // The cases held (a sync killed mid-stream leaves rows listed ahead of theirs).
        for row in store
            .list_cases(&CaseFilter::default())
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|r| !r.arriving)
        {
            let mut doc = store
                .load_doc(&row.case_id)
                .map_err(|e| e.to_string())?
                .ok_or("a listed case has no document")?;
            let mut h = doc.heads();
            h.sort();
            heads.insert(row.case_id.clone(), h);
            docs.insert(row.case_id, doc.automerge().clone());
        }
        let refused = store
            .refused_cases()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|r| (r.case_id, r.reason))
            .collect();
        Ok(DeviceView {
            heads,
            docs,
            refused,
        })
    }

    pub(super) fn holds(&self, case_id: &str, hashes: &[ChangeHash]) -> bool {
        holds(&self.docs, case_id, hashes)
    }

    /// The server refused this phone's push of the case as someone else's changes: after a
    /// restore, the phone holds changes whose author is gone. Shown in `suivi problems`.
    pub(super) fn stranded(&self, case_id: &str) -> bool {
        self.refused
            .get(case_id)
            .is_some_and(|r| r.starts_with("wrong_actor"))
    }
}

/// Changes stored and feed rows, counted in the server's database.
pub(super) fn stored_counts(site: &ServerSite) -> Result<(i64, i64), String> {
    let conn = rusqlite::Connection::open(site.db()).map_err(|e| e.to_string())?;
    conn.pragma_update(None, "key", site.database_key())
        .map_err(|e| e.to_string())?;
    let count = |table: &str| -> Result<i64, String> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| e.to_string())
    };
    Ok((count("changes")?, count("feed")?))
}
