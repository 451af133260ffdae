//! A case's closure as the server checks it: an agent proposes, only a supervisor of the
//! case's team (or an admin) approves or returns, however the change is written; anyone who
//! writes the case reopens it; two steps taken at once are a conflict the server keeps.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, ObjType, ReadDoc, ROOT};
use common::*;
use serde_json::json;
use suivi_core::case_doc::check::ChangeRefusal;
use suivi_core::case_doc::{CaseDoc, ChangeContext, ClosureStatus};
use suivi_core::forms::FormRegistry;

fn replica(of: &mut CaseDoc) -> CaseDoc {
    CaseDoc::load(&of.save(), ActorId::random()).unwrap()
}

/// The server's copy takes `phone`'s changes from `user`, a supervisor of the team if
/// `supervises`.
fn push(
    server: &mut CaseDoc,
    phone: &mut CaseDoc,
    user: &str,
    supervises: bool,
    forms: &FormRegistry,
) -> Result<(), ChangeRefusal> {
    server_accepts(server, phone, phone_author(user, supervises), forms)
}

fn commit(doc: &mut CaseDoc, user: &str, action: &str) {
    doc.automerge().commit_with(
        CommitOptions::default()
            .with_message(format!(r#"{{"user":"{user}","action":"{action}"}}"#)),
    );
}

#[test]
fn an_agent_proposes_a_supervisor_decides_and_an_agents_forged_approval_is_refused() {
    let forms = FormRegistry::builtin();
    let mut server = awa_of_zegoua(&forms);
    let mut agent = replica(&mut server);
    agent
        .propose_closure(
            "moved_away",
            Some("parti à Bamako"),
            &ChangeContext::now("amina"),
        )
        .unwrap();
    push(&mut server, &mut agent, "amina", false, &forms).unwrap();

    // The agent approves her own proposal through the API: refused by the server.
    let mut forged = replica(&mut server);
    forged
        .decide_closure(true, None, &ChangeContext::now("amina"))
        .unwrap();
    assert_eq!(
        push(&mut server, &mut forged, "amina", false, &forms),
        Err(ChangeRefusal::NotAllowed("closure_status".into()))
    );
    // Written past the API: the status alone, or an approval logged without it.
    let mut forged = replica(&mut server);
    forged
        .automerge()
        .put(ROOT, "closure_status", "closed")
        .unwrap();
    commit(&mut forged, "amina", "case.closure.approve");
    assert_eq!(
        push(&mut server, &mut forged, "amina", false, &forms),
        Err(ChangeRefusal::NotAllowed("closure_status".into()))
    );
    let mut forged = replica(&mut server);
    let log = match forged.automerge().get(ROOT, "closure_steps").unwrap() {
        Some((_, id)) => id,
        None => panic!("the proposal made a log"),
    };
    let entry = forged
        .automerge()
        .put_object(&log, "9999999999999-forged", ObjType::Map)
        .unwrap();
    for (k, v) in [
        ("step", "approve"),
        ("actor", "amina"),
        ("at", "2026-12-07T10:00:00Z"),
    ] {
        forged.automerge().put(&entry, k, v).unwrap();
    }
    commit(&mut forged, "amina", "case.closure.approve");
    let refused = push(&mut server, &mut forged, "amina", false, &forms).unwrap_err();
    assert!(
        matches!(&refused, ChangeRefusal::NotAllowed(at) if at.ends_with(".step")),
        "{refused:?}"
    );
    // An approval logged in a supervisor's name by the agent names another user.
    let mut forged = replica(&mut server);
    let entry = forged
        .automerge()
        .put_object(&log, "9999999999999-forged", ObjType::Map)
        .unwrap();
    for (k, v) in [
        ("step", "approve"),
        ("actor", "fatima"),
        ("at", "2026-12-07T10:00:00Z"),
    ] {
        forged.automerge().put(&entry, k, v).unwrap();
    }
    commit(&mut forged, "amina", "case.closure.approve");
    assert!(matches!(
        push(&mut server, &mut forged, "amina", false, &forms),
        Err(ChangeRefusal::WrongAuthor(_))
    ));
    // A step already logged is never rewritten, even by a supervisor.
    let mut rewrite = replica(&mut server);
    let first = rewrite.closure().unwrap().steps[0].id.clone();
    let entry = match rewrite.automerge().get(&log, first.as_str()).unwrap() {
        Some((_, id)) => id,
        None => panic!("the proposal's step"),
    };
    rewrite.automerge().put(&entry, "note", "rien").unwrap();
    commit(&mut rewrite, "fatima", "case.closure.approve");
    assert!(matches!(
        push(&mut server, &mut rewrite, "fatima", true, &forms),
        Err(ChangeRefusal::NotAllowed(_))
    ));

    // The team's supervisor approves: taken.
    let mut supervisor = replica(&mut server);
    supervisor
        .decide_closure(true, Some("vu au téléphone"), &ChangeContext::now("fatima"))
        .unwrap();
    push(&mut server, &mut supervisor, "fatima", true, &forms).unwrap();
    assert!(server.closure().unwrap().is_closed());
    // The agent reopens it when the child comes back: counted.
    let mut agent = replica(&mut server);
    agent
        .reopen(Some("revenu au village"), &ChangeContext::now("amina"))
        .unwrap();
    push(&mut server, &mut agent, "amina", false, &forms).unwrap();
    let c = server.closure().unwrap();
    assert_eq!(c.status, ClosureStatus::Open);
    assert_eq!(c.reopenings(), 1);
    let steps: Vec<(String, String)> = c.steps.into_iter().map(|s| (s.step, s.actor)).collect();
    assert_eq!(
        steps,
        [
            ("propose".to_string(), "amina".to_string()),
            ("approve".to_string(), "fatima".to_string()),
            ("reopen".to_string(), "amina".to_string())
        ]
    );
}

#[test]
fn steps_that_do_not_follow_and_values_the_format_does_not_know_are_refused() {
    let forms = FormRegistry::builtin();
    let mut server = awa_of_zegoua(&forms);
    // A supervisor cannot close a case nobody proposed to close.
    let mut supervisor = replica(&mut server);
    supervisor
        .automerge()
        .put(ROOT, "closure_status", "closed")
        .unwrap();
    commit(&mut supervisor, "fatima", "case.closure.approve");
    assert_eq!(
        push(&mut server, &mut supervisor, "fatima", true, &forms),
        Err(ChangeRefusal::IllegalTransition("closure_status".into()))
    );
    // A proposal without a reason, or with one the format does not know.
    let mut agent = replica(&mut server);
    agent
        .automerge()
        .put(ROOT, "closure_status", "proposed")
        .unwrap();
    commit(&mut agent, "amina", "case.closure.propose");
    assert_eq!(
        push(&mut server, &mut agent, "amina", false, &forms),
        Err(ChangeRefusal::Invalid("closure_reason".into()))
    );
    let mut agent = replica(&mut server);
    agent
        .automerge()
        .put(ROOT, "closure_status", "proposed")
        .unwrap();
    agent
        .automerge()
        .put(ROOT, "closure_reason", "bored")
        .unwrap();
    commit(&mut agent, "amina", "case.closure.propose");
    assert_eq!(
        push(&mut server, &mut agent, "amina", false, &forms),
        Err(ChangeRefusal::Invalid("closure_reason".into()))
    );
    let mut agent = replica(&mut server);
    agent
        .automerge()
        .put(ROOT, "closure_status", "archived")
        .unwrap();
    commit(&mut agent, "amina", "case.closure.propose");
    assert_eq!(
        push(&mut server, &mut agent, "amina", false, &forms),
        Err(ChangeRefusal::Invalid("closure_status".into()))
    );
}

#[test]
fn a_proposal_on_two_phones_at_once_keeps_both_steps_and_a_decision_race_is_a_conflict() {
    let forms = FormRegistry::builtin();
    let mut server = awa_of_zegoua(&forms);
    // Amina and Karim each propose, offline, for different reasons: each made the log.
    let mut amina = replica(&mut server);
    let mut karim = replica(&mut server);
    amina
        .propose_closure("exited_stable", None, &ChangeContext::now("amina"))
        .unwrap();
    karim
        .propose_closure("moved_away", None, &ChangeContext::now("karim"))
        .unwrap();
    push(&mut server, &mut amina, "amina", false, &forms).unwrap();
    push(&mut server, &mut karim, "karim", false, &forms).unwrap();
    let c = server.closure().unwrap();
    assert_eq!(c.status, ClosureStatus::Proposed);
    assert_eq!(c.steps.len(), 2, "both proposals are kept: {:?}", c.steps);
    let conflicts = server.conflicts(&forms).unwrap();
    let reason = conflicts
        .iter()
        .find(|c| c.path == "closure_reason")
        .expect("two reasons at once are a conflict");
    assert_eq!(reason.values.len(), 2);

    // Two supervisors decide at once, one approving, one returning.
    let mut fatima = replica(&mut server);
    let mut moussa = replica(&mut server);
    fatima
        .decide_closure(true, None, &ChangeContext::now("fatima"))
        .unwrap();
    moussa
        .decide_closure(
            false,
            Some("encore une visite"),
            &ChangeContext::now("moussa"),
        )
        .unwrap();
    push(&mut server, &mut fatima, "fatima", true, &forms).unwrap();
    push(&mut server, &mut moussa, "moussa", true, &forms).unwrap();
    assert!(server.closure().unwrap().disputed);
    assert!(!server.closure().unwrap().is_closed());
    // An agent may not settle it, either way; the supervisor does.
    for value in ["returned", "closed"] {
        let mut agent = replica(&mut server);
        agent
            .resolve_conflict(
                &forms,
                "closure_status",
                &json!(value),
                &ChangeContext::now("amina"),
            )
            .unwrap();
        assert_eq!(
            push(&mut server, &mut agent, "amina", false, &forms),
            Err(ChangeRefusal::NotAllowed("closure_status".into())),
            "{value}"
        );
    }
    let mut fatima = replica(&mut server);
    fatima
        .resolve_conflict(
            &forms,
            "closure_status",
            &json!("closed"),
            &ChangeContext::now("fatima"),
        )
        .unwrap();
    push(&mut server, &mut fatima, "fatima", true, &forms).unwrap();
    assert!(server.closure().unwrap().is_closed());
    // The reason too: any reason the format knows.
    let mut fatima = replica(&mut server);
    fatima
        .resolve_conflict(
            &forms,
            "closure_reason",
            &json!("moved_away"),
            &ChangeContext::now("fatima"),
        )
        .unwrap();
    push(&mut server, &mut fatima, "fatima", true, &forms).unwrap();
    assert!(server.conflicts(&forms).unwrap().is_empty());
    assert_eq!(
        server.closure().unwrap().reason.as_deref(),
        Some("moved_away")
    );
}

/// On an agent's phone: the case's stage is in its list row, provisional while the visits that
/// decided it are not acknowledged; a proposal keeps the case due; an agent's phone does not
/// decide.
#[test]
fn on_the_phone_the_stage_is_listed_and_a_proposal_alone_closes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = new_store(&dir);
    let case_id = store
        .create_case(&child("Awa", "Sangaré", "Zégoua"))
        .unwrap();
    let row = |store: &suivi_core::Store| {
        store
            .list_cases(&suivi_core::CaseFilter::default())
            .unwrap()
            .into_iter()
            .find(|c| c.case_id == case_id)
            .unwrap()
    };
    assert_eq!(row(&store).stage.as_deref(), Some("identified"));
    store
        .add_followup(&case_id, &visit("2026-09-01", "2026-10-01", "medium"))
        .unwrap();
    store
        .add_followup(&case_id, &visit("2026-10-05", "2026-11-05", "low"))
        .unwrap();
    let listed = row(&store);
    assert_eq!(listed.stage.as_deref(), Some("exited"));
    assert_eq!(listed.classification.as_deref(), Some("withdrawn"));
    assert!(
        listed.outcome_provisional,
        "the phone's own visits are not acknowledged yet"
    );
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    let due = |store: &suivi_core::Store| {
        store
            .todo(today, &Default::default())
            .unwrap()
            .visits
            .iter()
            .any(|c| c.case_id == case_id)
    };
    assert!(due(&store), "the visit of 2026-11-05 is overdue");

    store
        .propose_closure(
            &case_id,
            "exited_stable",
            Some("à l'école depuis deux visites"),
        )
        .unwrap();
    assert_eq!(row(&store).closure.as_deref(), Some("proposed"));
    assert!(due(&store), "a proposal alone does not close the case");
    assert!(matches!(
        store.decide_closure(&case_id, true, None),
        Err(suivi_core::Error::Forbidden(_))
    ));
    // The approval, its arrival and the reopening: e2e `outcomes`, with a server.
}
