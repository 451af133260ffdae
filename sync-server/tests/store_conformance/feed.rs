//! Storing pushes and reading the feed.

use crate::*;

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

/// One admission's write is one transaction: the changes, the audit row, the move its changes
/// made and the removal a handover owes land together; a case written since admission read it
/// refuses the whole write (`Moved`) and leaves nothing of it.
pub fn an_admission_writes_all_it_decided_or_nothing_if_a_case_moved(s: Subject) {
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
    let karim = user("karim", Role::Agent, "sikasso");
    // Admission read 2 changes of case 1; a third landed since (another phone's push).
    let one_more = |tag: &str| AcceptedCase {
        changes: vec![(format!("{}-{tag}", case_id(1)), tag.as_bytes().to_vec())],
        ..case(&case_id(1), None, 0, 0)
    };
    store
        .store_changes("dev-karim", &[one_more("late")], None, NOW)
        .unwrap();
    let edit = one_more("edit");
    let held = [(case_id(1), 2)];
    let moves = [(case_id(1), karim.clone())];
    let removals = [("omar".to_string(), case_id(9))];
    let write = AdmissionWrite {
        held: &held,
        audit: Some(("console.change", "case 1")),
        moves: &moves,
        moved_by: "fatima",
        grace_until: NOW + 60,
        removals: &removals,
        ..AdmissionWrite::new("dev-fatima", std::slice::from_ref(&edit), NOW)
    };
    let audit_before = store.audit_log(0, 1000).unwrap().len();
    assert!(matches!(
        store.write_admission(&write),
        Err(StorageError::Moved(_))
    ));
    assert_eq!(store.case_changes(&case_id(1)).unwrap().len(), 3, "no edit");
    assert_eq!(
        store.case_access(&[case_id(1)]).unwrap()[&case_id(1)].created_by,
        "amina"
    );
    assert!(store.removals_after("omar", 0, 10).unwrap().is_empty());
    assert_eq!(store.audit_log(0, 1000).unwrap().len(), audit_before);

    // Decided again on what is held now: everything lands.
    let held = [(case_id(1), 3)];
    let stored = store
        .write_admission(&AdmissionWrite {
            held: &held,
            ..write
        })
        .unwrap();
    assert_eq!(stored, 1);
    assert_eq!(store.case_changes(&case_id(1)).unwrap().len(), 4);
    assert_eq!(
        store.case_access(&[case_id(1)]).unwrap()[&case_id(1)].created_by,
        "karim"
    );
    assert!(store.in_handover(&case_id(1), "amina", NOW + 1).unwrap());
    assert_eq!(store.removals_after("omar", 0, 10).unwrap().len(), 1);
    let actions: Vec<String> = store
        .audit_log(0, 1000)
        .unwrap()
        .into_iter()
        .skip(audit_before)
        .map(|r| r.action)
        .collect();
    assert!(
        actions.contains(&"console.change".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"case.reassign".to_string()),
        "{actions:?}"
    );
    let karim_viewer = viewer("karim", Role::Agent, "sikasso");
    assert!(
        read_feed(store, &karim_viewer).len() >= 4,
        "the new owner's phones get the case's history"
    );
}
