//! A sync shares the phone with the app: reads go through their own connection, saves take the
//! store between the sync's steps, and the sync never holds the store while it waits on the
//! network. No timing is asserted here (the benchmark measures it): a generous deadline only
//! turns a hang into a failure.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use suivi_core::sync::session::{self, SyncSession};
use suivi_core::sync::{Cancel, HttpTransport, Transport};
use suivi_core::{CaseFilter, Error, Store};
use suivi_server::storage::Role;
use suivi_tests::{child, record, TestServer, DEVICE_KEY};

const DEADLINE: Duration = Duration::from_secs(60);

/// A server that accepts connections, reads what comes, and never answers.
struct StalledServer {
    addr: std::net::SocketAddr,
    accepted: Arc<Mutex<Vec<TcpStream>>>,
}

impl StalledServer {
    fn start() -> StalledServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let held = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = stream.try_clone().unwrap();
                held.lock().unwrap().push(stream);
                // Drain the request so the client is left waiting for a reply, not for a send.
                std::thread::spawn(move || {
                    let mut sink = [0u8; 4096];
                    while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                });
            }
        });
        StalledServer { addr, accepted }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn connections(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }
}

fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// While a sync waits on a server that never answers, the app lists, searches, opens a case
/// and saves a new one; then the sync is cancelled, and the next sync pushes the new case.
#[test]
fn reads_and_saves_go_on_while_a_sync_waits_on_a_stalled_server() {
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    let mut amina = server.device("amina");
    let first = amina.store.create_case(&child(0)).unwrap();
    let path = amina.path.clone();
    let writer = Mutex::new(amina.store);
    let reader = Store::open_reader(&path, DEVICE_KEY).unwrap();
    let stalled = StalledServer::start();
    let transport = HttpTransport::new(&stalled.url()).unwrap();
    let cancel = Cancel::default();
    let second = std::thread::scope(|s| {
        let sync = s.spawn(|| {
            let mut handle = &writer;
            session::run(&mut handle, &transport, &mut |_| {}, &cancel)
        });
        until("the sync's request reaches the stalled server", || {
            (stalled.connections() > 0).then_some(())
        });

        let listed = reader.list_cases(&CaseFilter::default()).unwrap();
        assert_eq!(listed.len(), 1);
        let search = CaseFilter {
            query: Some("AICHA".into()),
            ..CaseFilter::default()
        };
        let found = reader.list_cases(&search).unwrap();
        assert_eq!(found.len(), 1, "search folds case and accents: {found:?}");
        assert_eq!(reader.case(&first).unwrap().summary.case_id, first);
        let second = until("the store is free for a save", || {
            writer
                .try_lock()
                .ok()
                .map(|mut w| w.create_case(&child(2)).unwrap())
        });
        assert_eq!(
            reader.list_cases(&CaseFilter::default()).unwrap().len(),
            2,
            "the reader sees the save once it is committed"
        );

        assert!(
            !sync.is_finished(),
            "the sync is still waiting on the server"
        );
        cancel.cancel();
        until("the cancelled sync returns", || {
            sync.is_finished().then_some(())
        });
        let outcome = sync.join().unwrap();
        assert!(matches!(outcome, Err(Error::Cancelled)), "{outcome:?}");
        second
    });

    // Nothing was lost: the next sync, to the real server, pushes both cases.
    let mut store = writer.into_inner().unwrap();
    let report = store
        .sync(&HttpTransport::new(&server.url()).unwrap(), &mut |_| {})
        .unwrap();
    assert_eq!(report.cases_up, 2, "{report:?}");
    assert_eq!(store.unsynced_case_count().unwrap(), 0);
    for id in [&first, &second] {
        let mut doc = store.load_doc(id).unwrap().unwrap();
        let mut heads = doc.heads();
        heads.sort();
        assert_eq!(heads, server.case_heads(id));
    }
}

/// A save that lands while the push carrying the case is on the network: the reply accepts the
/// older state, and the case stays pending, so the save is pushed too, never marked synced
/// unsent.
#[test]
fn a_save_during_a_push_is_pushed_not_marked_synced() {
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    let mut amina = server.device("amina");
    let case = amina.store.create_case(&child(1)).unwrap();
    let transport = HttpTransport::new(&amina.url).unwrap();

    let mut session = SyncSession::start(&amina.store).unwrap();
    let credentials = session.credentials().clone();
    let send = |out: session::Outgoing| {
        transport
            .post(out.path, out.content_type, out.body, Some(&credentials))
            .unwrap()
    };
    let mut out = session.next_request(&mut amina.store).unwrap();
    // The save lands after the push was gathered, before its reply.
    amina
        .store
        .edit_case(&case, &record(json!({"village": "Zégoua"})))
        .unwrap();
    while let Some(request) = out {
        session.on_reply(&mut amina.store, send(request)).unwrap();
        out = session.next_request(&mut amina.store).unwrap();
    }
    let report = session.finish(&mut amina.store).unwrap();
    // The reply accepted the state that was pushed; the save made meanwhile left the case
    // pending, so the same sync pushed it in a second round.
    assert_eq!(report.cases_up, 2, "{report:?}");
    assert_eq!(amina.store.unsynced_case_count().unwrap(), 0);
    assert_eq!(amina.case_heads(&case), server.case_heads(&case));
}
