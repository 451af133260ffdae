//! Caseload access, enforced by the server on every request: unauthorized writes refused and
//! stored nowhere, no case outside a caseload ever sent, revoked devices wiped.

use serde_json::json;
use suivi_core::case_doc::{CaseDoc, ChangeContext};
use suivi_core::sync::protocol::{self, RefusalReason, CONTENT_TYPE};
use suivi_core::sync::{HttpTransport, Transport};
use suivi_core::{Error, FormRegistry};
use suivi_server::admin;
use suivi_server::storage::prelude::*;
use suivi_server::storage::Role;
use suivi_tests::{actor_of, case_changes, child, raw_push, raw_sync, record, TestServer};

fn team_server() -> TestServer {
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "souk-sebt");
    server.add_user("karim", Role::Agent, "souk-sebt");
    server.add_user("fatima", Role::Supervisor, "souk-sebt");
    server.add_user("moussa", Role::Agent, "sikasso");
    server.add_user("ali", Role::Supervisor, "sikasso");
    server.add_user("officer", Role::Officer, "project");
    server
}

#[test]
fn a_write_outside_the_caseload_is_refused_and_stored_nowhere() {
    let server = team_server();
    let mut amina = server.device("amina");
    let moussa = server.device("moussa");
    let case_id = amina.store.create_case(&child(1)).unwrap();
    amina.sync().unwrap();
    let heads_before = server.case_heads(&case_id);

    // Moussa (another team) forges an edit of Amina's case, with his own actor.
    let forms = FormRegistry::builtin();
    let saved = amina.store.load_doc(&case_id).unwrap().unwrap().save();
    let mut forged = CaseDoc::load(&saved, actor_of(&moussa)).unwrap();
    let have = forged.heads();
    forged
        .edit_identification(
            &forms,
            &record(json!({"village": "Ailleurs"})),
            &ChangeContext::now("moussa"),
        )
        .unwrap();
    let changes = forged.changes_since(&have);
    let response = raw_push(&server, &moussa, &case_id, changes.clone());
    assert!(response.accepted.is_empty());
    assert_eq!(response.refused[0].reason, RefusalReason::Forbidden);
    assert_eq!(server.case_heads(&case_id), heads_before, "nothing stored");
    let hash = automerge::Change::from_bytes(changes[0].clone())
        .unwrap()
        .hash()
        .to_string();
    assert!(server
        .store
        .known_changes(&case_id, &[hash])
        .unwrap()
        .is_empty());
    // The rest of a batch still goes through: a refused case does not block others.
    let mut own = CaseDoc::create(
        "00000000000000000000000000000abc",
        actor_of(&moussa),
        forms.latest("identification").unwrap(),
        &child(2),
        &ChangeContext::now("moussa"),
    )
    .unwrap();
    let response = raw_sync(
        &server,
        &moussa,
        vec![
            case_changes(&case_id, changes),
            case_changes("00000000000000000000000000000abc", own.changes_since(&[])),
        ],
    );
    assert_eq!(
        response.accepted,
        vec!["00000000000000000000000000000abc".to_string()]
    );
    assert_eq!(response.refused.len(), 1);
}

#[test]
fn a_change_not_authored_by_the_pushing_device_is_refused() {
    let server = team_server();
    let amina = server.device("amina");
    let karim = server.device("karim");
    let forms = FormRegistry::builtin();
    // Karim pushes a new case whose change claims Amina's actor.
    let mut doc = CaseDoc::create(
        "0000000000000000000000000000beef",
        actor_of(&amina),
        forms.latest("identification").unwrap(),
        &child(3),
        &ChangeContext::now("amina"),
    )
    .unwrap();
    let response = raw_push(
        &server,
        &karim,
        "0000000000000000000000000000beef",
        doc.changes_since(&[]),
    );
    assert_eq!(response.refused[0].reason, RefusalReason::WrongActor);
    assert!(server
        .store
        .case_access(&["0000000000000000000000000000beef".to_string()])
        .unwrap()
        .is_empty());
}

#[test]
fn devices_receive_only_their_caseload() {
    let server = team_server();
    let mut amina = server.device("amina");
    let mut moussa = server.device("moussa");
    let mut karim = server.device("karim");
    let mut fatima = server.device("fatima");
    let mut ali = server.device("ali");
    let mut officer = server.device("officer");
    let amina_case = amina.store.create_case(&child(1)).unwrap();
    let moussa_case = moussa.store.create_case(&child(2)).unwrap();
    amina.sync().unwrap();
    moussa.sync().unwrap();
    for device in [
        &mut karim,
        &mut fatima,
        &mut ali,
        &mut officer,
        &mut amina,
        &mut moussa,
    ] {
        device.sync().unwrap();
    }
    assert_eq!(amina.case_ids(), vec![amina_case.clone()]);
    assert_eq!(moussa.case_ids(), vec![moussa_case.clone()]);
    assert!(
        karim.case_ids().is_empty(),
        "same team is not enough for an agent"
    );
    assert_eq!(
        fatima.case_ids(),
        vec![amina_case.clone()],
        "a supervisor gets the team's cases"
    );
    assert_eq!(ali.case_ids(), vec![moussa_case.clone()]);
    let mut both = vec![amina_case.clone(), moussa_case.clone()];
    both.sort();
    assert_eq!(
        officer.case_ids(),
        both,
        "an officer reads the whole project"
    );

    // Assignment brings a case, with its whole history, into Karim's caseload.
    amina
        .store
        .edit_case(&amina_case, &record(json!({"village": "Kignan"})))
        .unwrap();
    amina.sync().unwrap();
    admin::assign(server.store.as_ref(), &amina_case, "karim").unwrap();
    karim.sync().unwrap();
    assert_eq!(karim.case_ids(), vec![amina_case.clone()]);
    assert_eq!(
        karim.case_heads(&amina_case),
        server.case_heads(&amina_case)
    );

    // An officer writes nothing to case records.
    let village = moussa.store.case(&moussa_case).unwrap().identification["village"].clone();
    officer
        .store
        .edit_case(&moussa_case, &record(json!({"village": "Zégoua"})))
        .unwrap();
    let report = officer.sync().unwrap();
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].reason, RefusalReason::Forbidden);
    assert_ne!(
        officer.case_heads(&moussa_case),
        server.case_heads(&moussa_case)
    );
    moussa.sync().unwrap();
    assert_eq!(
        moussa.store.case(&moussa_case).unwrap().identification["village"],
        village
    );
}

#[test]
fn a_revoked_device_gets_401_and_wipes_its_case_data() {
    let server = team_server();
    let mut amina = server.device("amina");
    let case_id = amina.store.create_case(&child(1)).unwrap();
    amina.sync().unwrap();
    // Half-filled forms, one on the case and one for a new child: drafts name children too.
    let typed = |name: &str| [("child_first_name".to_string(), name.to_string())].into();
    amina
        .store
        .save_draft("followup", Some(&case_id), &typed("Awa"))
        .unwrap();
    amina
        .store
        .save_draft("identification", None, &typed("Mariam"))
        .unwrap();
    let credentials = amina.store.credentials().unwrap();
    assert!(admin::revoke(server.store.as_ref(), None, &credentials.device_id).unwrap());

    let result = amina.sync();
    assert!(matches!(result, Err(Error::DeviceRevoked)), "{result:?}");
    assert_eq!(amina.store.case_count().unwrap(), 0);
    assert!(amina.store.drafts().unwrap().is_empty(), "drafts wiped too");
    assert!(amina.store.is_wiped().unwrap());
    assert!(matches!(
        amina.store.case(&case_id),
        Err(Error::NotFound { .. })
    ));
    let device = server
        .store
        .device(&credentials.device_id)
        .unwrap()
        .unwrap();
    assert!(
        device.revoked && device.wiped,
        "the wipe was confirmed to the server"
    );
    // The old credential gets 401 with the wipe instruction; the case is still on the server.
    let transport = HttpTransport::new(&server.url()).unwrap();
    let body = suivi_tests::sync_body(0, vec![]);
    let reply = transport
        .post("/v1/sync", CONTENT_TYPE, body, Some(&credentials))
        .unwrap();
    assert_eq!(reply.status, 401);
    let error: protocol::ErrorBody = serde_json::from_slice(&reply.body).unwrap();
    assert!(error.wipe);
    assert!(!server.case_heads(&case_id).is_empty());

    // The revoked credential calling wipe-confirm again and again: one audit row in all, and
    // the per-device limit stops it.
    let mut statuses = Vec::new();
    while statuses.last() != Some(&429) && statuses.len() < 2000 {
        let reply = transport
            .post(
                "/v1/wipe-confirm",
                "application/json",
                b"{}".to_vec(),
                Some(&credentials),
            )
            .unwrap();
        statuses.push(reply.status);
    }
    assert_eq!(statuses[0], 204);
    assert_eq!(statuses.last(), Some(&429), "never limited");
    let conn = rusqlite::Connection::open(server.dir.path().join("server.db")).unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'device.wiped'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1);
}

#[test]
fn an_enrollment_code_works_once() {
    let server = team_server();
    let code = server.code("amina");
    let dir = tempfile::tempdir().unwrap();
    let transport = HttpTransport::new(&server.url()).unwrap();
    let mut first = suivi_core::Store::create(&dir.path().join("a.db"), "k", "amina", "a").unwrap();
    first
        .enroll(&transport, &server.url(), &code.to_lowercase())
        .unwrap();
    let mut second =
        suivi_core::Store::create(&dir.path().join("b.db"), "k", "amina", "b").unwrap();
    assert!(matches!(
        second.enroll(&transport, &server.url(), &code),
        Err(Error::Forbidden(_))
    ));
    // A code for another user does not enroll this store, and stays usable by its owner.
    let other = server.code("karim");
    assert!(matches!(
        second.enroll(&transport, &server.url(), &other),
        Err(Error::Forbidden(_))
    ));
    let mut karim = suivi_core::Store::create(&dir.path().join("c.db"), "k", "karim", "c").unwrap();
    karim.enroll(&transport, &server.url(), &other).unwrap();
}

#[test]
fn an_officer_writes_audit_notes_and_nothing_else() {
    let server = team_server();
    let mut amina = server.device("amina");
    let mut officer = server.device("officer");
    let case_id = amina.store.create_case(&child(1)).unwrap();
    amina.sync().unwrap();
    officer.sync().unwrap();
    officer
        .store
        .add_audit_note(&case_id, "Chaîne d'orientation vérifiée le 20/11")
        .unwrap();
    let report = officer.sync().unwrap();
    assert!(report.refused.is_empty(), "{report:?}");
    assert_eq!(report.cases_up, 1);
    assert_eq!(officer.case_heads(&case_id), server.case_heads(&case_id));
    amina.sync().unwrap();
    let notes = amina.store.case(&case_id).unwrap().audit_notes;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].author, "officer");
    // A note smuggled together with a field edit is refused whole.
    officer
        .store
        .add_audit_note(&case_id, "deuxième note")
        .unwrap();
    officer
        .store
        .edit_case(&case_id, &record(json!({"risk_level": "low"})))
        .unwrap();
    let report = officer.sync().unwrap();
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].reason, RefusalReason::Forbidden);
}

#[test]
fn a_case_assigned_late_arrives_out_of_order_and_is_still_complete() {
    let server = team_server();
    let mut amina = server.device("amina");
    let mut moussa = server.device("moussa");
    let mut karim = server.device("karim");
    let late = amina.store.create_case(&child(1)).unwrap();
    amina.sync().unwrap();
    let other = moussa.store.create_case(&child(2)).unwrap();
    moussa.sync().unwrap();
    karim.sync().unwrap();
    assert!(karim.case_ids().is_empty());
    // Amina edits after Karim's cursor; then two cases are assigned to Karim, so his next page
    // holds the edit before the history it depends on, with another case in between.
    amina
        .store
        .edit_case(&late, &record(json!({"village": "Kignan"})))
        .unwrap();
    amina.sync().unwrap();
    admin::assign(server.store.as_ref(), &other, "karim").unwrap();
    admin::assign(server.store.as_ref(), &late, "karim").unwrap();
    karim.sync().unwrap();
    let mut expected = vec![late.clone(), other.clone()];
    expected.sort();
    assert_eq!(karim.case_ids(), expected);
    assert_eq!(karim.case_heads(&late), server.case_heads(&late));
    assert_eq!(
        karim.store.case(&late).unwrap().identification["village"],
        json!("Kignan")
    );
}

/// A lost phone revoked after the server's last backup stays revoked when the server is
/// restored from that backup: the revocation journal beside the data directory is applied again
/// at start, and the phone is told to wipe at its next sync.
#[test]
fn a_revoked_phone_stays_revoked_after_a_restore_from_an_older_backup() {
    use suivi_tests::{ServerSite, DEVICE_KEY};
    let site = ServerSite::new();
    site.ok(&[
        "user", "add", "amina", "--role", "agent", "--team", "sikasso",
    ]);
    let served = site.serve();
    let dir = tempfile::tempdir().unwrap();
    let mut phone = suivi_core::Store::create(
        &dir.path().join("phone.db"),
        DEVICE_KEY,
        "amina",
        "amina-phone",
    )
    .unwrap();
    let code = site.ok(&["device", "code", "amina"]).trim().to_string();
    let transport = HttpTransport::new(&served.url()).unwrap();
    phone.enroll(&transport, &served.url(), &code).unwrap();
    phone.create_case(&child(1)).unwrap();
    phone.sync(&transport, &mut |_| {}).unwrap();
    drop(served);
    // The backup: the data directory as it was before the phone was lost.
    let backup = site.root.path().join("backup");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(site.data())
        .arg(&backup)
        .status()
        .unwrap();
    assert!(copied.success());
    let device_id = phone.credentials().unwrap().device_id;
    site.ok(&["device", "revoke", &device_id]);
    // The disk is lost; the server comes back from the older backup.
    std::fs::remove_dir_all(site.data()).unwrap();
    std::fs::rename(&backup, site.data()).unwrap();
    let served = site.serve();
    let transport = HttpTransport::new(&served.url()).unwrap();
    assert!(
        matches!(
            phone.sync(&transport, &mut |_| {}),
            Err(suivi_core::Error::DeviceRevoked)
        ),
        "the restore brought a revoked phone back"
    );
    assert!(phone.is_wiped().unwrap());
    // Revoking it again is not needed, and says so.
    let again = site.fails(&["device", "revoke", &device_id]);
    assert!(again.contains("no active device"), "{again}");
}

/// The store translates the policy's read scope into its own query: for every role, the cases
/// its feed serves are exactly those `policy::may_read` allows (own, team, assigned across
/// teams, all), so no role logic hides in SQL.
#[test]
fn the_stores_feed_serves_exactly_what_the_access_policy_allows() {
    use suivi_server::storage::Viewer;
    let server = team_server();
    let mut cases = Vec::new();
    for user in ["amina", "karim", "fatima", "moussa", "ali"] {
        let mut device = server.device(user);
        cases.push(device.store.create_case(&child(cases.len())).unwrap());
        device.sync().unwrap();
    }
    // One of Amina's cases assigned across teams, to a Sikasso supervisor.
    admin::assign(server.store.as_ref(), &cases[0], "ali").unwrap();
    let access = server.store.case_access(&cases).unwrap();
    for user_id in ["amina", "karim", "fatima", "moussa", "ali", "officer"] {
        let user = server.store.user(user_id).unwrap().unwrap();
        let viewer = Viewer {
            user_id: user.user_id.clone(),
            role: user.role,
            team: user.team.clone(),
            device_id: "a device that pushed nothing".into(),
        };
        let page = server.store.feed_page(&viewer, 0, usize::MAX).unwrap();
        let mut served: Vec<&str> = page.rows.iter().map(|r| r.case_id.as_str()).collect();
        served.sort();
        served.dedup();
        let mut allowed: Vec<&str> = cases
            .iter()
            .filter(|id| suivi_core::policy::may_read(&user.subject(), &access[*id].ownership()))
            .map(String::as_str)
            .collect();
        allowed.sort();
        assert_eq!(served, allowed, "{user_id}'s feed");
        assert!(!served.is_empty(), "{user_id} reads something");
    }
}
