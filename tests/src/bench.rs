//! The benchmark's scenarios, each against a real `suivi-server` process through the link
//! emulator: first sync, incremental sync, "anything new?", a first sync with the link cut every
//! 20 s, a busy server, and local operations on a large caseload.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value as Json};
use suivi_core::sync::{protocol, HttpTransport, SyncReport};
use suivi_core::{CaseFilter, Store};
use suivi_server::admin;
use suivi_server::at_rest::{KeySource, OpenedStore};
use suivi_server::auth::CodeKey;
use suivi_server::storage::{Quota, Role};
use suivi_server::ServerStore;

use crate::link::{LinkEmulator, LinkProfile};
use crate::{child, record, referral, visit};

/// A raw 256-bit SQLCipher key (no passphrase derivation), as the Android app passes the key it
/// keeps in the Keystore.
pub const BENCH_KEY: &str = "x'2DD29CA851E7B56E4697B0E1F08507293D761A05CE4D1B628663F411A8086D99'";

/// A `suivi-server` child process with its own data directory, encrypted as in production
/// under a key file in a directory of its own.
pub struct ServerProcess {
    child: Child,
    pub key_file: PathBuf,
    pub addr: SocketAddr,
    pub store: Arc<dyn ServerStore>,
    pub codes: CodeKey,
    pub data: tempfile::TempDir,
    pub keys: tempfile::TempDir,
    _opened: OpenedStore,
}

impl ServerProcess {
    pub fn start(binary: &Path) -> Result<ServerProcess, String> {
        Self::start_on(binary, None, None)
    }

    /// An instance on a PostgreSQL database (`database`), given the key file of the instances
    /// already serving it (`key_file`), or the embedded SQLite store with `None`.
    pub fn start_on(
        binary: &Path,
        database: Option<&str>,
        key_file: Option<&Path>,
    ) -> Result<ServerProcess, String> {
        let data = tempfile::tempdir().map_err(|e| e.to_string())?;
        let keys = tempfile::tempdir().map_err(|e| e.to_string())?;
        let key_file = key_file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| keys.path().join("server.key"));
        // A port reserved here is free again once the reservation is dropped, so another
        // process may take it first (a server of an earlier test still shutting down): the
        // server is started again on another port if it exits before it answers, or right after.
        let mut tries = 0;
        let (child, addr) = loop {
            tries += 1;
            let (mut child, addr) = Self::spawn(binary, database, data.path(), &key_file)?;
            if Self::answers(&mut child, addr)? {
                break (child, addr);
            }
            if tries == 3 {
                return Err("suivi-server exited at start three times".into());
            }
        };
        let keys_of = KeySource::File(key_file.clone());
        let opened = match database {
            Some(url) => suivi_server::at_rest::open_postgres(url, data.path(), &keys_of),
            None => suivi_server::at_rest::open(data.path(), &keys_of),
        }
        .map_err(|e| e.to_string())?;
        Ok(ServerProcess {
            child,
            key_file,
            addr,
            store: opened.store.clone(),
            codes: opened.codes.clone(),
            data,
            keys,
            _opened: opened,
        })
    }

    /// Spawns the server on a port free a moment ago.
    fn spawn(
        binary: &Path,
        database: Option<&str>,
        data: &Path,
        key_file: &Path,
    ) -> Result<(Child, SocketAddr), String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .map_err(|e: std::net::AddrParseError| e.to_string())?;
        let child = Command::new(binary)
            .args(
                database
                    .map(|url| ["--database", url])
                    .into_iter()
                    .flatten(),
            )
            .args([
                "--data",
                &data.display().to_string(),
                "--key-file",
                &key_file.display().to_string(),
                "serve",
                "--listen",
                &addr.to_string(),
                // Every phone of the benchmark comes from 127.0.0.1, as a room of phones
                // behind one Wi-Fi on a training day.
                "--enroll-burst",
                "100000",
                // The link emulator is one address for every phone, as a load balancer is.
                "--connections-per-ip",
                "512",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            // SUIVI_BENCH_SERVER_STDERR=1 shows the server's warnings, to find where time goes.
            .stderr(if std::env::var_os("SUIVI_BENCH_SERVER_STDERR").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        Ok((child, addr))
    }

    /// Whether the spawned server answers and is still running just after (`false`: it
    /// exited, its port was another's); an error if it never answers.
    fn answers(child: &mut Child, addr: SocketAddr) -> Result<bool, String> {
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if child.try_wait().map_err(|e| e.to_string())?.is_some() {
                return Ok(false);
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err("suivi-server did not start".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        Ok(child.try_wait().map_err(|e| e.to_string())?.is_none())
    }

    /// The process's peak resident memory so far (VmHWM), in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// User and system CPU seconds the server process has used.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
            .sum();
        ticks / clock_ticks_per_second()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Where device databases go: the machine's temporary directory, on disk, so saves pay for
/// their fsync as on a phone's flash.
pub fn devices_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

pub fn enroll(server: &ServerProcess, dir: &Path, user: &str, url: &str) -> Result<Store, String> {
    let mut store = Store::create(
        &dir.join(format!("{user}.db")),
        BENCH_KEY,
        user,
        &format!("{user}-phone"),
    )
    .map_err(|e| e.to_string())?;
    let code = admin::enrollment_code(server.store.as_ref(), &server.codes, user)?;
    let transport = HttpTransport::new(url).map_err(|e| e.to_string())?;
    let enrolled = store
        .enroll(&transport, url, &code)
        .map_err(|e| e.to_string())?;
    // The benchmark seeds whole caseloads from one phone: above the daily defaults, as an
    // admin would allow for an import.
    server
        .store
        .set_device_quota(
            &enrolled.device_id,
            Some(Quota {
                new_cases_per_day: 1_000_000,
                bytes_per_day: 64 << 30,
            }),
            chrono_now(),
        )
        .map_err(|e| e.to_string())?;
    Ok(store)
}

pub fn sync(store: &mut Store, url: &str) -> Result<SyncReport, String> {
    let transport = HttpTransport::new(url).map_err(|e| e.to_string())?;
    store
        .sync(&transport, &mut |_| {})
        .map_err(|e| e.to_string())
}

/// A caseload as an import: each child with one referral and two follow-up visits.
pub fn caseload(first: usize, count: usize) -> Json {
    let cases: Vec<Json> = (first..first + count)
        .map(|n| {
            json!({
                "identification": child(n),
                "referrals": [referral(n)],
                "followups": [visit(n), visit(n + 7)],
            })
        })
        .collect();
    json!({"cases": cases})
}

/// Seeds a team's caseload on the server: an agent records `count` cases and syncs (on loopback,
/// unshaped). Returns the agent's device.
pub fn seed_team(
    server: &ServerProcess,
    dir: &Path,
    team: &str,
    count: usize,
) -> Result<Store, String> {
    let agent = format!("agent-{team}");
    admin::add_user(server.store.as_ref(), &agent, Role::Agent, team, None)?;
    admin::add_user(
        server.store.as_ref(),
        &format!("sup-{team}"),
        Role::Supervisor,
        team,
        None,
    )?;
    let url = format!("http://{}", server.addr);
    let mut store = enroll(server, dir, &agent, &url)?;
    for start in (0..count).step_by(1000) {
        store
            .import(&caseload(start, 1000.min(count - start)))
            .map_err(|e| e.to_string())?;
    }
    sync(&mut store, &url)?;
    Ok(store)
}

/// zstd-compressed size of every change on a device: the floor bytes on the wire compare with.
pub fn changes_floor(store: &Store) -> Result<usize, String> {
    let mut raw: Vec<Vec<u8>> = Vec::new();
    for case in store
        .list_cases(&CaseFilter::default())
        .map_err(|e| e.to_string())?
    {
        let mut doc = store
            .load_doc(&case.case_id)
            .map_err(|e| e.to_string())?
            .ok_or("case vanished")?;
        raw.extend(doc.changes_since(&[]));
    }
    let slices: Vec<&[u8]> = raw.iter().map(Vec::as_slice).collect();
    Ok(protocol::compressed_changes_size(&slices))
}

/// What a device received, in each candidate encoding, zstd-compressed as one stream: the
/// table issue 29 asks for (BENCHMARKS.md, "Encodings of a first sync").
#[derive(Debug, Clone, Serialize)]
pub struct Encodings {
    pub cases: usize,
    /// Every change chunk, as the protocol sends them today (zstd level 9).
    pub changes: usize,
    /// Each case's document in Automerge's format without its own compression, all in one
    /// zstd stream (level 9), so repeated keys and actors compress across cases.
    pub documents: usize,
    /// The same documents at zstd's level 19 (the protocol compresses at 9): what a slower
    /// compressor would save.
    pub documents_zstd19: usize,
    /// The same documents with Automerge's own DEFLATE, then zstd: what `save()` gives.
    pub documents_deflated: usize,
    /// The information: the JSON of each case's current state (identification, referrals,
    /// visits), zstd at levels 3 and 19.
    pub state_zstd3: usize,
    pub state_zstd19: usize,
}

/// Measures [`Encodings`] over every case a device holds.
pub fn encodings(store: &Store) -> Result<Encodings, String> {
    let zstd = |bytes: &[u8], level: i32| {
        zstd::bulk::compress(bytes, level)
            .map(|c| c.len())
            .map_err(|e| e.to_string())
    };
    let (mut changes, mut documents, mut deflated, mut state) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let cases = store
        .list_cases(&CaseFilter::default())
        .map_err(|e| e.to_string())?;
    for case in &cases {
        let mut doc = store
            .load_doc(&case.case_id)
            .map_err(|e| e.to_string())?
            .ok_or("case vanished")?;
        changes.extend(doc.changes_since(&[]).concat());
        documents.extend(doc.automerge().save_nocompress());
        deflated.extend(doc.save());
        let detail = store.case(&case.case_id).map_err(|e| e.to_string())?;
        serde_json::to_writer(
            &mut state,
            &json!({
                "case_id": case.case_id,
                "identification": detail.identification,
                "referrals": detail.referrals,
                "followups": detail.followups,
            }),
        )
        .map_err(|e| e.to_string())?;
        state.push(b'\n');
    }
    Ok(Encodings {
        cases: cases.len(),
        changes: zstd(&changes, protocol::ZSTD_LEVEL)?,
        documents: zstd(&documents, protocol::ZSTD_LEVEL)?,
        documents_zstd19: zstd(&documents, 19)?,
        documents_deflated: zstd(&deflated, protocol::ZSTD_LEVEL)?,
        state_zstd3: zstd(&state, 3)?,
        state_zstd19: zstd(&state, 19)?,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub scenario: String,
    pub profile: String,
    pub runs: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub round_trips: usize,
    /// zstd-compressed size of the changes themselves, where it applies.
    pub floor_bytes: Option<usize>,
    pub target: String,
    pub met: Option<bool>,
    pub note: String,
}

pub fn summarise(times_ms: &mut [f64]) -> (f64, f64, f64) {
    times_ms.sort_by(|a, b| a.total_cmp(b));
    let n = times_ms.len();
    if n == 0 {
        return (0.0, 0.0, 0.0);
    }
    let median = if n % 2 == 1 {
        times_ms[n / 2]
    } else {
        (times_ms[n / 2 - 1] + times_ms[n / 2]) / 2.0
    };
    (median, times_ms[0], times_ms[n - 1])
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Times `f` `runs` times.
pub fn time_runs<T>(
    runs: usize,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<(Vec<f64>, Vec<T>), String> {
    let mut times = Vec::with_capacity(runs);
    let mut outs = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        outs.push(f()?);
        times.push(ms(started.elapsed()));
    }
    Ok((times, outs))
}

pub struct Link {
    pub emulator: LinkEmulator,
    pub runtime: tokio::runtime::Runtime,
}

impl Link {
    pub fn start(target: SocketAddr, profile: LinkProfile) -> Result<Link, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let emulator = runtime
            .block_on(LinkEmulator::start(target, profile))
            .map_err(|e| e.to_string())?;
        Ok(Link { emulator, runtime })
    }

    pub fn url(&self) -> String {
        self.emulator.url()
    }
}

/// Peak resident memory of this process, from /proc (kB).
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn device_path(dir: &Path, user: &str) -> PathBuf {
    dir.join(format!("{user}.db"))
}

pub fn edit_followups(store: &mut Store, count: usize) -> Result<(), String> {
    let cases = store
        .list_cases(&CaseFilter {
            limit: Some(count),
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
    for (i, case) in cases.iter().enumerate() {
        store
            .add_followup(&case.case_id, &visit(i + 3))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub fn village_edit(n: usize) -> suivi_core::Record {
    record(json!({"hours_per_week": (n % 60) as i64}))
}
