//! The simulated phones: suivi processes with their own stores, their saves and syncs through the link emulator.

use super::*;

impl World {
    // ---- devices ---------------------------------------------------------------------------

    pub(super) fn new_device(
        &mut self,
        user: &str,
        clock: Option<String>,
    ) -> Result<usize, String> {
        let index = self.devices.len();
        let name = format!("{user}-phone-{index}");
        let db = self.fs.path().join(format!("{name}.db"));
        self.devices.push(Device {
            user: user.to_string(),
            name: name.clone(),
            db,
            clock,
            device_id: String::new(),
            enrolled_at_step: self.step,
            synced_at_step: None,
            revoked: false,
        });
        let out = self.device_command(index, &["init", "--user", user, "--device", &name])?;
        expect_success(&out, "init")?;
        self.enroll(index)?;
        Ok(index)
    }

    pub(super) fn enroll(&mut self, index: usize) -> Result<(), String> {
        let user = self.devices[index].user.clone();
        let code = self.admin(&["device", "code", &user])?;
        let url = self.link.url();
        let out = self.device_command(index, &["enroll", "--server", &url, "--code", &code])?;
        let enrolled = expect_success(&out, "enroll")?;
        self.devices[index].device_id = enrolled["device_id"]
            .as_str()
            .ok_or("enroll printed no device id")?
            .to_string();
        self.devices[index].enrolled_at_step = self.step;
        self.note(format!(
            "{} enrolled as {}",
            self.devices[index].name, self.devices[index].device_id
        ));
        Ok(())
    }

    pub(super) fn active_devices(&self) -> Vec<usize> {
        (0..self.devices.len())
            .filter(|&i| !self.devices[i].revoked)
            .collect()
    }

    pub(super) fn command_for(&mut self, index: usize, args: &[&str]) -> Command {
        let device = &self.devices[index];
        let mut command = Command::new(workspace_binary("suivi"));
        command
            .arg("--json")
            .args(args)
            .env("SUIVI_KEY", KEY)
            .env("SUIVI_DB", &device.db)
            .env("LANG", "en")
            .env_remove("LC_ALL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(offset) = &device.clock {
            // The whole process lives years away; timers keep the real monotonic clock.
            command
                .env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME", offset)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .env("FAKETIME_DONT_RESET", "1");
            self.tally.skewed_clock_operations += 1;
        }
        self.tally.device_processes += 1;
        command
    }

    pub(super) fn device_command(&mut self, index: usize, args: &[&str]) -> Result<Output, String> {
        let command = self.command_for(index, args);
        run_with_timeout(command)
    }

    pub(super) fn spawn_device(&mut self, index: usize, args: &[&str]) -> Result<Child, String> {
        let mut command = self.command_for(index, args);
        command.spawn().map_err(|e| e.to_string())
    }

    /// The harness's own look into a device's store (no device process is running then).
    pub(super) fn peek<T>(&self, index: usize, f: impl FnOnce(&Store) -> T) -> Result<T, String> {
        let store = Store::open(&self.devices[index].db, KEY)
            .map_err(|e| format!("{} does not open: {e}", self.devices[index].name))?;
        Ok(f(&store))
    }

    pub(super) fn case_ids(&self, index: usize) -> Result<Vec<String>, String> {
        self.peek(index, |s| {
            s.list_cases(&CaseFilter::default())
                .map(|rows| {
                    rows.into_iter()
                        .filter(|r| !r.arriving)
                        .map(|r| r.case_id)
                        .collect::<Vec<_>>()
                })
                .map_err(|e| e.to_string())
        })?
    }

    pub(super) fn heads_on_device(
        &self,
        index: usize,
        case_id: &str,
    ) -> Result<Vec<ChangeHash>, String> {
        self.peek(index, |s| match s.load_doc(case_id) {
            Ok(Some(mut doc)) => Ok(doc.heads()),
            Ok(None) => Err(format!("case {case_id} is not on the device")),
            Err(e) => Err(e.to_string()),
        })?
    }

    pub(super) fn write_input(&mut self, value: &Value) -> Result<PathBuf, String> {
        self.inputs += 1;
        let path = self.work.path().join(format!("input-{}.json", self.inputs));
        std::fs::write(&path, value.to_string()).map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// Prepares a save's command line: a new child, or an edit, referral or visit on a case the
    /// device holds.
    pub(super) fn save_args(
        &mut self,
        index: usize,
    ) -> Result<(Vec<String>, Option<String>), String> {
        let ids = self.case_ids(index)?;
        let kind = if ids.is_empty() {
            Save::New
        } else {
            match self.rng.gen_range(0..10) {
                0..=2 => Save::New,
                3..=6 => Save::Edit,
                7..=8 => Save::Refer,
                _ => Save::Followup,
            }
        };
        let n = self.rng.gen_range(0..1000);
        let case = (!ids.is_empty()).then(|| ids[self.rng.gen_range(0..ids.len())].clone());
        let json = |record: crate::Record| serde_json::to_value(record).expect("a record is JSON");
        // The command's words before `--file`, the record it saves, and the case it writes.
        let (mut args, input, case): (Vec<String>, Value, Option<String>) = match (kind, case) {
            (Save::New, _) | (_, None) => (
                vec!["case".into(), "new".into()],
                json(crate::child(n)),
                None,
            ),
            (Save::Edit, Some(case)) => {
                // Few values on few fields: devices often write the same field concurrently.
                let village = ["Kignan", "Misséni", "Zégoua"][self.rng.gen_range(0..3)];
                let risk = ["low", "medium", "high", "critical"][self.rng.gen_range(0..4)];
                let edit = match self.rng.gen_range(0..3) {
                    0 => json!({"village": village}),
                    1 => json!({"risk_level": risk}),
                    _ => json!({"village": village, "hours_per_week": n % 60}),
                };
                (
                    vec!["case".into(), "edit".into(), case.clone()],
                    edit,
                    Some(case),
                )
            }
            (Save::Refer, Some(case)) => (
                vec!["refer".into(), case.clone()],
                json(crate::referral(n)),
                Some(case),
            ),
            (Save::Followup, Some(case)) => (
                vec!["followup".into(), case.clone()],
                json(crate::visit(n)),
                Some(case),
            ),
        };
        let file = self.write_input(&input)?;
        args.extend(["--file".to_string(), file.display().to_string()]);
        Ok((args, case))
    }

    /// Records an acknowledged save: the case it wrote and the device's heads for it now.
    pub(super) fn acknowledge(&mut self, index: usize, case_id: &str) -> Result<(), String> {
        let heads = self.heads_on_device(index, case_id)?;
        self.acks.push(Ack {
            device: index,
            case_id: case_id.to_string(),
            heads,
            step: self.step,
        });
        self.tally.saves_acknowledged += 1;
        Ok(())
    }

    /// One save on a device, as an agent makes it.
    pub(super) fn save(&mut self, index: usize) -> Result<SaveOutcome, String> {
        let (args, case) = self.save_args(index)?;
        let outcome = self.run_save(index, &args, case)?;
        self.settle_save(index, outcome)
    }

    /// Runs a prepared save; nothing here reads the device's store (its disk may be full).
    pub(super) fn run_save(
        &mut self,
        index: usize,
        args: &[String],
        case: Option<String>,
    ) -> Result<Result<String, SaveOutcome>, String> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.device_command(index, &args)?;
        if out.status.success() {
            let printed: Value = serde_json::from_slice(&out.stdout)
                .map_err(|e| format!("{args:?} printed no JSON: {e}"))?;
            let case_id = case
                .or_else(|| printed["case_id"].as_str().map(str::to_string))
                .ok_or("a save printed no case id")?;
            self.note(format!(
                "{} saved {} ({})",
                self.devices[index].name,
                short(&case_id),
                args[..2].join(" ")
            ));
            return Ok(Ok(case_id));
        }
        if is_storage_full(&out) {
            self.note(format!(
                "{} save refused: storage full",
                self.devices[index].name
            ));
            return Ok(Err(SaveOutcome::StorageFull));
        }
        Err(format!(
            "{} {args:?} failed ({}): {}",
            self.devices[index].name,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }

    pub(super) fn settle_save(
        &mut self,
        index: usize,
        outcome: Result<String, SaveOutcome>,
    ) -> Result<SaveOutcome, String> {
        match outcome {
            Ok(case_id) => {
                self.acknowledge(index, &case_id)?;
                Ok(SaveOutcome::Acknowledged)
            }
            Err(other) => Ok(other),
        }
    }

    /// One `suivi sync`; the outcome as the agent sees it.
    pub(super) fn sync(&mut self, index: usize) -> Result<SyncOutcome, String> {
        let child = self.spawn_device(index, &["sync"])?;
        let out = wait_with_timeout(child)?;
        self.sync_outcome(index, out)
    }

    pub(super) fn sync_outcome(
        &mut self,
        index: usize,
        out: Output,
    ) -> Result<SyncOutcome, String> {
        let name = self.devices[index].name.clone();
        let outcome = match out.status.code() {
            Some(0) => {
                let report: Value = serde_json::from_slice(&out.stdout)
                    .map_err(|e| format!("{name}: sync printed no report: {e}"))?;
                self.tally.syncs_completed += 1;
                self.devices[index].synced_at_step = Some(self.step);
                if report["server_reset"] == json!(true) {
                    self.reset_reported = true;
                }
                SyncOutcome::Done(report)
            }
            // Offline: the link was cut or the server died.
            Some(5) => SyncOutcome::Offline,
            Some(6) => {
                let err = String::from_utf8_lossy(&out.stderr).to_string();
                if err.contains("revoked") {
                    SyncOutcome::Revoked
                } else {
                    SyncOutcome::Refused(err)
                }
            }
            None => SyncOutcome::Killed,
            Some(_) if is_storage_full(&out) => SyncOutcome::StorageFull,
            Some(code) => {
                return Err(format!(
                    "{name}: sync failed with exit {code}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        if !matches!(outcome, SyncOutcome::Done(_)) {
            self.tally.syncs_failed += 1;
        }
        self.note(format!("{name} sync: {outcome}"));
        Ok(outcome)
    }

    /// A sync that the link holds still at a byte offset going `direction`; then `strike` runs
    /// (a kill, a revocation) and the link goes on. A sync shorter than the offset completes and
    /// the next try aims earlier, down to the first byte, so the fault always strikes.
    pub(super) fn held_sync(
        &mut self,
        fault: Fault,
        index: usize,
        direction: Direction,
        strike: &mut dyn FnMut(&mut World, &mut Child),
    ) -> Result<SyncOutcome, String> {
        let mut bytes = self.offset();
        loop {
            self.link.hold_after(direction, bytes);
            let mut child = self.spawn_device(index, &["sync"])?;
            let started = Instant::now();
            let mut reached = false;
            loop {
                if self.link.is_held() {
                    reached = true;
                    strike(self, &mut child);
                    break;
                }
                if child.try_wait().map_err(|e| e.to_string())?.is_some() {
                    break;
                }
                if started.elapsed() > COMMAND_TIMEOUT {
                    let _ = child.kill();
                    return Err("a sync neither finished nor reached its hold".into());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            self.link.heal();
            let out = wait_with_timeout(child)?;
            let outcome = self.sync_outcome(index, out)?;
            self.count(fault, reached);
            self.note(format!(
                "{fault:?} at {bytes} bytes {direction:?}: {}",
                if reached { "struck" } else { "not reached" }
            ));
            if reached {
                return Ok(outcome);
            }
            bytes /= 4;
        }
    }

    /// A sync through a link cut at a byte offset; as with holds, tries earlier until it cuts.
    pub(super) fn cut_sync(
        &mut self,
        fault: Fault,
        index: usize,
        direction: Direction,
    ) -> Result<(), String> {
        let mut bytes = self.offset();
        loop {
            self.link.cut_after(direction, bytes);
            let outcome = self.sync(index)?;
            self.link.heal();
            let reached = matches!(outcome, SyncOutcome::Offline);
            self.count(fault, reached);
            if reached || bytes == 0 {
                return Ok(());
            }
            bytes /= 4;
        }
    }

    /// A byte offset in a sync's traffic: mostly inside its first round trip (a request or
    /// response of a few hundred bytes), sometimes deep in a longer one.
    pub(super) fn offset(&mut self) -> u64 {
        if self.rng.gen_bool(0.75) {
            self.rng.gen_range(0..250)
        } else {
            self.rng.gen_range(0..6000)
        }
    }

    pub(super) fn count(&mut self, fault: Fault, reached: bool) {
        let map = if reached {
            &mut self.tally.faults
        } else {
            &mut self.tally.faults_not_reached
        };
        *map.entry(fault).or_default() += 1;
    }

    pub(super) fn has_pending(&self, index: usize) -> Result<bool, String> {
        self.peek(index, |s| s.unsynced_case_count().map(|n| n > 0))?
            .map_err(|e| e.to_string())
    }
}
