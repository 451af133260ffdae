//! A reassignment written into the case (`assigned_to`): only a supervisor's or admin's change
//! may write it, it names a user id, two made at once are a conflict, and a supervisor settles
//! it like any other.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use automerge::transaction::Transactable;
use automerge::{ActorId, ROOT};
use common::*;
use serde_json::json;
use suivi_core::case_doc::check::ChangeRefusal;
use suivi_core::case_doc::{single_assignee, CaseDoc, ChangeContext};
use suivi_core::forms::{FormRegistry, IDENTIFICATION};
use suivi_core::Error;

const CASE: &str = "0123456789abcdef0123456789abcdef";

/// A phone's push of `doc`'s changes by `user`, a supervisor's if `reassigns`.
fn server_takes(
    server: &mut CaseDoc,
    doc: &mut CaseDoc,
    user: &str,
    reassigns: bool,
    forms: &FormRegistry,
) -> Result<(), ChangeRefusal> {
    server_accepts(server, doc, phone_author(user, reassigns), forms)
}

/// The case Amina's phone created for Awa.
fn awas_case(forms: &FormRegistry) -> CaseDoc {
    CaseDoc::create(
        CASE,
        ActorId::random(),
        forms.latest(IDENTIFICATION).unwrap(),
        &child("Awa", "Sangaré", "Zégoua"),
        &ChangeContext::now("amina"),
    )
    .unwrap()
}

fn replica(of: &mut CaseDoc) -> CaseDoc {
    CaseDoc::load(&of.save(), ActorId::random()).unwrap()
}

#[test]
fn only_a_supervisor_writes_the_assignment_and_it_names_a_user() {
    let forms = FormRegistry::builtin();
    let mut server = awas_case(&forms);
    let mut agent = replica(&mut server);
    agent
        .assign_to("karim", &ChangeContext::now("amina"))
        .unwrap();
    assert_eq!(
        server_takes(&mut server, &mut agent, "amina", false, &forms),
        Err(ChangeRefusal::NotAllowed("assigned_to".into()))
    );
    assert!(matches!(
        agent.assign_to("<script>", &ChangeContext::now("amina")),
        Err(Error::InvalidInput(_))
    ));
    // Written past the API: a value that is not a user id breaks the layout.
    let mut forged = replica(&mut server);
    forged.automerge().put(ROOT, "assigned_to", "a b").unwrap();
    forged.automerge().commit_with(
        automerge::transaction::CommitOptions::default()
            .with_message(r#"{"user":"fatima","action":"case.reassign"}"#),
    );
    assert_eq!(
        server_takes(&mut server, &mut forged, "fatima", true, &forms),
        Err(ChangeRefusal::Invalid("assigned_to".into()))
    );
    let mut supervisor = replica(&mut server);
    assert!(supervisor
        .assign_to("karim", &ChangeContext::now("fatima"))
        .unwrap());
    assert!(
        !supervisor
            .assign_to("karim", &ChangeContext::now("fatima"))
            .unwrap(),
        "given to Karim already: nothing written"
    );
    server_takes(&mut server, &mut supervisor, "fatima", true, &forms).unwrap();
    assert_eq!(
        single_assignee(server.automerge()).as_deref(),
        Some("karim")
    );
}

#[test]
fn two_reassignments_at_once_are_a_conflict_a_supervisor_settles() {
    let forms = FormRegistry::builtin();
    let mut phone = awas_case(&forms);
    let mut console = replica(&mut phone);
    phone
        .assign_to("karim", &ChangeContext::now("fatima"))
        .unwrap();
    console
        .assign_to("salif", &ChangeContext::now("fatima"))
        .unwrap();
    sync_docs(&mut console, &mut phone);
    assert_eq!(
        single_assignee(phone.automerge()),
        None,
        "nobody wins silently"
    );
    let conflicts = phone.conflicts_with_sources(&forms).unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].path, "assigned_to");
    let mut values = conflicts[0].values.clone();
    values.sort_by_key(|v| v.to_string());
    assert_eq!(values, vec![json!("karim"), json!("salif")]);
    assert!(matches!(
        phone.resolve_conflict(
            &forms,
            "assigned_to",
            &json!("no such id!"),
            &ChangeContext::now("fatima")
        ),
        Err(Error::InvalidInput(_))
    ));
    phone
        .resolve_conflict(
            &forms,
            "assigned_to",
            &json!("karim"),
            &ChangeContext::now("fatima"),
        )
        .unwrap();
    assert_eq!(single_assignee(phone.automerge()).as_deref(), Some("karim"));
    assert!(phone.conflicts(&forms).unwrap().is_empty());
    sync_docs(&mut phone, &mut console);
    assert_eq!(console.assigned_to().unwrap().as_deref(), Some("karim"));
}
