//! Published forms and the forms feed.

use crate::*;

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

/// Outcome settings are published as the next version each time, the latest read back, and
/// every case's projections marked to be rebuilt with them.
pub fn outcome_settings_are_published_as_versions(s: Subject) {
    let store = s.store.as_ref();
    assert_eq!(
        store.outcome_settings().unwrap(),
        None,
        "the defaults apply"
    );
    let three = suivi_core::outcome::OutcomeSettings {
        exit_visits: 3,
        ..Default::default()
    };
    let first = store
        .publish_outcome_settings(&three, ("admin", NOW))
        .unwrap();
    assert_eq!((first.version, first.exit_visits), (2, 3));
    let second = store
        .publish_outcome_settings(
            &suivi_core::outcome::OutcomeSettings {
                version: 99,
                exit_days_apart: 60,
                ..three
            },
            ("admin", NOW + 1),
        )
        .unwrap();
    assert_eq!(second.version, 3, "the version given is not the one stored");
    assert_eq!(store.outcome_settings().unwrap(), Some(second));
    assert!(store
        .audit_log(0, 100)
        .unwrap()
        .iter()
        .any(|r| r.action == "outcome_settings.publish" && r.subject == "v3"));
}
