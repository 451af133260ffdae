//! The audit log and the chains `verify` reads.

use crate::*;

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
        case_ids: vec![case_id(3)],
        limit: 3,
        ..AuditQuery::default()
    });
    assert_eq!(of_one.len(), 3);
    assert!(of_one.iter().all(|r| r.contains(&case_id(3))));
    // Any of several cases, any of several actions, within a time range.
    let of_two = search(AuditQuery {
        case_ids: vec![case_id(3), case_id(4)],
        limit: 100,
        ..AuditQuery::default()
    });
    assert!(of_two.iter().any(|r| r.contains(&case_id(3))));
    assert!(of_two.iter().any(|r| r.contains(&case_id(4))));
    assert!(of_two
        .iter()
        .all(|r| r.contains(&case_id(3)) || r.contains(&case_id(4))));
    let all_rows = store
        .audit_search(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .unwrap();
    let kinds = |rows: &[suivi_server::storage::AuditRow], prefixes: &[&str]| {
        rows.iter()
            .filter(|r| prefixes.iter().any(|p| r.action.starts_with(p)))
            .count()
    };
    let two_kinds = store
        .audit_search(&AuditQuery {
            action_prefixes: vec!["device.".into(), "user.".into()],
            limit: 10_000,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(two_kinds.len(), kinds(&all_rows, &["device.", "user."]));
    assert!(!two_kinds.is_empty());
    let times: Vec<i64> = all_rows.iter().map(|r| r.at).collect();
    let (earliest, latest) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
    let in_range = |from: Option<i64>, until: Option<i64>| {
        store
            .audit_search(&AuditQuery {
                from,
                until,
                limit: 10_000,
                ..AuditQuery::default()
            })
            .unwrap()
            .len()
    };
    assert_eq!(in_range(Some(earliest), None), all_rows.len());
    assert_eq!(in_range(None, Some(earliest)), 0, "until is exclusive");
    assert_eq!(in_range(Some(latest + 1), None), 0);
    assert_eq!(
        in_range(None, Some(latest)),
        all_rows.iter().filter(|r| r.at < latest).count()
    );
    let newest = store
        .audit_search(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .unwrap();
    let older = search(AuditQuery {
        before: Some(newest[0].id),
        action_prefixes: vec!["device.".into()],
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
            action_prefixes: vec!["console_".into()],
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
