//! The store end to end: the agent flow, search and filters, bad input, keys and files.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use chrono::NaiveDate;
use common::*;
use serde_json::json;
use suivi_core::{CaseFilter, Error, Store, Transition};

#[test]
fn agent_flow_new_case_referral_transitions_followup_history_search() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(&dir);
    let case_id = store.create_case(&child("Aïcha", "Traoré", "Fès")).unwrap();
    store
        .create_case(&child("Youssef", "El Amrani", "Souk Sebt"))
        .unwrap();

    // Edit: a different village, a cleared field; the history will say old → new.
    let changed = store
        .edit_case(
            &case_id,
            &record(json!({"village": "Kignan", "tasks": "lavage"})),
        )
        .unwrap();
    assert_eq!(changed, vec!["village", "tasks"]);

    let referral_id = store.refer(&case_id, &referral("École de Kignan")).unwrap();
    for t in [Transition::Send, Transition::Accept] {
        store
            .transition_referral(&referral_id, t, Some("ok"), None)
            .unwrap();
    }
    let next = store
        .transition_referral(
            &referral_id,
            Transition::Transfer,
            Some("classe passerelle"),
            Some("CAP Sikasso"),
        )
        .unwrap()
        .expect("a transfer starts the next link");
    store
        .add_followup(&case_id, &visit("2026-10-01", "2026-11-01", "medium"))
        .unwrap();

    let detail = store.case(&case_id).unwrap();
    assert_eq!(detail.identification["village"], json!("Kignan"));
    assert_eq!(
        detail.summary.risk_level.as_deref(),
        Some("medium"),
        "latest visit's risk"
    );
    assert_eq!(detail.referrals.len(), 2);
    let first = detail
        .referrals
        .iter()
        .find(|r| r.id == referral_id)
        .unwrap();
    assert_eq!(first.status, "transferred");
    assert_eq!(first.next_referral.as_deref(), Some(next.as_str()));
    assert_eq!(first.transitions.len(), 3);
    assert!(first.transitions.iter().all(|t| t.actor == "amina"));
    let second = detail.referrals.iter().find(|r| r.id == next).unwrap();
    assert_eq!(second.status, "sent");
    assert_eq!(
        second.previous_referral.as_deref(),
        Some(referral_id.as_str())
    );
    assert_eq!(second.fields["provider"], json!("CAP Sikasso"));

    // Illegal transition: typed error, nothing saved.
    let before = store.history(&case_id).unwrap().len();
    assert!(matches!(
        store.transition_referral(&next, Transition::Complete, None, None),
        Err(Error::IllegalTransition { .. })
    ));
    let history = store.history(&case_id).unwrap();
    assert_eq!(history.len(), before);

    // History: who, what, old → new.
    let edit = history
        .iter()
        .find(|h| h.action.as_deref() == Some("case.edit"))
        .unwrap();
    assert_eq!(edit.user.as_deref(), Some("amina"));
    let village = edit
        .changes
        .iter()
        .find(|c| c.path == "identification.village")
        .unwrap();
    assert_eq!(village.old, Some(json!("Fès")));
    assert_eq!(village.new, Some(json!("Kignan")));
    assert!(history
        .iter()
        .any(|h| h.action.as_deref() == Some("referral.transfer")));

    // Search folds case and accents.
    let found = store
        .list_cases(&CaseFilter {
            query: Some("traore".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].case_id, case_id);
    let found = store
        .list_cases(&CaseFilter {
            query: Some("AICHA".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(store
        .list_cases(&CaseFilter {
            query: Some("zz".into()),
            ..Default::default()
        })
        .unwrap()
        .is_empty());
    // Filters.
    let by_village = CaseFilter {
        village: Some("souk sebt".into()),
        ..Default::default()
    };
    assert_eq!(store.list_cases(&by_village).unwrap().len(), 1);
    let by_status = CaseFilter {
        referral_status: Some("sent".into()),
        ..Default::default()
    };
    assert_eq!(store.list_cases(&by_status).unwrap()[0].case_id, case_id);
    let by_risk = CaseFilter {
        risk_level: Some("high".into()),
        ..Default::default()
    };
    assert_eq!(
        store.list_cases(&by_risk).unwrap().len(),
        1,
        "only the other child is still high"
    );
    let overdue = |day: &str| CaseFilter {
        overdue_on: NaiveDate::parse_from_str(day, "%Y-%m-%d").ok(),
        ..Default::default()
    };
    assert_eq!(store.list_cases(&overdue("2026-11-02")).unwrap().len(), 1);
    assert!(store.list_cases(&overdue("2026-10-15")).unwrap().is_empty());

    // Everything is still there after reopening.
    drop(store);
    let store = Store::open(&dir.path().join("suivi.db"), KEY).unwrap();
    assert_eq!(store.case_count().unwrap(), 2);
    assert_eq!(store.case(&case_id).unwrap().referrals.len(), 2);
    assert_eq!(store.identity().user, "amina");
}

/// The phone's search is the console's (core::names): a hyphen is a space, the usual spelling
/// variants of a family name are one name, a name's beginning finds it, and a village is found
/// by its beginning from three letters.
#[test]
fn the_phones_search_is_as_forgiving_as_an_agent_types() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(&dir);
    let mohamed = store
        .create_case(&child("Mohamed", "El-Idrissi", "Douar Ouled Ali"))
        .unwrap();
    let fatoumata = store
        .create_case(&child("Fatoumata", "Coulibaly", "Kalaké"))
        .unwrap();
    store
        .create_case(&child("Salma", "Benali", "Souk Sebt"))
        .unwrap();
    let names = |query: &str| -> Vec<String> {
        let filter = CaseFilter {
            query: Some(query.into()),
            ..Default::default()
        };
        store
            .list_cases(&filter)
            .unwrap()
            .into_iter()
            .map(|c| c.case_id)
            .collect()
    };
    for query in [
        "el idrissi",
        "EL-IDRISSI",
        "muhammad",
        "moh",
        "idrissi mohamed",
    ] {
        assert_eq!(names(query), vec![mohamed.clone()], "{query}");
    }
    for query in ["koulibaly", "Fatoumata Koulibali", "coul"] {
        assert_eq!(names(query), vec![fatoumata.clone()], "{query}");
    }
    assert!(names("diarra").is_empty());
    let village = |typed: &str| -> Vec<String> {
        let filter = CaseFilter {
            village: Some(typed.into()),
            ..Default::default()
        };
        store
            .list_cases(&filter)
            .unwrap()
            .into_iter()
            .map(|c| c.case_id)
            .collect()
    };
    assert_eq!(village("douar"), vec![mohamed.clone()], "its first word");
    assert_eq!(village("douar-ouled ali"), vec![mohamed.clone()]);
    assert_eq!(village("kala"), vec![fatoumata.clone()]);
    assert_eq!(village("KALAKE"), vec![fatoumata.clone()]);
    assert!(village("ka").is_empty(), "too short to be a beginning");
    assert!(village("ouled").is_empty(), "a beginning, not any word");
}

/// The agent's to-do lists: visits overdue or due within a week by due date (none later),
/// referrals waiting on the agent (a draft, a declined one; not one sent), and the filters.
#[test]
fn the_to_do_lists_what_is_due_and_what_waits_on_the_agent() {
    use suivi_core::TodoFilter;
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(&dir);
    let today = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    let overdue = store
        .create_case(&child("Awa", "Traoré", "Kalaké"))
        .unwrap();
    store
        .add_followup(&overdue, &visit("2026-11-01", "2026-12-01", "high"))
        .unwrap();
    let soon = store
        .create_case(&child("Moussa", "Diarra", "Douar Ouled Ali"))
        .unwrap();
    store
        .add_followup(&soon, &visit("2026-11-20", "2026-12-10", "low"))
        .unwrap();
    let later = store
        .create_case(&child("Salma", "Benali", "Kalaké"))
        .unwrap();
    store
        .add_followup(&later, &visit("2026-11-20", "2027-01-20", "high"))
        .unwrap();
    let draft = store.refer(&later, &referral("CSCOM Kignan")).unwrap();
    let declined = store.refer(&soon, &referral("CSRef Sikasso")).unwrap();
    store
        .transition_referral(&declined, Transition::Send, None, None)
        .unwrap();
    store
        .transition_referral(&declined, Transition::Decline, Some("pas de place"), None)
        .unwrap();
    let sent = store.refer(&overdue, &referral("École A")).unwrap();
    store
        .transition_referral(&sent, Transition::Send, None, None)
        .unwrap();

    let todo = store.todo(today, &TodoFilter::default()).unwrap();
    let ids = |rows: &[suivi_core::store::CaseRow]| -> Vec<String> {
        rows.iter().map(|c| c.case_id.clone()).collect()
    };
    assert_eq!(
        ids(&todo.visits),
        vec![overdue.clone(), soon.clone()],
        "by due date"
    );
    let waiting: Vec<(&str, &str)> = todo
        .referrals
        .iter()
        .map(|(c, r)| (c.case_id.as_str(), r.referral_id.as_str()))
        .collect();
    assert_eq!(
        waiting,
        vec![
            (later.as_str(), draft.as_str()),
            (soon.as_str(), declined.as_str())
        ],
        "oldest first, each with its case"
    );
    assert!(todo.conflicts.is_empty());
    assert_eq!(todo.count(), 4);

    let high = TodoFilter {
        risk_level: Some("high".into()),
        ..Default::default()
    };
    let todo = store.todo(today, &high).unwrap();
    assert_eq!(ids(&todo.visits), vec![overdue.clone()]);
    assert_eq!(todo.referrals.len(), 1, "Salma's draft: her risk is high");
    let douar = TodoFilter {
        village: Some("douar".into()),
        ..Default::default()
    };
    let todo = store.todo(today, &douar).unwrap();
    assert_eq!(ids(&todo.visits), vec![soon.clone()]);
    assert_eq!(todo.referrals.len(), 1);
    // A month on, the later visit is due too.
    let next_month = NaiveDate::from_ymd_opt(2027, 1, 15).unwrap();
    assert_eq!(
        store
            .todo(next_month, &TodoFilter::default())
            .unwrap()
            .visits
            .len(),
        3
    );
}

/// A half-filled form is kept as a draft as the agent types: it survives the store being
/// closed (the process killed) and reopened, is replaced as typing goes on, one per form and
/// case, and is gone once discarded, or with everything by a wipe.
#[test]
fn a_draft_survives_the_app_being_killed_and_goes_when_discarded() {
    use std::collections::BTreeMap;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("suivi.db");
    let store = new_store(&dir);
    let case_id = {
        let mut store = store;
        let id = store.create_case(&child("Aïcha", "Traoré", "Fès")).unwrap();
        let typed: BTreeMap<String, String> = [
            ("child_first_name".into(), "Mariam".into()),
            ("village".into(), "Kalak".into()),
        ]
        .into();
        store.save_draft("identification", None, &typed).unwrap();
        let visit: BTreeMap<String, String> =
            [("notes".into(), "Absente de l'école".into())].into();
        store.save_draft("followup", Some(&id), &visit).unwrap();
        let more: BTreeMap<String, String> = [
            ("child_first_name".into(), "Mariam".into()),
            ("village".into(), "Kalaké".into()),
        ]
        .into();
        store.save_draft("identification", None, &more).unwrap();
        id
        // Dropped without a word: the process is gone.
    };
    let mut store = Store::open(&path, KEY).unwrap();
    let new_case = store.draft("identification", None).unwrap().unwrap();
    assert_eq!(new_case.inputs["village"], "Kalaké", "the latest typing");
    assert_eq!(new_case.case_id, None);
    let visit = store.draft("followup", Some(&case_id)).unwrap().unwrap();
    assert_eq!(visit.inputs["notes"], "Absente de l'école");
    assert_eq!(store.drafts().unwrap().len(), 2);
    assert!(
        store.draft("followup", None).unwrap().is_none(),
        "one per form and case"
    );
    assert!(store.discard_draft("identification", None).unwrap());
    assert!(!store.discard_draft("identification", None).unwrap());
    assert!(store.draft("identification", None).unwrap().is_none());
    // Too much to be a form's answers: refused, nothing kept.
    let huge: BTreeMap<String, String> = (0..1000).map(|i| (format!("f{i}"), "x".into())).collect();
    assert!(matches!(
        store.save_draft("identification", None, &huge),
        Err(Error::InvalidInput(_))
    ));
    assert!(store.draft("identification", None).unwrap().is_none());
    store.wipe_case_data().unwrap();
    assert!(
        store.drafts().unwrap().is_empty(),
        "a wipe takes the drafts"
    );
}

#[test]
fn invalid_data_saves_nothing_and_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(&dir);
    let mut bad = child("", "Traoré", "Fès");
    bad.insert("estimated_age".into(), json!(40));
    match store.create_case(&bad) {
        Err(Error::Validation(errors)) => {
            let fields: Vec<_> = errors
                .iter()
                .map(|e| (e.field.as_str(), e.key.as_str()))
                .collect();
            assert_eq!(
                fields,
                vec![
                    ("child_first_name", "length.min"),
                    ("estimated_age", "range.max")
                ]
            );
        }
        other => panic!("expected validation error, got {other:?}"),
    }
    assert_eq!(store.case_count().unwrap(), 0);

    let case_id = store.create_case(&child("Aïcha", "Traoré", "Fès")).unwrap();
    let history_before = store.history(&case_id).unwrap();
    assert!(matches!(
        store.edit_case(&case_id, &record(json!({"sex": "robot"}))),
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        store.add_followup(&case_id, &record(json!({"visit_type": "home"}))),
        Err(Error::Validation(_))
    ));
    assert_eq!(store.history(&case_id).unwrap(), history_before);
    assert!(matches!(
        store.resolve_case_id("ffffffff"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn an_edit_that_hides_fields_clears_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(&dir);
    let case_id = store.create_case(&child("Aïcha", "Traoré", "Fès")).unwrap();
    let changed = store
        .edit_case(&case_id, &record(json!({"works": false})))
        .unwrap();
    assert!(changed.contains(&"work_sector".to_string()), "{changed:?}");
    let ident = store.case(&case_id).unwrap().identification;
    assert!(!ident.contains_key("work_sector") && !ident.contains_key("hazardous_conditions"));
}

fn file_contains(path: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read(path)
        .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        .unwrap_or(false)
}

#[test]
fn no_case_data_in_plaintext_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(&dir);
    let name = "Zoubida";
    let case_id = store
        .create_case(&child(name, "Ouedraogo", "Tiébélé"))
        .unwrap();
    for i in 0..40 {
        store
            .edit_case(
                &case_id,
                &record(json!({"tasks": format!("{name} porte des charges {i}")})),
            )
            .unwrap();
    }
    // Look while the store is open (WAL and journal exist) and after it is closed.
    let scan = |when: &str| {
        let mut scanned = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            scanned += 1;
            for needle in [
                name.as_bytes(),
                "Ouedraogo".as_bytes(),
                "orpaillage".as_bytes(),
            ] {
                assert!(
                    !file_contains(&path, needle),
                    "{when}: plaintext in {}",
                    path.display()
                );
            }
        }
        scanned
    };
    assert!(scan("open") >= 2, "the WAL file should exist while open");
    drop(store);
    scan("closed");
    // And the data is really there, behind the key.
    let store = Store::open(&dir.path().join("suivi.db"), KEY).unwrap();
    assert_eq!(store.case(&case_id).unwrap().summary.first_name, name);
}

fn digest(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn wrong_key_is_typed_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("suivi.db");
    let mut store = new_store(&dir);
    store.create_case(&child("Aïcha", "Traoré", "Fès")).unwrap();
    drop(store);
    let before = digest(&path);
    assert!(matches!(
        Store::open(&path, "wrong key"),
        Err(Error::WrongKeyOrCorrupt)
    ));
    assert!(matches!(
        Store::create(&path, "wrong key", "x", "y"),
        Err(Error::WrongKeyOrCorrupt)
    ));
    assert_eq!(digest(&path), before, "a wrong key must not touch the file");
    assert_eq!(Store::open(&path, KEY).unwrap().case_count().unwrap(), 1);
    assert!(matches!(
        Store::create(&path, KEY, "x", "y"),
        Err(Error::AlreadyInitialised)
    ));
}

#[test]
fn corrupt_foreign_or_missing_files_are_typed_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    // Garbage.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5Au8; 8192]).unwrap();
    assert!(matches!(
        Store::open(&garbage, KEY),
        Err(Error::WrongKeyOrCorrupt)
    ));
    assert_eq!(digest(&garbage), vec![0x5Au8; 8192]);
    // A plaintext SQLite database of someone else.
    let plain = dir.path().join("plain.db");
    {
        let conn = rusqlite::Connection::open(&plain).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let before = digest(&plain);
    assert!(matches!(
        Store::open(&plain, KEY),
        Err(Error::PlaintextDatabase)
    ));
    assert!(matches!(
        Store::create(&plain, KEY, "u", "d"),
        Err(Error::PlaintextDatabase)
    ));
    assert_eq!(digest(&plain), before);
    // An encrypted database of another application, opened with its own key.
    let other = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&other).unwrap();
        conn.pragma_update(None, "key", KEY).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let before = digest(&other);
    assert!(matches!(
        Store::open(&other, KEY),
        Err(Error::ForeignDatabase)
    ));
    assert_eq!(digest(&other), before);
    // Missing.
    assert!(matches!(
        Store::open(&dir.path().join("none.db"), KEY),
        Err(Error::NotFound { .. })
    ));
    assert!(!dir.path().join("none.db").exists());
}

#[test]
fn documents_are_compacted_and_reload_identically() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(&dir);
    let case_id = store.create_case(&child("Aïcha", "Traoré", "Fès")).unwrap();
    for i in 0..(suivi_core::store::CASE_CHUNKS_MAX * 2 + 3) {
        store
            .edit_case(&case_id, &record(json!({"hours_per_week": i})))
            .unwrap();
    }
    let detail = store.case(&case_id).unwrap();
    drop(store);
    let store = Store::open(&dir.path().join("suivi.db"), KEY).unwrap();
    let reloaded = store.case(&case_id).unwrap();
    assert_eq!(reloaded.identification, detail.identification);
    assert_eq!(
        reloaded.identification["hours_per_week"],
        json!(suivi_core::store::CASE_CHUNKS_MAX * 2 + 2)
    );
    assert_eq!(
        store.history(&case_id).unwrap().len() as i64,
        suivi_core::store::CASE_CHUNKS_MAX * 2 + 4
    );
}

#[test]
fn import_is_all_or_nothing_and_export_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(&dir);
    // A spreadsheet's rows: cells as text.
    let rows = json!([
        {"child_first_name": "Fatoumata", "child_last_name": "Coulibaly", "sex": "female", "dob_known": "non",
         "estimated_age": "11", "province": "Sikasso", "commune": "Kadiolo", "village": "Misséni",
         "school_status": "never_enrolled", "works": "oui", "work_sector": "cotton",
         "hazardous_conditions": "pesticides, heavy_loads", "risk_level": "high", "consent_to_share": "oui"},
        {"child_first_name": "Omar", "child_last_name": "Benali", "sex": "male", "dob_known": "oui",
         "date_of_birth": "2013-04-02", "province": "Settat", "commune": "Souk Sebt", "village": "Ouled Ali",
         "school_status": "enrolled_attending", "school_level": "primary", "works": "non",
         "risk_level": "low", "consent_to_share": "non"}
    ]);
    let mut broken = rows.clone();
    broken[1]["estimated_age"] = json!("douze");
    broken[0]["sex"] = json!("x");
    match store.import(&broken) {
        Err(Error::Validation(errors)) => {
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert!(fields.contains(&"row1.sex"), "{fields:?}");
            assert!(fields.contains(&"row2.estimated_age"), "{fields:?}");
        }
        other => panic!("expected validation error, got {other:?}"),
    }
    assert_eq!(store.case_count().unwrap(), 0);
    let ids = store.import(&rows).unwrap();
    assert_eq!(ids.len(), 2);
    let case = store.case(&ids[0]).unwrap();
    assert_eq!(
        case.identification["hazardous_conditions"],
        json!(["pesticides", "heavy_loads"])
    );
    store.refer(&ids[0], &referral("Centre de santé")).unwrap();
    store
        .add_followup(&ids[0], &visit("2026-10-01", "2026-12-01", "medium"))
        .unwrap();

    // An export imports into another device's store with the same content.
    let export = store.export().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let mut other = new_store(&dir2);
    let imported = other.import(&export).unwrap();
    assert_eq!(imported.len(), 2);
    let mut names: Vec<String> = other
        .list_cases(&CaseFilter::default())
        .unwrap()
        .into_iter()
        .map(|c| c.first_name)
        .collect();
    names.sort();
    assert_eq!(names, vec!["Fatoumata", "Omar"]);
    let copy = other
        .list_cases(&CaseFilter {
            query: Some("coulibaly".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(copy[0].referral_count, 1);
    assert_eq!(copy[0].followup_count, 1);
}
