//! The device's sync session driven by a scripted server, with no socket: each test says what
//! the server answers, runs `sync::session::run` as the app does, and reads the store after.
//! What the store commits for a push accepted, a page with a case that fails its checks, an
//! erasure, a removal, a conflict, a cancel and a server error is decided here without a
//! network; the end-to-end tests run the same paths against a real server.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use common::*;
use serde_json::json;
use suivi_core::forms::{record_as_text, IDENTIFICATION};
use suivi_core::outcome::OutcomeSettings;
use suivi_core::store::date_input;
use suivi_core::sync::protocol::{
    self, Author, EnrollResponse, PulledCase, PulledChange, SyncResponse,
};
use suivi_core::sync::session::run;
use suivi_core::sync::{Cancel, Credentials, HttpReply, Transport};
use suivi_core::{Error, Store};

type Reply = Box<dyn FnOnce(&[u8]) -> suivi_core::Result<HttpReply> + Send>;

/// A server that answers each request with the next reply of its script, and keeps what it
/// was sent. A request past the end of the script is a test failure.
#[derive(Default)]
struct Scripted {
    replies: Mutex<VecDeque<Reply>>,
    sent: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Scripted {
    fn then(
        self,
        reply: impl FnOnce(&[u8]) -> suivi_core::Result<HttpReply> + Send + 'static,
    ) -> Self {
        self.replies.lock().unwrap().push_back(Box::new(reply));
        self
    }

    /// Answers a sync request with `page`.
    fn page(self, page: SyncResponse) -> Self {
        self.then(move |_| {
            Ok(HttpReply {
                status: 200,
                body: protocol::encode(&page)?,
            })
        })
    }

    fn sent(&self) -> Vec<(String, Vec<u8>)> {
        self.sent.lock().unwrap().clone()
    }
}

impl Transport for Scripted {
    fn post(
        &self,
        path: &str,
        _content_type: &str,
        body: Vec<u8>,
        _credentials: Option<&Credentials>,
    ) -> suivi_core::Result<HttpReply> {
        self.sent
            .lock()
            .unwrap()
            .push((path.to_string(), body.clone()));
        let reply = self
            .replies
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| panic!("the script has no answer for {path}"));
        reply(&body)
    }
}

/// A page with nothing in it, ending at `cursor` (with a mark of its own).
fn empty_page(cursor: u64) -> SyncResponse {
    SyncResponse {
        mark: serde_bytes::ByteBuf::from(vec![cursor as u8; 32]),
        ..SyncResponse::nothing_new(cursor, 0)
    }
}

/// A case's whole history as a page pulls it, every change by author 0.
fn pulled(store: &Store, case_id: &str) -> PulledCase {
    let changes = store.load_doc(case_id).unwrap().unwrap().changes_since(&[]);
    PulledCase {
        case_id: case_id.to_string(),
        changes: changes
            .into_iter()
            .map(|c| PulledChange {
                data: serde_bytes::ByteBuf::from(c),
                author: 0,
                received_at: 1_800_000_000,
            })
            .collect(),
    }
}

/// A phone of `user` enrolled with the scripted server as `device`.
fn enrolled_phone(dir: &tempfile::TempDir, user: &str, device: &str) -> Store {
    let mut store =
        Store::create(&dir.path().join(format!("{device}.db")), KEY, user, device).unwrap();
    let (user, device) = (user.to_string(), device.to_string());
    let server = Scripted::default().then(move |_| {
        let body = serde_json::to_vec(&EnrollResponse {
            device_id: device,
            token: "token".into(),
            user,
            role: "agent".into(),
        })
        .unwrap();
        Ok(HttpReply { status: 200, body })
    });
    store.enroll(&server, "http://127.0.0.1:9", "code").unwrap();
    store
}

fn sync(store: &mut Store, server: &Scripted) -> suivi_core::Result<suivi_core::sync::SyncReport> {
    let mut handle = store;
    run(&mut handle, server, &mut |_| {}, &Cancel::default())
}

#[test]
fn a_push_the_server_accepts_leaves_nothing_pending() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = enrolled_phone(&dir, "amina", "dev-1");
    let case_id = phone
        .create_case(&child("Aïcha", "Traoré", "Kignan"))
        .unwrap();
    assert_eq!(phone.unsynced_case_count().unwrap(), 1);

    let accepted = case_id.clone();
    let server = Scripted::default().then(move |body| {
        // The request carries the case, whole.
        let request = protocol::decode_request(body)?;
        assert_eq!(request.push.len(), 1);
        assert_eq!(request.push[0].case_id, accepted);
        let page = SyncResponse {
            accepted: vec![accepted],
            ..empty_page(1)
        };
        Ok(HttpReply {
            status: 200,
            body: protocol::encode(&page)?,
        })
    });
    let report = sync(&mut phone, &server).unwrap();
    assert_eq!((report.cases_up, report.pages), (1, 1));
    assert_eq!(phone.unsynced_case_count().unwrap(), 0);
    assert_eq!(phone.cursor().unwrap(), 1);
    assert_eq!(server.sent().len(), 1);
}

#[test]
fn a_pulled_case_that_fails_its_checks_is_set_aside_and_the_rest_of_the_page_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = enrolled_phone(&dir, "amina", "dev-1");
    let mut other = enrolled_phone(&dir, "amina", "dev-2");
    let good = other
        .create_case(&child("Youssef", "El Amrani", "Souk Sebt"))
        .unwrap();
    let broken = "0123456789abcdef0123456789abcdef".to_string();
    let page = SyncResponse {
        authors: vec![Author {
            user: "amina".into(),
            device: "dev-2".into(),
        }],
        pull: vec![
            pulled(&other, &good),
            PulledCase {
                case_id: broken.clone(),
                changes: vec![PulledChange {
                    data: serde_bytes::ByteBuf::from(vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3]),
                    author: 0,
                    received_at: 0,
                }],
            },
        ],
        ..empty_page(7)
    };
    let report = sync(&mut phone, &Scripted::default().page(page)).unwrap();

    assert_eq!(report.cases_down, 1);
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(report.quarantined[0].case_id, broken);
    assert!(phone.quarantine_reason(&broken).unwrap().is_some());
    assert!(phone.quarantine_reason(&good).unwrap().is_none());
    // The good case reads; the page's cursor is kept, so the next sync goes on after it.
    assert_eq!(phone.case(&good).unwrap().summary.first_name, "Youssef");
    assert_eq!(phone.cursor().unwrap(), 7);
}

#[test]
fn an_erased_case_is_deleted_and_a_removed_case_leaves_once_nothing_is_pending() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = enrolled_phone(&dir, "amina", "dev-1");
    let erased = phone
        .create_case(&child("Aïcha", "Traoré", "Kignan"))
        .unwrap();
    let removed = phone
        .create_case(&child("Fanta", "Coulibaly", "Kignan"))
        .unwrap();
    let edited = phone
        .create_case(&child("Mariam", "Diarra", "Kignan"))
        .unwrap();
    let all = vec![erased.clone(), removed.clone(), edited.clone()];
    let server = Scripted::default().page(SyncResponse {
        accepted: all,
        ..empty_page(3)
    });
    sync(&mut phone, &server).unwrap();
    // Edited here after the push: a removal must not lose it.
    phone
        .edit_case(&edited, &record(json!({"village": "Ninkina"})))
        .unwrap();

    let server = Scripted::default()
        .page(SyncResponse {
            erased: vec![erased.clone()],
            erasures_cursor: 1,
            removed: vec![removed.clone(), edited.clone()],
            removals_cursor: 2,
            ..empty_page(3)
        })
        // The edit kept the case pending: pushed in the next round trip.
        .then({
            let edited = edited.clone();
            move |body| {
                let request = protocol::decode_request(body)?;
                assert_eq!(request.push[0].case_id, edited);
                assert_eq!((request.erasures_seen, request.removals_seen), (1, 2));
                let page = SyncResponse {
                    accepted: vec![edited],
                    ..empty_page(3)
                };
                Ok(HttpReply {
                    status: 200,
                    body: protocol::encode(&page)?,
                })
            }
        });
    let report = sync(&mut phone, &server).unwrap();
    assert_eq!((report.erased, report.removed), (1, 1));
    assert!(matches!(phone.case(&erased), Err(Error::NotFound { .. })));
    assert!(matches!(phone.case(&removed), Err(Error::NotFound { .. })));
    assert_eq!(
        phone.case(&edited).unwrap().summary.village.as_deref(),
        Some("Ninkina")
    );
}

#[test]
fn a_conflict_pulled_from_another_phone_shows_in_the_badge_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = enrolled_phone(&dir, "amina", "dev-1");
    let mut other = enrolled_phone(&dir, "amina", "dev-2");
    let case_id = phone
        .create_case(&child("Aïcha", "Traoré", "Kignan"))
        .unwrap();
    let author = |device: &str| Author {
        user: "amina".into(),
        device: device.into(),
    };
    // The other phone receives the case, then both edit the village offline.
    sync(
        &mut other,
        &Scripted::default().page(SyncResponse {
            authors: vec![author("dev-1")],
            pull: vec![pulled(&phone, &case_id)],
            ..empty_page(1)
        }),
    )
    .unwrap();
    assert_eq!(phone.conflicted_case_count().unwrap(), 0);
    phone
        .edit_case(&case_id, &record(json!({"village": "Ninkina"})))
        .unwrap();
    other
        .edit_case(&case_id, &record(json!({"village": "Misséni"})))
        .unwrap();

    let server = Scripted::default().page(SyncResponse {
        accepted: vec![case_id.clone()],
        authors: vec![author("dev-2")],
        pull: vec![pulled(&other, &case_id)],
        ..empty_page(3)
    });
    let report = sync(&mut phone, &server).unwrap();
    assert_eq!(report.conflicts, 1);
    assert_eq!(phone.conflicted_case_count().unwrap(), 1);
}

#[test]
fn a_cancelled_sync_sends_nothing_and_a_server_error_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = enrolled_phone(&dir, "amina", "dev-1");
    phone
        .create_case(&child("Aïcha", "Traoré", "Kignan"))
        .unwrap();

    let cancel = Cancel::default();
    cancel.cancel();
    let server = Scripted::default();
    let mut handle = &mut phone;
    let outcome = run(&mut handle, &server, &mut |_| {}, &cancel);
    assert!(matches!(outcome, Err(Error::Cancelled)));
    assert!(server.sent().is_empty());

    let server = Scripted::default().then(|_| {
        Ok(HttpReply {
            status: 500,
            body: b"{\"error\":\"internal\"}".to_vec(),
        })
    });
    assert!(sync(&mut phone, &server).is_err());
    assert_eq!(phone.unsynced_case_count().unwrap(), 1);
    assert_eq!(phone.cursor().unwrap(), 0);
}

#[test]
fn screen_inputs_are_read_with_the_form_a_record_follows() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = new_store(&dir);
    let forms = phone.forms().unwrap();
    let typed = record_as_text(&child("Aïcha", "Traoré", "Kignan"));
    let inputs: HashMap<String, String> = typed.clone();
    let record = phone.new_record(IDENTIFICATION, &inputs).unwrap();
    // A record's text, read back, is the record: numbers, booleans and lists included.
    assert_eq!(record, child("Aïcha", "Traoré", "Kignan"));
    assert_eq!(
        record,
        forms
            .latest(IDENTIFICATION)
            .unwrap()
            .record_from_inputs(&inputs)
            .unwrap()
    );
    let case_id = phone.create_case(&record).unwrap();
    let edit: HashMap<String, String> = [("estimated_age".to_string(), "douze".to_string())].into();
    match phone.case_record(&case_id, &edit) {
        Err(Error::Validation(problems)) => assert_eq!(problems[0].field, "estimated_age"),
        other => panic!("a word for an age must be refused, got {other:?}"),
    }
    // A date typed in a filter: a date, or a validation error naming the field.
    assert!(date_input("overdue_on", "2026-12-07").is_ok());
    match date_input("overdue_on", "07/12/2026") {
        Err(Error::Validation(problems)) => {
            assert_eq!(
                (problems[0].field.as_str(), problems[0].key.as_str()),
                ("overdue_on", "type.date")
            )
        }
        other => panic!("a date in another format must be refused, got {other:?}"),
    }
}

#[test]
fn a_case_whose_history_cannot_join_the_servers_is_set_aside_and_the_others_sync() {
    use automerge::sync::SyncDoc;
    let dir = tempfile::tempdir().unwrap();
    let mut phone = enrolled_phone(&dir, "amina", "dev-1");
    let case_id = phone
        .create_case(&child("Aïcha", "Traoré", "Kignan"))
        .unwrap();
    let other = phone
        .create_case(&child("Fanta", "Coulibaly", "Kignan"))
        .unwrap();
    // The server's copy numbers another change as the phone's next one: the same actor, the
    // same sequence, other content (a restored server writing again under a known actor).
    let mut server = phone.load_doc(&case_id).unwrap().unwrap();
    let actor = server.automerge().get_actor().clone();
    let mut server = suivi_core::CaseDoc::load(&server.save(), actor).unwrap();
    let forms = phone.forms().unwrap();
    server
        .edit_identification(
            &forms,
            &record(json!({"village": "Misséni"})),
            &suivi_core::ChangeContext::now("amina"),
        )
        .unwrap();
    phone
        .edit_case(&case_id, &record(json!({"village": "Ninkina"})))
        .unwrap();
    // The server's answer once it heard what the phone holds: its change, which the phone lacks.
    let mut phone_doc = phone.load_doc(&case_id).unwrap().unwrap();
    let heard = phone_doc
        .automerge()
        .sync()
        .generate_sync_message(&mut automerge::sync::State::new())
        .unwrap();
    let mut state = automerge::sync::State::new();
    server
        .automerge()
        .sync()
        .receive_sync_message(&mut state, heard)
        .unwrap();
    // What the phone said it has is a Bloom filter: a false positive (about one run in thirty,
    // the hashes being new each run) would hide the server's change. Read as having nothing
    // beyond its heads, the phone gets every change it lacks, every run.
    state.their_have = Some(vec![automerge::sync::Have {
        last_sync: Vec::new(),
        bloom: automerge::sync::BloomFilter::default(),
    }]);
    let message = server
        .automerge()
        .sync()
        .generate_sync_message(&mut state)
        .unwrap();
    assert!(!message.changes.is_empty(), "the server sends its change");
    let conflicting = case_id.clone();
    let scripted = Scripted::default()
        // The push: the other case taken, this one lacking what the server holds.
        .then(move |body| {
            let request = protocol::decode_request(body)?;
            assert_eq!(request.push.len(), 2);
            let page = SyncResponse {
                accepted: vec![other],
                refused: vec![protocol::Refusal::new(
                    &conflicting,
                    protocol::RefusalReason::MissingDeps,
                    "",
                )],
                ..empty_page(2)
            };
            Ok(HttpReply {
                status: 200,
                body: protocol::encode(&page)?,
            })
        })
        // The fallback: the server's history of the case, which cannot join the phone's.
        .then(move |_| {
            let reply = protocol::DocSyncResponse {
                version: protocol::PROTOCOL_VERSION,
                message: Some(serde_bytes::ByteBuf::from(message.encode())),
                refused: None,
            };
            Ok(HttpReply {
                status: 200,
                body: protocol::encode(&reply)?,
            })
        })
        // Whatever else the session asks: nothing new.
        .page(empty_page(2))
        .page(empty_page(2))
        .page(empty_page(2));
    let report = sync(&mut phone, &scripted).unwrap();
    assert_eq!(report.cases_up, 1, "the other case synced");
    let set_aside: Vec<_> = phone.refused_cases().unwrap();
    assert_eq!(set_aside.len(), 1);
    assert_eq!(set_aside[0].case_id, case_id);
    // Kept as the phone holds it, nothing lost.
    assert_eq!(
        phone.case(&case_id).unwrap().summary.village.as_deref(),
        Some("Ninkina")
    );
}

/// A page of `other`'s case `case_id` at `cursor`, saying whether more waits.
fn page_of(other: &Store, case_id: &str, cursor: u64, more: bool) -> Vec<u8> {
    protocol::encode(&SyncResponse {
        authors: vec![Author {
            user: "amina".into(),
            device: "dev-2".into(),
        }],
        pull: vec![pulled(other, case_id)],
        more,
        ..empty_page(cursor)
    })
    .unwrap()
}

fn streamed(frames: Vec<Vec<u8>>) -> HttpReply {
    HttpReply {
        status: 200,
        body: protocol::stream::stream(&frames),
    }
}

#[test]
fn a_streamed_reply_is_committed_page_by_page_and_a_cut_keeps_the_whole_pages() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = enrolled_phone(&dir, "amina", "dev-1");
    let mut other = enrolled_phone(&dir, "amina", "dev-2");
    let cases: Vec<String> = ["Aïcha", "Moussa", "Fanta"]
        .iter()
        .map(|name| other.create_case(&child(name, "Traoré", "Kignan")).unwrap())
        .collect();
    let pages: Vec<Vec<u8>> = (0..3)
        .map(|n| page_of(&other, &cases[n], n as u64 + 1, n < 2))
        .collect();
    // The link drops inside the third page: the first two were whole.
    let mut cut = protocol::stream::stream(&pages);
    cut.truncate(cut.len() - 4 - pages[2].len() / 2);
    let last = pages[2].clone();
    let server = Scripted::default()
        .then(move |_| {
            Ok(HttpReply {
                status: 200,
                body: cut,
            })
        })
        .then(move |body| {
            // The next sync asks from the last page committed.
            assert_eq!(protocol::decode_request(body)?.cursor, 2);
            Ok(streamed(vec![last]))
        });
    let mut progress = Vec::new();
    let mut handle = &mut phone;
    let cut_sync = run(
        &mut handle,
        &server,
        &mut |p| progress.push((p.pages, p.cases_down)),
        &Cancel::default(),
    );
    assert!(
        matches!(&cut_sync, Err(Error::Offline(m)) if m.contains("after 2 whole pages")),
        "{cut_sync:?}"
    );
    assert_eq!(
        progress,
        vec![(1, 1), (2, 2)],
        "each page reported as it commits"
    );
    assert_eq!(phone.cursor().unwrap(), 2);
    assert!(phone.case(&cases[1]).is_ok());
    assert!(
        phone.case(&cases[2]).is_err(),
        "the page in flight is not committed"
    );
    let report = sync(&mut phone, &server).unwrap();
    assert_eq!((report.cases_down, report.round_trips), (1, 1));
    assert_eq!(phone.cursor().unwrap(), 3);
    assert_eq!(phone.case(&cases[2]).unwrap().summary.first_name, "Fanta");
}

#[test]
fn a_stream_with_a_bad_page_keeps_the_pages_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = enrolled_phone(&dir, "amina", "dev-1");
    let mut other = enrolled_phone(&dir, "amina", "dev-2");
    let case = other
        .create_case(&child("Aïcha", "Traoré", "Kignan"))
        .unwrap();
    let good = page_of(&other, &case, 1, true);
    let server =
        Scripted::default().then(move |_| Ok(streamed(vec![good, b"not a page".to_vec()])));
    let err = sync(&mut phone, &server).unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert_eq!(phone.cursor().unwrap(), 1);
    assert_eq!(phone.case(&case).unwrap().summary.first_name, "Aïcha");
}

#[test]
fn a_stream_announcing_a_page_larger_than_any_is_refused_and_a_stalled_one_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = enrolled_phone(&dir, "amina", "dev-1");
    let mut huge = protocol::stream::STREAM_MAGIC.to_vec();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    let server = Scripted::default().then(move |_| {
        Ok(HttpReply {
            status: 200,
            body: huge,
        })
    });
    let err = sync(&mut phone, &server).unwrap_err().to_string();
    assert!(err.contains("larger than"), "{err}");
    // Pages that say more waits and never move a cursor: stopped after three, nothing lost.
    let same = protocol::encode(&SyncResponse {
        more: true,
        ..empty_page(4)
    })
    .unwrap();
    let frames = vec![same; 10];
    let server = Scripted::default().then(move |_| Ok(streamed(frames)));
    let err = sync(&mut phone, &server).unwrap_err().to_string();
    assert!(err.contains("moved nothing"), "{err}");
    assert_eq!(phone.cursor().unwrap(), 4);
}

fn row(case_id: &str, first_name: &str) -> protocol::CaseRow {
    protocol::CaseRow {
        case_id: case_id.into(),
        first_name: first_name.into(),
        last_name: "Traoré".into(),
        sex: None,
        province: None,
        commune: None,
        village: Some("Kignan".into()),
        work_sector: None,
        risk_level: Some("high".into()),
        referral_statuses: vec!["referred".into()],
        next_followup_due: Some("2026-11-02".into()),
        referral_count: 1,
        followup_count: 0,
        conflict_count: 0,
        updated_at: 1_800_000_000,
    }
}

fn rows_frame(total: u64, rows: Vec<protocol::CaseRow>) -> (protocol::stream::FrameKind, Vec<u8>) {
    let rows = protocol::CaseRows {
        version: protocol::PROTOCOL_VERSION,
        total,
        rows,
    };
    (
        protocol::stream::FrameKind::Rows,
        protocol::encode(&rows).unwrap(),
    )
}

#[test]
fn rows_sent_ahead_are_listed_until_the_sync_ends_and_more_rows_than_announced_are_refused() {
    use protocol::stream::{stream_of, FrameKind};
    let dir = tempfile::tempdir().unwrap();
    let mut phone = enrolled_phone(&dir, "amina", "dev-1");
    let a = "a".repeat(32);
    // Rows, then a stream cut before its page: listed, read-only.
    let mut cut = stream_of(&[
        rows_frame(1, vec![row(&a, "Awa")]),
        (FrameKind::Page, protocol::encode(&empty_page(1)).unwrap()),
    ]);
    cut.truncate(cut.len() - 10);
    // A frame of a kind this build does not know is skipped; the sync ends without the case.
    let page = stream_of(&[(FrameKind::Page, protocol::encode(&empty_page(1)).unwrap())]);
    let mut with_unknown = page[..4].to_vec();
    with_unknown.extend_from_slice(&4u32.to_le_bytes());
    with_unknown.extend_from_slice(&[9, 1, 2, 3]);
    with_unknown.extend_from_slice(&page[4..]);
    let server = Scripted::default()
        .then(move |_| {
            Ok(HttpReply {
                status: 200,
                body: cut,
            })
        })
        .then(move |_| {
            Ok(HttpReply {
                status: 200,
                body: with_unknown,
            })
        });
    assert!(matches!(sync(&mut phone, &server), Err(Error::Offline(_))));
    let listed = phone.list_cases(&Default::default()).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].arriving);
    assert_eq!(listed[0].first_name, "Awa");
    assert!(matches!(phone.case(&a), Err(Error::CaseArriving(_))));
    let report = sync(&mut phone, &server).unwrap();
    assert_eq!(report.cases_down, 0);
    // The case did not come: its row is not the phone's to show once the sync ended.
    assert!(phone.list_cases(&Default::default()).unwrap().is_empty());
    assert!(matches!(phone.case(&a), Err(Error::NotFound { .. })));

    // More rows than the caseload announced: refused.
    let b = "b".repeat(32);
    let lying = stream_of(&[rows_frame(1, vec![row(&a, "Awa"), row(&b, "Binta")])]);
    let server = Scripted::default().then(move |_| {
        Ok(HttpReply {
            status: 200,
            body: lying,
        })
    });
    let err = sync(&mut phone, &server).unwrap_err().to_string();
    assert!(err.contains("list rows"), "{err}");
    // A row whose id is not a case id: refused, nothing listed.
    let odd = stream_of(&[rows_frame(1, vec![row("../../etc/passwd", "Awa")])]);
    let server = Scripted::default().then(move |_| {
        Ok(HttpReply {
            status: 200,
            body: odd,
        })
    });
    let err = sync(&mut phone, &server).unwrap_err().to_string();
    assert!(err.contains("not a case id"), "{err}");
    assert!(phone.list_cases(&Default::default()).unwrap().is_empty());
}

/// A phone updated before its server: the server refuses the newer version and says its own;
/// the phone asks again in it and syncs page by page. A server older than any version the
/// phone speaks stays an error.
#[test]
fn a_phone_newer_than_its_server_asks_again_in_the_servers_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = enrolled_phone(&dir, "amina", "dev-1");
    let case_id = phone
        .create_case(&child("Aïcha", "Traoré", "Kignan"))
        .unwrap();
    let too_new = |server: u16| {
        move |body: &[u8]| {
            let asked = protocol::peek_version(body)?;
            let message = format!("protocol version {asked} is newer than this server's {server}");
            Ok(HttpReply {
                status: 400,
                body: serde_json::to_vec(&json!({"error": "bad_request", "message": message}))
                    .unwrap(),
            })
        }
    };
    let accepted = case_id.clone();
    let server = Scripted::default().then(too_new(7)).then(move |body| {
        let request = protocol::decode_request(body)?;
        assert_eq!(request.version, 7, "asked again in the server's version");
        assert_eq!(request.push.len(), 1, "the push goes again");
        protocol::encode(&SyncResponse {
            version: 7,
            accepted: vec![accepted],
            ..empty_page(1)
        })
        .map(|body| HttpReply { status: 200, body })
    });
    let report = sync(&mut phone, &server).unwrap();
    assert_eq!(report.cases_up, 1);
    assert_eq!(phone.unsynced_case_count().unwrap(), 0);
    assert_eq!(server.sent().len(), 2);
    // The next sync of the day starts in the server's version: no refused round trip.
    let server = Scripted::default().then(|body| {
        assert_eq!(protocol::peek_version(body)?, 7);
        protocol::encode(&SyncResponse {
            version: 7,
            ..empty_page(1)
        })
        .map(|body| HttpReply { status: 200, body })
    });
    assert_eq!(sync(&mut phone, &server).unwrap().round_trips, 1);

    let server = Scripted::default().then(too_new(5));
    let err = sync(&mut phone, &server).unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
}

/// A reply that is not a stream is read whole only under the response cap, in the sync as in
/// a single request.
#[test]
fn a_whole_reply_larger_than_the_cap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = enrolled_phone(&dir, "amina", "dev-1");
    let huge = vec![0x28u8; suivi_core::sync::RESPONSE_BYTES_MAX + 1];
    let server = Scripted::default().then(move |_| {
        Ok(HttpReply {
            status: 200,
            body: huge,
        })
    });
    let err = sync(&mut phone, &server).unwrap_err().to_string();
    assert!(err.contains("larger than"), "{err}");
    assert_eq!(phone.cursor().unwrap(), 0);
}

/// A case fetched by id (a row listed ahead, opened): the server's reply may hold only the
/// cases asked for; one holding another is refused and nothing is kept.
#[test]
fn a_fetch_answered_with_a_case_not_asked_for_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = enrolled_phone(&dir, "amina", "dev-1");
    let mut other = enrolled_phone(&dir, "amina", "dev-2");
    let asked = other
        .create_case(&child("Aïcha", "Traoré", "Kignan"))
        .unwrap();
    let slipped = other
        .create_case(&child("Moussa", "Traoré", "Kignan"))
        .unwrap();
    let page = |ids: Vec<String>, other: &Store| SyncResponse {
        authors: vec![Author {
            user: "amina".into(),
            device: "dev-2".into(),
        }],
        pull: ids.iter().map(|id| pulled(other, id)).collect(),
        ..empty_page(0)
    };
    let server = Scripted::default().page(page(vec![asked.clone(), slipped.clone()], &other));
    let err = suivi_core::sync::fetch_cases(&mut &mut phone, &server, std::slice::from_ref(&asked))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not asked for"), "{err}");
    assert!(phone.case(&asked).is_err() && phone.case(&slipped).is_err());
    // Answered with the case asked for: kept, no position moved.
    let server = Scripted::default().page(page(vec![asked.clone()], &other));
    let fetched =
        suivi_core::sync::fetch_cases(&mut &mut phone, &server, std::slice::from_ref(&asked))
            .unwrap();
    assert_eq!(fetched.cases_down, 1);
    assert_eq!(phone.case(&asked).unwrap().summary.first_name, "Aïcha");
    assert_eq!(phone.cursor().unwrap(), 0);
    let sent = server.sent();
    assert_eq!(sent[0].0, "/v1/cases");
}

/// Outcome settings from a server are input like any other: ones no programme could set are
/// refused and the held ones stay; good ones are kept, every case's outcome is derived again
/// with them, and the next request says which version the phone holds.
#[test]
fn outcome_settings_from_the_server_are_checked_kept_and_recount_every_case() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = enrolled_phone(&dir, "amina", "tecno");
    let case_id = phone
        .create_case(&child("Awa", "Sangaré", "Zégoua"))
        .unwrap();
    for (date, due) in [("2026-09-01", "2026-10-10"), ("2026-10-11", "2026-11-20")] {
        phone
            .add_followup(&case_id, &visit(date, due, "low"))
            .unwrap();
    }
    let stage = |phone: &Store| {
        phone.list_cases(&Default::default()).unwrap()[0]
            .stage
            .clone()
    };
    assert_eq!(
        stage(&phone).as_deref(),
        Some("exited"),
        "two visits, 40 days apart"
    );

    let hostile = OutcomeSettings {
        version: 7,
        exit_visits: 0,
        ..OutcomeSettings::default()
    };
    let server = Scripted::default().page(SyncResponse {
        settings: vec![hostile],
        accepted: vec![case_id.clone()],
        ..empty_page(1)
    });
    let report = sync(&mut phone, &server).unwrap();
    assert!(
        report
            .settings_refused
            .as_deref()
            .unwrap_or("")
            .contains("0 visits"),
        "{report:?}"
    );
    assert_eq!(
        phone.outcome_settings().unwrap(),
        OutcomeSettings::default()
    );

    let three_visits = OutcomeSettings {
        version: 2,
        exit_visits: 3,
        ..OutcomeSettings::default()
    };
    let server = Scripted::default().page(SyncResponse {
        settings: vec![three_visits.clone()],
        ..empty_page(2)
    });
    let report = sync(&mut phone, &server).unwrap();
    assert_eq!(report.settings_refused, None);
    assert_eq!(phone.outcome_settings().unwrap(), three_visits);
    assert_eq!(
        stage(&phone).as_deref(),
        Some("not_working_at_one_visit"),
        "two visits are not three"
    );
    let server = Scripted::default().page(empty_page(3));
    sync(&mut phone, &server).unwrap();
    let sent = protocol::decode_request(&server.sent()[0].1).unwrap();
    assert_eq!(sent.settings_seen, 2);
}
