//! A child's outcome and a case's closure, end to end: the stage the rules derive from verified
//! visits on the phone and in the console, an agent's proposal made offline, a supervisor's
//! approval in the console after a confirmation (another team's supervisor and an agent's
//! forged approval refused), the case leaving the phone's due list, a reopening counted, and
//! the officer's indicators.

use reqwest::header::LOCATION;
use reqwest::StatusCode;
use serde_json::json;
use suivi_core::protocol::RefusalReason;
use suivi_tests::{child, raw_push, record, TestDevice, TestServer};

use crate::console::{two_teams, Console};

/// A follow-up visit on `date`: working or not, at school or not, the next one due on `due`.
fn visit(date: &str, working: bool, school: &str, due: &str) -> suivi_core::Record {
    record(json!({
        "visit_date": date, "visit_type": "home", "attends_school": school,
        "still_working": working, "risk_level_now": "low", "next_visit_due": due
    }))
}

/// A child out of work and at school at two visits 40 days apart: exited, withdrawn; the next
/// visit was due on 2026-11-20 (overdue on 2026-12-07).
fn an_exited_child(amina: &mut TestDevice) -> String {
    let case_id = amina.store.create_case(&child(0)).unwrap();
    amina
        .store
        .add_followup(&case_id, &visit("2026-09-01", false, "yes", "2026-10-10"))
        .unwrap();
    amina
        .store
        .add_followup(&case_id, &visit("2026-10-11", false, "yes", "2026-11-20"))
        .unwrap();
    case_id
}

fn listed(device: &TestDevice, case_id: &str) -> suivi_core::store::projection::CaseRow {
    device
        .store
        .list_cases(&Default::default())
        .unwrap()
        .into_iter()
        .find(|c| c.case_id == case_id)
        .expect("listed")
}

fn due_on_the_phone(device: &TestDevice, case_id: &str) -> bool {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
    device
        .store
        .todo(today, &Default::default())
        .unwrap()
        .visits
        .iter()
        .any(|c| c.case_id == case_id)
}

#[test]
fn an_agent_proposes_closure_offline_a_supervisor_approves_it_in_the_console_and_the_phone_follows()
{
    let server: TestServer = two_teams();
    let mut amina = server.device("amina");
    let case_id = an_exited_child(&mut amina);
    assert!(listed(&amina, &case_id).outcome_provisional);
    amina.sync().unwrap();
    let row = listed(&amina, &case_id);
    assert_eq!(row.stage.as_deref(), Some("exited"));
    assert_eq!(row.classification.as_deref(), Some("withdrawn"));
    assert!(!row.outcome_provisional, "acknowledged by the server");
    assert!(due_on_the_phone(&amina, &case_id));

    let mut fatima = Console::signed_in(&server, "fatima");
    let page_of = |console: &mut Console| console.get(&format!("/console/cases/{case_id}")).1;
    let page = page_of(&mut fatima);
    assert!(
        page.contains("sorti du travail") && page.contains("retiré du travail"),
        "{page}"
    );
    assert!(page.contains("Proposer la clôture"), "the next step");

    // Offline, Amina proposes to close it; her phone cannot approve it.
    amina
        .store
        .propose_closure(
            &case_id,
            "exited_stable",
            Some("à l'école depuis septembre"),
        )
        .unwrap();
    assert!(matches!(
        amina.store.decide_closure(&case_id, true, None),
        Err(suivi_core::Error::Forbidden(_))
    ));
    amina.sync().unwrap();
    // Her approval written past the app, pushed as her phone: refused by the server.
    let mut forged = amina.store.load_doc(&case_id).unwrap().unwrap();
    let before = forged.heads();
    forged
        .decide_closure(true, None, &suivi_core::ChangeContext::now("amina"))
        .unwrap();
    let reply = raw_push(&server, &amina, &case_id, forged.changes_since(&before));
    assert_eq!(reply.refused.len(), 1, "{reply:?}");
    assert_eq!(reply.refused[0].reason, RefusalReason::Forbidden);
    assert!(
        reply.refused[0].detail.contains("closure_status"),
        "{reply:?}"
    );

    let page = page_of(&mut fatima);
    assert!(
        page.contains("clôture proposée") && page.contains("sorti du travail, situation stable"),
        "{page}"
    );
    assert!(
        page.contains("à l&#39;école depuis septembre")
            || page.contains("à l'école depuis septembre")
    );
    assert!(page.contains("Approuver la clôture") && page.contains("Renvoyer à l'agent"));
    let csrf = Console::csrf(&page);
    let (_, indicators, _) = fatima.get("/console/indicators?by=agent");
    assert!(indicators.contains("Clôtures à décider"), "{indicators}");

    // Another team's supervisor: the case is not his to decide (as if it did not exist).
    let mut ali = Console::signed_in(&server, "ali");
    let ali_csrf = Console::csrf(&ali.get("/console/cases").1);
    let (status, _, _) = ali.post(
        &format!("/console/cases/{case_id}/closure"),
        &[
            ("csrf", &ali_csrf),
            ("decision", "approve"),
            ("confirmed", "yes"),
        ],
    );
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Fatima approves: first what it does, then the decision.
    let (status, confirm, _) = fatima.post(
        &format!("/console/cases/{case_id}/closure"),
        &[
            ("csrf", &csrf),
            ("decision", "approve"),
            ("note", "vu avec l'école"),
        ],
    );
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("Clôturer ce dossier ?"), "{confirm}");
    assert!(confirm.contains("quitte les listes de visites dues et en retard"));
    assert!(
        page_of(&mut fatima).contains("clôture proposée"),
        "nothing done before confirming"
    );
    let (status, _, headers) = fatima.post(
        &format!("/console/cases/{case_id}/closure"),
        &[
            ("csrf", &csrf),
            ("decision", "approve"),
            ("note", "vu avec l'école"),
            ("confirmed", "yes"),
        ],
    );
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers[LOCATION],
        format!("/console/cases/{case_id}?decided=1#closure")
    );
    let page = page_of(&mut fatima);
    assert!(
        page.contains("clôturé") && page.contains("clôture approuvée"),
        "{page}"
    );
    assert!(page.contains("Rouvrir le dossier"));

    // Amina's phone learns it: the case leaves her due list; the history names Fatima,
    // verified, from the console.
    amina.sync().unwrap();
    let row = listed(&amina, &case_id);
    assert_eq!(row.closure.as_deref(), Some("closed"));
    assert_eq!(row.next_followup_due, None);
    assert!(!due_on_the_phone(&amina, &case_id));
    let history = amina.store.history(&case_id).unwrap();
    let approval = history
        .iter()
        .find(|h| h.action.as_deref() == Some("case.closure.approve"))
        .expect("the approval is in the history");
    let verified = approval.verified.as_ref().expect("verified");
    assert_eq!(
        (verified.user.as_str(), verified.device.as_str()),
        ("fatima", "console-fatima")
    );

    // The officer's indicators: withdrawn, exited, closed for its reason, no overdue visit.
    let (_, csv, _) = fatima.get("/console/indicators.csv?by=agent");
    let header = csv
        .lines()
        .next()
        .unwrap()
        .trim_start_matches('\u{feff}')
        .to_string();
    let amina_row = csv.lines().find(|l| l.starts_with("amina,")).expect(&csv);
    let value = |column: &str| -> String {
        let at = header.split(',').position(|h| h == column).expect(column);
        amina_row.split(',').nth(at).unwrap().to_string()
    };
    assert_eq!(value("Retirés du travail"), "1");
    assert_eq!(value("Sortis (deux visites)"), "1");
    assert_eq!(value("Dossiers clôturés"), "1");
    assert_eq!(value("Suivis en retard"), "0");
    assert_eq!(value("Clôtures à décider"), "0");
    let (_, indicators, _) = fatima.get("/console/indicators?by=agent");
    assert!(indicators.contains("Clôtures par motif"));
    assert!(
        indicators.contains("sorti du travail, situation stable"),
        "{indicators}"
    );

    // Reopened in the console: due again on the phone, and counted.
    let (status, _, _) = fatima.post(
        &format!("/console/cases/{case_id}/closure"),
        &[
            ("csrf", &csrf),
            ("decision", "reopen"),
            ("note", "revue au marché"),
        ],
    );
    assert_eq!(status, StatusCode::SEE_OTHER);
    amina.sync().unwrap();
    assert_eq!(listed(&amina, &case_id).closure, None);
    assert!(due_on_the_phone(&amina, &case_id));
    assert_eq!(amina.store.closure(&case_id).unwrap().reopenings(), 1);
    let (_, csv, _) = fatima.get("/console/indicators.csv?by=agent");
    let amina_row = csv
        .lines()
        .find(|l| l.starts_with("amina,"))
        .unwrap()
        .to_string();
    let at = header.split(',').position(|h| h == "Rouverts").unwrap();
    assert_eq!(amina_row.split(',').nth(at), Some("1"));
}

/// A supervisor's phone decides offline too, and returns a proposal with a note: the agent's
/// phone shows it returned, due as before, and she may propose again.
#[test]
fn a_supervisor_returns_a_proposal_from_her_phone_offline() {
    let server = two_teams();
    let mut amina = server.device("amina");
    let case_id = an_exited_child(&mut amina);
    amina
        .store
        .propose_closure(&case_id, "moved_away", None)
        .unwrap();
    amina.sync().unwrap();
    let mut fatima = server.device("fatima");
    fatima.sync().unwrap();
    fatima
        .store
        .decide_closure(&case_id, false, Some("la famille est encore au village"))
        .unwrap();
    fatima.sync().unwrap();
    amina.sync().unwrap();
    let row = listed(&amina, &case_id);
    assert_eq!(row.closure.as_deref(), Some("returned"));
    assert!(due_on_the_phone(&amina, &case_id));
    let closure = amina.store.closure(&case_id).unwrap();
    let last = closure.steps.last().unwrap();
    assert_eq!(
        (last.step.as_str(), last.actor.as_str()),
        ("return", "fatima")
    );
    assert_eq!(
        last.note.as_deref(),
        Some("la famille est encore au village")
    );
    amina
        .store
        .propose_closure(&case_id, "exited_stable", None)
        .unwrap();
    assert!(amina.sync().unwrap().refused.is_empty());
}
