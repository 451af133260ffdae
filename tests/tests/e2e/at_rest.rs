//! The server at rest, through the real `suivi-server` binary: encrypted by default under a key
//! file kept outside the data directory, private file modes, a missing or wrong key refused
//! without touching the data, and a plaintext database from an older server encrypted in place
//! with nothing lost.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use suivi_server::storage::prelude::*;
use suivi_server::storage::Role;
use suivi_tests::{child, server_binary, ServerSite, TestServer};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every byte the data directory holds, file by file.
fn data_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

#[test]
fn a_new_server_is_encrypted_under_a_key_file_kept_outside_its_data() {
    let site = ServerSite::new();
    site.ok(&[
        "user",
        "add",
        "aminata-traore",
        "--role",
        "agent",
        "--team",
        "sikasso",
    ]);
    site.ok(&["device", "code", "aminata-traore"]);

    assert_eq!(mode(&site.key_file()), 0o600);
    assert_eq!(mode(&site.data()), 0o700);
    assert_eq!(mode(&site.db()), 0o600);
    let bytes = data_bytes(&site.data());
    assert!(!contains(&bytes, b"SQLite format 3"));
    assert!(!contains(&bytes, b"aminata-traore"), "a user id in clear");
    // The data directory alone does not open.
    let conn = rusqlite::Connection::open(site.db()).unwrap();
    assert!(conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r
            .get::<_, i64>(0))
        .is_err());
    drop(conn);
    // With its key file it does, every time.
    assert!(site.ok(&["device", "list"]).is_empty());

    // Without the key file: a clear error, no new key, and the database untouched.
    let before = std::fs::read(site.db()).unwrap();
    let key = std::fs::read(site.key_file()).unwrap();
    std::fs::remove_file(site.key_file()).unwrap();
    let err = site.fails(&["device", "list"]);
    assert!(err.contains("key file") && err.contains("missing"), "{err}");
    assert!(!site.key_file().exists(), "a new key was made");
    assert_eq!(std::fs::read(site.db()).unwrap(), before);

    // Another server's key: refused as a wrong key, data untouched.
    let other = ServerSite::new();
    other.ok(&["device", "list"]);
    std::fs::copy(other.key_file(), site.key_file()).unwrap();
    let err = site.fails(&["device", "list"]);
    assert!(err.contains("does not open this database"), "{err}");
    assert_eq!(std::fs::read(site.db()).unwrap(), before);

    // The right key back: everything is there.
    std::fs::write(site.key_file(), key).unwrap();
    site.ok(&["device", "code", "aminata-traore"]);

    // A key file inside the data directory is refused before anything is written.
    let inside = site.data().join("k.key");
    let out = Command::new(server_binary())
        .arg("--data")
        .arg(site.data())
        .arg("--key-file")
        .arg(&inside)
        .args(["device", "list"])
        .env_remove("SUIVI_SERVER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside the data directory"));
}

#[test]
fn a_plaintext_database_from_an_older_server_is_encrypted_in_place_losing_nothing() {
    let site = ServerSite::new();
    std::fs::create_dir_all(site.data()).unwrap();
    // An older server: plaintext, files readable by everyone, a case synced, a code not yet used
    // (kept as a plain SHA-256, as older servers did).
    let (mut amina, case_id) = {
        let server = TestServer::start_with(Some(&site.db()), None);
        server.add_user("amina", Role::Agent, "souk-sebt");
        server.add_user("fatima", Role::Supervisor, "souk-sebt");
        let mut amina = server.device("amina");
        let case_id = amina.store.create_case(&child(1)).unwrap();
        amina.sync().unwrap();
        server
            .store
            .add_enrollment_code(
                &suivi_server::auth::sha256_hex("K7P2MX4QAB"),
                "fatima",
                chrono::Utc::now().timestamp() + 3600,
            )
            .unwrap();
        (amina, case_id)
    };
    std::fs::set_permissions(site.db(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = std::fs::read(site.db()).unwrap();
    assert!(before.starts_with(b"SQLite format 3\0"));

    // Started on it, the server says what to do and touches nothing.
    let err = site.fails(&["device", "list"]);
    assert!(
        err.contains("not encrypted") && err.contains("store encrypt"),
        "{err}"
    );
    assert!(!err.to_lowercase().contains("empty"), "{err}");
    assert_eq!(std::fs::read(site.db()).unwrap(), before);

    // While a process holds the directory, encryption waits for it to stop.
    {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(site.data().join("suivi-server.lock"))
            .unwrap();
        lock.lock_shared().unwrap();
        let err = site.fails(&["store", "encrypt"]);
        assert!(err.contains("another suivi-server process"), "{err}");
        assert_eq!(std::fs::read(site.db()).unwrap(), before);
    }

    let out = site.ok(&["store", "encrypt"]);
    assert!(out.contains("encrypted in place"), "{out}");
    assert!(out.contains("generated the key file"), "{out}");
    let after = std::fs::read(site.db()).unwrap();
    assert!(!after.starts_with(b"SQLite format 3"));
    assert!(!contains(&data_bytes(&site.data()), b"souk-sebt"));
    assert_eq!(mode(&site.db()), 0o600);
    // A second run is refused as already done.
    assert!(site
        .fails(&["store", "encrypt"])
        .contains("already encrypted"));

    // Served again: the device's token still works, its case is there for the supervisor, and the
    // code issued before the upgrade still enrolls.
    let served = site.serve();
    amina.sync_via(&served.url()).unwrap();
    let listed = site.ok(&["device", "list"]);
    assert!(listed.contains("amina-phone"), "{listed}");
    // Its quota, shown and overridden by the admin command on the encrypted store.
    let device = listed
        .lines()
        .find(|l| l.contains("amina-phone"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let shown = site.ok(&["device", "quota", &device]);
    assert!(
        shown.contains("of 10000 new cases") && shown.contains("defaults"),
        "{shown}"
    );
    let set = site.ok(&["device", "quota", &device, "--new-cases-per-day", "50000"]);
    assert!(
        set.contains("of 50000 new cases") && set.contains("override"),
        "{set}"
    );
    let back = site.ok(&["device", "quota", &device, "--default"]);
    assert!(back.contains("of 10000 new cases"), "{back}");
    let dir = tempfile::tempdir().unwrap();
    let mut fatima = suivi_core::Store::create(
        &dir.path().join("f.db"),
        suivi_tests::DEVICE_KEY,
        "fatima",
        "fatima-phone",
    )
    .unwrap();
    let transport = suivi_core::sync::HttpTransport::new(&served.url()).unwrap();
    fatima
        .enroll(&transport, &served.url(), "K7P2-MX4QAB")
        .unwrap();
    fatima.sync(&transport, &mut |_| {}).unwrap();
    assert!(fatima.load_doc(&case_id).unwrap().is_some());
}

#[test]
fn enrollment_codes_are_stored_keyed_not_as_a_plain_hash() {
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "souk-sebt");
    let code = server.code("amina");
    let plain = suivi_server::auth::sha256_hex(&code);
    let stored: Vec<String> = {
        let conn = rusqlite::Connection::open(server.dir.path().join("server.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT code_hash FROM enrollment_codes")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(stored.len(), 1);
    assert!(stored[0].starts_with("hmac-sha256:"), "{}", stored[0]);
    assert!(!stored[0].contains(&plain));
    // And the code enrolls.
    server.device("amina");
    assert!(server.store.devices().unwrap().len() == 1);
}
