//! Records keep the form version they were written with: a newer version changes nothing of
//! them until a user moves a record to it (answering its new required questions); fields the
//! new version dropped stay, read-only; two devices moving one record at once give a conflict
//! on what they answered differently, which the server accepts and a supervisor settles.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use automerge::{ActorId, ReadDoc};
use common::*;
use serde_json::json;
use suivi_core::case_doc::check::check_document;
use suivi_core::case_doc::{CaseDoc, ChangeContext};
use suivi_core::forms::{FormDefinition, FormRegistry, IDENTIFICATION};
use suivi_core::Error;

const CASE: &str = "0123456789abcdef0123456789abcdef";

/// Version 2 of identification: `tasks` dropped, `household_size` required.
fn with_version_2() -> (FormRegistry, FormDefinition) {
    let mut forms = FormRegistry::builtin();
    let mut v2 = forms.get(IDENTIFICATION, 1).unwrap().clone();
    v2.version = 2;
    v2.fields.retain(|f| f.id != "tasks");
    let mut household = v2.field("estimated_age").unwrap().clone();
    household.id = "household_size".into();
    household.relevant = None;
    v2.fields.push(household);
    forms.add(v2.clone());
    (forms, v2)
}

fn case_on_version_1() -> CaseDoc {
    let mut record = child("Aminata", "Traoré", "Kignan");
    record.insert("tasks".into(), json!("Porte le minerai"));
    CaseDoc::create(
        CASE,
        ActorId::random(),
        FormRegistry::builtin().get(IDENTIFICATION, 1).unwrap(),
        &record,
        &ChangeContext::now("amina"),
    )
    .unwrap()
}

#[test]
fn a_record_stays_on_its_version_until_moved_and_keeps_what_the_new_one_dropped() {
    let (forms, _) = with_version_2();
    let mut doc = case_on_version_1();
    // An edit keeps the record on version 1, checked by version 1 (which has `tasks`).
    doc.edit_identification(
        &forms,
        &record(json!({"tasks": "Trie le minerai"})),
        &ChangeContext::now("amina"),
    )
    .unwrap();
    assert_eq!(doc.identification_form_version().unwrap(), 1);
    assert_eq!(
        doc.identification(&forms).unwrap()["tasks"],
        json!("Trie le minerai")
    );
    assert!(doc.former_identification_fields(&forms).unwrap().is_empty());

    // Moving asks for what version 2 requires, and writes nothing until it is given.
    let heads = doc.heads();
    match doc.move_identification(&forms, &record(json!({})), &ChangeContext::now("amina")) {
        Err(Error::Validation(errors)) => {
            assert!(
                errors.iter().any(|e| e.field == "household_size"),
                "{errors:?}"
            );
        }
        other => panic!("expected the new required field asked for, got {other:?}"),
    }
    assert_eq!(doc.heads(), heads, "nothing written");
    let changed = doc
        .move_identification(
            &forms,
            &record(json!({"household_size": 7})),
            &ChangeContext::now("amina"),
        )
        .unwrap();
    assert_eq!(changed, ["identification_form", "household_size"]);
    assert_eq!(doc.identification_form_version().unwrap(), 2);
    let ident = doc.identification(&forms).unwrap();
    assert_eq!(ident["household_size"], json!(7));
    assert!(!ident.contains_key("tasks"));
    // The dropped field is still there, read-only.
    let former = doc.former_identification_fields(&forms).unwrap();
    assert_eq!(former["tasks"], json!("Trie le minerai"));
    assert!(matches!(
        doc.edit_identification(
            &forms,
            &record(json!({"tasks": "autre"})),
            &ChangeContext::now("amina")
        ),
        Err(Error::Validation(_))
    ));
    // Already on the newest version: nothing to move to.
    assert!(matches!(
        doc.move_identification(&forms, &record(json!({})), &ChangeContext::now("amina")),
        Err(Error::InvalidInput(_))
    ));

    // The server accepts the moved record with version 2 published, and refuses it on a
    // server that never published version 2.
    check_document(doc.automerge(), CASE, &forms).unwrap();
    assert!(check_document(doc.automerge(), CASE, &FormRegistry::builtin()).is_err());
}

#[test]
fn two_devices_moving_one_record_at_once_give_a_conflict_the_server_accepts() {
    let (forms, _) = with_version_2();
    let mut amina = case_on_version_1();
    let mut fatima = CaseDoc::load(&amina.save(), ActorId::random()).unwrap();
    amina
        .move_identification(
            &forms,
            &record(json!({"household_size": 5})),
            &ChangeContext::now("amina"),
        )
        .unwrap();
    fatima
        .move_identification(
            &forms,
            &record(json!({"household_size": 6})),
            &ChangeContext::now("fatima"),
        )
        .unwrap();
    sync_docs(&mut amina, &mut fatima);
    sync_docs(&mut fatima, &mut amina);
    for doc in [&mut amina, &mut fatima] {
        assert_eq!(doc.identification_form_version().unwrap(), 2);
        // Both wrote the version: two values, one version, accepted.
        assert_eq!(
            doc.automerge()
                .get_all(automerge::ROOT, "identification_form")
                .unwrap()
                .len(),
            2
        );
        check_document(doc.automerge(), CASE, &forms).unwrap();
        let conflicts = doc.conflicts(&forms).unwrap();
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert_eq!(conflicts[0].path, "identification.household_size");
        let mut values = conflicts[0].values.clone();
        values.sort_by_key(ToString::to_string);
        assert_eq!(values, [json!(5), json!(6)]);
    }
    // The supervisor keeps one value: the conflict is gone and the server still accepts.
    amina
        .resolve_conflict(
            &forms,
            "identification.household_size",
            &json!(6),
            &ChangeContext::now("fatima"),
        )
        .unwrap();
    assert!(amina.conflicts(&forms).unwrap().is_empty());
    check_document(amina.automerge(), CASE, &forms).unwrap();
}

#[test]
fn two_devices_moving_one_record_to_two_versions_show_it_and_the_newer_settles_it() {
    let (with_v2, v2) = with_version_2();
    let mut v3 = v2.clone();
    v3.version = 3;
    let mut with_v3 = with_v2.clone();
    with_v3.add(v3);
    let mut amina = case_on_version_1();
    let mut fatima = CaseDoc::load(&amina.save(), ActorId::random()).unwrap();
    // Amina's phone had synced version 2 only; Fatima's had version 3 too.
    amina
        .move_identification(
            &with_v2,
            &record(json!({"household_size": 5})),
            &ChangeContext::now("amina"),
        )
        .unwrap();
    fatima
        .move_identification(
            &with_v3,
            &record(json!({"household_size": 5})),
            &ChangeContext::now("fatima"),
        )
        .unwrap();
    sync_docs(&mut amina, &mut fatima);
    assert_eq!(fatima.identification_form_version().unwrap(), 3);
    check_document(fatima.automerge(), CASE, &with_v3).unwrap();
    // Both answered the new question too (a conflict of its own, settled as any other).
    let conflicts = fatima.conflicts(&with_v3).unwrap();
    let moved = conflicts
        .iter()
        .find(|c| c.path == "identification_form")
        .expect("the two moves are shown");
    assert_eq!(moved.values, [json!(2), json!(3)]);
    // The older version cannot settle it; the newer does, and the server still accepts.
    assert!(matches!(
        fatima.resolve_conflict(
            &with_v3,
            "identification_form",
            &json!(2),
            &ChangeContext::now("fatima")
        ),
        Err(Error::InvalidInput(_))
    ));
    fatima
        .resolve_conflict(
            &with_v3,
            "identification_form",
            &json!("3"),
            &ChangeContext::now("fatima"),
        )
        .unwrap();
    assert!(fatima
        .conflicts(&with_v3)
        .unwrap()
        .iter()
        .all(|c| c.path != "identification_form"));
    assert_eq!(fatima.identification_form_version().unwrap(), 3);
    check_document(fatima.automerge(), CASE, &with_v3).unwrap();
}
