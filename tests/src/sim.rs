//! The seeded fault simulation: a `suivi-server` process and several devices, each device
//! operation its own `suivi` process, every byte between them through the link emulator. A seed
//! draws the offline edits (the same fields on several devices included) and the faults: kill -9
//! of the server and of a device at chosen byte offsets of a push or a pull and during a save,
//! link cuts at random byte offsets either way, duplicated and replayed requests, a server
//! restored from an older backup, a device disk full during a save and during a sync (a real
//! tmpfs filled to its last bytes), device clocks years off (libfaketime), a device revoked
//! mid-sync.
//!
//! After the run every device syncs until quiet, then the checks: every save a device
//! acknowledged (its `suivi` command exited 0) is on the server and on every device whose user
//! may read the case; every device holds exactly its caseload, at the server's heads; the server
//! and every device open, and the server's stored history validates. Where a fault makes that
//! impossible by design, the run checks that it was reported and counts it (see
//! `Exception`). Anything else fails the run with its seed and its step log.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use automerge::ChangeHash;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use suivi_core::{CaseFilter, Store};
use suivi_server::storage::prelude::*;
use suivi_server::storage::CaseAccess;
use suivi_server::SqliteStore;

use crate::link::{self, Direction, LinkEmulator, PROFILE_LAN};
use crate::{Served, ServerSite};

/// The devices' database key (each device process gets it as SUIVI_KEY).
const KEY: &str = "sim device key";
/// Room for every device's store; the disk-full faults fill it to its last bytes.
const DEVICE_FS_BYTES: u64 = 96 * 1024 * 1024;
/// A device or server command that takes longer than this has hung: the run fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Every fault the simulation injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    KillDeviceInPush,
    KillDeviceInPull,
    KillDeviceInSave,
    KillServerInPush,
    KillServerInPull,
    CutUp,
    CutDown,
    DuplicateRequests,
    ReplayOldRequests,
    BackupServer,
    RestoreOlderBackup,
    DiskFullInSave,
    DiskFullInSync,
    RevokeMidSync,
}

impl Fault {
    pub const ALL: [Fault; 14] = [
        Fault::KillDeviceInPush,
        Fault::KillDeviceInPull,
        Fault::KillDeviceInSave,
        Fault::KillServerInPush,
        Fault::KillServerInPull,
        Fault::CutUp,
        Fault::CutDown,
        Fault::DuplicateRequests,
        Fault::ReplayOldRequests,
        Fault::BackupServer,
        Fault::RestoreOlderBackup,
        Fault::DiskFullInSave,
        Fault::DiskFullInSync,
        Fault::RevokeMidSync,
    ];
}

/// What a fault makes impossible by design, each checked to be reported, never silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Exception {
    /// Saves a device made and had not synced when it was revoked: wiped with it. Reported to
    /// the agent by the sync that found the revocation (`suivi sync` exits 6, "revoked").
    RevokedBeforeSync,
    /// A change the restored server lost and whose author device is gone (revoked): another
    /// device holds it but may not push someone else's change. Reported on that device as a
    /// `wrong_actor` refusal (`suivi problems`), its case kept pending.
    StrandedByRestore,
    /// A change the restored server lost, that no device still holding it may push (its author
    /// was revoked, nobody else pulled it). Reported to the admin by the restored server at its
    /// start (the journalled revocation it applied again shows its database predates it), and
    /// to the agents whose phones saw the lost history (`server_reset` in their sync report).
    LostWithRestore,
    /// A device enrolled after the backup the server was restored from: the server no longer
    /// knows it, refuses it (401, no wipe), and an admin enrolls it again with a new code.
    EnrolledAfterBackup,
}

/// Counts over one or more runs.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub runs: u64,
    pub steps: u64,
    pub device_processes: u64,
    pub server_starts: u64,
    /// Faults injected (a hold or cut that was reached, a kill that struck).
    pub faults: BTreeMap<Fault, u64>,
    /// Faults armed whose point the operation never reached (a request shorter than the cut).
    pub faults_not_reached: BTreeMap<Fault, u64>,
    /// Device operations run under a clock years off.
    pub skewed_clock_operations: u64,
    pub saves_acknowledged: u64,
    /// Saves killed before they answered: all or nothing of each is on the device afterwards.
    pub saves_killed: u64,
    pub saves_refused_disk_full: u64,
    pub syncs_completed: u64,
    pub syncs_failed: u64,
    pub replayed_requests: u64,
    /// (acknowledged save, place it must be) pairs checked at the end.
    pub records_checked: u64,
    pub records_lost: u64,
    pub exceptions: BTreeMap<Exception, u64>,
    pub elapsed: Duration,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.runs += other.runs;
        self.steps += other.steps;
        self.device_processes += other.device_processes;
        self.server_starts += other.server_starts;
        for (k, v) in &other.faults {
            *self.faults.entry(*k).or_default() += v;
        }
        for (k, v) in &other.faults_not_reached {
            *self.faults_not_reached.entry(*k).or_default() += v;
        }
        self.skewed_clock_operations += other.skewed_clock_operations;
        self.saves_acknowledged += other.saves_acknowledged;
        self.saves_killed += other.saves_killed;
        self.saves_refused_disk_full += other.saves_refused_disk_full;
        self.syncs_completed += other.syncs_completed;
        self.syncs_failed += other.syncs_failed;
        self.replayed_requests += other.replayed_requests;
        self.records_checked += other.records_checked;
        self.records_lost += other.records_lost;
        for (k, v) in &other.exceptions {
            *self.exceptions.entry(*k).or_default() += v;
        }
        self.elapsed += other.elapsed;
    }

    pub fn faults_injected(&self) -> u64 {
        self.faults.values().sum()
    }
}

/// A run that broke a guarantee: its seed, what broke, and what happened before.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub message: String,
    pub log: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "seed {}: {}\nrerun it alone with SUIVI_SIM_SEEDS={}",
            self.seed, self.message, self.seed
        )?;
        writeln!(f, "steps:")?;
        for line in &self.log {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// A binary of this workspace, beside the running test or tool (`target/<profile>/`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let mut dir = exe.parent().map(Path::to_path_buf);
    while let Some(d) = dir {
        let candidate = d.join(name);
        if candidate.exists() {
            return candidate;
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    panic!(
        "{name} is missing beside {}: run `cargo build` first",
        exe.display()
    );
}

/// Runs one seed of `steps` steps.
pub fn run_seed(seed: u64, steps: usize) -> Result<Tally, Failure> {
    let started = Instant::now();
    let mut world = match World::new(seed) {
        Ok(world) => world,
        Err(message) => {
            return Err(Failure {
                seed,
                message,
                log: Vec::new(),
            })
        }
    };
    let result = world.run(steps).and_then(|()| world.finish());
    world.tally.elapsed = started.elapsed();
    match result {
        Ok(()) => Ok(world.tally.clone()),
        Err(message) => Err(Failure {
            seed,
            message,
            log: std::mem::take(&mut world.log),
        }),
    }
}

/// A small filesystem of its own (needs root), so a disk can really be full; unmounted when
/// dropped.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(bytes: u64) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0700"))
            .arg("suivi-sim")
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "the simulation mounts a small tmpfs to fill a device's disk for real, and needs \
                 root for it: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills it with a ballast file, leaving `leave` bytes free; returns the ballast's path.
    pub fn fill(&self, leave: u64) -> Result<PathBuf, String> {
        let path = self.path().join("ballast");
        let mut file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
        let block = vec![0u8; 64 * 1024];
        let mut written: u64 = 0;
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => return Err(e.to_string()),
            }
        }
        file.set_len(written.saturating_sub(leave))
            .map_err(|e| e.to_string())?;
        Ok(path)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// One phone: its store on the tmpfs, its user, its clock.
struct Device {
    user: String,
    name: String,
    db: PathBuf,
    /// libfaketime's offset for this phone's clock ("+1095d"), if it is off.
    clock: Option<String>,
    device_id: String,
    enrolled_at_step: usize,
    /// The step of this phone's last completed sync: every save before it was pushed.
    synced_at_step: Option<usize>,
    revoked: bool,
}

/// One save a device acknowledged: the case and the change hashes it left at its heads.
struct Ack {
    device: usize,
    case_id: String,
    heads: Vec<ChangeHash>,
    step: usize,
}

enum Save {
    New,
    Edit,
    Refer,
    Followup,
}

struct World {
    rng: StdRng,
    runtime: tokio::runtime::Runtime,
    site: ServerSite,
    server: Option<Served>,
    addr: SocketAddr,
    link: LinkEmulator,
    fs: Tmpfs,
    work: tempfile::TempDir,
    devices: Vec<Device>,
    acks: Vec<Ack>,
    /// The data directory copied at a backup, and the step it was taken at.
    backup: Option<(PathBuf, usize)>,
    /// Requests captured on the link, for later replays.
    captured: Vec<Vec<u8>>,
    step: usize,
    /// A device's sync reported that the server had lost history (`server_reset`).
    reset_reported: bool,
    /// Input files written so far (each save reads its record from one).
    inputs: usize,
    tally: Tally,
    log: Vec<String>,
}

const TEAM: &str = "souk-sebt";
const OTHER_TEAM: &str = "sikasso";

impl World {
    fn new(seed: u64) -> Result<World, String> {
        if !Path::new(LIBFAKETIME).exists() {
            return Err(format!(
                "{LIBFAKETIME} is missing: the simulation runs phones with clocks years off \
                 under libfaketime (apt install faketime)"
            ));
        }
        let fs = Tmpfs::mount(DEVICE_FS_BYTES)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
        let link = runtime
            .block_on(LinkEmulator::start(addr, PROFILE_LAN))
            .map_err(|e| e.to_string())?;
        // Every device connection is recorded, for duplicates and replays later.
        link.capture(true);
        let mut world = World {
            rng: StdRng::seed_from_u64(seed),
            runtime,
            site: ServerSite::new(),
            server: None,
            addr,
            link,
            fs,
            work: tempfile::tempdir().map_err(|e| e.to_string())?,
            devices: Vec::new(),
            acks: Vec::new(),
            backup: None,
            captured: Vec::new(),
            step: 0,
            reset_reported: false,
            inputs: 0,
            tally: Tally {
                runs: 1,
                ..Tally::default()
            },
            log: Vec::new(),
        };
        for (user, role, team) in [
            ("amina", "agent", TEAM),
            ("youssef", "agent", TEAM),
            ("fatima", "supervisor", TEAM),
            ("moussa", "agent", OTHER_TEAM),
        ] {
            world.admin(&["user", "add", user, "--role", role, "--team", team])?;
        }
        world.start_server()?;
        // Clocks: the seed puts one or two phones years off, either way.
        let offsets = ["+1095d", "-730d", "+3650d", "-1825d"];
        let mut skewed: Vec<usize> = (0..4).collect();
        skewed.shuffle(&mut world.rng);
        let skewed_count = world.rng.gen_range(1..=2);
        let skewed = skewed[..skewed_count].to_vec();
        for (i, user) in ["amina", "youssef", "fatima", "moussa"].iter().enumerate() {
            let clock = skewed
                .contains(&i)
                .then(|| offsets[world.rng.gen_range(0..offsets.len())].to_string());
            world.new_device(user, clock)?;
        }
        Ok(world)
    }

    fn note(&mut self, line: String) {
        let step = if self.step == usize::MAX {
            "end".to_string()
        } else {
            self.step.to_string()
        };
        self.log.push(format!("[{step}] {line}"));
    }

    // ---- the server ------------------------------------------------------------------------

    fn admin(&mut self, args: &[&str]) -> Result<String, String> {
        let out = run_with_timeout(self.site.command(args))?;
        if !out.status.success() {
            return Err(format!(
                "suivi-server {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn start_server(&mut self) -> Result<(), String> {
        if self.server.is_some() {
            return Ok(());
        }
        // After a kill -9 the port may linger a moment; the server must come back regardless.
        let started = Instant::now();
        let log_path = self.work.path().join("server.log");
        loop {
            // The server's log, kept across restarts: what it tells the admin is checked.
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|e| e.to_string())?;
            let mut child = self
                .site
                .command(&["serve", "--listen", &self.addr.to_string()])
                .env("NO_COLOR", "1")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| e.to_string())?;
            loop {
                if std::net::TcpStream::connect(self.addr).is_ok() {
                    self.tally.server_starts += 1;
                    self.server = Some(Served {
                        child,
                        addr: self.addr,
                    });
                    return Ok(());
                }
                if let Ok(Some(status)) = child.try_wait() {
                    if started.elapsed() > Duration::from_secs(20) {
                        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                        let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join("\n");
                        return Err(format!(
                            "the server does not start again ({status}): {tail}"
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    break;
                }
                if started.elapsed() > Duration::from_secs(30) {
                    let _ = child.kill();
                    return Err("the server does not listen after 30 s".into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Whether the server told its admin, at a start, that its database is older than
    /// decisions it had journalled (restored from a backup).
    fn server_reported_restore(&self) -> bool {
        std::fs::read_to_string(self.work.path().join("server.log"))
            .is_ok_and(|log| log.contains("restored from a backup"))
    }

    fn kill_server(&mut self) {
        if let Some(mut served) = self.server.take() {
            let _ = served.child.kill();
            let _ = served.child.wait();
        }
    }

    /// The server process is alive (it never dies of what a device sends).
    fn check_server_alive(&mut self, after: &str) -> Result<(), String> {
        if let Some(served) = self.server.as_mut() {
            if let Ok(Some(status)) = served.child.try_wait() {
                return Err(format!("the server died ({status}) after {after}"));
            }
        }
        Ok(())
    }

    // ---- devices ---------------------------------------------------------------------------

    fn new_device(&mut self, user: &str, clock: Option<String>) -> Result<usize, String> {
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

    fn enroll(&mut self, index: usize) -> Result<(), String> {
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

    fn active_devices(&self) -> Vec<usize> {
        (0..self.devices.len())
            .filter(|&i| !self.devices[i].revoked)
            .collect()
    }

    fn command_for(&mut self, index: usize, args: &[&str]) -> Command {
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

    fn device_command(&mut self, index: usize, args: &[&str]) -> Result<Output, String> {
        let command = self.command_for(index, args);
        run_with_timeout(command)
    }

    fn spawn_device(&mut self, index: usize, args: &[&str]) -> Result<Child, String> {
        let mut command = self.command_for(index, args);
        command.spawn().map_err(|e| e.to_string())
    }

    /// The harness's own look into a device's store (no device process is running then).
    fn peek<T>(&self, index: usize, f: impl FnOnce(&Store) -> T) -> Result<T, String> {
        let store = Store::open(&self.devices[index].db, KEY)
            .map_err(|e| format!("{} does not open: {e}", self.devices[index].name))?;
        Ok(f(&store))
    }

    fn case_ids(&self, index: usize) -> Result<Vec<String>, String> {
        self.peek(index, |s| {
            s.list_cases(&CaseFilter::default())
                .map(|rows| rows.into_iter().map(|r| r.case_id).collect::<Vec<_>>())
                .map_err(|e| e.to_string())
        })?
    }

    fn heads_on_device(&self, index: usize, case_id: &str) -> Result<Vec<ChangeHash>, String> {
        self.peek(index, |s| match s.load_doc(case_id) {
            Ok(Some(mut doc)) => Ok(doc.heads()),
            Ok(None) => Err(format!("case {case_id} is not on the device")),
            Err(e) => Err(e.to_string()),
        })?
    }

    fn write_input(&mut self, value: &Value) -> Result<PathBuf, String> {
        self.inputs += 1;
        let path = self.work.path().join(format!("input-{}.json", self.inputs));
        std::fs::write(&path, value.to_string()).map_err(|e| e.to_string())?;
        Ok(path)
    }

    /// Prepares a save's command line: a new child, or an edit, referral or visit on a case the
    /// device holds.
    fn save_args(&mut self, index: usize) -> Result<(Vec<String>, Option<String>), String> {
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
    fn acknowledge(&mut self, index: usize, case_id: &str) -> Result<(), String> {
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
    fn save(&mut self, index: usize) -> Result<SaveOutcome, String> {
        let (args, case) = self.save_args(index)?;
        let outcome = self.run_save(index, &args, case)?;
        self.settle_save(index, outcome)
    }

    /// Runs a prepared save; nothing here reads the device's store (its disk may be full).
    fn run_save(
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

    fn settle_save(
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
    fn sync(&mut self, index: usize) -> Result<SyncOutcome, String> {
        let child = self.spawn_device(index, &["sync"])?;
        let out = wait_with_timeout(child)?;
        self.sync_outcome(index, out)
    }

    fn sync_outcome(&mut self, index: usize, out: Output) -> Result<SyncOutcome, String> {
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
    fn held_sync(
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
    fn cut_sync(&mut self, fault: Fault, index: usize, direction: Direction) -> Result<(), String> {
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
    fn offset(&mut self) -> u64 {
        if self.rng.gen_bool(0.75) {
            self.rng.gen_range(0..250)
        } else {
            self.rng.gen_range(0..6000)
        }
    }

    fn count(&mut self, fault: Fault, reached: bool) {
        let map = if reached {
            &mut self.tally.faults
        } else {
            &mut self.tally.faults_not_reached
        };
        *map.entry(fault).or_default() += 1;
    }

    fn has_pending(&self, index: usize) -> Result<bool, String> {
        self.peek(index, |s| s.unsynced_case_count().map(|n| n > 0))?
            .map_err(|e| e.to_string())
    }

    // ---- the run ---------------------------------------------------------------------------

    fn run(&mut self, steps: usize) -> Result<(), String> {
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

    fn inject(&mut self, fault: Fault, index: usize) -> Result<(), String> {
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
    fn keep_captured(&mut self) {
        self.captured.extend(self.link.take_captured());
        let excess = self.captured.len().saturating_sub(32);
        self.captured.drain(..excess);
    }

    fn replay(&mut self, sent: &[u8]) -> Result<(), String> {
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
    fn kill_device_in_save(&mut self, index: usize) -> Result<(), String> {
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

    fn restore(&mut self) -> Result<(), String> {
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
    fn revoke_mid_sync(&mut self, index: usize) -> Result<(), String> {
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
    fn fill_disk(&mut self, leave: u64) -> Result<PathBuf, String> {
        let path = self.fs.fill(leave)?;
        self.note(format!("disk filled, {leave} bytes left"));
        Ok(path)
    }

    /// The device's store opens and answers (`suivi case list` exits 0).
    fn check_opens(&mut self, index: usize) -> Result<(), String> {
        let out = self.device_command(index, &["case", "list"])?;
        expect_success(&out, "case list").map(|_| ())
    }

    // ---- the end: quiet, then the checks ---------------------------------------------------

    fn finish(&mut self) -> Result<(), String> {
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

    fn check_acknowledged(&mut self, server: &ServerView) -> Result<(), String> {
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

    fn check_converged(&mut self, server: &ServerView) -> Result<(), String> {
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

enum SaveOutcome {
    Acknowledged,
    StorageFull,
}

enum SyncOutcome {
    Done(Value),
    Offline,
    Revoked,
    Refused(String),
    StorageFull,
    Killed,
}

impl std::fmt::Display for SyncOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncOutcome::Done(report) => write!(
                f,
                "done (up {} down {} refused {})",
                report["cases_up"],
                report["cases_down"],
                report["refused"].as_array().map_or(0, Vec::len)
            ),
            SyncOutcome::Offline => write!(f, "offline"),
            SyncOutcome::Revoked => write!(f, "revoked"),
            SyncOutcome::Refused(e) => write!(f, "refused: {}", e.trim()),
            SyncOutcome::StorageFull => write!(f, "storage full"),
            SyncOutcome::Killed => write!(f, "killed"),
        }
    }
}

/// What the server holds at the end, read from its database with its key.
struct ServerView {
    store: SqliteStore,
    heads: BTreeMap<String, Vec<ChangeHash>>,
    docs: HashMap<String, automerge::AutoCommit>,
    access: HashMap<String, CaseAccess>,
}

impl ServerView {
    fn read(site: &ServerSite) -> Result<ServerView, String> {
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

    fn holds(&self, case_id: &str, hashes: &[ChangeHash]) -> bool {
        holds(&self.docs, case_id, hashes)
    }

    fn may_read(&self, user: &str, case_id: &str) -> Result<bool, String> {
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
fn holds(
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
struct DeviceView {
    heads: BTreeMap<String, Vec<ChangeHash>>,
    docs: HashMap<String, automerge::AutoCommit>,
    refused: BTreeMap<String, String>,
}

impl DeviceView {
    fn read(device: &Device) -> Result<DeviceView, String> {
        let store = Store::open(&device.db, KEY)
            .map_err(|e| format!("{} does not open: {e}", device.name))?;
        let mut heads = BTreeMap::new();
        let mut docs = HashMap::new();
        for row in store
            .list_cases(&CaseFilter::default())
            .map_err(|e| e.to_string())?
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

    fn holds(&self, case_id: &str, hashes: &[ChangeHash]) -> bool {
        holds(&self.docs, case_id, hashes)
    }

    /// The server refused this phone's push of the case as someone else's changes: after a
    /// restore, the phone holds changes whose author is gone. Shown in `suivi problems`.
    fn stranded(&self, case_id: &str) -> bool {
        self.refused
            .get(case_id)
            .is_some_and(|r| r.starts_with("wrong_actor"))
    }
}

/// Changes stored and feed rows, counted in the server's database.
fn stored_counts(site: &ServerSite) -> Result<(i64, i64), String> {
    let conn = rusqlite::Connection::open(site.db()).map_err(|e| e.to_string())?;
    conn.pragma_update(None, "key", site.database_key())
        .map_err(|e| e.to_string())?;
    let count = |table: &str| -> Result<i64, String> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| e.to_string())
    };
    Ok((count("changes")?, count("feed")?))
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

fn is_storage_full(out: &Output) -> bool {
    String::from_utf8_lossy(&out.stderr).contains("storage is full")
}

fn expect_success(out: &Output, what: &str) -> Result<Value, String> {
    if !out.status.success() {
        return Err(format!(
            "suivi {what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("suivi {what} printed no JSON: {e}"))
}

fn run_with_timeout(mut command: Command) -> Result<Output, String> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    wait_with_timeout(child)
}

/// Waits for a process, reading its output on the side (a full pipe would stall it); kills it
/// and fails past `COMMAND_TIMEOUT`.
fn wait_with_timeout(child: Child) -> Result<Output, String> {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(COMMAND_TIMEOUT) {
        Ok(out) => out.map_err(|e| e.to_string()),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            Err(format!("a command hung for {COMMAND_TIMEOUT:?}"))
        }
    }
}

fn drop_ballast(path: &Path) -> Result<(), String> {
    std::fs::remove_file(path).map_err(|e| e.to_string())
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "cp: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Seeds from `SUIVI_SIM_SEEDS` ("7" or "0..50"), else `default`.
pub fn seeds_from_env(default: std::ops::Range<u64>) -> std::ops::Range<u64> {
    match std::env::var("SUIVI_SIM_SEEDS") {
        Ok(text) => parse_seeds(&text)
            .unwrap_or_else(|| panic!("SUIVI_SIM_SEEDS={text}: a seed or a range a..b")),
        Err(_) => default,
    }
}

pub fn parse_seeds(text: &str) -> Option<std::ops::Range<u64>> {
    match text.split_once("..") {
        Some((a, b)) => Some(a.trim().parse().ok()?..b.trim().parse().ok()?),
        None => {
            let seed: u64 = text.trim().parse().ok()?;
            Some(seed..seed + 1)
        }
    }
}

/// The tally as the Markdown table RELIABILITY.md keeps.
pub fn report(tally: &Tally) -> String {
    let mut out = String::new();
    let mut row = |k: &str, v: String| out.push_str(&format!("| {k} | {v} |\n"));
    row("runs (seeds)", tally.runs.to_string());
    row("steps", tally.steps.to_string());
    row("device processes", tally.device_processes.to_string());
    row(
        "of them under a clock years off",
        tally.skewed_clock_operations.to_string(),
    );
    row("server starts", tally.server_starts.to_string());
    row("saves acknowledged", tally.saves_acknowledged.to_string());
    row(
        "saves killed mid-way (all or nothing checked)",
        tally.saves_killed.to_string(),
    );
    row(
        "saves refused, disk full",
        tally.saves_refused_disk_full.to_string(),
    );
    row("syncs completed", tally.syncs_completed.to_string());
    row("syncs failed by a fault", tally.syncs_failed.to_string());
    row(
        "requests duplicated or replayed",
        tally.replayed_requests.to_string(),
    );
    for fault in Fault::ALL {
        let hit = tally.faults.get(&fault).copied().unwrap_or(0);
        let missed = tally.faults_not_reached.get(&fault).copied().unwrap_or(0);
        row(
            &format!("fault {fault:?}"),
            format!("{hit} injected, {missed} armed but not reached"),
        );
    }
    row("faults injected", tally.faults_injected().to_string());
    row(
        "acknowledged records checked (save × place)",
        tally.records_checked.to_string(),
    );
    row("records lost", tally.records_lost.to_string());
    for (exception, n) in &tally.exceptions {
        row(
            &format!("by design, reported: {exception:?}"),
            n.to_string(),
        );
    }
    row("time", format!("{:.1} s", tally.elapsed.as_secs_f64()));
    out
}
