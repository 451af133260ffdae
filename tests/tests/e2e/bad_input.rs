//! Malformed, truncated and oversized bodies get a 4xx with a clear JSON error, nothing is
//! stored, and the server keeps serving.

use suivi_core::sync::protocol::{
    self, CaseChanges, RefusalReason, SyncRequest, SyncResponse, CONTENT_TYPE,
};
use suivi_core::sync::{Credentials, HttpTransport, Transport};
use suivi_server::storage::Role;
use suivi_tests::{child, first_page, TestServer};

fn post(
    server: &TestServer,
    body: Vec<u8>,
    credentials: Option<&Credentials>,
) -> (u16, serde_json::Value) {
    let transport = HttpTransport::new(&server.url()).unwrap();
    let reply = transport
        .post("/v1/sync", CONTENT_TYPE, body, credentials)
        .unwrap();
    (
        reply.status,
        serde_json::from_slice(&reply.body).unwrap_or(serde_json::Value::Null),
    )
}

fn stored_changes(server: &TestServer) -> i64 {
    let conn = rusqlite::Connection::open(server.dir.path().join("server.db")).unwrap();
    conn.query_row("SELECT count(*) FROM changes", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn bad_bodies_get_4xx_and_the_server_keeps_serving() {
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    let mut device = server.device("amina");
    device.store.create_case(&child(1)).unwrap();
    let credentials = device.store.credentials().unwrap();
    let valid = suivi_tests::sync_body(0, vec![]);

    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage", b"this is not a sync message".to_vec(), 400),
        ("truncated", valid[..valid.len() / 2].to_vec(), 400),
        ("empty", Vec::new(), 400),
        (
            "oversized",
            vec![7u8; protocol::SYNC_BODY_BYTES_MAX + 1],
            413,
        ),
        (
            "wrong version",
            protocol::encode(&SyncRequest {
                version: 99,
                ..SyncRequest::pushing(0, vec![])
            })
            .unwrap(),
            400,
        ),
        (
            "too many cases",
            protocol::encode(&SyncRequest::pushing(
                0,
                (0..protocol::PUSH_CASES_MAX + 1)
                    .map(|i| CaseChanges {
                        case_id: format!("{i:032x}"),
                        changes: vec![],
                    })
                    .collect(),
            ))
            .unwrap(),
            400,
        ),
    ];
    for (name, body, status) in cases {
        let (got, json) = post(&server, body, Some(&credentials));
        assert_eq!(got, status, "{name}");
        assert!(
            json["error"].is_string() && json["message"].is_string(),
            "{name}: {json}"
        );
    }
    // No credential, or a wrong one.
    assert_eq!(post(&server, valid.clone(), None).0, 401);
    let wrong = Credentials {
        device_id: credentials.device_id.clone(),
        token: "00".repeat(32),
    };
    assert_eq!(post(&server, valid.clone(), Some(&wrong)).0, 401);
    assert_eq!(stored_changes(&server), 0);

    // A well-formed message carrying a malformed change: that case is refused, nothing stored.
    let request = SyncRequest::pushing(
        0,
        vec![CaseChanges {
            case_id: "0123456789abcdef0123456789abcdef".into(),
            changes: vec![serde_bytes::ByteBuf::from(vec![
                0x85, 0x6f, 0x4a, 0x83, 1, 2, 3,
            ])],
        }],
    );
    let transport = HttpTransport::new(&server.url()).unwrap();
    let reply = transport
        .post(
            "/v1/sync",
            CONTENT_TYPE,
            protocol::encode(&request).unwrap(),
            Some(&credentials),
        )
        .unwrap();
    let response: SyncResponse = first_page(&reply.body);
    assert_eq!(response.refused[0].reason, RefusalReason::Malformed);
    assert_eq!(stored_changes(&server), 0);

    // And the server still serves a real sync.
    let report = device.sync().unwrap();
    assert_eq!(report.cases_up, 1);
    assert_eq!(stored_changes(&server), 1);
}

#[test]
fn a_device_over_its_rate_limit_gets_429_then_recovers() {
    let server = TestServer::start_with(None, Some((3, 2.0)));
    server.add_user("amina", Role::Agent, "sikasso");
    let mut device = server.device("amina");
    let credentials = device.store.credentials().unwrap();
    let body = suivi_tests::sync_body(0, vec![]);
    let statuses: Vec<u16> = (0..10)
        .map(|_| post(&server, body.clone(), Some(&credentials)).0)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses[0], 200);
    std::thread::sleep(std::time::Duration::from_millis(800));
    device.sync().unwrap();
}
