//! Quarantine, erasure and reassignment.

use crate::*;

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

/// A reassignment moves the case's ownership, queues its history for the new owner, lets the
/// former owner hand over until the grace ends, and lists a removal for it; other teams and
/// no-op moves are skipped; an erasure ends the handover.
pub fn reassignment_moves_a_case_and_queues_its_history(subject: Subject) {
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

/// A removal queued again (after a former owner's push in its handover) is listed after the
/// first, and the heads say where erasures and removals stand: a phone that has seen further
/// was served by a history the store no longer holds.
pub fn removals_are_queued_again_and_lifecycle_heads_say_where_they_stand(s: Subject) {
    let store = s.store.as_ref();
    team(store);
    assert_eq!(store.lifecycle_heads().unwrap(), (0, 0));
    store.queue_removal("amina", &case_id(1), NOW).unwrap();
    store.queue_removal("karim", &case_id(2), NOW).unwrap();
    store.queue_removal("amina", &case_id(1), NOW + 1).unwrap();
    let listed = store.removals_after("amina", 0, 10).unwrap();
    let cases: Vec<&str> = listed.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(cases, [case_id(1), case_id(1)]);
    let (erasures, removals) = store.lifecycle_heads().unwrap();
    assert_eq!(erasures, 0);
    assert_eq!(removals, listed[1].0, "the last removal, whoever it is for");
    assert!(store
        .removals_after("amina", removals, 10)
        .unwrap()
        .is_empty());
    store.erase_case(&case_id(3), NOW).unwrap();
    let erased = store.erasures_after(0, 10).unwrap();
    assert_eq!(store.lifecycle_heads().unwrap(), (erased[0].0, removals));
}
