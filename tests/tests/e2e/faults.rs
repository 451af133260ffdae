//! A sync cut mid-transfer by the link emulator: the next sync completes and no committed page
//! is sent again. A new phone's pull is one streamed exchange (protocol version 8), so the
//! cuts fall inside its frames.

use suivi_core::sync::{protocol, HttpTransport};
use suivi_core::Error;
use suivi_server::storage::Role;
use suivi_tests::link::{LinkEmulator, PROFILE_LAN};
use suivi_tests::{child, TestServer};

const CASES: usize = 1500;

#[test]
fn a_cut_sync_resumes_without_resending_committed_pages() {
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    server.add_user("fatima", Role::Supervisor, "sikasso");
    let mut agent = server.device("amina");
    // Enough cases for several 64 KB pages: each with a referral and two visits.
    agent
        .store
        .import(&suivi_tests::bench::caseload(0, CASES))
        .unwrap();
    agent.sync().unwrap();
    let total_changes = agent.change_count();

    let link = server
        .runtime
        .block_on(LinkEmulator::start(server.addr, PROFILE_LAN))
        .unwrap();
    // A clean first sync through the link, to know how many bytes it takes.
    let mut probe = server.device("fatima");
    link.reset_counters();
    // The changes held after each page: a cut may leave a phone at one of these, never between.
    let mut whole_pages = vec![0];
    let full = probe
        .store
        .sync(&HttpTransport::new(&link.url()).unwrap(), &mut |p| {
            whole_pages.push(p.changes_down)
        })
        .unwrap();
    let full_down = link.counters().down();
    assert!(
        full.pages >= 3,
        "the caseload should span several pages, got {}",
        full.pages
    );
    assert_eq!(
        full.round_trips, 1,
        "the pages come in one streamed exchange"
    );
    // Pages are filled: about 7 raw bytes read for each compressed byte sent, up to 64 KB
    // compressed a page (a raw read budget far smaller would mean many more round trips).
    let filled = full_down.div_ceil(protocol::PULL_PAGE_BYTES_MAX as u64) as usize;
    assert!(
        full.pages <= filled + 2,
        "{} pages for {full_down} bytes down",
        full.pages
    );
    assert_eq!(full.changes_down, total_changes);

    for fraction in [0.05, 0.2, 0.45, 0.7, 0.9] {
        let cut_at = (full_down as f64 * fraction) as u64;
        let mut device = server.device("fatima");
        link.cut_after_down_bytes(cut_at);
        let first = device.sync_via(&link.url());
        assert!(
            matches!(first, Err(Error::Offline(_))),
            "cut at {cut_at}: expected offline, got {first:?}"
        );
        let committed = device.change_count();
        let cursor = device.store.cursor().unwrap();
        // The pages that arrived whole were committed as they came; the one in flight not at all.
        assert!(
            whole_pages.contains(&committed),
            "cut at {cut_at}: {committed} changes held, not a whole number of pages \
             {whole_pages:?}"
        );
        link.heal();
        link.reset_counters();
        let second = device.sync_via(&link.url()).unwrap();
        // Nothing committed before the cut comes down again, and nothing is missing.
        assert_eq!(
            second.changes_down + committed,
            total_changes,
            "cut at {cut_at} (cursor {cursor}): {committed} committed, {} re-pulled",
            second.changes_down
        );
        assert_eq!(device.case_ids().len(), CASES);
        let resumed_down = link.counters().down();
        // Headers vary by a few bytes; a resumed sync never costs more than a full one, and
        // less once a page was committed.
        assert!(
            resumed_down <= full_down + 1024,
            "cut at {cut_at}: resumed {resumed_down} > full {full_down}"
        );
        if committed > 0 {
            assert!(
                resumed_down < full_down,
                "cut at {cut_at}: committed pages were fetched again"
            );
        }
        assert_eq!(device.store.unsynced_case_count().unwrap(), 0);
    }
}

#[test]
fn a_failed_push_loses_nothing_and_the_retry_stores_nothing_twice() {
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    server.add_user("fatima", Role::Supervisor, "sikasso");
    let link = server
        .runtime
        .block_on(LinkEmulator::start(server.addr, PROFILE_LAN))
        .unwrap();
    let mut agent = server.device("amina");
    for n in 0..30 {
        agent.store.create_case(&child(n)).unwrap();
    }
    // The response is cut: the server stored the push, the device does not know it.
    link.cut_after_down_bytes(20);
    assert!(matches!(
        agent.sync_via(&link.url()),
        Err(Error::Offline(_))
    ));
    assert_eq!(
        agent.store.unsynced_case_count().unwrap(),
        30,
        "unacknowledged pushes stay pending"
    );
    link.heal();
    let retry = agent.sync_via(&link.url()).unwrap();
    assert_eq!(retry.cases_up, 30);
    let conn = rusqlite::Connection::open(server.dir.path().join("server.db")).unwrap();
    let stored: i64 = conn
        .query_row("SELECT count(*) FROM changes", [], |r| r.get(0))
        .unwrap();
    let feed: i64 = conn
        .query_row("SELECT count(*) FROM feed", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 30, "each change stored once");
    assert_eq!(feed, 30, "each change in the feed once");
    let mut supervisor = server.device("fatima");
    assert_eq!(supervisor.sync().unwrap().cases_down, 30);
}
