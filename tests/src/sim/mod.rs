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

mod checks;
mod devices;
mod faults;
mod process;
mod server;
use process::*;

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
