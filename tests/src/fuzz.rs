//! Fuzz targets as plain functions: `tests/fuzz` (cargo fuzz, nightly, libFuzzer) calls them
//! with generated inputs, and `tests/tests/fuzz_replay.rs` calls them on stable with every
//! corpus and crash file, so each input ever found stays a regression test.
//!
//! Each takes untrusted bytes the way the network or a server response delivers them, and may
//! return errors of any kind; a panic, an abort, or an internal server error is the bug.

use std::sync::{Mutex, OnceLock};

use serde_json::Value as Json;
use suivi_core::case_doc::check::{self, CaseCheck};
use suivi_core::forms::{check_field_value, FormRegistry};
use suivi_core::sync::protocol::{
    self, DocSyncRequest, DocSyncResponse, EnrollResponse, SyncRequest, SyncResponse,
};
use suivi_core::sync::{Credentials, HttpReply, Transport};
use suivi_core::{Record, Store};
use suivi_server::service::{AuthedDevice, ServiceError, SyncService};
use suivi_server::storage::prelude::*;
use suivi_server::storage::{Device, Role, User};
use suivi_server::SqliteStore;

/// A fuzz target: untrusted bytes in, a panic if they find a bug.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, as `tests/fuzz/fuzz_targets/*.rs` and the corpus directories
/// name them.
pub const TARGETS: [(&str, Target); 7] = [
    ("protocol_decode", protocol_decode),
    ("server_push", server_push),
    ("device_page", device_page),
    ("case_changes", case_changes),
    ("form_values", form_values),
    ("json_import", json_import),
    ("case_document", case_document),
];

/// For the libFuzzer harness: panics that our code contains (`catch_unwind` around Automerge)
/// must not end the run. libFuzzer's own hook aborts on any panic, contained or not; this one
/// stays silent, and a panic that escapes a target still aborts, through the harness's own
/// `catch_unwind`. Replay a crash on stable to read its message.
pub fn contain_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// Every wire message decoder, on the bytes as sent (zstd) and on the bytes as postcard (so
/// the fuzzer reaches the message structure without having to find valid zstd frames).
pub fn protocol_decode(data: &[u8]) {
    for body in [data.to_vec(), compress(data)] {
        let _ = protocol::peek_version(&body);
        let _ = protocol::decode::<SyncRequest>(&body);
        let _ = protocol::decode::<SyncResponse>(&body);
        let _ = protocol::decode::<DocSyncRequest>(&body);
        let _ = protocol::decode::<DocSyncResponse>(&body);
    }
}

fn compress(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 1).unwrap_or_default()
}

/// The actor of the device the server fuzz target pushes as.
pub const FUZZ_ACTOR: &str = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";

struct PushTarget {
    service: SyncService,
    device: AuthedDevice,
    _dir: tempfile::TempDir,
}

fn push_target() -> &'static PushTarget {
    static TARGET: OnceLock<PushTarget> = OnceLock::new();
    TARGET.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("fuzz.db"), None).expect("store");
        let user = User {
            user_id: "amina".into(),
            role: Role::Agent,
            team: "sikasso".into(),
            password_hash: None,
        };
        store.add_user(&user, 0).expect("user");
        let device = Device {
            device_id: "dev-fuzz".into(),
            user_id: "amina".into(),
            actor: FUZZ_ACTOR.into(),
            name: "fuzz".into(),
            token_hash: String::new(),
            revoked: false,
            wiped: false,
        };
        store
            .add_enrollment_code("fuzz", "amina", i64::MAX)
            .expect("code");
        store
            .redeem_enrollment_code("fuzz", "amina", 0, &device)
            .expect("enroll")
            .expect("code valid");
        let store: std::sync::Arc<dyn ServerStore> = std::sync::Arc::new(store);
        PushTarget {
            service: SyncService::new(store, suivi_server::auth::CodeKey::generate()),
            device: AuthedDevice { device, user },
            _dir: dir,
        }
    })
}

/// The server's push path: a sync request body from an enrolled device (envelope, changes,
/// validation, storage, the pull page it answers with). Also the per-document fallback.
pub fn server_push(data: &[u8]) {
    let target = push_target();
    for body in [data.to_vec(), compress(data)] {
        match target.service.sync(&target.device, &body, 1_800_000_000) {
            Err(ServiceError::Internal(why)) => panic!("internal error on a push: {why}"),
            Err(ServiceError::Storage(why)) => panic!("storage error on a push: {why}"),
            _ => {}
        }
        match target
            .service
            .doc_sync(&target.device, &body, 1_800_000_000)
        {
            Err(ServiceError::Internal(why)) => panic!("internal error on a docsync: {why}"),
            Err(ServiceError::Storage(why)) => panic!("storage error on a docsync: {why}"),
            _ => {}
        }
    }
}

/// A server that answers the first sync request with the given bytes, then with an empty
/// page; enrollment succeeds.
pub struct HostileServer {
    page: Vec<u8>,
    calls: Mutex<usize>,
    /// The sync requests the phone sent, in order.
    pub requests: Mutex<Vec<Vec<u8>>>,
}

impl HostileServer {
    pub fn new(page: Vec<u8>) -> HostileServer {
        HostileServer {
            page,
            calls: Mutex::new(0),
            requests: Mutex::new(Vec::new()),
        }
    }
}

impl Transport for HostileServer {
    fn post(
        &self,
        path: &str,
        _content_type: &str,
        body: Vec<u8>,
        _credentials: Option<&Credentials>,
    ) -> suivi_core::Result<HttpReply> {
        if path == "/v1/sync" {
            self.requests
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(body.clone());
        }
        if path == "/v1/enroll" {
            return enrolled();
        }
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        *calls += 1;
        let body = if *calls == 1 {
            self.page.clone()
        } else {
            // Later requests hear that nothing is new, where they said they stand.
            let (cursor, forms_seen) = protocol::decode_request(&body)
                .map(|r| (r.cursor, r.forms_seen))
                .unwrap_or((0, 0));
            protocol::encode(&nothing_new(cursor, forms_seen))?
        };
        Ok(HttpReply { status: 200, body })
    }
}

/// What a fake server answers an enrollment: Amina's agent phone `dev-1`.
pub fn enrolled() -> suivi_core::Result<HttpReply> {
    let body = serde_json::to_vec(&EnrollResponse {
        device_id: "dev-1".into(),
        token: "t".into(),
        user: "amina".into(),
        role: "agent".into(),
    })
    .map_err(|e| suivi_core::Error::Protocol(e.to_string()))?;
    Ok(HttpReply { status: 200, body })
}

/// A response with nothing in it, at the positions given: tests build hostile pages from it
/// (`SyncResponse { pull, ..nothing_new(1, 0) }`).
pub fn nothing_new(cursor: u64, forms_seen: u64) -> SyncResponse {
    SyncResponse::nothing_new(cursor, forms_seen)
}

/// One pulled case of raw changes, each by the response's first author, received at 0.
pub fn pulled_case(case_id: &str, changes: Vec<Vec<u8>>) -> protocol::PulledCase {
    protocol::PulledCase {
        case_id: case_id.into(),
        changes: changes
            .into_iter()
            .map(|c| protocol::PulledChange {
                data: serde_bytes::ByteBuf::from(c),
                author: 0,
                received_at: 0,
            })
            .collect(),
    }
}

/// A phone enrolled with a hostile server whose first sync answer is `page`.
pub fn hostile_phone(page: Vec<u8>) -> (Store, HostileServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut phone = Store::create(
        &dir.path().join("p.db"),
        crate::DEVICE_KEY,
        "amina",
        "phone",
    )
    .expect("store");
    let server = HostileServer::new(page);
    phone
        .enroll(&server, "http://hostile", "CODE")
        .expect("enroll");
    (phone, server, dir)
}

fn device() -> &'static Mutex<(Store, tempfile::TempDir)> {
    static DEVICE: OnceLock<Mutex<(Store, tempfile::TempDir)>> = OnceLock::new();
    DEVICE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::create(
            &dir.path().join("device.db"),
            crate::bench::BENCH_KEY,
            "amina",
            "phone",
        )
        .expect("store");
        let server = HostileServer::new(Vec::new());
        store
            .enroll(&server, "http://fuzz", "CODE")
            .expect("enroll");
        Mutex::new((store, dir))
    })
}

/// The device's sync with a hostile server: the fuzzer's bytes as a response to a sync
/// request, decoded and committed (accepted, refused, pulled cases, cursor, mark, reset).
pub fn device_page(data: &[u8]) {
    let mut guard = device().lock().unwrap_or_else(|p| p.into_inner());
    let store = &mut guard.0;
    for page in [data.to_vec(), compress(data)] {
        let server = HostileServer::new(page);
        let _ = store.sync(&server, &mut |_| {});
    }
    // Whatever the server said, the device still answers for its own caseload.
    store
        .list_cases(&suivi_core::CaseFilter::default())
        .expect("the device's store still reads");
}

/// A case's history from untrusted bytes, as the server rebuilds and checks it: the input is a
/// list of change chunks, each a little-endian u16 length and its bytes; the first half is
/// loaded as stored history, the rest applied as a push.
pub fn case_changes(data: &[u8]) {
    let parsed: Vec<_> = chunks(data)
        .iter()
        .filter_map(|c| check::parse_change(c).ok())
        .collect();
    let (stored, pushed) = parsed.split_at(parsed.len() / 2);
    let forms = FormRegistry::builtin();
    if let Ok(mut copy) = CaseCheck::load("c0ffee00c0ffee00c0ffee00c0ffee00", stored.to_vec()) {
        let author = check::Author {
            user: "amina",
            audit_notes_only: false,
            links_cases: false,
            supervises: false,
        };
        let _ = copy.apply(pushed.to_vec(), author, &forms);
        let doc = copy.into_document();
        let _ = check::check_document(&doc, "c0ffee00c0ffee00c0ffee00c0ffee00", &forms);
    }
}

/// A case's document as a server sends it whole (protocol version 7): read under bounds and
/// taken apart into changes, each then parsed as a pulled change is. A bug is a panic that
/// escapes, or memory or time out of proportion to the input.
pub fn case_document(data: &[u8]) {
    if let Ok(changes) = check::changes_of_document(data) {
        for change in &changes {
            let _ = check::parse_change(change);
        }
    }
}

/// Splits `case_changes` input: each chunk a little-endian u16 length and its bytes, at most 64.
pub fn chunks(data: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 && chunks.len() < 64 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        let take = len.min(rest.len());
        chunks.push(&rest[..take]);
        rest = &rest[take..];
    }
    chunks
}

/// Form validation on arbitrary JSON: every form against the record, every field against
/// every value.
pub fn form_values(data: &[u8]) {
    let Ok(json) = serde_json::from_slice::<Json>(data) else {
        return;
    };
    let forms = FormRegistry::builtin();
    if let Ok(record) = serde_json::from_value::<Record>(json.clone()) {
        for form in forms.all() {
            let _ = form.validate(&record);
            let _ = form.visible_fields(&record);
        }
    }
    let values: Vec<&Json> = match &json {
        Json::Object(map) => map.values().collect(),
        Json::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for form in forms.all() {
        for field in &form.fields {
            for value in &values {
                let _ = check_field_value(field, value);
            }
        }
    }
}

/// The JSON import (a spreadsheet's rows or a `suivi export`), all or nothing.
pub fn json_import(data: &[u8]) {
    let Ok(json) = serde_json::from_slice::<Json>(data) else {
        return;
    };
    let mut guard = device().lock().unwrap_or_else(|p| p.into_inner());
    let _ = guard.0.import(&json);
}
