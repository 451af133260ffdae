//! Support for the end-to-end tests and the benchmark: a real `suivi-server` on loopback,
//! enrolled devices with their own encrypted stores, and the link emulator between them.

pub mod bench;
pub mod dsim;
pub mod fuzz;
pub mod link;
pub mod sim;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use suivi_core::sync::protocol::{self, CaseChanges, SyncRequest, SyncResponse, CONTENT_TYPE};
use suivi_core::sync::{HttpTransport, SyncReport, Transport};
use suivi_core::{Record, Store};
use suivi_server::auth::CodeKey;
use suivi_server::storage::Role;
use suivi_server::{admin, SqliteStore};

pub const DEVICE_KEY: &str = "test device key";

/// A sync server in this process, on its own tokio runtime, with its SQLite store in a
/// temporary directory.
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<SqliteStore>,
    /// The enrollment-code secret this server hashes codes with.
    pub codes: CodeKey,
    pub runtime: tokio::runtime::Runtime,
    handle: tokio::task::JoinHandle<()>,
    /// The checkpoint journal the console verifies cases against (`checkpoint` writes one).
    pub checkpoints: Arc<suivi_server::evidence::Checkpointer>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(None, None)
    }

    /// `db` reuses a database file (a backup, say); `rate` sets the per-device (burst, per_sec).
    pub fn start_with(db: Option<&Path>, rate: Option<(u32, f64)>) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = db
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.path().join("server.db"));
        let store = Arc::new(SqliteStore::open(&path, None).expect("server store"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let codes = CodeKey::generate();
        let state = match rate {
            Some((burst, per_sec)) => {
                suivi_server::state_with_rate_limit(store.clone(), codes.clone(), burst, per_sec)
            }
            None => suivi_server::state(store.clone(), codes.clone()),
        };
        let checkpoints = Arc::new(
            suivi_server::evidence::Checkpointer::open(&dir.path().join("server.checkpoints"))
                .expect("checkpoint journal"),
        );
        let state = suivi_server::AppState {
            checkpoints: Some(checkpoints.clone()),
            ..state
        };
        let server = runtime
            .block_on(suivi_server::spawn(
                state,
                "127.0.0.1:0".parse().expect("addr"),
            ))
            .expect("server starts");
        TestServer {
            addr: server.addr,
            store,
            codes,
            runtime,
            handle: server.handle,
            checkpoints,
            dir,
        }
    }

    /// Journals where the feed and the audit log stand, as the serving server does each minute.
    pub fn checkpoint(&self) {
        self.checkpoints
            .checkpoint(self.store.as_ref(), chrono_now())
            .expect("checkpoint");
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A one-time enrollment code for `user`.
    pub fn code(&self, user: &str) -> String {
        admin::enrollment_code(self.store.as_ref(), &self.codes, user).expect("code")
    }

    pub fn add_user(&self, user: &str, role: Role, team: &str) {
        admin::add_user(self.store.as_ref(), user, role, team, None).expect("add user");
    }

    /// A new device for `user`, enrolled over HTTP with a fresh one-time code.
    pub fn device(&self, user: &str) -> TestDevice {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("device.db");
        let mut store =
            Store::create(&path, DEVICE_KEY, user, &format!("{user}-phone")).expect("device store");
        let code = self.code(user);
        let transport = HttpTransport::new(&self.url()).expect("transport");
        store
            .enroll(&transport, &self.url(), &code)
            .expect("enroll");
        TestDevice {
            store,
            url: self.url(),
            path,
            _dir: dir,
        }
    }

    /// The heads of a case as the server holds it.
    pub fn case_heads(&self, case_id: &str) -> Vec<automerge::ChangeHash> {
        use suivi_server::storage::prelude::*;
        let mut doc = automerge::AutoCommit::new();
        let changes: Vec<automerge::Change> = self
            .store
            .case_changes(case_id)
            .expect("changes")
            .into_iter()
            .map(|raw| automerge::Change::from_bytes(raw).expect("stored change decodes"))
            .collect();
        doc.apply_changes(changes).expect("apply");
        let mut heads = doc.get_heads();
        heads.sort();
        heads
    }

    pub fn stop(&self) {
        self.handle.abort();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

pub struct TestDevice {
    pub store: Store,
    pub url: String,
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestDevice {
    pub fn sync(&mut self) -> suivi_core::Result<SyncReport> {
        let url = self.url.clone();
        self.sync_via(&url)
    }

    pub fn sync_via(&mut self, url: &str) -> suivi_core::Result<SyncReport> {
        let transport = HttpTransport::new(url)?;
        self.store.sync(&transport, &mut |_| {})
    }

    /// Ids of every case the device holds (not the rows a first sync listed ahead of theirs).
    pub fn case_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .store
            .list_cases(&suivi_core::CaseFilter::default())
            .expect("list")
            .into_iter()
            .filter(|c| !c.arriving)
            .map(|c| c.case_id)
            .collect();
        ids.sort();
        ids
    }

    pub fn case_heads(&self, case_id: &str) -> Vec<automerge::ChangeHash> {
        let mut doc = self
            .store
            .load_doc(case_id)
            .expect("load")
            .expect("case present");
        let mut heads = doc.heads();
        heads.sort();
        heads
    }

    /// Writes this phone's store as an older app left it after pulling `case_id` with keys
    /// its checks did not know: nothing of the case saved, the case's changes (as `server`
    /// holds them) waiting, the case set aside with `reason`. What the updated app then does
    /// with it is the test.
    pub fn set_aside_as_an_older_app(&self, server: &TestServer, case_id: &str, reason: &str) {
        use suivi_server::storage::FeedStore;
        let conn = rusqlite::Connection::open(&self.path).expect("open");
        conn.pragma_update(None, "key", DEVICE_KEY).expect("key");
        conn.pragma_update(None, "foreign_keys", true)
            .expect("pragma");
        conn.execute("DELETE FROM case_docs WHERE case_id = ?1", [case_id])
            .expect("delete");
        for raw in server.store.case_changes(case_id).expect("changes") {
            conn.execute(
                "INSERT INTO pending_changes (case_id, data) VALUES (?1, ?2)",
                rusqlite::params![case_id, raw],
            )
            .expect("pending");
        }
        conn.execute(
            "INSERT INTO quarantine (case_id, reason, at) VALUES (?1, ?2, '')",
            [case_id, reason],
        )
        .expect("quarantine");
    }

    /// All changes held on the device, across cases.
    pub fn change_count(&self) -> usize {
        self.case_ids()
            .iter()
            .map(|id| {
                let mut doc = self.store.load_doc(id).expect("load").expect("present");
                doc.automerge().get_changes(&[]).len()
            })
            .sum()
    }
}

pub fn record(value: serde_json::Value) -> Record {
    serde_json::from_value(value).expect("a JSON object")
}

pub const FIRST_NAMES: [&str; 12] = [
    "Aïcha",
    "Fatoumata",
    "Mariam",
    "Khadija",
    "Salma",
    "Oumou",
    "Youssef",
    "Moussa",
    "Hamza",
    "Seydou",
    "Ibrahim",
    "Zineb",
];
pub const LAST_NAMES: [&str; 10] = [
    "Traoré",
    "Coulibaly",
    "Diarra",
    "Konaté",
    "Benali",
    "El Idrissi",
    "Ait Lahcen",
    "Sangaré",
    "Ouattara",
    "Amrani",
];
pub const VILLAGES: [&str; 8] = [
    "Kignan",
    "Misséni",
    "Kadiolo",
    "Zégoua",
    "Douar Ouled Ali",
    "Souk Sebt centre",
    "Lahrarta",
    "Fès",
];
/// The work sectors of the identification form, for varied test records.
pub const SECTORS: [&str; 6] = [
    "cotton",
    "artisanal_gold_mining",
    "crafts",
    "textile",
    "domestic_work",
    "street_work",
];

/// A realistic identification record, varied by `n`.
pub fn child(n: usize) -> Record {
    record(json!({
        "child_first_name": FIRST_NAMES[n % FIRST_NAMES.len()],
        "child_last_name": LAST_NAMES[(n / 3) % LAST_NAMES.len()],
        "sex": if n.is_multiple_of(2) { "female" } else { "male" },
        "dob_known": false, "estimated_age": 8 + (n % 10) as i64,
        "province": if n.is_multiple_of(2) { "Sikasso" } else { "Settat" },
        "commune": "Kadiolo", "village": VILLAGES[n % VILLAGES.len()],
        "school_status": "dropped_out", "school_level": "primary",
        "works": true, "work_sector": SECTORS[n % SECTORS.len()],
        "hazardous_conditions": ["heavy_loads", "long_hours"], "hours_per_week": 20 + (n % 30) as i64,
        "risk_level": (["low", "medium", "high", "critical"][n % 4]), "consent_to_share": true,
        "notes": format!("Enfant vu au marché le {}e jour; travaille avec un parent. Famille informée du programme.", n % 28 + 1)
    }))
}

pub fn referral(n: usize) -> Record {
    record(json!({
        "service_type": (["school_or_bridging_class", "health", "birth_registration", "social_protection"][n % 4]),
        "provider": (["Classe passerelle Kadiolo", "CSCOM Misséni", "Mairie de Kignan", "ONG Enfance"][n % 4]),
        "reason": "Déscolarisé et exposé à des travaux dangereux", "urgency": "priority", "consent": true
    }))
}

pub fn visit(n: usize) -> Record {
    record(json!({
        "visit_date": format!("2026-10-{:02}", n % 28 + 1), "visit_type": (["home", "school", "workplace", "phone"][n % 4]),
        "attends_school": (["yes", "irregular", "no"][n % 3]), "still_working": n.is_multiple_of(2),
        "hazardous_work_seen": if n.is_multiple_of(2) { serde_json::Value::Bool(n.is_multiple_of(4)) } else { serde_json::Value::Null },
        "risk_level_now": (["low", "medium", "high"][n % 3]), "next_visit_due": format!("2026-12-{:02}", n % 28 + 1),
        "notes": "Visite faite avec le parent; l'enfant dit aller à l'école trois jours par semaine."
    }))
}

/// A device's Automerge actor id.
pub fn actor_of(device: &TestDevice) -> automerge::ActorId {
    automerge::ActorId::from(hex::decode(&device.store.identity().actor).expect("hex actor"))
}

pub fn case_changes(case_id: &str, changes: Vec<Vec<u8>>) -> CaseChanges {
    CaseChanges {
        case_id: case_id.to_string(),
        changes: changes
            .into_iter()
            .map(serde_bytes::ByteBuf::from)
            .collect(),
    }
}

/// A sync request body as a device sends it: from `cursor` (no feed mark), pushing `push`.
pub fn sync_body(cursor: u64, push: Vec<CaseChanges>) -> Vec<u8> {
    protocol::encode(&SyncRequest::pushing(cursor, push)).expect("encode")
}

/// Pushes a batch with a device's credential, bypassing its store: what a hostile or buggy app
/// could send.
pub fn raw_sync(server: &TestServer, device: &TestDevice, push: Vec<CaseChanges>) -> SyncResponse {
    let transport = HttpTransport::new(&server.url()).expect("transport");
    let reply = transport
        .post(
            "/v1/sync",
            CONTENT_TYPE,
            sync_body(0, push),
            Some(&device.store.credentials().expect("enrolled")),
        )
        .expect("reply");
    assert_eq!(reply.status, 200);
    first_page(&reply.body)
}

/// The first page of a sync reply: the one page of a version 7 server's, or the first frame
/// of a stream (the one that answers the push).
pub fn first_page(body: &[u8]) -> SyncResponse {
    let pages = protocol::stream::pages(body).expect("a whole reply");
    protocol::decode_response(&pages[0]).expect("decode")
}

/// Pushes one case's raw changes.
pub fn raw_push(
    server: &TestServer,
    device: &TestDevice,
    case_id: &str,
    changes: Vec<Vec<u8>>,
) -> SyncResponse {
    raw_sync(server, device, vec![case_changes(case_id, changes)])
}

/// The `suivi-server` binary beside the test binaries or tools (built first by
/// `tests/run-all.sh`).
pub fn server_binary() -> PathBuf {
    sim::workspace_binary("suivi-server")
}

/// One data directory and its key file, side by side in a temporary directory.
pub struct ServerSite {
    pub root: tempfile::TempDir,
    /// `--database`: none for the embedded SQLite store.
    pub database: Option<String>,
}

impl ServerSite {
    pub fn new() -> ServerSite {
        ServerSite {
            root: tempfile::tempdir().expect("test harness"),
            database: None,
        }
    }

    /// A site whose data lives in a PostgreSQL database (its data directory keeps only this
    /// host's journals).
    pub fn on_postgres(url: &str) -> ServerSite {
        ServerSite {
            database: Some(url.to_string()),
            ..ServerSite::new()
        }
    }

    /// Another host serving the same database: a data directory of its own and a copy of this
    /// site's key file, as an operator deploys a second instance.
    pub fn another_instance(&self) -> ServerSite {
        let other = ServerSite {
            database: self.database.clone(),
            ..ServerSite::new()
        };
        std::fs::copy(self.key_file(), other.key_file()).expect("copy the key file");
        other
    }
    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }
    pub fn key_file(&self) -> PathBuf {
        self.root.path().join("data.key")
    }
    pub fn db(&self) -> PathBuf {
        self.data().join(suivi_server::DATABASE_FILE)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(server_binary());
        command
            .arg("--data")
            .arg(self.data())
            .arg("--key-file")
            .arg(self.key_file());
        if let Some(database) = &self.database {
            command.arg("--database").arg(database);
        }
        command
            .args(args)
            .env_remove("SUIVI_SERVER_KEY")
            .env("RUST_LOG", "warn");
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("test harness")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("test harness")
    }

    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8(out.stderr).expect("test harness")
    }

    pub fn serve(&self) -> Served {
        self.serve_with(&[])
    }

    /// `serve` with more options.
    pub fn serve_with(&self, options: &[&str]) -> Served {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("test harness")
            .local_addr()
            .expect("test harness")
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("test harness");
        let child = self
            .command(&[&["serve", "--listen", &addr.to_string()], options].concat())
            .spawn()
            .expect("test harness");
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "no server");
            std::thread::sleep(Duration::from_millis(50));
        }
        Served { child, addr }
    }
}

impl Default for ServerSite {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerSite {
    /// The database key from the key file, as `PRAGMA key` takes it.
    pub fn database_key(&self) -> String {
        let text = std::fs::read_to_string(self.key_file()).expect("key file");
        let hex = text
            .lines()
            .find_map(|l| l.strip_prefix("database-key = "))
            .expect("database-key");
        format!("x'{hex}'")
    }
}

/// Every byte a SQLCipher database holds, decrypted: the log checkpointed into it, vacuumed
/// (so free pages are gone, as a careful attacker with the key would not find them either),
/// then exported in plaintext. What a scan for a child's name reads.
pub fn decrypted_contents(db: &Path, key: &str) -> Vec<u8> {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.pragma_update(None, "key", key).expect("key");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    conn.execute_batch("VACUUM").expect("vacuum");
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("plain.db");
    conn.execute(
        "ATTACH DATABASE ?1 AS plain KEY ''",
        [plain.to_string_lossy()],
    )
    .expect("attach");
    conn.query_row("SELECT sqlcipher_export('plain')", [], |_| Ok(()))
        .expect("export");
    conn.execute_batch("DETACH DATABASE plain").expect("detach");
    std::fs::read(&plain).expect("read export")
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A `suivi-server serve` process, killed when dropped.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Served {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
