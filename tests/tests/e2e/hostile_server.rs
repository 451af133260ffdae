//! A hostile server (or a man in the middle of plain HTTP) against a phone: a response larger
//! than any sync body is refused as it streams, a page sent again and again is kept once, and a
//! server that moves nothing stops the sync with an error instead of looping.

use std::io::{Read, Write};
use std::sync::Mutex;

use suivi_core::sync::protocol::{self, RefusalReason, SyncResponse};
use suivi_core::sync::{Credentials, HttpReply, HttpTransport, Transport};
use suivi_core::{Error, Store};
use suivi_tests::child;
use suivi_tests::fuzz::{nothing_new, pulled_case};

/// A server whose every sync answer is `answer(request)`; enrollment succeeds.
struct Scripted<F: Fn(&protocol::SyncRequest) -> SyncResponse> {
    answer: F,
    round_trips: Mutex<usize>,
}

impl<F: Fn(&protocol::SyncRequest) -> SyncResponse> Transport for Scripted<F> {
    fn post(
        &self,
        path: &str,
        _content_type: &str,
        body: Vec<u8>,
        _credentials: Option<&Credentials>,
    ) -> suivi_core::Result<HttpReply> {
        if path == "/v1/enroll" {
            return suivi_tests::fuzz::enrolled();
        }
        *self.round_trips.lock().unwrap() += 1;
        let request = protocol::decode_request(&body)?;
        let body = protocol::encode(&(self.answer)(&request))?;
        Ok(HttpReply { status: 200, body })
    }
}

fn phone(dir: &tempfile::TempDir) -> Store {
    Store::create(
        &dir.path().join("p.db"),
        suivi_tests::DEVICE_KEY,
        "amina",
        "phone",
    )
    .unwrap()
}

/// Rows waiting in the phone's `pending_changes`, read with its key.
fn pending_rows(dir: &tempfile::TempDir) -> i64 {
    let conn = rusqlite::Connection::open(dir.path().join("p.db")).unwrap();
    conn.pragma_update(None, "key", suivi_tests::DEVICE_KEY)
        .unwrap();
    conn.query_row("SELECT count(*) FROM pending_changes", [], |r| r.get(0))
        .unwrap()
}

/// A server that never acknowledges a push and answers "more" with an empty page at the same
/// place: the sync stops after three round trips with an error that says so, and the case is
/// still waiting to be sent (on main at d9e481c: 10,000 round trips, then success).
#[test]
fn a_server_that_moves_nothing_stops_the_sync_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = phone(&dir);
    let server = Scripted {
        answer: |r: &protocol::SyncRequest| SyncResponse {
            more: true,
            ..nothing_new(r.cursor, r.forms_seen)
        },
        round_trips: Mutex::new(0),
    };
    store.enroll(&server, "http://hostile", "CODE").unwrap();
    store.create_case(&child(1)).unwrap();
    let result = store.sync(&server, &mut |_| {});
    match result {
        Err(Error::Protocol(message)) => assert!(message.contains("moved nothing"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        *server.round_trips.lock().unwrap(),
        suivi_core::sync::STALLED_ROUND_TRIPS_MAX
    );
    assert_eq!(store.unsynced_case_count().unwrap(), 1, "nothing lost");
}

/// A page whose change waits for history that never comes, sent again at every round trip
/// (the cursor moving on each time, so the sync goes on): the change is kept once (on main at
/// d9e481c, a row more at every round trip: 6 MB to 155 MB in 30 s).
#[test]
fn a_page_sent_again_and_again_is_kept_once() {
    let source_dir = tempfile::tempdir().unwrap();
    let mut source = phone(&source_dir);
    let case_id = source.create_case(&child(2)).unwrap();
    source
        .edit_case(&case_id, &{
            let mut c = child(2);
            c.insert("village".into(), "Kaniko".into());
            c
        })
        .unwrap();
    let changes = source
        .load_doc(&case_id)
        .unwrap()
        .unwrap()
        .changes_since(&[]);
    assert!(changes.len() >= 2);
    // The last change alone: its history is missing, so it waits.
    let waiting = changes.last().unwrap().clone();

    let dir = tempfile::tempdir().unwrap();
    let mut store = phone(&dir);
    let page = |cursor: u64, forms_seen: u64, more: bool| SyncResponse {
        authors: vec![protocol::Author {
            user: "amina".into(),
            device: "dev-2".into(),
        }],
        pull: vec![pulled_case(&case_id, vec![waiting.clone()])],
        more,
        ..nothing_new(cursor, forms_seen)
    };
    let server = Scripted {
        answer: |r: &protocol::SyncRequest| page(r.cursor + 1, r.forms_seen, r.cursor < 20),
        round_trips: Mutex::new(0),
    };
    store.enroll(&server, "http://hostile", "CODE").unwrap();
    store.sync(&server, &mut |_| {}).unwrap();
    assert!(*server.round_trips.lock().unwrap() >= 20);
    assert_eq!(pending_rows(&dir), 1, "kept once");
    // And again at the next sync.
    store.sync(&server, &mut |_| {}).unwrap();
    assert_eq!(pending_rows(&dir), 1);
}

/// A plain-HTTP "server" answering `head` and then `body_bytes` of zeros, counting what it
/// managed to write before the phone hung up.
fn huge_answer(head: String, body_bytes: u64) -> (String, std::thread::JoinHandle<u64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = [0u8; 4096];
        let _ = conn.read(&mut request);
        if conn.write_all(head.as_bytes()).is_err() {
            return 0;
        }
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        while written < body_bytes {
            if conn.write_all(&chunk).is_err() {
                break;
            }
            written += chunk.len() as u64;
        }
        written
    });
    (url, handle)
}

/// A 1 GiB answer, with its length declared and without (chunks the phone cannot size ahead):
/// refused with a typed error once past the cap, never read whole (on main at d9e481c, the CLI
/// reached 2.1 GB of memory).
#[test]
fn a_response_larger_than_any_sync_body_is_refused_as_it_streams() {
    const GIB: u64 = 1 << 30;
    let cap = suivi_core::sync::RESPONSE_BYTES_MAX as u64;
    let declared = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-suivi-sync\r\ncontent-length: {GIB}\r\n\r\n"
    );
    // Refused as it streams, whatever the head says: the bytes the server got to write.
    let refused = |head: String| {
        let (url, server) = huge_answer(head, GIB);
        let transport = HttpTransport::new(&url).unwrap();
        let result = transport.post("/v1/sync", protocol::CONTENT_TYPE, vec![1], None);
        assert!(
            matches!(&result, Err(Error::Protocol(m)) if m.contains("larger than")),
            "{result:?}"
        );
        drop(transport);
        server.join().unwrap()
    };
    let written = refused(declared);
    assert!(
        written < 64 << 20,
        "refused on its length: {written} bytes sent"
    );

    // No length: the body is read only up to the cap.
    let written = refused(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-suivi-sync\r\nconnection: close\r\n\r\n"
            .into(),
    );
    assert!(
        written < cap + (64 << 20),
        "read no further than the cap (and the sockets' buffers): {written} bytes sent"
    );
}

/// A fake server plants two cases of another team on Amina's phone (its page at her cursor,
/// under another mark); she edits one of them. Back on the real server, which never granted
/// them to her, the one holding nothing she wrote leaves her phone, and the one holding her
/// edit is set aside and reported, never deleted (on main at d9e481c both stayed for ever,
/// refused at every sync).
#[test]
fn cases_the_real_server_never_granted_leave_the_phone_unless_they_hold_its_work() {
    use suivi_server::storage::Role;
    let server = suivi_tests::TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    server.add_user("moussa", Role::Agent, "souk-sebt");
    let mut moussa = server.device("moussa");
    let planted: Vec<String> = (3..5)
        .map(|n| moussa.store.create_case(&child(n)).unwrap())
        .collect();
    moussa.sync().unwrap();
    let mut amina = server.device("amina");
    let own = amina.store.create_case(&child(1)).unwrap();
    amina.sync().unwrap();

    let pulled: Vec<protocol::PulledCase> = planted
        .iter()
        .map(|id| {
            let changes = moussa
                .store
                .load_doc(id)
                .unwrap()
                .unwrap()
                .changes_since(&[]);
            pulled_case(id, changes)
        })
        .collect();
    let fake = Scripted {
        answer: |r: &protocol::SyncRequest| SyncResponse {
            authors: vec![protocol::Author {
                user: "moussa".into(),
                device: "dev-moussa".into(),
            }],
            pull: pulled.clone(),
            mark: serde_bytes::ByteBuf::from(vec![7u8; 32]),
            ..nothing_new(r.cursor, r.forms_seen)
        },
        round_trips: Mutex::new(0),
    };
    amina.store.sync(&fake, &mut |_| {}).unwrap();
    assert_eq!(amina.case_ids().len(), 3, "planted");
    let mut edit = child(4);
    edit.insert("village".into(), "Kaniko".into());
    amina.store.edit_case(&planted[1], &edit).unwrap();

    let report = amina.sync().unwrap();
    assert!(
        report.server_reset,
        "another history than the real one: {report:?}"
    );
    let refused: Vec<(&str, RefusalReason)> = report
        .refused
        .iter()
        .map(|r| (r.case_id.as_str(), r.reason))
        .collect();
    assert!(refused.contains(&(planted[0].as_str(), RefusalReason::Forbidden)));
    assert!(refused.contains(&(planted[1].as_str(), RefusalReason::Forbidden)));
    assert_eq!(report.removed, 1, "{report:?}");
    let held = amina.case_ids();
    assert!(!held.contains(&planted[0]), "nothing of hers: gone");
    assert!(held.contains(&planted[1]), "her edit: set aside, kept");
    assert!(held.contains(&own));
    assert!(amina
        .store
        .refused_cases()
        .unwrap()
        .iter()
        .any(|r| r.case_id == planted[1]));
    // The next sync is quiet: nothing planted is pushed again.
    let again = amina.sync().unwrap();
    assert!(again.refused.is_empty(), "{again:?}");
}

/// A page brings a change under this phone's own actor that it never wrote (made from its own
/// case, with its actor, by someone else): the phone refuses it, sets the case aside, and
/// reports the forgery in its next request (protocol 6).
#[test]
fn a_pulled_change_under_the_phones_own_name_is_refused_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = phone(&dir);
    let seen: Mutex<Vec<protocol::SyncRequest>> = Mutex::new(Vec::new());
    let forged_page: Mutex<Option<protocol::PulledCase>> = Mutex::new(None);
    let server = Scripted {
        answer: |r: &protocol::SyncRequest| {
            seen.lock().unwrap().push(r.clone());
            let pull = forged_page.lock().unwrap().take().into_iter().collect();
            SyncResponse {
                authors: vec![protocol::Author {
                    user: "amina".into(),
                    device: "dev-1".into(),
                }],
                pull,
                ..nothing_new(r.cursor + 1, r.forms_seen)
            }
        },
        round_trips: Mutex::new(0),
    };
    store.enroll(&server, "http://hostile", "CODE").unwrap();
    let case_id = store.create_case(&child(1)).unwrap();
    store.sync(&server, &mut |_| {}).unwrap();

    // Someone else commits a change with this phone's actor on a copy of its case.
    let actor = automerge::ActorId::from(hex::decode(&store.identity().actor).unwrap());
    let mut doc = store.load_doc(&case_id).unwrap().unwrap();
    let mut copy = doc.automerge().clone().with_actor(actor);
    let heads = copy.get_heads();
    {
        use automerge::transaction::Transactable;
        use automerge::ReadDoc;
        let ident = copy
            .get(automerge::ROOT, "identification")
            .unwrap()
            .unwrap()
            .1;
        copy.put(&ident, "risk_level", "low").unwrap();
    }
    copy.commit();
    let forged: Vec<Vec<u8>> = copy
        .get_changes(&heads)
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    let hash = copy.get_heads()[0].to_string();
    *forged_page.lock().unwrap() = Some(pulled_case(&case_id, forged));

    let report = store.sync(&server, &mut |_| {}).unwrap();
    assert_eq!(report.forgeries, 1, "{report:?}");
    assert_eq!(report.quarantined.len(), 1);
    assert!(report.quarantined[0].reason.starts_with("forged"));
    assert_ne!(
        store.case(&case_id).unwrap().identification["risk_level"],
        serde_json::json!("low"),
        "the forged value is not taken in"
    );
    store.sync(&server, &mut |_| {}).unwrap();
    let reported: Vec<protocol::ForgeryReport> = seen
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| r.forgeries.clone())
        .collect();
    assert_eq!(
        reported,
        [protocol::ForgeryReport {
            case_id: case_id.clone(),
            hash: hash.clone()
        }],
        "reported once, then known as reported"
    );
    assert_eq!(store.forgeries().unwrap(), [(case_id, hash, true)]);
}

/// A case reassigned away leaves the phone with the hashes of the changes it wrote there: a
/// change the feed later lists as the phone's in that case, not among them, is a forgery; the
/// phone's own are not.
#[test]
fn a_phone_witnesses_for_a_case_it_no_longer_holds() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = phone(&dir);
    let step = Mutex::new(0usize);
    let case_cell: Mutex<String> = Mutex::new(String::new());
    let own_cell: Mutex<Vec<protocol::OwnChange>> = Mutex::new(Vec::new());
    let server = Scripted {
        answer: |r: &protocol::SyncRequest| {
            let mut step = step.lock().unwrap();
            *step += 1;
            let base = nothing_new(r.cursor + 1, r.forms_seen);
            match *step {
                // Enrollment is not a sync; the first sync is acknowledged.
                1 => SyncResponse {
                    accepted: r.push.iter().map(|c| c.case_id.clone()).collect(),
                    ..base
                },
                // Then the case is reassigned away.
                2 => SyncResponse {
                    removed: vec![case_cell.lock().unwrap().clone()],
                    removals_cursor: 1,
                    ..base
                },
                // Then the feed lists changes under this phone in that case.
                _ => SyncResponse {
                    removals_cursor: 1,
                    own: std::mem::take(&mut *own_cell.lock().unwrap()),
                    ..base
                },
            }
        },
        round_trips: Mutex::new(0),
    };
    store.enroll(&server, "http://hostile", "CODE").unwrap();
    let case_id = store.create_case(&child(1)).unwrap();
    *case_cell.lock().unwrap() = case_id.clone();
    let mut doc = store.load_doc(&case_id).unwrap().unwrap();
    let own_hash = doc.heads()[0].to_string();
    store.sync(&server, &mut |_| {}).unwrap();
    let report = store.sync(&server, &mut |_| {}).unwrap();
    assert_eq!(report.removed, 1, "{report:?}");
    assert!(store.case(&case_id).is_err(), "left the phone");
    let forged = "f".repeat(64);
    *own_cell.lock().unwrap() = vec![
        protocol::OwnChange {
            case_id: case_id.clone(),
            hash: own_hash,
        },
        protocol::OwnChange {
            case_id: case_id.clone(),
            hash: forged.clone(),
        },
    ];
    let report = store.sync(&server, &mut |_| {}).unwrap();
    assert_eq!(report.forgeries, 1, "{report:?}");
    assert_eq!(store.forgeries().unwrap(), [(case_id, forged, false)]);
}

/// Positions the store holds that do not read (a damaged row, a hand edit) are not taken for 0
/// silently: the sync restarts them from the beginning (the feed cursor with its mark), says so
/// in its report, and writes the restart, so the next sync is clean.
#[test]
fn unreadable_positions_restart_from_the_beginning_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = phone(&dir);
    let seen: Mutex<Vec<protocol::SyncRequest>> = Mutex::new(Vec::new());
    let server = Scripted {
        answer: |r: &protocol::SyncRequest| {
            seen.lock().unwrap().push(r.clone());
            nothing_new(7, r.forms_seen)
        },
        round_trips: Mutex::new(0),
    };
    store.enroll(&server, "http://hostile", "CODE").unwrap();
    store.sync(&server, &mut |_| {}).unwrap();
    store.set_meta("cursor", "seven").unwrap();
    store.set_meta("erasures_cursor", "-1").unwrap();
    assert!(
        matches!(store.cursor(), Err(suivi_core::Error::Storage(_))),
        "read alone, a damaged cursor is an error, not 0"
    );
    let report = store.sync(&server, &mut |_| {}).unwrap();
    assert_eq!(report.restarted, ["feed cursor", "erasures cursor"]);
    let sent = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (sent.cursor, sent.mark.len(), sent.erasures_seen),
        (0, 0, 0)
    );
    assert_eq!(store.cursor().unwrap(), 7, "the page's cursor is kept");
    let again = store.sync(&server, &mut |_| {}).unwrap();
    assert!(again.restarted.is_empty(), "{again:?}");
}

/// A hostile server listing made-up changes as this phone's, page after page: the phone keeps
/// at most `FORGERIES_KEPT_MAX`, so its store does not grow without end.
#[test]
fn made_up_witness_lists_are_kept_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = phone(&dir);
    let case_cell: Mutex<String> = Mutex::new(String::new());
    let page = Mutex::new(0u64);
    let server = Scripted {
        answer: |r: &protocol::SyncRequest| {
            let mut page = page.lock().unwrap();
            *page += 1;
            let case_id = case_cell.lock().unwrap().clone();
            SyncResponse {
                accepted: r.push.iter().map(|c| c.case_id.clone()).collect(),
                own: (0..700u64)
                    .map(|n| protocol::OwnChange {
                        case_id: case_id.clone(),
                        hash: format!("{:064x}", *page * 1_000 + n),
                    })
                    .collect(),
                more: *page < 3,
                ..nothing_new(r.cursor + 1, r.forms_seen)
            }
        },
        round_trips: Mutex::new(0),
    };
    store.enroll(&server, "http://hostile", "CODE").unwrap();
    *case_cell.lock().unwrap() = store.create_case(&child(1)).unwrap();
    let report = store.sync(&server, &mut |_| {}).unwrap();
    let kept = store.forgeries().unwrap().len() as i64;
    assert_eq!(kept, suivi_core::store::FORGERIES_KEPT_MAX);
    assert_eq!(report.forgeries as i64, kept);
}
