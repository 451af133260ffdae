//! Erasure of a child's case (consent withdrawn): gone from the server and from every device of
//! its caseload at their next sync, history included, proven on decrypted contents; a device
//! that was offline deletes it instead of pushing it again; a restore from an older backup
//! does not bring it back.

use std::path::PathBuf;

use serde_json::json;
use suivi_core::sync::protocol::RefusalReason;
use suivi_core::sync::{HttpTransport, SyncReport};
use suivi_core::Store;
use suivi_tests::{child, contains, decrypted_contents, record, ServerSite, DEVICE_KEY};

/// A device's store with its path, enrolled on the site's server over HTTP.
pub(crate) struct Phone {
    pub(crate) store: Store,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Phone {
    pub(crate) fn enroll(site: &ServerSite, url: &str, user: &str) -> Phone {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.db");
        let mut store = Store::create(&path, DEVICE_KEY, user, &format!("{user}-phone")).unwrap();
        let code = site.ok(&["device", "code", user]).trim().to_string();
        store
            .enroll(&HttpTransport::new(url).unwrap(), url, &code)
            .unwrap();
        Phone {
            store,
            path,
            _dir: dir,
        }
    }

    pub(crate) fn sync(&mut self, url: &str) -> SyncReport {
        self.store
            .sync(&HttpTransport::new(url).unwrap(), &mut |_| {})
            .unwrap()
    }

    /// Sets the feed mark this phone holds at its cursor (a phone of an earlier release).
    pub(crate) fn set_mark(&self, mark: &[u8]) {
        self.store
            .set_meta("feed_mark", &hex::encode(mark))
            .unwrap();
    }

    fn contents(&self) -> Vec<u8> {
        decrypted_contents(&self.path, DEVICE_KEY)
    }
}

const NAME: &str = "Erasmina";

#[test]
fn an_erased_case_leaves_no_name_on_the_server_or_any_phone_even_after_a_restore() {
    let site = ServerSite::new();
    for (user, role) in [
        ("amina", "agent"),
        ("youssef", "agent"),
        ("fatima", "supervisor"),
    ] {
        site.ok(&["user", "add", user, "--role", role, "--team", "souk-sebt"]);
    }
    let served = site.serve();
    let url = served.url();
    let mut amina = Phone::enroll(&site, &url, "amina");
    let mut youssef = Phone::enroll(&site, &url, "youssef");
    let mut fatima = Phone::enroll(&site, &url, "fatima");

    let mut erased_child = child(1);
    erased_child.insert("child_first_name".into(), json!(NAME));
    let erased = amina.store.create_case(&erased_child).unwrap();
    amina
        .store
        .refer(&erased, &suivi_tests::referral(1))
        .unwrap();
    let kept = amina.store.create_case(&child(2)).unwrap();
    let kept_name = child(2)["child_first_name"].as_str().unwrap().to_string();
    amina.sync(&url);
    site.ok(&["case", "assign", &erased, "youssef"]);
    fatima.sync(&url);
    youssef.sync(&url);
    // Youssef goes offline and records a visit note on the child.
    youssef
        .store
        .edit_case(&erased, &record(json!({"village": "Hameau de Tiéré"})))
        .unwrap();
    // And starts a visit form on the child, left half-filled: a draft naming her.
    let half_filled = [(
        "notes".to_string(),
        format!("{NAME} dit qu'elle travaille à la mine"),
    )];
    youssef
        .store
        .save_draft("followup", Some(&erased), &half_filled.into())
        .unwrap();
    drop(served);

    // A backup of the server from before the erasure: the log folded into the database file
    // while the server is stopped, then the file copied.
    let key = site.database_key();
    {
        let conn = rusqlite::Connection::open(site.db()).unwrap();
        conn.pragma_update(None, "key", &key).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let backup = site.root.path().join("backup.db");
    std::fs::copy(site.db(), &backup).unwrap();
    // The scan finds the name where it is: on the server and on each phone.
    assert!(contains(&decrypted_contents(&site.db(), &key), NAME));
    for phone in [&amina, &youssef, &fatima] {
        assert!(contains(&phone.contents(), NAME));
    }

    let served = site.serve();
    let url = served.url();
    // After the backup, Amina edits the other case: a restore will lose that edit.
    amina
        .store
        .edit_case(&kept, &record(json!({"village": "Douar Lahrarta"})))
        .unwrap();
    amina.sync(&url);
    let out = site.ok(&["case", "erase", &erased]);
    assert!(out.contains("erased"), "{out}");
    assert!(site
        .ok(&["case", "erase", &erased])
        .contains("already erased"));

    // Online phones delete it at their next sync.
    let report = fatima.sync(&url);
    assert_eq!(report.erased, 1, "{report:?}");
    assert!(fatima.store.load_doc(&erased).unwrap().is_none());
    assert!(fatima.store.load_doc(&kept).unwrap().is_some());
    amina.sync(&url);
    assert!(amina.store.load_doc(&erased).unwrap().is_none());
    // The offline phone deletes it instead of pushing its edit, and the edit is not stored.
    let report = youssef.sync(&url);
    assert!(youssef.store.load_doc(&erased).unwrap().is_none());
    assert_eq!(report.erased, 1, "{report:?}");
    assert!(
        report
            .refused
            .iter()
            .any(|r| r.case_id == erased && r.reason == RefusalReason::Erased),
        "its push was refused as erased: {report:?}"
    );
    assert_eq!(youssef.store.unsynced_case_count().unwrap(), 0);
    drop(served);

    let server = decrypted_contents(&site.db(), &key);
    assert!(!contains(&server, NAME), "the name is still on the server");
    assert!(!contains(&server, "Hameau de Tiéré"));
    assert!(contains(&server, &kept_name), "the other case is untouched");
    // The audit log says an erasure happened, by id only.
    assert!(contains(&server, "case.erased") && contains(&server, &erased));
    for phone in [&amina, &youssef, &fatima] {
        assert!(
            !contains(&phone.contents(), NAME),
            "the name is still on a phone"
        );
    }
    // The other case, in Amina's and Fatima's caseloads, is untouched.
    for phone in [&amina, &fatima] {
        assert!(contains(&phone.contents(), &kept_name));
    }

    // The server is restored from the backup taken before the erasure: the journal erases the
    // case again as it starts, and no phone brings it back.
    std::fs::copy(&backup, site.db()).unwrap();
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(
            site.data()
                .join(format!("{}{side}", suivi_server::DATABASE_FILE)),
        );
    }
    let served = site.serve();
    let url = served.url();
    // Amina's phone notices the restore and pushes her cases again: her lost edit comes back
    // (the same change at the same place in the feed, so the others' cursors still match),
    // and the erased case does not.
    let report = amina.sync(&url);
    assert!(report.server_reset, "{report:?}");
    for phone in [&mut amina, &mut youssef, &mut fatima] {
        phone.sync(&url);
        assert!(phone.store.load_doc(&erased).unwrap().is_none());
    }
    fatima.sync(&url);
    assert_eq!(
        fatima.store.case(&kept).unwrap().identification["village"],
        json!("Douar Lahrarta")
    );
    drop(served);
    let server = decrypted_contents(&site.db(), &key);
    assert!(
        !contains(&server, NAME),
        "the restore brought the name back"
    );
    assert!(contains(&server, &kept_name));
}
