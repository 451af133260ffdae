//! Conflicts: two replicas set one field at once; each value is shown with the change that
//! wrote it; a resolution replaces every concurrent value and passes the server's checks, and
//! a disputed referral is settled only with one of the statuses it holds.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use automerge::transaction::Transactable;
use automerge::ActorId;
use common::*;
use serde_json::json;
use suivi_core::case_doc::{CaseDoc, ChangeContext};
use suivi_core::forms::{FormRegistry, IDENTIFICATION};
use suivi_core::{Error, Transition};

fn two_replicas(forms: &FormRegistry) -> (CaseDoc, CaseDoc) {
    let form = forms.latest(IDENTIFICATION).unwrap();
    let mut amina = CaseDoc::create(
        "0123456789abcdef0123456789abcdef",
        ActorId::random(),
        form,
        &child("Aminata", "Traoré", "Kignan"),
        &ChangeContext::now("amina"),
    )
    .unwrap();
    let mut fatima = CaseDoc::load(&amina.save(), ActorId::random()).unwrap();
    sync_docs(&mut amina, &mut fatima);
    (amina, fatima)
}

/// What the server does with `doc`'s changes: a phone's push by `user`.
fn server_takes(
    server: &mut CaseDoc,
    doc: &mut CaseDoc,
    user: &str,
    forms: &FormRegistry,
) -> Result<(), String> {
    server_accepts(server, doc, phone_author(user, false), forms).map_err(|e| format!("{e:?}"))
}

#[test]
fn a_field_set_on_two_replicas_is_settled_by_a_third_value_everywhere() {
    let forms = FormRegistry::builtin();
    let (mut amina, mut fatima) = two_replicas(&forms);
    amina
        .edit_identification(
            &forms,
            &record(json!({"village": "Kaniko"})),
            &ChangeContext::now("amina"),
        )
        .unwrap();
    fatima
        .edit_identification(
            &forms,
            &record(json!({"village": "Kafiné"})),
            &ChangeContext::now("fatima"),
        )
        .unwrap();
    sync_docs(&mut amina, &mut fatima);
    sync_docs(&mut fatima, &mut amina);

    let conflicts = fatima.conflicts_with_sources(&forms).unwrap();
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!(c.path, "identification.village");
    assert_eq!(c.sources.len(), 2);
    for (value, source) in c.values.iter().zip(&c.sources) {
        let who = if value == &json!("Kaniko") {
            "amina"
        } else {
            "fatima"
        };
        assert_eq!(source.user.as_deref(), Some(who), "{value}");
        assert_eq!(source.change.len(), 64, "a change hash");
    }
    assert!(fatima.conflicts(&forms).unwrap()[0].sources.is_empty());

    // A value the field refuses, a path with no conflict: nothing written.
    let heads = fatima.heads();
    let ctx = ChangeContext::now("fatima");
    assert!(matches!(
        fatima.resolve_conflict(&forms, "identification.village", &json!(12), &ctx),
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        fatima.resolve_conflict(&forms, "identification.commune", &json!("X"), &ctx),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(fatima.heads(), heads);

    let mut server = CaseDoc::load(&amina.save(), ActorId::random()).unwrap();
    fatima
        .resolve_conflict(&forms, "identification.village", &json!("Ninkina"), &ctx)
        .unwrap();
    server_takes(&mut server, &mut fatima, "fatima", &forms).unwrap();
    sync_docs(&mut server, &mut amina);
    for doc in [&amina, &fatima] {
        assert!(doc.conflicts(&forms).unwrap().is_empty());
        assert_eq!(
            doc.identification(&forms).unwrap()["village"],
            json!("Ninkina")
        );
    }
}

#[test]
fn a_disputed_referral_is_settled_with_one_of_its_statuses_only() {
    let forms = FormRegistry::builtin();
    let (mut amina, mut fatima) = two_replicas(&forms);
    let ctx = |u: &str| ChangeContext::now(u);
    let referral = amina
        .add_referral(&forms, &referral("CSCOM Misséni"), &ctx("amina"))
        .unwrap();
    amina
        .transition_referral(
            &forms,
            &referral,
            Transition::Send,
            None,
            None,
            &ctx("amina"),
        )
        .unwrap();
    sync_docs(&mut amina, &mut fatima);
    amina
        .transition_referral(
            &forms,
            &referral,
            Transition::Accept,
            None,
            None,
            &ctx("amina"),
        )
        .unwrap();
    fatima
        .transition_referral(
            &forms,
            &referral,
            Transition::Decline,
            None,
            None,
            &ctx("fatima"),
        )
        .unwrap();
    sync_docs(&mut amina, &mut fatima);
    sync_docs(&mut fatima, &mut amina);
    let path = format!("referrals.{referral}.status");
    assert_eq!(fatima.conflicts(&forms).unwrap()[0].path, path);

    // A status neither device set is not a settlement.
    assert!(fatima
        .resolve_conflict(&forms, &path, &json!("completed"), &ctx("fatima"))
        .is_err());
    let mut server = CaseDoc::load(&fatima.save(), ActorId::random()).unwrap();
    // Forged past the API, the server refuses it all the same.
    let mut forged = CaseDoc::load(&fatima.save(), ActorId::random()).unwrap();
    let obj = forged_referral(&mut forged, &referral);
    forged.automerge().put(&obj, "status", "completed").unwrap();
    forged.automerge().commit_with(
        automerge::transaction::CommitOptions::default()
            .with_message(r#"{"user":"fatima","action":"conflict.resolve"}"#),
    );
    let refused = server_takes(&mut server, &mut forged, "fatima", &forms).unwrap_err();
    assert!(refused.contains("IllegalTransition"), "{refused}");

    fatima
        .resolve_conflict(&forms, &path, &json!("accepted"), &ctx("fatima"))
        .unwrap();
    server_takes(&mut server, &mut fatima, "fatima", &forms).unwrap();
    sync_docs(&mut server, &mut amina);
    assert!(amina.conflicts(&forms).unwrap().is_empty());
    assert_eq!(amina.referrals(&forms).unwrap()[0].status, "accepted");
}

fn forged_referral(doc: &mut CaseDoc, referral: &str) -> automerge::ObjId {
    use automerge::ReadDoc;
    let am = doc.automerge();
    let (_, referrals) = am.get(automerge::ROOT, "referrals").unwrap().unwrap();
    let (_, obj) = am.get(&referrals, referral).unwrap().unwrap();
    obj
}
