//! One storage test suite for every `ServerStore`: what the sync service relies on a store to
//! do, whatever its engine, in a module per concern (as the store's traits). `conformance!(name,
//! factory)` instantiates every test for a store;
//! SQLite (the embedded default) runs here, and a PostgreSQL store joins with one more line.
//! The stores hold raw change bytes without reading them (the service checks changes before
//! storing them), so the changes here are opaque bytes under made-up hashes.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::collections::BTreeSet;
use std::sync::Arc;

use suivi_server::storage::{
    AcceptedCase, AdmissionWrite, CaseQuery, CaseSummary, ConsoleSession, CursorCheck, Device,
    LoginFailures, Quota, Role, ServerStore, StorageError, SummaryWrite, Usage, User, Viewer,
};

/// A store under test and whatever keeps it alive (a temporary directory, a database).
pub struct Subject {
    pub store: Arc<dyn ServerStore>,
    _keep: Box<dyn std::any::Any>,
}

fn sqlite() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let store = suivi_server::SqliteStore::open(&dir.path().join("server.db"), None).unwrap();
    Subject {
        store: Arc::new(store),
        _keep: Box::new(dir),
    }
}

/// A PostgreSQL database of the test's own, on the loopback test cluster.
fn postgres() -> Subject {
    let db = suivi_server::testing::TestDatabase::create();
    let store = suivi_server::PostgresStore::open_with_pool_size(&db.url, &[42; 32], 12).unwrap();
    Subject {
        store: Arc::new(store),
        // The store (and its connections) goes before the database is dropped.
        _keep: Box::new(db),
    }
}

const NOW: i64 = 1_800_000_000;

fn user(id: &str, role: Role, team: &str) -> User {
    User::new(id, role, team)
}

fn device(id: &str, user: &str) -> Device {
    Device {
        device_id: id.into(),
        user_id: user.into(),
        actor: format!(
            "{:0>32}",
            id.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        name: format!("{id} phone"),
        token_hash: format!("token-of-{id}"),
        revoked: false,
        wiped: false,
    }
}

/// A team (two agents, a supervisor, an officer), each agent with an enrolled device.
fn team(store: &dyn ServerStore) {
    for u in [
        user("amina", Role::Agent, "sikasso"),
        user("karim", Role::Agent, "sikasso"),
        user("fatima", Role::Supervisor, "sikasso"),
        user("omar", Role::Officer, "project"),
    ] {
        store.add_user(&u, NOW).unwrap();
    }
    for (dev, who) in [("dev-amina", "amina"), ("dev-karim", "karim")] {
        store
            .add_enrollment_code(&format!("code-{dev}"), who, NOW + 3600)
            .unwrap();
        store
            .redeem_enrollment_code(&format!("code-{dev}"), who, NOW, &device(dev, who))
            .unwrap()
            .unwrap();
    }
}

/// An agent of `team` with one enrolled device, `dev-<user>`.
fn agent_with_device(store: &dyn ServerStore, user_id: &str, team: &str) {
    store
        .add_user(&user(user_id, Role::Agent, team), NOW)
        .unwrap();
    let code = format!("code-{user_id}");
    store.add_enrollment_code(&code, user_id, NOW + 60).unwrap();
    store
        .redeem_enrollment_code(
            &code,
            user_id,
            NOW,
            &device(&format!("dev-{user_id}"), user_id),
        )
        .unwrap()
        .unwrap();
}

/// `n` opaque changes of one case, under hashes unique to (case, n).
fn case(case_id: &str, creator: Option<&str>, changes: usize, bytes: usize) -> AcceptedCase {
    AcceptedCase {
        case_id: case_id.into(),
        new_case: creator.map(|c| (c.to_string(), "sikasso".to_string())),
        changes: (0..changes)
            .map(|i| (format!("{case_id}-{i}"), vec![i as u8; bytes]))
            .collect(),
        summary: None,
    }
}

fn case_id(n: usize) -> String {
    format!("{n:032x}")
}

fn viewer(user_id: &str, role: Role, team: &str) -> Viewer {
    Viewer {
        user_id: user_id.into(),
        role,
        team: team.into(),
        device_id: "a device that pushed nothing".into(),
    }
}

/// Every row of the feed a viewer reads, paging from 0 in small pages.
fn read_feed(store: &dyn ServerStore, viewer: &Viewer) -> Vec<(u64, String)> {
    let mut rows = Vec::new();
    let mut cursor = 0;
    loop {
        let page = store.feed_page(viewer, cursor, 64).unwrap();
        rows.extend(page.rows.iter().map(|r| (r.seq, r.case_id.clone())));
        assert!(page.cursor >= cursor, "the cursor never moves back");
        cursor = page.cursor;
        if !page.more {
            return rows;
        }
    }
}

/// A case whose projection the service computed: `changes` opaque changes and its summary.
fn summarized(
    n: usize,
    creator: &str,
    changes: usize,
    shape: impl FnOnce(&mut CaseSummary),
) -> AcceptedCase {
    let mut summary = CaseSummary {
        case_id: case_id(n),
        first_name: format!("Child{n}"),
        last_name: "Traoré".into(),
        village: Some("Kaniko".into()),
        ..Default::default()
    };
    shape(&mut summary);
    let write = SummaryWrite {
        name_terms: suivi_server::summary::search_terms(&summary),
        village_key: summary
            .village
            .as_deref()
            .map(suivi_server::summary::place_key),
        dup_key: suivi_server::summary::duplicate_key(&summary.first_name, &summary.last_name),
        commune_key: summary
            .commune
            .as_deref()
            .map(suivi_server::summary::place_key),
        summary,
        change_count: changes as u64,
        ..SummaryWrite::default()
    };
    AcceptedCase {
        summary: Some(write),
        ..case(&case_id(n), Some(creator), changes, 8)
    }
}

mod accounts;
mod audit;
mod feed;
mod forms;
mod lifecycle;
mod projections;
mod sign_in;

macro_rules! conformance {
    ($store:ident, $factory:expr) => {
        mod $store {
            conformance!(@tests $factory;
                accounts::users_and_devices,
                accounts::enrollment_codes_are_single_use_per_user_and_expire,
                accounts::a_code_redeemed_from_many_threads_at_once_enrolls_one_device,
                accounts::quotas_override_and_clear,
                accounts::device_statuses_record_each_sync,
                feed::storing_the_same_changes_twice_stores_them_once,
                feed::the_feed_never_skips_or_repeats_a_row_under_concurrent_writers,
                feed::feed_marks_notice_a_different_history,
                feed::assignment_opens_a_case_to_its_assignee,
                feed::an_admission_writes_all_it_decided_or_nothing_if_a_case_moved,
                lifecycle::quarantine_takes_a_case_out_of_the_feed,
                lifecycle::erasure_leaves_a_tombstone_and_nothing_else,
                lifecycle::a_push_to_an_erased_case_stores_nothing,
                lifecycle::reassignment_moves_a_case_and_queues_its_history,
                lifecycle::removals_are_queued_again_and_lifecycle_heads_say_where_they_stand,
                audit::audit_rows_and_feed_rows_are_chained,
                audit::actions_leave_one_audit_row_each,
                projections::indicators_and_referral_views_read_the_projections,
                projections::case_summaries_are_listed_by_scope_filtered_and_erased,
                projections::a_summary_behind_its_case_is_marked_stale,
                projections::duplicate_candidates_by_name_commune_and_birth_year,
                forms::published_forms_are_immutable_and_fed_in_order,
                forms::forms_published_from_many_threads_take_distinct_positions,
                forms::outcome_settings_are_published_as_versions,
                sign_in::sessions_and_login_failures
            );
        }
    };
    (@tests $factory:expr; $($concern:ident::$test:ident),+) => {
        $(
            #[test]
            fn $test() {
                crate::$concern::$test($factory());
            }
        )+
    };
}

conformance!(sqlite, super::sqlite);
conformance!(postgres, super::postgres);

/// What only the PostgreSQL store has to prove: its sequencer under a stalled writer, several
/// instances on one database, and change payloads sealed at rest.
mod postgres_only {
    use super::*;
    use suivi_server::storage::prelude::*;
    use suivi_server::testing::TestDatabase;
    use suivi_server::PostgresStore;

    const KEY: [u8; 32] = [42; 32];

    fn open(db: &TestDatabase) -> PostgresStore {
        PostgresStore::open_with_pool_size(&db.url, &KEY, 8).unwrap()
    }

    /// A writer holds the sequencer and does not commit (a slow disk, a paused process). Other
    /// writers queue behind it; readers neither wait nor skip; once it lets go, every row is
    /// read exactly once.
    #[test]
    fn a_writer_holding_the_sequencer_stalls_writers_never_readers_and_nothing_is_skipped() {
        let db = TestDatabase::create();
        let store = Arc::new(open(&db));
        team(store.as_ref());
        store
            .store_changes(
                "dev-amina",
                &[case(&case_id(1), Some("amina"), 2, 10)],
                None,
                NOW,
            )
            .unwrap();
        let mut holder = ::postgres::Client::connect(&db.url, ::postgres::NoTls).unwrap();
        let mut held = holder.transaction().unwrap();
        held.query("SELECT seq FROM feed_head FOR UPDATE", &[])
            .unwrap();
        let fatima = viewer("fatima", Role::Supervisor, "sikasso");
        let (read_tx, read_rx) = std::sync::mpsc::channel();
        let seen = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..3)
                .map(|w| {
                    let store = store.clone();
                    scope.spawn(move || {
                        let batch = [case(&case_id(10 + w), Some("karim"), 3, 10)];
                        store.store_changes("dev-karim", &batch, None, NOW).unwrap()
                    })
                })
                .collect();
            // While the sequencer is held, a reader still gets its page at once: the first
            // case's two rows and nothing of the writers still waiting.
            let reader = store.clone();
            let fatima_reader = fatima.clone();
            scope.spawn(move || {
                let page = reader.feed_page(&fatima_reader, 0, usize::MAX).unwrap();
                read_tx.send(page).unwrap();
            });
            let page = read_rx
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("a reader never waits for a writer");
            assert_eq!(page.rows.len(), 2);
            assert!(
                writers.iter().all(|w| !w.is_finished()),
                "writers wait for the sequencer"
            );
            held.commit().unwrap();
            let stored: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
            assert_eq!(stored, 9);
            let mut seen: Vec<u64> = page.rows.iter().map(|r| r.seq).collect();
            let rest = store.feed_page(&fatima, page.cursor, usize::MAX).unwrap();
            seen.extend(rest.rows.iter().map(|r| r.seq));
            seen
        });
        assert_eq!(
            seen,
            (1..=11).collect::<Vec<u64>>(),
            "every row once, in order, no gap"
        );
    }

    /// A storage error says whether trying again can help, and keeps its cause: a lock held
    /// past `lock_timeout` is retryable (the device is told to come back), a broken database is
    /// not.
    #[test]
    fn a_lock_timeout_is_retryable_and_a_broken_table_is_not() {
        let db = TestDatabase::create();
        let url = format!("{}?options=-c%20lock_timeout%3D300ms", db.url);
        let store = PostgresStore::open_with_pool_size(&url, &KEY, 4).unwrap();
        team(&store);
        let mut holder = ::postgres::Client::connect(&db.url, ::postgres::NoTls).unwrap();
        let mut held = holder.transaction().unwrap();
        held.query("SELECT seq FROM feed_head FOR UPDATE", &[])
            .unwrap();
        let batch = [case(&case_id(1), Some("amina"), 1, 10)];
        match store.store_changes("dev-amina", &batch, None, NOW) {
            Err(e @ StorageError::Retryable(_)) => {
                assert!(e.is_retryable());
                assert!(e.to_string().contains("55P03"), "{e}");
            }
            other => panic!("expected a retryable lock timeout, got {other:?}"),
        }
        held.rollback().unwrap();
        // Nothing of the failed push was kept; the same push now goes through.
        assert!(store.case_changes(&case_id(1)).unwrap().is_empty());
        assert_eq!(
            store.store_changes("dev-amina", &batch, None, NOW).unwrap(),
            1
        );
        holder.batch_execute("DROP TABLE device_quotas").unwrap();
        match store.device_quota("dev-amina") {
            Err(e @ StorageError::Backend(_)) => {
                assert!(!e.is_retryable());
                assert!(e.to_string().contains("device_quotas"), "{e}");
            }
            other => panic!("expected a backend error, got {other:?}"),
        }
    }

    /// Two instances on one database, writers on both, a reader alternating between them: the
    /// same feed, nothing skipped or repeated.
    #[test]
    fn two_instances_on_one_database_serve_one_feed() {
        let db = TestDatabase::create();
        let a: Arc<dyn ServerStore> = Arc::new(open(&db));
        let b: Arc<dyn ServerStore> = Arc::new(open(&db));
        team(a.as_ref());
        let fatima = viewer("fatima", Role::Supervisor, "sikasso");
        let per_writer = 20;
        let seen = std::thread::scope(|scope| {
            let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            for (w, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
                .into_iter()
                .enumerate()
            {
                let done = done.clone();
                scope.spawn(move || {
                    for c in 0..per_writer {
                        let batch = [case(&case_id(w * 1000 + c), Some("amina"), 2, 20)];
                        store.store_changes("dev-amina", &batch, None, NOW).unwrap();
                    }
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
            let (a, b) = (a.clone(), b.clone());
            scope
                .spawn(move || {
                    let mut seen = Vec::new();
                    let mut cursor = 0;
                    for turn in 0.. {
                        let finished = done.load(std::sync::atomic::Ordering::SeqCst) == 4;
                        let store = if turn % 2 == 0 { &a } else { &b };
                        let page = store.feed_page(&fatima, cursor, 300).unwrap();
                        seen.extend(page.rows.iter().map(|r| r.seq));
                        cursor = page.cursor;
                        if finished && !page.more {
                            break;
                        }
                    }
                    seen
                })
                .join()
                .unwrap()
        });
        assert_eq!(seen, (1..=(4 * per_writer * 2) as u64).collect::<Vec<_>>());
    }

    /// A dump of the database (what a stolen backup or disk holds) has no child's name in it;
    /// the server, with its key, serves the change intact. Another key does not open the
    /// database, and a payload moved to another row is refused, never served.
    #[test]
    fn change_payloads_are_sealed_at_rest() {
        let db = TestDatabase::create();
        let store = open(&db);
        team(&store);
        let name = "Aminata Coulibaly, Kaniko village";
        // The console's projection of the case holds the name and village too.
        let mut secret = summarized(1, "amina", 2, |s| {
            s.first_name = "Aminata".into();
            s.last_name = "Coulibaly".into();
            s.village = Some("Kaniko village".into());
        });
        secret.changes = vec![
            ("h-1".into(), name.as_bytes().to_vec()),
            ("h-2".into(), b"another change".to_vec()),
        ];
        store
            .store_changes("dev-amina", &[secret], None, NOW)
            .unwrap();
        assert_eq!(store.case_changes(&case_id(1)).unwrap()[0], name.as_bytes());
        let fatima_user = user("fatima", Role::Supervisor, "sikasso");
        let found = store
            .list_cases(
                &fatima_user,
                &CaseQuery {
                    name_terms: suivi_core::names::query_terms("aminata"),
                    village_key: Some(suivi_server::summary::place_key("KANIKO village")),
                    limit: 10,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(
            found.cases[0].summary.last_name, "Coulibaly",
            "found by blinded terms"
        );
        let dump = std::process::Command::new("pg_dump")
            .args(["--data-only", "--format=plain", &db.url])
            .output()
            .unwrap();
        assert!(
            dump.status.success(),
            "{}",
            String::from_utf8_lossy(&dump.stderr)
        );
        let dump = String::from_utf8_lossy(&dump.stdout);
        assert!(dump.contains(&case_id(1)), "the dump is of this database");
        for needle in ["Aminata", "Kaniko", "another change"] {
            assert!(!dump.contains(needle), "{needle} is readable in a dump");
            let hex = needle
                .bytes()
                .map(|b| format!("{b:02x}"))
                .collect::<String>();
            assert!(
                !dump.contains(&hex),
                "{needle} is readable in a dump, as hex"
            );
        }

        match PostgresStore::open_with_pool_size(&db.url, &[7; 32], 2) {
            Err(StorageError::Backend(why)) => assert!(why.contains("wrong key"), "{why}"),
            Err(other) => panic!("expected a wrong key, got {other}"),
            Ok(_) => panic!("another key opened the database"),
        }

        // One change's payload copied over the other's: it no longer opens, and the server
        // says so instead of serving it.
        store
            .raw_query(
                "UPDATE changes SET data = (SELECT data FROM changes WHERE hash = 'h-1') WHERE hash = 'h-2'",
            )
            .unwrap();
        let fatima = viewer("fatima", Role::Supervisor, "sikasso");
        match store.feed_page(&fatima, 0, usize::MAX) {
            Err(StorageError::Backend(why)) => assert!(why.contains("h-2"), "{why}"),
            other => panic!(
                "an altered payload was not refused: {:?}",
                other.map(|p| p.rows.len())
            ),
        }
    }
}
