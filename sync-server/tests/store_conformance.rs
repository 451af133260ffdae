//! One storage test suite for every `ServerStore`: what the sync service relies on a store to
//! do, whatever its engine. `conformance!(name, factory)` instantiates every test for a store;
//! SQLite (the embedded default) runs here, and a PostgreSQL store joins with one more line.
//! The stores hold raw change bytes without reading them (the service checks changes before
//! storing them), so the changes here are opaque bytes under made-up hashes.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::collections::BTreeSet;
use std::sync::Arc;

use suivi_server::storage::{
    AcceptedCase, CaseQuery, CaseSummary, ConsoleSession, CursorCheck, Device, LoginFailures,
    Quota, Role, ServerStore, StorageError, SummaryWrite, Usage, User, Viewer,
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
    User {
        user_id: id.into(),
        role,
        team: team.into(),
        password_hash: None,
    }
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

pub fn users_and_devices(s: Subject) {
    let store = s.store.as_ref();
    team(store);
    assert_eq!(
        store.user("fatima").unwrap().unwrap().role,
        Role::Supervisor
    );
    assert!(store.user("nobody").unwrap().is_none());
    let amina = store.device("dev-amina").unwrap().unwrap();
    assert_eq!((amina.user_id.as_str(), amina.revoked), ("amina", false));
    assert_eq!(store.devices().unwrap().len(), 2);
    assert!(store.revoke_device("dev-amina", NOW).unwrap());
    assert!(store.device("dev-amina").unwrap().unwrap().revoked);
    store.confirm_wipe("dev-amina", NOW).unwrap();
    assert!(store.device("dev-amina").unwrap().unwrap().wiped);
    assert!(!store.device("dev-karim").unwrap().unwrap().revoked);
}

pub fn enrollment_codes_are_single_use_per_user_and_expire(s: Subject) {
    let store = s.store.as_ref();
    team(store);
    store.add_enrollment_code("c1", "amina", NOW + 60).unwrap();
    // A code issued for someone else stays unused.
    let other = store
        .redeem_enrollment_code("c1", "karim", NOW, &device("d1", "karim"))
        .unwrap();
    assert!(other.is_none());
    let used = store
        .redeem_enrollment_code("c1", "amina", NOW, &device("d1", "amina"))
        .unwrap();
    assert_eq!(used.unwrap().user_id, "amina");
    let again = store
        .redeem_enrollment_code("c1", "amina", NOW, &device("d2", "amina"))
        .unwrap();
    assert!(again.is_none(), "a code enrolls one device");
    store.add_enrollment_code("c2", "amina", NOW + 60).unwrap();
    let late = store
        .redeem_enrollment_code("c2", "amina", NOW + 61, &device("d3", "amina"))
        .unwrap();
    assert!(late.is_none(), "an expired code enrolls nothing");
    assert!(store.device("d3").unwrap().is_none());
    // An actor id already enrolled is a conflict, and the code stays usable.
    store.add_enrollment_code("c3", "amina", NOW + 60).unwrap();
    let mut twin = device("d4", "amina");
    twin.actor = store.device("d1").unwrap().unwrap().actor;
    assert!(matches!(
        store.redeem_enrollment_code("c3", "amina", NOW, &twin),
        Err(StorageError::Conflict(_))
    ));
    assert!(store
        .redeem_enrollment_code("c3", "amina", NOW, &device("d5", "amina"))
        .unwrap()
        .is_some());
}

pub fn a_code_redeemed_from_many_threads_at_once_enrolls_one_device(s: Subject) {
    let store = s.store.clone();
    team(store.as_ref());
    store
        .add_enrollment_code("race", "amina", NOW + 60)
        .unwrap();
    let winners: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                scope.spawn(move || {
                    store
                        .redeem_enrollment_code(
                            "race",
                            "amina",
                            NOW,
                            &device(&format!("r{i}"), "amina"),
                        )
                        .unwrap()
                        .is_some() as usize
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(winners, 1);
}

pub fn storing_the_same_changes_twice_stores_them_once(s: Subject) {
    let store = s.store.as_ref();
    team(store);
    let batch = [case(&case_id(1), Some("amina"), 3, 100)];
    assert_eq!(
        store.store_changes("dev-amina", &batch, None, NOW).unwrap(),
        3
    );
    assert_eq!(
        store.store_changes("dev-amina", &batch, None, NOW).unwrap(),
        0
    );
    let mut amina = viewer("amina", Role::Agent, "sikasso");
    assert_eq!(
        read_feed(store, &amina).len(),
        3,
        "her other phone gets them"
    );
    amina.device_id = "dev-amina".into();
    assert!(
        read_feed(store, &amina).is_empty(),
        "a device's own changes are not sent back"
    );
    let fatima = viewer("fatima", Role::Supervisor, "sikasso");
    assert_eq!(read_feed(store, &fatima).len(), 3);
    let omar = viewer("omar", Role::Officer, "project");
    assert_eq!(
        read_feed(store, &omar).len(),
        3,
        "an officer reads the whole project"
    );
    let karim = viewer("karim", Role::Agent, "sikasso");
    assert!(
        read_feed(store, &karim).is_empty(),
        "another agent reads nothing of it"
    );
    assert_eq!(store.case_changes(&case_id(1)).unwrap().len(), 3);
    let known = store
        .known_changes(&case_id(1), &[format!("{}-0", case_id(1)), "other".into()])
        .unwrap();
    assert_eq!(known.len(), 1);
    // Usage counts what was really stored, once.
    let usage = store
        .device_usage("dev-amina", NOW.div_euclid(86_400))
        .unwrap();
    assert_eq!(
        usage,
        Usage {
            new_cases: 1,
            bytes: 300
        }
    );
    let access = store.case_access(&[case_id(1)]).unwrap();
    assert_eq!(access[&case_id(1)].created_by, "amina");
}

/// Writers commit while a reader pages through the feed: the reader sees every row exactly
/// once, in order, whatever the interleaving of commits.
pub fn the_feed_never_skips_or_repeats_a_row_under_concurrent_writers(s: Subject) {
    let store = s.store.clone();
    team(store.as_ref());
    let writers = 4;
    let cases_each = 25;
    let fatima = viewer("fatima", Role::Supervisor, "sikasso");
    let seen = std::thread::scope(|scope| {
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for w in 0..writers {
            let store = store.clone();
            let done = done.clone();
            scope.spawn(move || {
                let (dev, who) = if w % 2 == 0 {
                    ("dev-amina", "amina")
                } else {
                    ("dev-karim", "karim")
                };
                for c in 0..cases_each {
                    let batch = [case(&case_id(w * 1000 + c), Some(who), 2, 50)];
                    store.store_changes(dev, &batch, None, NOW).unwrap();
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        let reader = store.clone();
        scope
            .spawn(move || {
                let mut seen = Vec::new();
                let mut cursor = 0;
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::SeqCst) == writers;
                    let page = reader.feed_page(&fatima, cursor, 256).unwrap();
                    seen.extend(page.rows.iter().map(|r| (r.seq, r.case_id.clone())));
                    cursor = page.cursor;
                    if finished && !page.more {
                        return seen;
                    }
                }
            })
            .join()
            .unwrap()
    });
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in order, never repeated"
    );
    assert_eq!(seen.len(), writers * cases_each * 2, "nothing skipped");
    let cases: BTreeSet<&String> = seen.iter().map(|(_, c)| c).collect();
    assert_eq!(cases.len(), writers * cases_each);
}

pub fn feed_marks_notice_a_different_history(s: Subject) {
    let store = s.store.as_ref();
    team(store);
    assert!(store.feed_mark(0).unwrap().is_empty());
    store
        .store_changes(
            "dev-amina",
            &[case(&case_id(1), Some("amina"), 3, 10)],
            None,
            NOW,
        )
        .unwrap();
    let fatima = viewer("fatima", Role::Supervisor, "sikasso");
    let end = store.feed_page(&fatima, 0, usize::MAX).unwrap().cursor;
    let mark = store.feed_mark(end).unwrap();
    assert!(!mark.is_empty());
    assert_eq!(
        store.check_cursor(end, &mark).unwrap(),
        CursorCheck::Matches
    );
    assert_eq!(store.check_cursor(0, &[]).unwrap(), CursorCheck::Matches);
    assert_eq!(
        store.check_cursor(end, &[0u8; 32]).unwrap(),
        CursorCheck::Reset,
        "a mark this feed never had"
    );
    assert_eq!(
        store.check_cursor(end + 1000, &[]).unwrap(),
        CursorCheck::Invalid,
        "beyond the feed without a mark"
    );
    // The mark of a position does not change as the feed grows past it.
    store
        .store_changes(
            "dev-karim",
            &[case(&case_id(2), Some("karim"), 2, 10)],
            None,
            NOW,
        )
        .unwrap();
    assert_eq!(store.feed_mark(end).unwrap(), mark);
}

pub fn quotas_override_and_clear(s: Subject) {
    let store = s.store.as_ref();
    team(store);
    assert!(store.device_quota("dev-amina").unwrap().is_none());
    let quota = Quota {
        new_cases_per_day: 3,
        bytes_per_day: 1000,
    };
    store
        .set_device_quota("dev-amina", Some(quota), NOW)
        .unwrap();
    assert_eq!(store.device_quota("dev-amina").unwrap(), Some(quota));
    assert!(store.device_quota("dev-karim").unwrap().is_none());
    store.set_device_quota("dev-amina", None, NOW).unwrap();
    assert!(store.device_quota("dev-amina").unwrap().is_none());
    // Usage is per UTC day.
    store
        .store_changes(
            "dev-amina",
            &[case(&case_id(1), Some("amina"), 1, 10)],
            None,
            NOW,
        )
        .unwrap();
    let day = NOW.div_euclid(86_400);
    assert_eq!(store.device_usage("dev-amina", day).unwrap().new_cases, 1);
    assert_eq!(
        store.device_usage("dev-amina", day + 1).unwrap(),
        Usage::default()
    );
}

pub fn assignment_opens_a_case_to_its_assignee(s: Subject) {
    let store = s.store.as_ref();
    team(store);
    store
        .store_changes(
            "dev-amina",
            &[case(&case_id(1), Some("amina"), 2, 10)],
            None,
            NOW,
        )
        .unwrap();
    let karim = viewer("karim", Role::Agent, "sikasso");
    let before = store.feed_page(&karim, 0, usize::MAX).unwrap();
    assert!(before.rows.is_empty());
    store.assign_case(&case_id(1), "karim", NOW).unwrap();
    assert_eq!(
        store.case_access(&[case_id(1)]).unwrap()[&case_id(1)].assignees,
        ["karim"]
    );
    // An assignee whose cursor is already past the case's rows still gets its whole history.
    let after = store.feed_page(&karim, before.cursor, usize::MAX).unwrap();
    let changes: BTreeSet<&Vec<u8>> = after.rows.iter().map(|r| &r.data).collect();
    assert_eq!(changes.len(), 2, "the case's history reaches its assignee");
    assert!(matches!(
        store.assign_case(&case_id(9), "karim", NOW),
        Err(StorageError::NotFound(_))
    ));
}

pub fn quarantine_takes_a_case_out_of_the_feed(s: Subject) {
    let store = s.store.as_ref();
    team(store);
    for n in [1, 2] {
        store
            .store_changes(
                "dev-amina",
                &[case(&case_id(n), Some("amina"), 1, 10)],
                None,
                NOW,
            )
            .unwrap();
    }
    assert!(store.quarantine_case(&case_id(1), "invalid", NOW).unwrap());
    assert!(!store.quarantine_case(&case_id(1), "invalid", NOW).unwrap());
    assert!(store.is_quarantined(&case_id(1)).unwrap());
    assert_eq!(store.quarantined_cases().unwrap()[0].reason, "invalid");
    let fatima = viewer("fatima", Role::Supervisor, "sikasso");
    let cases: Vec<String> = read_feed(store, &fatima)
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    assert_eq!(cases, [case_id(2)]);
    assert_eq!(store.case_ids().unwrap().len(), 2);
}

pub fn erasure_leaves_a_tombstone_and_nothing_else(s: Subject) {
    let store = s.store.as_ref();
    team(store);
    store
        .store_changes(
            "dev-amina",
            &[case(&case_id(1), Some("amina"), 3, 10)],
            None,
            NOW,
        )
        .unwrap();
    store.assign_case(&case_id(1), "karim", NOW).unwrap();
    assert!(store.erase_case(&case_id(1), NOW).unwrap());
    assert!(
        !store.erase_case(&case_id(1), NOW).unwrap(),
        "already erased"
    );
    assert!(store.is_erased(&case_id(1)).unwrap());
    assert!(store.case_changes(&case_id(1)).unwrap().is_empty());
    assert!(store.case_access(&[case_id(1)]).unwrap().is_empty());
    for who in [
        viewer("fatima", Role::Supervisor, "sikasso"),
        viewer("karim", Role::Agent, "sikasso"),
    ] {
        assert!(read_feed(store, &who).is_empty());
    }
    // A case the server never held gets its tombstone too.
    assert!(store.erase_case(&case_id(7), NOW).unwrap());
    let erasures = store.erasures_after(0, 10).unwrap();
    assert_eq!(
        erasures.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
        [case_id(1), case_id(7)]
    );
    assert_eq!(store.erasures_after(erasures[0].0, 10).unwrap().len(), 1);
}

/// A push checked before an erasure and stored after it keeps nothing of the erased case: the
/// store, not only the service, refuses to bring an erased case back.
pub fn a_push_to_an_erased_case_stores_nothing(s: Subject) {
    let store = s.store.as_ref();
    team(store);
    assert!(store.erase_case(&case_id(1), NOW).unwrap());
    let stored = store
        .store_changes(
            "dev-amina",
            &[
                case(&case_id(1), Some("amina"), 2, 10),
                case(&case_id(2), Some("amina"), 3, 10),
            ],
            None,
            NOW,
        )
        .unwrap();
    assert_eq!(stored, 3, "only the live case's changes");
    assert!(store.case_changes(&case_id(1)).unwrap().is_empty());
    assert!(store.case_access(&[case_id(1)]).unwrap().is_empty());
    let fatima = viewer("fatima", Role::Supervisor, "sikasso");
    let cases: BTreeSet<String> = read_feed(store, &fatima)
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    assert_eq!(cases, BTreeSet::from([case_id(2)]));
    let usage = store
        .device_usage("dev-amina", NOW.div_euclid(86_400))
        .unwrap();
    assert_eq!(
        usage,
        Usage {
            new_cases: 1,
            bytes: 30
        }
    );
}

/// Both chains `verify` relies on: each audit row chained to the one before it (concurrent
/// writers included), the feed's rows and marks as `feed_links` walks them, the heads a
/// checkpoint journals, stored changes with their origin, and the access log's filters.
pub fn audit_rows_and_feed_rows_are_chained(s: Subject) {
    use suivi_server::storage::{
        next_audit_mark, next_feed_mark, next_feed_mark_with_case, AuditQuery,
    };
    let store = s.store.clone();
    team(store.as_ref());
    let heads = store.chain_heads().unwrap();
    assert_eq!((heads.feed_seq, heads.feed_mark.len()), (0, 0));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    let subject = format!("{} seen by {w}", case_id(i));
                    store
                        .audit(
                            NOW + i as i64,
                            &format!("officer-{w}"),
                            "console.case_viewed",
                            &subject,
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let rows = store.audit_log(0, 1000).unwrap();
    assert_eq!(rows.len(), 2 + 40);
    let mut previous = Vec::new();
    for r in &rows {
        assert_eq!(
            r.mark,
            next_audit_mark(&previous, r.id, r.at, &r.actor, &r.action, &r.subject),
            "row {}",
            r.id
        );
        previous = r.mark.clone();
    }
    // The access log, filtered: one officer's, one case's, newest first, paged.
    let search = |query: AuditQuery| -> Vec<String> {
        store
            .audit_search(&query)
            .unwrap()
            .into_iter()
            .map(|r| format!("{} {}", r.actor, r.subject))
            .collect()
    };
    let by_one = search(AuditQuery {
        actor: Some("officer-2".into()),
        limit: 100,
        ..AuditQuery::default()
    });
    assert_eq!(by_one.len(), 10);
    assert_eq!(by_one[0], format!("officer-2 {} seen by 2", case_id(9)));
    let of_one = search(AuditQuery {
        case_id: Some(case_id(3)),
        limit: 3,
        ..AuditQuery::default()
    });
    assert_eq!(of_one.len(), 3);
    assert!(of_one.iter().all(|r| r.contains(&case_id(3))));
    let newest = store
        .audit_search(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .unwrap();
    let older = search(AuditQuery {
        before: Some(newest[0].id),
        action_prefix: Some("device.".into()),
        limit: 100,
        ..AuditQuery::default()
    });
    // Enrollments, each naming the device and the actor it was bound to.
    assert_eq!(
        older,
        vec![
            format!(
                "karim dev-karim actor {}",
                device("dev-karim", "karim").actor
            ),
            format!(
                "amina dev-amina actor {}",
                device("dev-amina", "amina").actor
            ),
        ]
    );
    assert!(
        search(AuditQuery {
            action_prefix: Some("console_".into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .is_empty(),
        "`_` is a letter in a prefix, not a wildcard"
    );

    // The feed, erased rows included.
    store
        .store_changes(
            "dev-amina",
            &[case(&case_id(1), Some("amina"), 2, 10)],
            None,
            NOW,
        )
        .unwrap();
    store
        .store_changes(
            "dev-amina",
            &[case(&case_id(2), Some("amina"), 1, 10)],
            None,
            NOW,
        )
        .unwrap();
    store.erase_case(&case_id(1), NOW).unwrap();
    let links = store.feed_links(0, 100).unwrap();
    assert_eq!(links.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2, 3]);
    // Erased rows keep what their marks cover, the change's content gone.
    for (link, n) in links[..2].iter().zip(0..) {
        let erased = link.change.as_ref().unwrap();
        assert!(link.erased);
        assert_eq!(
            (erased.case_id.as_str(), erased.hash.clone()),
            (case_id(1).as_str(), Some(format!("{}-{n}", case_id(1))))
        );
    }
    assert!(!links[2].erased);
    let kept = links[2].change.as_ref().unwrap();
    assert_eq!(
        (
            kept.case_id.as_str(),
            kept.hash.as_deref(),
            kept.audience.as_deref()
        ),
        (
            case_id(2).as_str(),
            Some(format!("{}-0", case_id(2)).as_str()),
            None
        )
    );
    // A new store's marks cover the case id from its first row; the formula before it is the
    // one rows written before the upgrade keep.
    assert_eq!(store.feed_marks().unwrap().case_id_from, 1);
    assert_eq!(
        links[2].mark,
        next_feed_mark_with_case(
            &links[1].mark,
            3,
            &format!("{}-0", case_id(2)),
            None,
            &case_id(2)
        )
    );
    let old = suivi_server::storage::FeedMarks { case_id_from: 4 };
    assert_eq!(
        old.next(
            &links[1].mark,
            3,
            &format!("{}-0", case_id(2)),
            None,
            "ignored"
        ),
        next_feed_mark(&links[1].mark, 3, &format!("{}-0", case_id(2)), None)
    );
    assert_eq!(store.feed_links(2, 100).unwrap().len(), 1);
    let heads = store.chain_heads().unwrap();
    assert_eq!((heads.feed_seq, &heads.feed_mark), (3, &links[2].mark));
    let last = store.audit_log(0, 1000).unwrap().pop().unwrap();
    assert_eq!((heads.audit_id, heads.audit_mark), (last.id, last.mark));
    assert_eq!(last.action, "case.erased");

    let changes = store.case_stored_changes(&case_id(2)).unwrap();
    assert_eq!(changes.len(), 1);
    let c = &changes[0];
    assert_eq!(
        (
            c.hash.as_str(),
            c.data.as_slice(),
            c.origin_device.as_str(),
            c.in_feed
        ),
        (
            format!("{}-0", case_id(2)).as_str(),
            &[0u8; 10][..],
            "dev-amina",
            true
        )
    );
    assert_eq!(c.origin_actor, Some(device("dev-amina", "amina").actor));
    assert_eq!(store.stored_changes(0, 100).unwrap(), changes);
    assert_eq!(store.case_feed_span(&case_id(2)).unwrap(), Some((3, 3)));
    assert_eq!(store.case_feed_span(&case_id(1)).unwrap(), None);
}

/// The officer's indicators and referral views read the projections written with each push:
/// grouped, scoped to the reader, the merged-away case left out, spellings of one place kept
/// apart under its key, time in each status counted, stuck referrals oldest first, and all of
/// a case gone with its erasure.
pub fn indicators_and_referral_views_read_the_projections(s: Subject) {
    use suivi_server::storage::{CaseIndicators, ReferralSummary};
    let store = s.store.as_ref();
    team(store);
    agent_with_device(store, "moussa", "souk-sebt");
    const DAY: i64 = 86_400;
    let write =
        |n: usize, commune: &str, counted: bool, referrals: Vec<ReferralSummary>, service: bool| {
            let summary = CaseSummary {
                case_id: case_id(n),
                first_name: format!("Child{n}"),
                next_followup_due: Some(
                    if n.is_multiple_of(2) {
                        "2026-01-01"
                    } else {
                        "2027-01-01"
                    }
                    .into(),
                ),
                ..Default::default()
            };
            SummaryWrite {
                summary,
                change_count: 1,
                indicators: CaseIndicators {
                    counted,
                    identified_on: Some(format!("2026-0{}-15", 1 + n % 2)),
                    province: Some("Sikasso".into()),
                    province_key: Some("sikasso".into()),
                    commune: Some(commune.into()),
                    commune_key: Some(suivi_server::summary::place_key(commune)),
                    sector: Some("cotton".into()),
                    referred: !referrals.is_empty(),
                    service,
                    stopped_working: Some(service),
                    days_to_service: service.then_some(10 * n as i64),
                },
                referrals,
                ..SummaryWrite::default()
            }
        };
    let referral = |id: &str, status: &str, since: i64, secs_sent: Option<i64>| ReferralSummary {
        referral_id: id.into(),
        service_type: Some("health".into()),
        provider: Some("CSCOM Misséni".into()),
        provider_key: Some("cscom misseni".into()),
        status: status.into(),
        created_at: Some(NOW - 30 * DAY),
        status_since: Some(since),
        secs_in: [None, secs_sent, None, None, None],
    };
    let cases = [
        write(
            1,
            "Kadiolo",
            true,
            vec![referral("r1", "sent", NOW - 20 * DAY, None)],
            false,
        ),
        write(
            2,
            "kadiolo",
            true,
            vec![referral("r2", "in_service", NOW - 2 * DAY, Some(3 * DAY))],
            true,
        ),
        write(3, "Misséni", true, vec![], false),
        // Merged into another: not counted again.
        write(4, "Kadiolo", false, vec![], false),
    ];
    for (n, w) in cases.into_iter().enumerate() {
        let mut accepted = case(&case_id(n + 1), Some("amina"), 1, 8);
        accepted.summary = Some(w);
        store
            .store_changes("dev-amina", &[accepted], None, NOW)
            .unwrap();
    }
    // Another team's case, out of Fatima's scope.
    let mut other = case(&case_id(9), Some("moussa"), 1, 8);
    other.new_case = Some(("moussa".into(), "souk-sebt".into()));
    other.summary = Some(write(9, "Zégoua", true, vec![], true));
    store
        .store_changes("dev-moussa", &[other], None, NOW)
        .unwrap();

    let fatima = user("fatima", Role::Supervisor, "sikasso");
    let omar = user("omar", Role::Officer, "project");
    let cells = store.indicator_cells(&fatima, "2026-06-01").unwrap();
    let total = |f: &dyn Fn(&suivi_server::storage::IndicatorCell) -> u64| -> u64 {
        cells.iter().map(f).sum()
    };
    assert_eq!(
        total(&|c| c.cases),
        3,
        "the merged-away case is not counted"
    );
    assert_eq!(total(&|c| c.referred), 2);
    assert_eq!(total(&|c| c.service), 1);
    assert_eq!(total(&|c| c.stopped_working), 1);
    assert_eq!(
        total(&|c| c.overdue),
        1,
        "case 2's follow-up was due 2026-01-01"
    );
    let kadiolo: u64 = cells
        .iter()
        .filter(|c| c.commune_key.as_deref() == Some("kadiolo"))
        .map(|c| c.cases)
        .sum();
    assert_eq!(kadiolo, 2, "two spellings, one commune");
    assert!(cells
        .iter()
        .any(|c| c.month == "2026-01" && c.days_to_service == Some(20)));
    assert_eq!(
        store
            .indicator_cells(&omar, "2026-06-01")
            .unwrap()
            .iter()
            .map(|c| c.cases)
            .sum::<u64>(),
        4,
        "an officer reads the whole project"
    );
    let spellings = store.place_spellings(&fatima).unwrap();
    let kadiolo: Vec<(&str, u64)> = spellings
        .iter()
        .filter(|s| s.kind == "commune" && s.key == "kadiolo")
        .map(|s| (s.spelling.as_str(), s.cases))
        .collect();
    assert_eq!(kadiolo, [("Kadiolo", 1), ("kadiolo", 1)]);

    let groups = store.referral_groups(&fatima, NOW).unwrap();
    assert_eq!(groups.len(), 2);
    let sent = groups.iter().find(|g| g.status == "sent").unwrap();
    assert_eq!(sent.referrals, 1);
    assert_eq!(sent.provider.as_deref(), Some("CSCOM Misséni"));
    assert_eq!(
        sent.time_in[1],
        (20 * DAY, 1),
        "still sent: counted up to now"
    );
    let in_service = groups.iter().find(|g| g.status == "in_service").unwrap();
    assert_eq!(
        in_service.time_in[1],
        (3 * DAY, 1),
        "three days sent before"
    );
    assert_eq!(in_service.time_in[4], (2 * DAY, 1));

    let stuck = store.stuck_referrals(&fatima, NOW - 14 * DAY, 10).unwrap();
    assert_eq!(
        stuck
            .iter()
            .map(|r| r.referral_id.as_str())
            .collect::<Vec<_>>(),
        ["r1"]
    );
    assert_eq!(stuck[0].case_id, case_id(1));
    assert!(store
        .stuck_referrals(&fatima, NOW - 30 * DAY, 10)
        .unwrap()
        .is_empty());

    store.erase_case(&case_id(1), NOW).unwrap();
    assert!(store
        .stuck_referrals(&fatima, NOW, 10)
        .unwrap()
        .iter()
        .all(|r| r.case_id != case_id(1)));
    assert_eq!(
        store
            .indicator_cells(&fatima, "2026-06-01")
            .unwrap()
            .iter()
            .map(|c| c.cases)
            .sum::<u64>(),
        2
    );
    // A case with two referrals: both kept.
    let mut two = case(&case_id(5), Some("amina"), 1, 8);
    two.summary = Some(write(
        5,
        "Kadiolo",
        true,
        vec![
            referral("r5a", "closed", NOW - DAY, None),
            referral("r5b", "closed", NOW - DAY, None),
        ],
        false,
    ));
    store.store_changes("dev-amina", &[two], None, NOW).unwrap();
    let closed = store
        .referral_groups(&fatima, NOW)
        .unwrap()
        .into_iter()
        .find(|g| g.status == "closed")
        .unwrap();
    assert_eq!(closed.referrals, 2);
}

/// Each action that changes who may do what, or what the server holds, leaves one audit row in
/// the transaction that made it, naming ids only; an action that changed nothing leaves none.
pub fn actions_leave_one_audit_row_each(s: Subject) {
    let store = s.store.as_ref();
    team(store);
    let mut cursor = 0;
    let mut read = |expected: &[(&str, &str, &str)]| {
        let rows = store.audit_log(cursor, 100).unwrap();
        let got: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|r| (r.actor.as_str(), r.action.as_str(), r.subject.as_str()))
            .collect();
        assert_eq!(got, expected);
        assert!(rows.windows(2).all(|w| w[0].id < w[1].id));
        if let Some(last) = rows.last() {
            cursor = last.id;
        }
    };
    // An enrollment binds the device to its user (the row's actor) and its actor (the subject).
    let binding = |dev: &str, who: &str| {
        suivi_server::storage::device_binding_subject(dev, &device(dev, who).actor)
    };
    read(&[
        ("amina", "device.enroll", &binding("dev-amina", "amina")),
        ("karim", "device.enroll", &binding("dev-karim", "karim")),
    ]);
    store
        .store_changes(
            "dev-amina",
            &[case(&case_id(1), Some("amina"), 1, 10)],
            Some(("push.refused", "a case id")),
            NOW,
        )
        .unwrap();
    store.assign_case(&case_id(1), "karim", NOW).unwrap();
    store.assign_case(&case_id(1), "karim", NOW).unwrap(); // already assigned: nothing
    assert!(!store.revoke_device("dev-nobody", NOW).unwrap());
    assert!(store.revoke_device("dev-karim", NOW).unwrap());
    store
        .set_device_quota(
            "dev-amina",
            Some(Quota {
                new_cases_per_day: 5,
                bytes_per_day: 100,
            }),
            NOW,
        )
        .unwrap();
    assert!(store.quarantine_case(&case_id(1), "invalid", NOW).unwrap());
    assert!(store.erase_case(&case_id(1), NOW).unwrap());
    store.audit(NOW, "admin", "user.add", "omar").unwrap();
    read(&[
        ("dev-amina", "push.refused", "a case id"),
        ("admin", "case.assign", &format!("{} -> karim", case_id(1))),
        ("admin", "device.revoke", "dev-karim"),
        (
            "admin",
            "device.quota",
            "dev-amina 5 new cases/day 100 bytes/day",
        ),
        ("admin", "case.quarantine", &case_id(1)),
        ("admin", "case.erased", &case_id(1)),
        ("admin", "user.add", "omar"),
    ]);
    read(&[]);
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
    let names = [summary.first_name.as_str(), summary.last_name.as_str()];
    let write = SummaryWrite {
        name_terms: suivi_core::names::search_terms(&names),
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

fn listed_ids(store: &dyn ServerStore, reader: &User, query: CaseQuery) -> Vec<String> {
    let list = store
        .list_cases(
            reader,
            &CaseQuery {
                limit: 100,
                ..query
            },
        )
        .unwrap();
    let mut ids: Vec<String> = list
        .cases
        .iter()
        .map(|c| c.summary.case_id.clone())
        .collect();
    assert_eq!(ids.len() as u64, list.total, "one page holds them all");
    ids.sort();
    ids
}

/// The console's projections: written with the push that changed the case, listed by the
/// reader's scope, filtered and searched, removed by erasure.
fn case_summaries_are_listed_by_scope_filtered_and_erased(subject: Subject) {
    let store = subject.store.as_ref();
    team(store);
    store
        .add_user(&user("ali", Role::Supervisor, "souk-sebt"), NOW)
        .unwrap();
    agent_with_device(store, "moussa", "souk-sebt");
    let batch = [
        summarized(1, "amina", 2, |s| {
            s.first_name = "Mohammed".into();
            s.last_name = "El-Idrissi".into();
            s.risk_level = Some("high".into());
            s.referral_statuses = vec!["accepted".into(), "sent".into()];
            s.next_followup_due = Some("2026-01-10".into());
        }),
        summarized(2, "amina", 1, |s| {
            s.first_name = "Aïcha".into();
            s.village = Some("Aït Ourir".into());
            s.conflict_count = 2;
            s.referral_statuses = vec!["disputed".into(), "in_service".into()];
        }),
        summarized(3, "karim", 1, |s| {
            s.first_name = "Muhammad".into();
            s.risk_level = Some("low".into());
            s.next_followup_due = Some("2026-03-01".into());
        }),
    ];
    store
        .store_changes("dev-amina", &batch[..2], None, NOW)
        .unwrap();
    store
        .store_changes("dev-karim", &batch[2..], None, NOW + 5)
        .unwrap();
    let elsewhere = summarized(4, "moussa", 1, |s| s.first_name = "Mohamed".into());
    let elsewhere = AcceptedCase {
        new_case: Some(("moussa".into(), "souk-sebt".into())),
        ..elsewhere
    };
    store
        .store_changes("dev-moussa", &[elsewhere], None, NOW)
        .unwrap();

    let fatima = user("fatima", Role::Supervisor, "sikasso");
    let amina = user("amina", Role::Agent, "sikasso");
    let ali = user("ali", Role::Supervisor, "souk-sebt");
    let omar = user("omar", Role::Officer, "project");
    let all = CaseQuery::default();
    let ids = |ns: &[usize]| ns.iter().map(|n| case_id(*n)).collect::<Vec<_>>();
    assert_eq!(listed_ids(store, &fatima, all.clone()), ids(&[1, 2, 3]));
    assert_eq!(listed_ids(store, &amina, all.clone()), ids(&[1, 2]));
    assert_eq!(listed_ids(store, &ali, all.clone()), ids(&[4]));
    assert_eq!(listed_ids(store, &omar, all.clone()), ids(&[1, 2, 3, 4]));

    // Newest first: Karim's push came last.
    let page = store
        .list_cases(
            &fatima,
            &CaseQuery {
                limit: 2,
                ..all.clone()
            },
        )
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.cases.len(), 2);
    assert_eq!(page.cases[0].summary.case_id, case_id(3));
    assert_eq!(page.cases[0].created_by, "karim");
    assert_eq!(page.cases[0].team, "sikasso");
    assert_eq!(page.cases[0].updated_at, NOW + 5);
    let rest = store
        .list_cases(
            &fatima,
            &CaseQuery {
                limit: 2,
                offset: 2,
                ..all.clone()
            },
        )
        .unwrap();
    assert_eq!((rest.total, rest.cases.len()), (3, 1));

    let q = |shape: fn(&mut CaseQuery)| {
        let mut query = CaseQuery::default();
        shape(&mut query);
        query
    };
    // Transliterations: Mohamed finds Mohammed and Muhammad; a prefix from three letters.
    for text in ["Mohamed", "muhamad", "moh"] {
        let query = CaseQuery {
            name_terms: suivi_core::names::query_terms(text),
            ..Default::default()
        };
        assert_eq!(listed_ids(store, &fatima, query), ids(&[1, 3]), "{text}");
    }
    let query = CaseQuery {
        name_terms: suivi_core::names::query_terms("mohamed el idrissi"),
        ..Default::default()
    };
    assert_eq!(listed_ids(store, &fatima, query), ids(&[1]));
    let query = CaseQuery {
        village_key: Some(suivi_server::summary::place_key("ait-ourir")),
        ..Default::default()
    };
    assert_eq!(listed_ids(store, &fatima, query), ids(&[2]));
    assert_eq!(
        listed_ids(store, &fatima, q(|q| q.agent = Some("karim".into()))),
        ids(&[3])
    );
    assert_eq!(
        listed_ids(store, &fatima, q(|q| q.risk_level = Some("high".into()))),
        ids(&[1])
    );
    assert_eq!(
        listed_ids(
            store,
            &fatima,
            q(|q| q.referral_status = Some("sent".into()))
        ),
        ids(&[1])
    );
    // A status is matched whole: "service" is not "in_service".
    assert!(listed_ids(
        store,
        &fatima,
        q(|q| q.referral_status = Some("service".into()))
    )
    .is_empty());
    assert_eq!(
        listed_ids(
            store,
            &fatima,
            q(|q| q.referral_status = Some("disputed".into()))
        ),
        ids(&[2])
    );
    assert_eq!(
        listed_ids(
            store,
            &fatima,
            q(|q| q.due_before = Some("2026-02-01".into()))
        ),
        ids(&[1])
    );
    assert_eq!(
        listed_ids(store, &fatima, q(|q| q.conflicts_only = true)),
        ids(&[2])
    );
    // Criteria add up, and never widen the scope.
    assert!(listed_ids(
        store,
        &ali,
        CaseQuery {
            name_terms: suivi_core::names::query_terms("mohammed"),
            ..Default::default()
        }
    )
    .iter()
    .all(|id| *id == case_id(4)));

    let listed = store.listed_case(&case_id(1)).unwrap().unwrap();
    assert_eq!(listed.summary.last_name, "El-Idrissi");
    assert_eq!(listed.summary.referral_statuses, vec!["accepted", "sent"]);
    let origins = store.change_origins(&case_id(1)).unwrap();
    assert_eq!(origins.len(), 2);
    assert!(origins
        .iter()
        .all(|o| o.user_id == "amina" && o.device_id == "dev-amina" && o.received_at == NOW));

    assert!(store.erase_case(&case_id(1), NOW).unwrap());
    assert!(store.listed_case(&case_id(1)).unwrap().is_none());
    let query = CaseQuery {
        name_terms: suivi_core::names::query_terms("idrissi"),
        ..Default::default()
    };
    assert!(listed_ids(store, &omar, query).is_empty());
    assert!(store.summaries_to_refresh(10).unwrap().is_empty());
}

/// A summary computed from fewer changes than the store holds (another push to the case
/// committed in between) is kept but marked stale, and listed for a refresh; a refresh from
/// every change clears it. Cases stored with no summary are listed for a refresh too.
fn a_summary_behind_its_case_is_marked_stale(subject: Subject) {
    let store = subject.store.as_ref();
    team(store);
    store
        .store_changes("dev-amina", &[summarized(1, "amina", 2, |_| {})], None, NOW)
        .unwrap();
    assert!(store.stale_summaries(&[case_id(1)]).unwrap().is_empty());
    // Karim's push of one more change, summarized from the two it knew of plus its own: 3.
    // Amina's, racing it, summarized from 2 + 1 = 3 as well, but the case now holds 4.
    let mut karim = summarized(1, "amina", 3, |s| s.first_name = "Karim's view".into());
    karim.new_case = None;
    karim.changes = vec![("k-1".into(), vec![1])];
    store
        .store_changes("dev-karim", &[karim], None, NOW + 1)
        .unwrap();
    let mut amina = summarized(1, "amina", 3, |s| s.first_name = "Amina's view".into());
    amina.new_case = None;
    amina.changes = vec![("a-1".into(), vec![2])];
    store
        .store_changes("dev-amina", &[amina], None, NOW + 2)
        .unwrap();
    assert_eq!(
        store.stale_summaries(&[case_id(1)]).unwrap(),
        vec![case_id(1)]
    );
    assert_eq!(store.summaries_to_refresh(10).unwrap(), vec![case_id(1)]);
    // Still listed meanwhile, with the newest time.
    let listed = store.listed_case(&case_id(1)).unwrap().unwrap();
    assert_eq!(listed.updated_at, NOW + 2);
    let refreshed = match summarized(1, "amina", 4, |s| s.first_name = "Both".into()).summary {
        Some(s) => s,
        None => unreachable!(),
    };
    store.write_summaries(&[refreshed]).unwrap();
    assert!(store.stale_summaries(&[case_id(1)]).unwrap().is_empty());
    assert_eq!(
        store
            .listed_case(&case_id(1))
            .unwrap()
            .unwrap()
            .summary
            .first_name,
        "Both"
    );
    // A computation from fewer changes, finishing late, never overwrites a newer one.
    let late = match summarized(1, "amina", 3, |s| s.first_name = "Late".into()).summary {
        Some(s) => s,
        None => unreachable!(),
    };
    store.write_summaries(&[late]).unwrap();
    assert_eq!(
        store
            .listed_case(&case_id(1))
            .unwrap()
            .unwrap()
            .summary
            .first_name,
        "Both"
    );
    // A case stored without a summary (before projections existed) waits for one.
    store
        .store_changes(
            "dev-amina",
            &[case(&case_id(2), Some("amina"), 1, 8)],
            None,
            NOW,
        )
        .unwrap();
    assert_eq!(store.summaries_to_refresh(10).unwrap(), vec![case_id(2)]);
    // A summary for a case the server does not hold is not written.
    let ghost = summarized(9, "amina", 1, |_| {}).summary.unwrap();
    store.write_summaries(&[ghost]).unwrap();
    assert!(store.listed_case(&case_id(9)).unwrap().is_none());
}

/// Console sessions and login throttling live in the store, so every instance sees them.
fn sessions_and_login_failures(subject: Subject) {
    let store = subject.store.as_ref();
    team(store);
    let session = ConsoleSession {
        token_hash: "t1".into(),
        user_id: "fatima".into(),
        csrf_token: "c1".into(),
        created_at: NOW,
        last_seen: NOW,
    };
    store.add_session(&session).unwrap();
    assert_eq!(store.session("t1").unwrap(), Some(session.clone()));
    assert!(store.session("t2").unwrap().is_none());
    store.touch_session("t1", NOW + 100).unwrap();
    store.touch_session("t1", NOW + 50).unwrap();
    assert_eq!(store.session("t1").unwrap().unwrap().last_seen, NOW + 100);
    // Idle since before NOW + 101: ended.
    store.end_expired_sessions(NOW + 101, NOW - 1).unwrap();
    assert!(store.session("t1").unwrap().is_none());
    store.add_session(&session).unwrap();
    store.end_expired_sessions(NOW - 1, NOW + 1).unwrap();
    assert!(store.session("t1").unwrap().is_none(), "absolute expiry");
    store.add_session(&session).unwrap();
    store.end_session("t1").unwrap();
    assert!(store.session("t1").unwrap().is_none());
    // A new password ends every session of the user, with an audit row.
    store.add_session(&session).unwrap();
    assert!(store
        .set_password("fatima", Some("argon2-hash"), NOW)
        .unwrap());
    assert!(store.session("t1").unwrap().is_none());
    assert_eq!(
        store
            .user("fatima")
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("argon2-hash")
    );
    assert!(!store.set_password("nobody", Some("x"), NOW).unwrap());
    assert!(store
        .audit_log(0, 100)
        .unwrap()
        .iter()
        .any(|r| r.action == "user.password" && r.subject == "fatima"));

    assert_eq!(
        store.login_failures("user:fatima").unwrap(),
        LoginFailures::default()
    );
    for i in 1..=3 {
        let f = store
            .record_login_failure("user:fatima", NOW + i, NOW - 100)
            .unwrap();
        assert_eq!(
            f,
            LoginFailures {
                count: i as u32,
                last_at: NOW + i
            }
        );
    }
    assert_eq!(store.login_failures("user:fatima").unwrap().count, 3);
    assert_eq!(store.login_failures("ip:127.0.0.1").unwrap().count, 0);
    // Failures decay: one after the count's last failure was forgotten starts again at one.
    assert_eq!(
        store
            .record_login_failure("user:fatima", NOW + 1000, NOW + 4)
            .unwrap(),
        LoginFailures {
            count: 1,
            last_at: NOW + 1000
        }
    );
    assert_eq!(
        store
            .record_login_failure("user:fatima", NOW + 1001, NOW + 4)
            .unwrap()
            .count,
        2
    );
    store.clear_login_failures("user:fatima").unwrap();
    assert_eq!(store.login_failures("user:fatima").unwrap().count, 0);
}

/// A reassignment moves the case's ownership, queues its history for the new owner, lets the
/// former owner hand over until the grace ends, and lists a removal for it; other teams and
/// no-op moves are skipped; an erasure ends the handover.
fn reassignment_moves_a_case_and_queues_its_history(subject: Subject) {
    let store = subject.store.as_ref();
    team(store);
    store
        .add_user(&user("moussa", Role::Agent, "souk-sebt"), NOW)
        .unwrap();
    store
        .store_changes("dev-amina", &[summarized(1, "amina", 2, |_| {})], None, NOW)
        .unwrap();
    store
        .store_changes("dev-amina", &[summarized(2, "amina", 1, |_| {})], None, NOW)
        .unwrap();
    let karim_viewer = viewer("karim", Role::Agent, "sikasso");
    let amina_viewer = viewer("amina", Role::Agent, "sikasso");
    assert!(read_feed(store, &karim_viewer).is_empty());
    let karim = user("karim", Role::Agent, "sikasso");
    let moved = store
        .reassign_cases(
            &[case_id(1), case_id(9)],
            &karim,
            "fatima",
            NOW + 10,
            NOW + 100,
        )
        .unwrap();
    assert_eq!(moved, vec![case_id(1)], "a case not held is skipped");
    let access = store.case_access(&[case_id(1)]).unwrap();
    assert_eq!(access[&case_id(1)].created_by, "karim");
    assert_eq!(
        store.listed_case(&case_id(1)).unwrap().unwrap().created_by,
        "karim"
    );
    // Karim's phones get the whole history; Amina's no longer read it. Read from the start,
    // the case's rows come twice (as his now, and the copies queued for him): a phone whose
    // cursor passed them gets the copies, and applying a change twice changes nothing.
    let karim_rows = read_feed(store, &karim_viewer);
    assert_eq!(karim_rows.len(), 4);
    assert!(karim_rows.iter().all(|(_, c)| *c == case_id(1)));
    let amina_rows = read_feed(store, &amina_viewer);
    assert!(
        amina_rows.iter().all(|(_, c)| *c == case_id(2)),
        "{amina_rows:?}"
    );
    // Amina hands over until the grace ends, and her phones are told to remove it.
    assert!(store.in_handover(&case_id(1), "amina", NOW + 50).unwrap());
    assert!(!store.in_handover(&case_id(1), "amina", NOW + 100).unwrap());
    assert!(!store.in_handover(&case_id(2), "amina", NOW + 50).unwrap());
    let removals = store.removals_after("amina", 0, 10).unwrap();
    assert_eq!(removals.len(), 1);
    assert_eq!(removals[0].1, case_id(1));
    assert!(store
        .removals_after("amina", removals[0].0, 10)
        .unwrap()
        .is_empty());
    assert!(store.removals_after("karim", 0, 10).unwrap().is_empty());
    // Another team's agent, and the owner it already has: nothing moves.
    let moussa = user("moussa", Role::Agent, "souk-sebt");
    assert!(store
        .reassign_cases(&[case_id(2)], &moussa, "admin", NOW, NOW)
        .unwrap()
        .is_empty());
    assert!(store
        .reassign_cases(&[case_id(1)], &karim, "fatima", NOW, NOW)
        .unwrap()
        .is_empty());
    assert!(store
        .audit_log(0, 100)
        .unwrap()
        .iter()
        .any(|r| r.actor == "fatima"
            && r.action == "case.reassign"
            && r.subject == format!("{} amina -> karim", case_id(1))));
    // Moved back to Amina: Karim's phones read nothing more of it, and the removal waiting for
    // Amina is gone (her phones keep the case); Karim's phones are told to remove it.
    let karim_cursor = karim_rows.iter().map(|(seq, _)| *seq).max().unwrap();
    let amina_user = user("amina", Role::Agent, "sikasso");
    let back = store
        .reassign_cases(&[case_id(1)], &amina_user, "fatima", NOW + 20, NOW + 100)
        .unwrap();
    assert_eq!(back, vec![case_id(1)]);
    let karim_after: Vec<_> = read_feed(store, &karim_viewer)
        .into_iter()
        .filter(|(seq, c)| *seq > karim_cursor && *c == case_id(1))
        .collect();
    assert!(karim_after.is_empty(), "{karim_after:?}");
    assert!(read_feed(store, &amina_viewer)
        .iter()
        .any(|(_, c)| *c == case_id(1)));
    assert!(store.removals_after("amina", 0, 10).unwrap().is_empty());
    assert_eq!(store.removals_after("karim", 0, 10).unwrap().len(), 1);
    let karim_id = case_id(1);
    let to_karim = store
        .reassign_cases(&[karim_id], &karim, "fatima", NOW + 30, NOW + 100)
        .unwrap();
    assert_eq!(to_karim.len(), 1);
    let members: Vec<String> = store
        .team_members("sikasso")
        .unwrap()
        .into_iter()
        .map(|u| u.user_id)
        .collect();
    assert_eq!(members, vec!["amina", "fatima", "karim"]);
    assert!(store.erase_case(&case_id(1), NOW).unwrap());
    assert!(!store.in_handover(&case_id(1), "amina", NOW + 50).unwrap());
}

/// What a device said at its last sync, newest time kept; console devices are not listed.
fn device_statuses_record_each_sync(subject: Subject) {
    let store = subject.store.as_ref();
    team(store);
    store
        .record_device_sync("dev-amina", NOW, Some("suivi-android 1.4.0"), Some(3))
        .unwrap();
    store
        .record_device_sync("dev-amina", NOW - 10, None, None)
        .unwrap();
    store
        .console_device("fatima", "ab".repeat(16).as_str(), NOW)
        .unwrap();
    let statuses = store.device_statuses().unwrap();
    assert_eq!(statuses.len(), 2, "console devices are left out");
    let amina = statuses
        .iter()
        .find(|d| d.device.device_id == "dev-amina")
        .unwrap();
    assert_eq!(amina.last_sync_at, Some(NOW), "the time never moves back");
    assert_eq!(
        (amina.app_version.clone(), amina.waiting_cases),
        (None, None)
    );
    assert_eq!((amina.role, amina.team.as_str()), (Role::Agent, "sikasso"));
    let karim = statuses
        .iter()
        .find(|d| d.device.device_id == "dev-karim")
        .unwrap();
    assert_eq!(karim.last_sync_at, None);
    // The console device: registered once, the same on the next call, no usable token.
    let console = store
        .console_device("fatima", &"cd".repeat(16), NOW)
        .unwrap();
    assert_eq!(console.actor, "ab".repeat(16));
    assert_eq!(console.device_id, "console-fatima");
    // Its binding is in the chained audit log, once.
    let bindings: Vec<(String, String)> = store
        .audit_log(0, 100)
        .unwrap()
        .into_iter()
        .filter(|r| r.action == suivi_server::storage::CONSOLE_DEVICE_ACTION)
        .map(|r| (r.actor, r.subject))
        .collect();
    assert_eq!(
        bindings,
        [(
            "fatima".to_string(),
            suivi_server::storage::device_binding_subject("console-fatima", &"ab".repeat(16))
        )]
    );
}

/// Duplicate candidates: the same name however spelled, the same commune, birth years at most a
/// year apart, in the reader's scope; a pair marked as two children is no longer proposed.
fn duplicate_candidates_by_name_commune_and_birth_year(subject: Subject) {
    let store = subject.store.as_ref();
    team(store);
    agent_with_device(store, "moussa", "souk-sebt");
    let child = |n: usize, first: &str, last: &str, commune: &str, year: i32| {
        let (first, last, commune) = (first.to_string(), last.to_string(), commune.to_string());
        summarized(n, "amina", 1, move |s| {
            s.first_name = first;
            s.last_name = last;
            s.commune = Some(commune);
            s.birth_year = Some(year);
        })
    };
    let batch = [
        child(1, "Mohamed", "El-Idrissi", "Kadiolo", 2014),
        child(2, "Muhammad", "El Idrissi", "kadiolo", 2015),
        child(3, "Mohammed", "El Idrissi", "Kadiolo", 2010), // four years apart
        child(4, "Mohamed", "El-Idrissi", "Zégoua", 2014),   // another commune
        child(5, "Aminata", "Traoré", "Kadiolo", 2014),
    ];
    store.store_changes("dev-amina", &batch, None, NOW).unwrap();
    let mut elsewhere = child(6, "Mohamed", "El Idrissi", "Kadiolo", 2014);
    elsewhere.new_case = Some(("moussa".into(), "souk-sebt".into()));
    store
        .store_changes("dev-moussa", &[elsewhere], None, NOW)
        .unwrap();

    let fatima = user("fatima", Role::Supervisor, "sikasso");
    let omar = user("omar", Role::Officer, "project");
    assert_eq!(
        store.duplicate_candidates(&fatima, 10).unwrap(),
        vec![(case_id(1), case_id(2))]
    );
    // The officer reads every team: the other team's registration joins the pairs.
    let officer_pairs = store.duplicate_candidates(&omar, 10).unwrap();
    assert!(
        officer_pairs.contains(&(case_id(1), case_id(6))),
        "{officer_pairs:?}"
    );
    assert!(officer_pairs.contains(&(case_id(2), case_id(6))));
    assert_eq!(officer_pairs.len(), 3);
    store
        .mark_distinct(&case_id(2), &case_id(1), "fatima", NOW)
        .unwrap();
    store
        .mark_distinct(&case_id(1), &case_id(2), "fatima", NOW)
        .unwrap();
    assert!(store.duplicate_candidates(&fatima, 10).unwrap().is_empty());
    let marks: Vec<_> = store
        .audit_log(0, 100)
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "case.not_duplicate")
        .collect();
    assert_eq!(marks.len(), 1, "marked once");
    assert_eq!(marks[0].subject, format!("{} {}", case_id(1), case_id(2)));
}

pub fn published_forms_are_immutable_and_fed_in_order(s: Subject) {
    let store = s.store.as_ref();
    assert_eq!(store.forms_head().unwrap(), 0);
    assert!(store.forms().unwrap().is_empty());
    let (v1, new) = store
        .publish_form(
            "referral",
            1,
            "{\"v\":1}",
            ("built-in", NOW),
            store.forms_head().unwrap(),
        )
        .unwrap();
    assert!(new);
    assert_eq!((v1.version, v1.seq, v1.retired_at), (1, 1, None));
    let (v2, _) = store
        .publish_form("referral", 2, "{\"v\":2}", ("admin", NOW + 1), 1)
        .unwrap();
    assert_eq!(v2.seq, 2);
    // The same id and version again: the stored version comes back unchanged, not audited.
    let (again, new) = store
        .publish_form("referral", 2, "{\"v\":\"other\"}", ("admin", NOW + 2), 0)
        .unwrap();
    assert!(!new);
    assert_eq!(again, v2, "a published version never changes");
    // A publication decided on an older feed writes nothing: it is decided again.
    assert!(matches!(
        store.publish_form("followup", 1, "{\"f\":1}", ("admin", NOW), 1),
        Err(StorageError::Moved(_))
    ));
    assert!(matches!(
        store.retire_form("referral", 1, ("admin", NOW), 1),
        Err(StorageError::Moved(_))
    ));
    assert_eq!(store.forms().unwrap().len(), 2, "nothing written");
    let (followup, _) = store
        .publish_form("followup", 1, "{\"f\":1}", ("built-in", NOW), 2)
        .unwrap();
    assert_eq!(followup.seq, 3);
    assert_eq!(store.forms_head().unwrap(), 3);
    let listed: Vec<(String, u32)> = store
        .forms()
        .unwrap()
        .into_iter()
        .map(|f| (f.form_id, f.version))
        .collect();
    assert_eq!(
        listed,
        [
            ("followup".into(), 1),
            ("referral".into(), 1),
            ("referral".into(), 2)
        ]
    );
    // A device that has seen position 1 gets what follows, in order, a page at a time.
    let after: Vec<u64> = store
        .forms_after(1, 10)
        .unwrap()
        .iter()
        .map(|f| f.seq)
        .collect();
    assert_eq!(after, [2, 3]);
    assert_eq!(store.forms_after(1, 1).unwrap().len(), 1);
    // Retiring moves the version to the end of the feed, so devices past it hear of it.
    let retired = store
        .retire_form("referral", 1, ("admin", NOW + 3), 3)
        .unwrap()
        .unwrap();
    assert_eq!((retired.retired_at, retired.seq), (Some(NOW + 3), 4));
    assert_eq!(retired.definition, v1.definition);
    let fed = store.forms_after(3, 10).unwrap();
    assert_eq!(fed.len(), 1);
    assert_eq!((fed[0].form_id.as_str(), fed[0].version), ("referral", 1));
    // Retiring again changes nothing; an unknown version is none.
    let again = store
        .retire_form("referral", 1, ("admin", NOW + 9), 4)
        .unwrap()
        .unwrap();
    assert_eq!((again.retired_at, again.seq), (Some(NOW + 3), 4));
    assert!(store
        .retire_form("referral", 7, ("admin", NOW), 4)
        .unwrap()
        .is_none());
    // Each publication and retirement left one audit row, by who did it.
    let audited: Vec<(String, String, String)> = store
        .audit_log(0, 100)
        .unwrap()
        .into_iter()
        .filter(|r| r.action.starts_with("form."))
        .map(|r| (r.actor, r.action, r.subject))
        .collect();
    assert_eq!(
        audited,
        [
            (
                "built-in".into(),
                "form.publish".into(),
                "referral v1".into()
            ),
            ("admin".into(), "form.publish".into(), "referral v2".into()),
            (
                "built-in".into(),
                "form.publish".into(),
                "followup v1".into()
            ),
            ("admin".into(), "form.retire".into(), "referral v1".into()),
        ]
    );
}

/// Instances sharing a store publish at once: every version gets its own feed position, each
/// written on the feed it was decided on.
pub fn forms_published_from_many_threads_take_distinct_positions(s: Subject) {
    let store = s.store.clone();
    let threads: Vec<_> = (1..=8u32)
        .map(|v| {
            let store = store.clone();
            std::thread::spawn(move || loop {
                // Each decides on the feed it read, and decides again when another came first.
                let head = store.forms_head().unwrap();
                match store.publish_form(
                    "followup",
                    v,
                    &format!("{{\"v\":{v}}}"),
                    ("admin", NOW),
                    head,
                ) {
                    Err(StorageError::Moved(_)) => continue,
                    outcome => break outcome.unwrap(),
                }
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .map(|t| t.join().unwrap().0.seq)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=8).collect::<Vec<u64>>());
    assert_eq!(store.forms_head().unwrap(), 8);
}

macro_rules! conformance {
    ($store:ident, $factory:expr) => {
        mod $store {
            conformance!(@tests $factory;
                users_and_devices,
                enrollment_codes_are_single_use_per_user_and_expire,
                a_code_redeemed_from_many_threads_at_once_enrolls_one_device,
                storing_the_same_changes_twice_stores_them_once,
                the_feed_never_skips_or_repeats_a_row_under_concurrent_writers,
                feed_marks_notice_a_different_history,
                quotas_override_and_clear,
                assignment_opens_a_case_to_its_assignee,
                quarantine_takes_a_case_out_of_the_feed,
                erasure_leaves_a_tombstone_and_nothing_else,
                a_push_to_an_erased_case_stores_nothing,
                actions_leave_one_audit_row_each,
                audit_rows_and_feed_rows_are_chained,
                indicators_and_referral_views_read_the_projections,
                case_summaries_are_listed_by_scope_filtered_and_erased,
                a_summary_behind_its_case_is_marked_stale,
                sessions_and_login_failures,
                reassignment_moves_a_case_and_queues_its_history,
                device_statuses_record_each_sync,
                duplicate_candidates_by_name_commune_and_birth_year,
                published_forms_are_immutable_and_fed_in_order,
                forms_published_from_many_threads_take_distinct_positions
            );
        }
    };
    (@tests $factory:expr; $($test:ident),+) => {
        $(
            #[test]
            fn $test() {
                super::$test($factory());
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
