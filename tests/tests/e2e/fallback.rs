//! Device and server disagree on what the other has (the server was restored from a backup):
//! the device notices, falls back to Automerge's own sync protocol for the cases concerned, and
//! nothing is lost.

use serde_json::json;
use suivi_core::sync::protocol::RefusalReason;
use suivi_server::storage::Role;
use suivi_tests::{child, record, TestServer};

#[test]
fn a_server_restored_from_backup_gets_back_what_it_lost() {
    let first = TestServer::start();
    first.add_user("amina", Role::Agent, "sikasso");
    first.add_user("fatima", Role::Supervisor, "sikasso");
    let mut amina = first.device("amina");
    let backup = first.dir.path().join("backup.db");
    {
        // The backup is taken after enrollment, before Amina's cases reach the server.
        let conn = rusqlite::Connection::open(first.dir.path().join("server.db")).unwrap();
        conn.execute("VACUUM INTO ?1", [backup.to_str().unwrap()])
            .unwrap();
    }
    let kept = amina.store.create_case(&child(1)).unwrap();
    let lost = amina.store.create_case(&child(2)).unwrap();
    amina.sync().unwrap();
    first.stop();

    let restored = TestServer::start_with(Some(&backup), None);
    amina.url = restored.url();
    // Amina edits one of the cases the restored server lost; her device believes it synced.
    amina
        .store
        .edit_case(&lost, &record(json!({"village": "Zégoua"})))
        .unwrap();
    let report = amina.sync().unwrap();
    assert!(
        report.server_reset,
        "the device noticed the server was behind: {report:?}"
    );
    assert!(report.round_trips <= 6, "{report:?}");
    assert!(
        report.fallbacks >= 1,
        "the edited case goes through the per-document fallback: {report:?}"
    );
    assert_eq!(amina.store.unsynced_case_count().unwrap(), 0);
    for id in [&kept, &lost] {
        assert_eq!(
            amina.case_heads(id),
            restored.case_heads(id),
            "case {id} converged"
        );
    }
    let mut fatima = restored.device("fatima");
    fatima.sync().unwrap();
    assert_eq!(fatima.case_ids().len(), 2);
    assert_eq!(
        fatima.store.case(&lost).unwrap().identification["village"],
        json!("Zégoua")
    );
}

#[test]
fn after_a_restore_another_devices_lost_change_is_held_until_that_device_pushes_it_back() {
    let first = TestServer::start();
    first.add_user("amina", Role::Agent, "sikasso");
    first.add_user("fatima", Role::Supervisor, "sikasso");
    let mut amina = first.device("amina");
    let mut fatima = first.device("fatima");
    let case_id = amina.store.create_case(&child(1)).unwrap();
    amina.sync().unwrap();
    fatima.sync().unwrap();
    let backup = first.dir.path().join("backup.db");
    {
        let conn = rusqlite::Connection::open(first.dir.path().join("server.db")).unwrap();
        conn.execute("VACUUM INTO ?1", [backup.to_str().unwrap()])
            .unwrap();
    }
    // After the backup: Fatima edits, Amina pulls that edit and adds her own.
    fatima
        .store
        .edit_case(&case_id, &record(json!({"village": "Hameau de Tiéré"})))
        .unwrap();
    fatima.sync().unwrap();
    amina.sync().unwrap();
    amina
        .store
        .edit_case(&case_id, &record(json!({"hours_per_week": 12})))
        .unwrap();
    amina.sync().unwrap();
    first.stop();

    let restored = TestServer::start_with(Some(&backup), None);
    amina.url = restored.url();
    fatima.url = restored.url();
    // Amina cannot push Fatima's lost edit for her: the case is held, reported, not dropped.
    let report = amina.sync().unwrap();
    assert!(report.server_reset, "{report:?}");
    assert!(
        report
            .refused
            .iter()
            .any(|r| r.case_id == case_id && r.reason == RefusalReason::WrongActor),
        "{report:?}"
    );
    assert_eq!(amina.store.unsynced_case_count().unwrap(), 1);
    assert!(amina
        .store
        .refused_cases()
        .unwrap()
        .iter()
        .any(|c| c.case_id == case_id));
    // Fatima's phone notices the restore too and pushes her own edit back...
    assert!(fatima.sync().unwrap().server_reset);
    // ...so at Amina's next sync her edit goes through, and everyone converges.
    let report = amina.sync().unwrap();
    assert!(report.refused.is_empty(), "{report:?}");
    assert_eq!(amina.store.unsynced_case_count().unwrap(), 0);
    assert_eq!(amina.case_heads(&case_id), restored.case_heads(&case_id));
    fatima.sync().unwrap();
    let merged = fatima.store.case(&case_id).unwrap();
    assert_eq!(merged.identification["village"], json!("Hameau de Tiéré"));
    assert_eq!(merged.identification["hours_per_week"], json!(12));
}
