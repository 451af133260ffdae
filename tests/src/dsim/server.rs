//! The server's side of a run: what it answers a request, its restarts, backups and restores, and what a supervisor or an admin does on it.

use super::*;

impl World {
    pub(super) fn restart_server(&mut self) -> Result<(), String> {
        // The old store closes before the files are opened again.
        *self.server.borrow_mut() = None;
        *self.server.borrow_mut() = Some(Server::open(&self.dir)?);
        self.fault("server restarts");
        self.note("the server restarts".into());
        Ok(())
    }

    pub(super) fn take_backup(&mut self) -> Result<(), String> {
        let to = self.dir.join("backup");
        std::fs::create_dir_all(&to).map_err(|e| e.to_string())?;
        for suffix in ["", "-wal", "-shm"] {
            let from = self.dir.join(format!("server.db{suffix}"));
            let dest = to.join(format!("server.db{suffix}"));
            let _ = std::fs::remove_file(&dest);
            if from.exists() {
                std::fs::copy(&from, &dest).map_err(|e| e.to_string())?;
            }
        }
        self.backup = Some((to, self.step));
        self.fault("backups");
        self.note("the server is backed up".into());
        Ok(())
    }

    pub(super) fn restore(&mut self) -> Result<(), String> {
        let Some((backup, taken)) = self.backup.clone() else {
            return Ok(());
        };
        *self.server.borrow_mut() = None;
        for suffix in ["", "-wal", "-shm"] {
            let dest = self.dir.join(format!("server.db{suffix}"));
            let _ = std::fs::remove_file(&dest);
            let from = backup.join(format!("server.db{suffix}"));
            if from.exists() {
                std::fs::copy(&from, &dest).map_err(|e| e.to_string())?;
            }
        }
        *self.server.borrow_mut() = Some(Server::open(&self.dir)?);
        self.restores.push((taken, self.step));
        self.fault("restores from an older backup");
        self.note("the server is restored from its last backup".into());
        Ok(())
    }

    pub(super) fn service(&self) -> Result<Arc<SyncService>, String> {
        self.server
            .borrow()
            .as_ref()
            .map(|s| s.service.clone())
            .ok_or_else(|| "the server is down".to_string())
    }

    pub(super) fn team_cases(&self, team: &str) -> Result<Vec<String>, String> {
        let service = self.service()?;
        let ids = service.store().case_ids().map_err(|e| e.to_string())?;
        let access = service
            .store()
            .case_access(&ids)
            .map_err(|e| e.to_string())?;
        Ok(ids
            .into_iter()
            .filter(|id| access.get(id).is_some_and(|a| a.team == team))
            .collect())
    }

    pub(super) fn reassign(&mut self) -> Result<(), String> {
        let fatima = self.users[2].clone();
        let cases = self.team_cases("souk-sebt")?;
        let Some(case) = self.rng.borrow_mut().pick(&cases).cloned() else {
            return Ok(());
        };
        let to = ["amina", "karim"][self.below(2)];
        let now = simulated::at().unwrap_or(START);
        match self
            .service()?
            .reassign(&fatima, std::slice::from_ref(&case), to, now)
        {
            Ok(moved) => {
                self.note(format!("fatima reassigns {case} to {to}: {}", moved.len()));
                self.events.entry(case.clone()).or_default().push(self.step);
                self.fault("reassignments");
                Ok(())
            }
            Err(e) => Err(format!("reassign {case}: {e}")),
        }
    }

    pub(super) fn merge(&mut self) -> Result<(), String> {
        let fatima = self.users[2].clone();
        let cases = self.team_cases("souk-sebt")?;
        if cases.len() < 2 {
            return Ok(());
        }
        let a = self.below(cases.len());
        let b = (a + 1 + self.below(cases.len() - 1)) % cases.len();
        let now = simulated::at().unwrap_or(START);
        match self
            .service()?
            .merge_cases(&fatima, &cases[a], &cases[b], now)
        {
            Ok(()) => {
                self.note(format!("fatima merges {} into {}", cases[b], cases[a]));
                for case in [&cases[a], &cases[b]] {
                    self.events.entry(case.clone()).or_default().push(self.step);
                }
                self.fault("merges");
            }
            // Two cases already merged one way, or one merged away: the console says no.
            Err(e) => self.note(format!("merge refused: {e}")),
        }
        Ok(())
    }

    pub(super) fn erase(&mut self) -> Result<(), String> {
        let service = self.service()?;
        let ids = service.store().case_ids().map_err(|e| e.to_string())?;
        let Some(case) = self.rng.borrow_mut().pick(&ids).cloned() else {
            return Ok(());
        };
        let now = simulated::at().unwrap_or(START);
        suivi_server::erasure::erase(
            service.store().as_ref(),
            &self.dir.join("erasures"),
            &case,
            now,
        )
        .map_err(|e| e.to_string())?;
        self.erased.insert(case.clone());
        self.fault("erasures");
        self.note(format!("case {case} is erased"));
        Ok(())
    }

    /// What the server answers a request, as its HTTP layer would.
    pub(super) fn deliver(
        &self,
        path: &str,
        body: &[u8],
        credentials: Option<&Credentials>,
    ) -> Result<HttpReply, String> {
        let service = self.service()?;
        let now = simulated::at().unwrap_or(START);
        let header = credentials.map(Credentials::header);
        let answer = match path {
            "/v1/enroll" => {
                let request: EnrollRequest =
                    serde_json::from_slice(body).map_err(|e| e.to_string())?;
                service
                    .enroll(&request, now)
                    .map(|r| serde_json::to_vec(&r).unwrap_or_default())
            }
            "/v1/sync" => service
                .authenticate(header.as_deref(), false)
                .and_then(|device| service.sync(&device, body, now))
                .map(|(reply, _)| reply),
            "/v1/docsync" => service
                .authenticate(header.as_deref(), false)
                .and_then(|device| service.doc_sync(&device, body, now)),
            "/v1/wipe-confirm" => service
                .authenticate(header.as_deref(), true)
                .and_then(|device| service.confirm_wipe(&device, now))
                .map(|()| Vec::new()),
            other => return Err(format!("no route {other}")),
        };
        Ok(match answer {
            Ok(body) => HttpReply { status: 200, body },
            Err(e) => {
                let (status, body) = suivi_server::api::service_error_reply(&e);
                HttpReply {
                    status,
                    body: body
                        .map(|b| serde_json::to_vec(&b).unwrap_or_default())
                        .unwrap_or_default(),
                }
            }
        })
    }
}

pub(super) struct Server {
    pub(super) service: Arc<SyncService>,
}

impl Server {
    pub(super) fn open(dir: &Path) -> Result<Server, String> {
        let store = SqliteStore::open(&dir.join("server.db"), None).map_err(|e| e.to_string())?;
        // As the server does when it opens: erasures a restore lost are applied again.
        suivi_server::erasure::replay(&store, &dir.join("erasures")).map_err(|e| e.to_string())?;
        let store: Arc<dyn ServerStore> = Arc::new(store);
        suivi_server::forms::seed_builtin(store.as_ref(), START).map_err(|e| e.to_string())?;
        Ok(Server {
            service: Arc::new(SyncService::new(store, CodeKey::new(CODES.to_vec()))),
        })
    }
}
