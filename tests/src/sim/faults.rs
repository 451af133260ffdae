//! The run: one seed's steps, and each fault it injects.

use super::*;

impl World {
    // ---- the run ---------------------------------------------------------------------------

    pub(super) fn run(&mut self, steps: usize) -> Result<(), String> {
        // Every fault at least once per seed, at a step the seed picks; more drawn at random.
        let mut planned: Vec<Option<Fault>> = vec![None; steps];
        let mut free: Vec<usize> = (steps / 8..steps).collect();
        free.shuffle(&mut self.rng);
        let mut faults = Fault::ALL.to_vec();
        faults.retain(|f| *f != Fault::RestoreOlderBackup);
        for (fault, at) in faults.iter().zip(free.iter()) {
            planned[*at] = Some(*fault);
        }
        // A restore needs a backup before it.
        if let Some(backup_at) = planned.iter().position(|f| *f == Some(Fault::BackupServer)) {
            let later: Vec<usize> = (backup_at + 1..steps)
                .filter(|&i| planned[i].is_none())
                .collect();
            if let Some(&at) = later.choose(&mut self.rng) {
                planned[at] = Some(Fault::RestoreOlderBackup);
            }
        }
        for (step, fault) in planned.into_iter().enumerate() {
            self.step = step;
            self.tally.steps += 1;
            let fault = fault.or_else(|| {
                (self.rng.gen_range(0..10) == 0)
                    .then(|| Fault::ALL[self.rng.gen_range(0..Fault::ALL.len())])
            });
            let active = self.active_devices();
            let index = active[self.rng.gen_range(0..active.len())];
            match fault {
                Some(fault) => self.inject(fault, index)?,
                None => {
                    if self.rng.gen_range(0..3) == 0 {
                        self.sync(index)?;
                    } else {
                        self.save(index)?;
                    }
                }
            }
            self.check_server_alive("a step")?;
        }
        Ok(())
    }

    pub(super) fn inject(&mut self, fault: Fault, index: usize) -> Result<(), String> {
        let name = self.devices[index].name.clone();
        self.note(format!("fault {fault:?} on {name}"));
        match fault {
            Fault::KillDeviceInPush | Fault::KillDeviceInPull => {
                if fault == Fault::KillDeviceInPush && !self.has_pending(index)? {
                    self.save(index)?;
                }
                let direction = if fault == Fault::KillDeviceInPush {
                    Direction::Up
                } else {
                    Direction::Down
                };
                self.held_sync(fault, index, direction, &mut |_, child| {
                    let _ = child.kill();
                })?;
            }
            Fault::KillServerInPush | Fault::KillServerInPull => {
                if fault == Fault::KillServerInPush && !self.has_pending(index)? {
                    self.save(index)?;
                }
                // Up: the server dies with half a request; down: it has stored the push and
                // dies before the device hears so.
                let direction = if self.rng.gen_bool(0.5) {
                    Direction::Up
                } else {
                    Direction::Down
                };
                self.held_sync(fault, index, direction, &mut |world, _| {
                    world.kill_server();
                })?;
                self.kill_server();
                self.start_server()?;
            }
            Fault::KillDeviceInSave => self.kill_device_in_save(index)?,
            Fault::CutUp | Fault::CutDown => {
                if !self.has_pending(index)? && fault == Fault::CutUp {
                    self.save(index)?;
                }
                let direction = if fault == Fault::CutUp {
                    Direction::Up
                } else {
                    Direction::Down
                };
                self.cut_sync(fault, index, direction)?;
            }
            Fault::DuplicateRequests => {
                if !self.has_pending(index)? {
                    self.save(index)?;
                }
                self.keep_captured();
                self.sync(index)?;
                let captured = self.link.take_captured();
                let reached = !captured.is_empty();
                for sent in &captured {
                    self.replay(sent)?;
                }
                self.captured.extend(captured);
                self.count(fault, reached);
            }
            Fault::ReplayOldRequests => {
                self.keep_captured();
                let reached = !self.captured.is_empty();
                if reached {
                    let sent = self.captured[self.rng.gen_range(0..self.captured.len())].clone();
                    self.replay(&sent)?;
                }
                self.count(fault, reached);
            }
            Fault::BackupServer => {
                // A crash-consistent copy, as a filesystem snapshot takes it.
                self.kill_server();
                let copy = self.work.path().join(format!("backup-{}", self.step));
                copy_dir(&self.site.data(), &copy)?;
                self.backup = Some((copy, self.step));
                self.start_server()?;
                self.count(fault, true);
            }
            Fault::RestoreOlderBackup => self.restore()?,
            // A few bytes to a few pages left; if the operation fit in them, again with none
            // (each `suivi` process starts without a write-ahead log, so any write needs room).
            Fault::DiskFullInSave => {
                for leave in [self.rng.gen_range(0..48 * 1024), 0] {
                    let (args, case) = self.save_args(index)?;
                    let ballast = self.fill_disk(leave)?;
                    let outcome = self.run_save(index, &args, case);
                    drop_ballast(&ballast)?;
                    let outcome = self.settle_save(index, outcome?)?;
                    self.check_opens(index)?;
                    let full = matches!(outcome, SaveOutcome::StorageFull);
                    self.count(fault, full);
                    if full {
                        self.tally.saves_refused_disk_full += 1;
                        break;
                    }
                }
            }
            Fault::DiskFullInSync => {
                for leave in [self.rng.gen_range(0..48 * 1024), 0] {
                    let ballast = self.fill_disk(leave)?;
                    let outcome = self.sync(index);
                    drop_ballast(&ballast)?;
                    let full = matches!(outcome?, SyncOutcome::StorageFull);
                    self.check_opens(index)?;
                    self.count(fault, full);
                    if full {
                        break;
                    }
                }
            }
            Fault::RevokeMidSync => self.revoke_mid_sync(index)?,
        }
        Ok(())
    }

    /// Keeps what the link captured since the last call, the latest few dozen connections.
    pub(super) fn keep_captured(&mut self) {
        self.captured.extend(self.link.take_captured());
        let excess = self.captured.len().saturating_sub(32);
        self.captured.drain(..excess);
    }

    pub(super) fn replay(&mut self, sent: &[u8]) -> Result<(), String> {
        let statuses = self.runtime.block_on(link::replay(self.addr, sent));
        self.tally.replayed_requests += statuses.len() as u64;
        self.note(format!(
            "replayed {} request(s): {statuses:?}",
            statuses.len()
        ));
        // A replay is stored once or refused; it never breaks the server.
        if let Some(bad) = statuses.iter().find(|s| **s >= 500 || **s == 0) {
            return Err(format!("a replayed request got {bad}"));
        }
        self.check_server_alive("a replayed request")
    }

    /// A save killed at a random moment: an import of many children, so the kill can land
    /// inside its transaction. Afterwards the device holds all of them or none.
    pub(super) fn kill_device_in_save(&mut self, index: usize) -> Result<(), String> {
        // How long this phone takes to start and open its store, to aim the kill at the save.
        let probe = Instant::now();
        self.check_opens(index)?;
        let opening = probe.elapsed();
        // A save that finished before the kill is acknowledged like any other; the next try
        // aims earlier, the last one inside the opening of the store.
        for aim in [1.0, 0.6, 0.3, 0.0] {
            let before = self.case_ids(index)?.len();
            let n = self.rng.gen_range(60..150);
            let first = self.rng.gen_range(0..1000);
            let rows: Vec<Value> = (first..first + n)
                .map(|i| serde_json::to_value(crate::child(i)).expect("a record is JSON"))
                .collect();
            let file = self.write_input(&Value::Array(rows))?;
            // About a millisecond per child to save them, on this machine.
            let delay = opening.mul_f64(0.5 + 0.3 * aim)
                + Duration::from_millis(self.rng.gen_range(0..n as u64)).mul_f64(aim);
            let mut child = self.spawn_device(index, &["import", &file.display().to_string()])?;
            std::thread::sleep(delay);
            let finished = child.try_wait().map_err(|e| e.to_string())?.is_some();
            if !finished {
                let _ = child.kill();
            }
            let out = wait_with_timeout(child)?;
            let added = self.case_ids(index)?.len() - before;
            self.note(format!(
                "{} import of {n}, kill after {delay:?}: {}, {added} on the device",
                self.devices[index].name,
                if finished { "finished first" } else { "killed" }
            ));
            if added != 0 && added != n {
                return Err(format!(
                    "an import of {n} children killed mid-save left {added} of them"
                ));
            }
            self.check_opens(index)?;
            if out.status.success() {
                let printed: Value =
                    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
                for id in printed["imported"].as_array().cloned().unwrap_or_default() {
                    let id = id.as_str().ok_or("an imported id")?.to_string();
                    self.acknowledge(index, &id)?;
                }
                self.count(Fault::KillDeviceInSave, false);
            } else {
                self.tally.saves_killed += 1;
                self.count(Fault::KillDeviceInSave, true);
                return Ok(());
            }
        }
        Ok(())
    }

    pub(super) fn restore(&mut self) -> Result<(), String> {
        let Some((copy, backup_step)) = self.backup.clone() else {
            self.count(Fault::RestoreOlderBackup, false);
            return Ok(());
        };
        self.kill_server();
        let data = self.site.data();
        std::fs::remove_dir_all(&data).map_err(|e| e.to_string())?;
        copy_dir(&copy, &data)?;
        self.start_server()?;
        self.count(Fault::RestoreOlderBackup, true);
        self.note(format!(
            "server restored from the backup of step {backup_step}"
        ));
        // The admin's restore procedure: devices enrolled since the backup get a new code.
        for index in self.active_devices() {
            if self.devices[index].enrolled_at_step > backup_step {
                let outcome = self.sync(index)?;
                if !matches!(outcome, SyncOutcome::Refused(_)) {
                    return Err(format!(
                        "{} was enrolled after the backup; the restored server should refuse it, \
                         got {outcome}",
                        self.devices[index].name
                    ));
                }
                *self
                    .tally
                    .exceptions
                    .entry(Exception::EnrolledAfterBackup)
                    .or_default() += 1;
                self.enroll(index)?;
            }
        }
        Ok(())
    }

    /// The device is revoked while its sync is in flight; its next sync finds out and wipes it.
    /// A new phone is enrolled for the same agent.
    pub(super) fn revoke_mid_sync(&mut self, index: usize) -> Result<(), String> {
        if !self.has_pending(index)? {
            self.save(index)?;
        }
        let direction = if self.rng.gen_bool(0.5) {
            Direction::Up
        } else {
            Direction::Down
        };
        let device_id = self.devices[index].device_id.clone();
        let mut revoked: Result<String, String> = Ok(String::new());
        let mut outcome =
            self.held_sync(Fault::RevokeMidSync, index, direction, &mut |world, _| {
                revoked = world.admin(&["device", "revoke", &device_id]);
            })?;
        revoked?;
        if !matches!(outcome, SyncOutcome::Revoked) {
            outcome = self.sync(index)?;
        }
        if !matches!(outcome, SyncOutcome::Revoked) {
            return Err(format!(
                "a revoked device's sync must say so, got {outcome}"
            ));
        }
        let wiped = self
            .peek(index, |s| s.is_wiped())?
            .map_err(|e| e.to_string())?;
        if !wiped {
            return Err("a revoked device kept its case data".into());
        }
        self.devices[index].revoked = true;
        let user = self.devices[index].user.clone();
        let clock = self.devices[index].clock.clone();
        self.new_device(&user, clock)?;
        Ok(())
    }

    /// Fills the devices' filesystem, leaving `leave` bytes free.
    pub(super) fn fill_disk(&mut self, leave: u64) -> Result<PathBuf, String> {
        let path = self.fs.fill(leave)?;
        self.note(format!("disk filled, {leave} bytes left"));
        Ok(path)
    }

    /// The device's store opens and answers (`suivi case list` exits 0).
    pub(super) fn check_opens(&mut self, index: usize) -> Result<(), String> {
        let out = self.device_command(index, &["case", "list"])?;
        expect_success(&out, "case list").map(|_| ())
    }
}
