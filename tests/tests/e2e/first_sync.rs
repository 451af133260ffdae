//! A new phone's first sync (protocol version 7): cases whose whole history a page holds come
//! as one document each when the page is smaller so, and the phone keeps every guarantee it
//! has with changes: the same cases, the same history with verified authors, later edits
//! merging both ways; a document that does not read is set aside, the rest of the page goes
//! on; an older phone is sent changes, never a document.

use suivi_core::sync::protocol::{self, ChangeOrigin, PulledDocument, SyncResponse, CONTENT_TYPE};
use suivi_core::sync::{HttpTransport, Transport};
use suivi_server::storage::Role;
use suivi_tests::{child, first_page, record, referral, visit, TestServer};

/// An agent's caseload of `n` children, each identified, referred and visited twice.
fn caseload(server: &TestServer, n: usize) -> suivi_tests::TestDevice {
    let mut amina = server.device("amina");
    for i in 0..n {
        let case = amina.store.create_case(&child(i)).unwrap();
        amina.store.refer(&case, &referral(i)).unwrap();
        amina.store.add_followup(&case, &visit(i)).unwrap();
        amina.store.add_followup(&case, &visit(i + 1)).unwrap();
    }
    amina.sync().unwrap();
    amina
}

#[test]
fn a_new_phone_receives_whole_cases_as_documents_and_keeps_every_guarantee() {
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    server.add_user("fatima", Role::Supervisor, "sikasso");
    let mut amina = caseload(&server, 40);
    let mut fatima = server.device("fatima");
    let report = fatima.sync().unwrap();
    assert_eq!(report.documents_down, 40, "{report:?}");
    assert!(report.quarantined.is_empty(), "{:?}", report.quarantined);
    assert_eq!(fatima.case_ids(), amina.case_ids());
    for case in amina.case_ids() {
        assert_eq!(
            fatima.case_heads(&case),
            amina.case_heads(&case),
            "the very history"
        );
        assert_eq!(
            fatima.store.case(&case).unwrap().identification,
            amina.store.case(&case).unwrap().identification
        );
        // Who wrote each change, as the server verified it, came with the document.
        let history = fatima.store.history(&case).unwrap();
        assert_eq!(history.len(), 4);
        for entry in &history {
            let origin = entry.verified.as_ref().expect("verified");
            assert_eq!(origin.user, "amina");
            assert!(origin.received_at.is_some());
        }
    }
    // Later edits merge both ways.
    let case = amina.case_ids()[0].clone();
    fatima
        .store
        .edit_case(&case, &record(serde_json::json!({"village": "Kadiolo"})))
        .unwrap();
    amina.store.add_followup(&case, &visit(9)).unwrap();
    fatima.sync().unwrap();
    amina.sync().unwrap();
    let again = fatima.sync().unwrap();
    assert_eq!(
        again.documents_down, 0,
        "a case the phone holds comes as changes"
    );
    assert_eq!(fatima.case_heads(&case), amina.case_heads(&case));
    assert_eq!(
        amina.store.case(&case).unwrap().identification["village"],
        "Kadiolo"
    );
}

#[test]
fn documents_make_a_first_sync_smaller_than_changes() {
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    server.add_user("fatima", Role::Supervisor, "sikasso");
    let _amina = caseload(&server, 200);
    let transport = HttpTransport::new(&server.url()).unwrap();
    let fatima = server.device("fatima");
    let credentials = fatima.store.credentials().unwrap();
    let first_page = |version: u16| {
        let request = protocol::SyncRequest {
            version,
            ..protocol::SyncRequest::pushing(0, vec![])
        };
        let reply = transport
            .post(
                "/v1/sync",
                CONTENT_TYPE,
                protocol::encode(&request).unwrap(),
                Some(&credentials),
            )
            .unwrap();
        assert_eq!(reply.status, 200);
        // The first page's bytes: a stream's first frame, or the one page.
        let page = protocol::stream::pages(&reply.body).unwrap().remove(0);
        (page.len(), protocol::decode_response(&page).unwrap())
    };
    // A version 7 phone is answered with one page, not a stream (version 8's).
    let v7 = transport
        .post(
            "/v1/sync",
            CONTENT_TYPE,
            protocol::encode(&protocol::SyncRequest {
                version: 7,
                ..protocol::SyncRequest::pushing(0, vec![])
            })
            .unwrap(),
            Some(&credentials),
        )
        .unwrap();
    assert!(!protocol::stream::is_stream(&v7.body));
    let v7_page = protocol::decode_response(&v7.body).unwrap();
    assert_eq!(v7_page.version, 7);
    assert!(!v7_page.documents.is_empty());
    let (compact, page) = first_page(protocol::PROTOCOL_VERSION);
    assert!(
        !page.documents.is_empty() && page.pull.is_empty(),
        "{}",
        page.documents.len()
    );
    // A version 6 phone is sent the same page as changes, in the layout it reads.
    let (older, old_page) = first_page(6);
    assert_eq!(old_page.version, 6);
    assert!(old_page.documents.is_empty());
    let cases = |p: &SyncResponse| p.pull.len() + p.documents.len();
    assert!(cases(&old_page) > 0);
    // Per case sent, the documents' page is smaller.
    let per_case = |bytes: usize, p: &SyncResponse| bytes as f64 / cases(p) as f64;
    assert!(
        per_case(compact, &page) < 0.8 * per_case(older, &old_page),
        "{compact} B for {} cases against {older} B for {}",
        cases(&page),
        cases(&old_page)
    );
}

#[test]
fn a_document_that_does_not_read_is_set_aside_and_the_rest_of_the_page_goes_on() {
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    server.add_user("fatima", Role::Supervisor, "sikasso");
    let _amina = caseload(&server, 3);
    // What the server sends a new phone, taken whole, then spoiled in one document.
    let fatima = server.device("fatima");
    let transport = HttpTransport::new(&server.url()).unwrap();
    let reply = transport
        .post(
            "/v1/sync",
            CONTENT_TYPE,
            protocol::encode(&protocol::SyncRequest::pushing(0, vec![])).unwrap(),
            Some(&fatima.store.credentials().unwrap()),
        )
        .unwrap();
    let mut page = first_page(&reply.body);
    assert_eq!(page.documents.len(), 3);
    let good: Vec<String> = page.documents[1..]
        .iter()
        .map(|d| d.case_id.clone())
        .collect();
    let spoiled = page.documents[0].case_id.clone();
    page.documents[0]
        .document
        .extend_from_slice(&[0x85, 0x6f, 0x4a, 0x83]);
    // And a document whose origins do not match its changes.
    page.documents.push(PulledDocument {
        origins: vec![ChangeOrigin {
            author: 0,
            received_after: 1,
        }],
        ..page.documents[1].clone()
    });
    page.documents[3].case_id = "0123456789abcdef0123456789abcdef".into();
    let (mut phone, hostile, _dir) =
        suivi_tests::fuzz::hostile_phone(protocol::encode(&page).unwrap());
    let report = phone.sync(&hostile, &mut |_| {}).unwrap();
    let aside: Vec<(&str, &str)> = report
        .quarantined
        .iter()
        .map(|q| (q.case_id.as_str(), q.reason.as_str()))
        .collect();
    assert_eq!(aside.len(), 2, "{aside:?}");
    assert!(
        aside
            .iter()
            .any(|(c, r)| *c == spoiled && r.contains("chunk length")),
        "{aside:?}"
    );
    assert!(
        aside.iter().any(|(_, r)| r.contains("origins")),
        "{aside:?}"
    );
    let held: Vec<String> = phone
        .list_cases(&suivi_core::CaseFilter::default())
        .unwrap()
        .into_iter()
        .map(|c| c.case_id)
        .collect();
    for case in &good {
        assert!(held.contains(case), "{case} saved");
    }
    assert!(!held.contains(&spoiled));
}
