//! A full disk is reported as a full disk, by the phone and by the server, never as a wrong
//! key: the app must not send an agent to key recovery (or a reset) because the phone is full.
//! On a real filesystem filled to its last bytes (a tmpfs; needs root, as the fault simulation).

use suivi_core::{Error, Store};
use suivi_tests::sim::Tmpfs;
use suivi_tests::{child, ServerSite};

#[test]
fn a_full_disk_is_reported_as_full_never_as_a_wrong_key() {
    let fs = Tmpfs::mount(4 * 1024 * 1024).unwrap();
    let db = fs.path().join("phone.db");
    let mut store = Store::create(&db, "key", "amina", "phone").unwrap();
    store.create_case(&child(1)).unwrap();
    drop(store);
    let ballast = fs.fill(0).unwrap();
    // Opening needs room for the write-ahead log's index: the disk is full, and says so.
    let opened = Store::open(&db, "key");
    assert!(
        matches!(opened, Err(Error::StorageFull)),
        "expected StorageFull, got {:?}",
        opened.err()
    );
    // A wrong key is still told apart, full disk or not.
    assert!(matches!(
        Store::open(&db, "not the key"),
        Err(Error::WrongKeyOrCorrupt)
    ));
    std::fs::remove_file(ballast).unwrap();
    let store = Store::open(&db, "key").unwrap();
    assert_eq!(
        store
            .list_cases(&suivi_core::CaseFilter::default())
            .unwrap()
            .len(),
        1,
        "nothing was lost"
    );
}

#[test]
fn a_server_on_a_full_disk_does_not_blame_its_key() {
    let fs = Tmpfs::mount(4 * 1024 * 1024).unwrap();
    let site = ServerSite::new();
    let data = fs.path().join("data");
    let key = site.key_file();
    let run = |args: &[&str]| {
        let mut command = std::process::Command::new(suivi_tests::server_binary());
        command
            .arg("--data")
            .arg(&data)
            .arg("--key-file")
            .arg(&key)
            .args(args)
            .env_remove("SUIVI_SERVER_KEY")
            .env("RUST_LOG", "warn");
        command.output().unwrap()
    };
    let added = run(&[
        "user", "add", "amina", "--role", "agent", "--team", "sikasso",
    ]);
    assert!(added.status.success());
    let ballast = fs.fill(0).unwrap();
    let full = run(&["device", "list"]);
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert!(!full.status.success());
    assert!(
        !stderr.contains("wrong key"),
        "a full disk blamed on the key: {stderr}"
    );
    assert!(
        stderr.contains("I/O") || stderr.contains("full"),
        "the error should say what happened: {stderr}"
    );
    std::fs::remove_file(ballast).unwrap();
    assert!(run(&["device", "list"]).status.success());
}
