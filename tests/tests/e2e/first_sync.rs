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

/// The frames the server streams a phone that holds nothing, read whole.
fn first_stream(
    server: &TestServer,
    phone: &suivi_tests::TestDevice,
) -> Vec<protocol::stream::Frame> {
    let reply = HttpTransport::new(&server.url())
        .unwrap()
        .post(
            "/v1/sync",
            CONTENT_TYPE,
            protocol::encode(&protocol::SyncRequest::pushing(0, vec![])).unwrap(),
            Some(&phone.store.credentials().unwrap()),
        )
        .unwrap();
    let mut reader = protocol::stream::FrameReader::new();
    reader.feed(&reply.body).unwrap();
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame().unwrap() {
        frames.push(frame);
    }
    assert!(reader.ended());
    frames
}

/// Protocol version 8: a new phone's list works from the rows sent ahead of its cases. The
/// link is cut after the rows and inside the first page: every case is listed, searchable and
/// read-only; the next sync brings the cases and the phone's own projection replaces the rows.
#[test]
fn a_new_phones_list_works_from_the_rows_sent_ahead_while_its_cases_arrive() {
    use suivi_core::CaseFilter;
    use suivi_tests::link::{LinkEmulator, PROFILE_LAN};
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    server.add_user("fatima", Role::Supervisor, "sikasso");
    let amina = caseload(&server, 300);
    let mut fatima = server.device("fatima");
    // What the server streams a phone that holds nothing: rows, then pages.
    let mut kinds = Vec::new();
    let mut rows = Vec::new();
    let mut rows_bytes = 0;
    for frame in first_stream(&server, &fatima) {
        if frame.is(protocol::stream::FrameKind::Rows) {
            rows_bytes += frame.body.len() + 5;
            let listed: protocol::CaseRows = protocol::decode(&frame.body).unwrap();
            assert_eq!(listed.total, 300);
            rows.extend(listed.rows);
        }
        kinds.push(frame.kind);
    }
    assert_eq!(
        kinds[0],
        protocol::stream::FrameKind::Rows as u8,
        "rows first"
    );
    assert!(kinds[1..]
        .iter()
        .all(|k| *k == protocol::stream::FrameKind::Page as u8));
    assert_eq!(rows.len(), 300);
    // The most pressing first: the visits most overdue, then due soonest.
    let due: Vec<&str> = rows
        .iter()
        .map(|r| r.next_followup_due.as_deref().unwrap_or("9999"))
        .collect();
    assert!(due.windows(2).all(|w| w[0] <= w[1]), "{due:?}");
    assert!(rows_bytes < 32 * 1024, "300 rows in {rows_bytes} bytes");

    let link = server
        .runtime
        .block_on(LinkEmulator::start(server.addr, PROFILE_LAN))
        .unwrap();
    // Response headers, the magic and the rows, and a little of the first page.
    link.cut_after_down_bytes(300 + 4 + rows_bytes as u64 + 2000);
    let cut = fatima.sync_via(&link.url());
    assert!(matches!(cut, Err(suivi_core::Error::Offline(_))), "{cut:?}");
    assert_eq!(fatima.store.case_count().unwrap(), 0, "no case arrived");
    let listed = fatima.store.list_cases(&CaseFilter::default()).unwrap();
    assert_eq!(listed.len(), 300, "every case listed");
    assert!(listed.iter().all(|c| c.arriving));
    // Search and filters work on the rows.
    let one = &rows[17];
    let found = fatima
        .store
        .list_cases(&CaseFilter {
            query: Some(one.first_name.clone()),
            ..CaseFilter::default()
        })
        .unwrap();
    assert!(found.iter().any(|c| c.case_id == one.case_id));
    let referred = fatima
        .store
        .list_cases(&CaseFilter {
            referral_status: Some(one.referral_statuses[0].clone()),
            ..CaseFilter::default()
        })
        .unwrap();
    assert!(referred.iter().any(|c| c.case_id == one.case_id));
    // Read-only until it arrives, and said so.
    assert!(matches!(
        fatima.store.case(&one.case_id),
        Err(suivi_core::Error::CaseArriving(_))
    ));
    assert!(matches!(
        fatima.store.add_followup(&one.case_id, &visit(3)),
        Err(suivi_core::Error::CaseArriving(_))
    ));

    // Opened by the agent: fetched at once, whole, with its verified authors.
    let fetched = suivi_core::sync::fetch_cases(
        &mut &mut fatima.store,
        &HttpTransport::new(&server.url()).unwrap(),
        std::slice::from_ref(&one.case_id),
    )
    .unwrap();
    assert_eq!(fetched.cases_down, 1);
    assert_eq!(
        fatima.case_heads(&one.case_id),
        amina.case_heads(&one.case_id)
    );
    let opened = fatima.store.case(&one.case_id).unwrap();
    assert_eq!(opened.followups.len(), 2);
    assert!(!fatima.store.is_arriving(&one.case_id).unwrap());
    let history = fatima.store.history(&one.case_id).unwrap();
    assert!(
        history
            .iter()
            .all(|h| h.verified.as_ref().is_some_and(|v| v.user == "amina")),
        "{history:?}"
    );
    assert_eq!(fatima.store.cursor().unwrap(), 0, "no position moved");

    link.heal();
    let report = fatima.sync_via(&link.url()).unwrap();
    assert_eq!((report.caseload, report.listed), (300, 299));
    assert!(report.list_usable_ms.unwrap() <= report.duration_ms);
    let listed = fatima.store.list_cases(&CaseFilter::default()).unwrap();
    assert_eq!(listed.len(), 300);
    assert!(
        listed.iter().all(|c| !c.arriving),
        "the phone's own rows now"
    );
    assert_eq!(fatima.store.arriving_count().unwrap(), 0);
    assert_eq!(fatima.case_ids(), amina.case_ids());
    assert_eq!(
        fatima.store.case(&one.case_id).unwrap().summary.first_name,
        one.first_name
    );
    // A later sync of a phone that holds the caseload sends no rows.
    let quiet = fatima.sync().unwrap();
    assert_eq!((quiet.caseload, quiet.listed), (0, 0));
}

/// The rows sent ahead are the user's caseload and nothing more: a new phone of an agent lists
/// her cases, not her colleague's.
#[test]
fn the_rows_sent_ahead_are_only_the_users_caseload() {
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    server.add_user("karim", Role::Agent, "sikasso");
    let amina = caseload(&server, 3);
    let mut karim = server.device("karim");
    let his = karim.store.create_case(&child(7)).unwrap();
    karim.sync().unwrap();
    let mut phone = server.device("amina");
    let mut listed = Vec::new();
    for frame in first_stream(&server, &phone) {
        if frame.is(protocol::stream::FrameKind::Rows) {
            let rows: protocol::CaseRows = protocol::decode(&frame.body).unwrap();
            assert_eq!(rows.total, 3);
            listed.extend(rows.rows.into_iter().map(|r| r.case_id));
        }
    }
    listed.sort();
    assert_eq!(listed, amina.case_ids());
    assert!(!listed.contains(&his));
    // Asked for by id, a colleague's case is left out as the feed leaves it out.
    let fetched = suivi_core::sync::fetch_cases(
        &mut &mut phone.store,
        &HttpTransport::new(&server.url()).unwrap(),
        &[his.clone(), listed[0].clone()],
    )
    .unwrap();
    assert_eq!(fetched.cases_down, 1);
    assert!(phone.store.case(&his).is_err());
    let report = phone.sync().unwrap();
    assert_eq!((report.caseload, report.listed), (3, 2));
}
