//! A child's outcome and a case's closure, end to end: the stage the rules derive from verified
//! visits on the phone and in the console, an agent's proposal made offline, a supervisor's
//! approval in the console after a confirmation (another team's supervisor and an agent's
//! forged approval refused), the case leaving the phone's due list, a reopening counted, and
//! the officer's indicators.

use reqwest::header::LOCATION;
use reqwest::StatusCode;
use serde_json::json;
use suivi_core::protocol::RefusalReason;
use suivi_server::storage::prelude::*;
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
fn an_exited_child(phone: &mut suivi_core::Store) -> String {
    let case_id = phone.create_case(&child(0)).unwrap();
    for (date, due) in [("2026-09-01", "2026-10-10"), ("2026-10-11", "2026-11-20")] {
        phone
            .add_followup(&case_id, &visit(date, false, "yes", due))
            .unwrap();
    }
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
    let case_id = an_exited_child(&mut amina.store);
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

    // Returned without a note for the agent: refused, in words, nothing written.
    let (status, refused, _) = fatima.post(
        &format!("/console/cases/{case_id}/closure"),
        &[("csrf", &csrf), ("decision", "return"), ("note", " ")],
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        Console::alert(&refused).is_some_and(|a| a.contains("demande une note pour l'agent")),
        "{refused}"
    );
    assert!(page_of(&mut fatima).contains("clôture proposée"));

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
    let (_, csv, _) = fatima.get("/console/indicators.csv?by=closure");
    assert!(csv.starts_with("\u{feff}Motif de clôture,"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("\"sorti du travail, situation stable\",1,")),
        "closed cases by their reason: {csv}"
    );
    let (_, indicators, _) = fatima.get("/console/indicators?by=agent");
    assert!(indicators.contains("Clôtures par motif"));
    assert!(
        indicators.contains("sorti du travail, situation stable"),
        "{indicators}"
    );
    // The programme report in the reader's language: English, then Arabic, right to left.
    fatima.get("/console/lang/en?back=/console/report");
    let (status, report, _) = fatima.get("/console/report?from=2026-01&to=2026-12");
    assert_eq!(status, StatusCode::OK);
    assert!(
        report.contains("Programme report") && report.contains("exited and stable"),
        "{report}"
    );
    assert!(report.contains("version 1: exited after 2 consecutive visits at least 30 days apart"));
    fatima.get("/console/lang/ar?back=/console/report");
    let (_, report, _) = fatima.get("/console/report");
    assert!(
        report.contains("dir=\"rtl\"") && report.contains("تقرير البرنامج"),
        "{report}"
    );
    assert!(
        report.contains("خرج من العمل ووضعه مستقر"),
        "the reason in Arabic"
    );
    fatima.get("/console/lang/fr?back=/console/cases");

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
    let case_id = an_exited_child(&mut amina.store);
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

/// Settings published on the server (the command's path, checked first) recount the server's
/// indicators at once and reach the phones at their next sync, which derive their cases'
/// outcomes again with them; a report names the version it counted with.
#[test]
fn settings_published_on_the_server_recount_the_indicators_and_reach_the_phones() {
    let server = two_teams();
    let mut amina = server.device("amina");
    let case_id = an_exited_child(&mut amina.store);
    amina.sync().unwrap();
    assert_eq!(listed(&amina, &case_id).stage.as_deref(), Some("exited"));
    let mut fatima = Console::signed_in(&server, "fatima");
    let exited = |console: &mut Console| {
        let (_, csv, _) = console.get("/console/indicators.csv?by=agent");
        let header: Vec<String> = csv
            .lines()
            .next()
            .unwrap()
            .trim_start_matches('\u{feff}')
            .split(',')
            .map(str::to_string)
            .collect();
        let row: Vec<String> = csv
            .lines()
            .find(|l| l.starts_with("amina,"))
            .unwrap()
            .split(',')
            .map(str::to_string)
            .collect();
        row[header
            .iter()
            .position(|h| h == "Sortis (deux visites)")
            .unwrap()]
        .clone()
    };
    assert_eq!(exited(&mut fatima), "1");

    let service = suivi_server::SyncService::new(server.store.clone(), server.codes.clone());
    let refused = service.publish_outcome_settings(
        &suivi_core::outcome::OutcomeSettings {
            exit_visits: 9,
            ..Default::default()
        },
        "root",
        1_800_000_000,
    );
    assert!(refused.is_err(), "9 visits is no programme's setting");
    let published = service
        .publish_outcome_settings(
            &suivi_core::outcome::OutcomeSettings {
                exit_visits: 3,
                ..Default::default()
            },
            "root",
            1_800_000_000,
        )
        .unwrap();
    assert_eq!(published.version, 2);
    assert_eq!(
        exited(&mut fatima),
        "0",
        "two visits are not three: recounted at once"
    );
    let audit = server.store.audit_log(0, 1000).unwrap();
    assert!(audit
        .iter()
        .any(|r| r.action == "outcome_settings.publish" && r.subject == "v2"));

    amina.sync().unwrap();
    assert_eq!(amina.store.outcome_settings().unwrap(), published);
    assert_eq!(
        listed(&amina, &case_id).stage.as_deref(),
        Some("not_working_at_one_visit")
    );
    // The third visit, a month later: exited again, on the phone and on the server.
    amina
        .store
        .add_followup(&case_id, &visit("2026-11-15", false, "yes", "2026-12-20"))
        .unwrap();
    assert_eq!(listed(&amina, &case_id).stage.as_deref(), Some("exited"));
    amina.sync().unwrap();
    assert_eq!(exited(&mut fatima), "1");
}

/// A phone still on the app of protocol 8 beside closures: its requests (the version 8 layout)
/// are answered in a layout it reads, with no settings; a closed case's document holds keys its
/// checks do not know, so it sets the case aside (its state written here as that app left it:
/// nothing of the case saved, its changes waiting). Updated, the app takes the case in at its
/// next sync, closure and all; nothing was lost.
#[test]
fn an_app_of_protocol_8_sets_a_closed_case_aside_and_takes_it_in_once_updated() {
    use suivi_core::protocol::{self, SyncRequest, CONTENT_TYPE};
    use suivi_core::sync::{HttpTransport, Transport};

    let server = two_teams();
    let mut amina = server.device("amina");
    let case_id = an_exited_child(&mut amina.store);
    amina
        .store
        .propose_closure(&case_id, "exited_stable", None)
        .unwrap();
    amina.sync().unwrap();
    let mut fatima = server.device("fatima");
    fatima.sync().unwrap();
    fatima.store.decide_closure(&case_id, true, None).unwrap();
    fatima.sync().unwrap();

    // Karim's phone on the previous app: a version 8 request, laid out as that build did.
    let mut karim = server.device("karim");
    let request = SyncRequest {
        version: 8,
        ..SyncRequest::pushing(0, vec![])
    };
    let raw = postcard::to_stdvec(&request).unwrap();
    let body = zstd::bulk::compress(&raw[..raw.len() - 1], 3).unwrap();
    let reply = HttpTransport::new(&server.url())
        .unwrap()
        .post(
            "/v1/sync",
            CONTENT_TYPE,
            body,
            Some(&karim.store.credentials().unwrap()),
        )
        .unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let pages = protocol::stream::pages(&reply.body).unwrap();
    let first = protocol::decode_response(&pages[0]).unwrap();
    assert_eq!(first.version, 8);
    assert!(first.settings.is_empty());

    karim.sync().unwrap();
    karim.set_aside_as_an_older_app(&server, &case_id, "invalid case document at closure_status");
    assert_eq!(karim.store.quarantined_cases().unwrap().len(), 1);
    assert!(karim.store.case(&case_id).is_err());
    let report = karim.sync().unwrap();
    assert_eq!(report.changes_down, 0, "no page brings it again");
    assert!(karim.store.quarantined_cases().unwrap().is_empty());
    assert_eq!(listed(&karim, &case_id).closure.as_deref(), Some("closed"));
    assert_eq!(karim.store.closure(&case_id).unwrap().steps.len(), 2);
}

/// The server's commands: `outcome-settings` shows and publishes (an admin only, values no
/// programme could set refused) while the server runs, and a phone of that running server gets
/// them at its next sync; `indicators` prints the console's CSV for an officer, in words.
#[test]
fn the_server_commands_publish_settings_to_a_running_server_and_print_the_indicators() {
    let site = suivi_tests::ServerSite::new();
    for (user, role) in [("amina", "agent"), ("nadia", "admin"), ("odile", "officer")] {
        site.ok(&["user", "add", user, "--role", role, "--team", "sikasso"]);
    }
    let served = site.serve();
    let url = served.url();
    let mut amina = crate::erasure::Phone::enroll(&site, &url, "amina");
    let case_id = an_exited_child(&mut amina.store);
    amina.sync(&url);
    let shown = site.ok(&["outcome-settings"]);
    assert!(
        shown.contains(
            "version 1: exited after 2 visits at least 30 days apart; monitoring ends at 18"
        ),
        "{shown}"
    );
    let refused = site.fails(&["outcome-settings", "--exit-visits", "3", "--by", "amina"]);
    assert!(refused.contains("amina is not an admin"), "{refused}");
    let refused = site.fails(&["outcome-settings", "--exit-days", "400", "--by", "nadia"]);
    assert!(refused.contains("at most 365"), "{refused}");
    let published = site.ok(&["outcome-settings", "--exit-visits", "3", "--by", "nadia"]);
    assert!(
        published.contains("published version 2: exited after 3 visits"),
        "{published}"
    );

    amina.sync(&url);
    assert_eq!(amina.store.outcome_settings().unwrap().exit_visits, 3);
    let row = amina.store.list_cases(&Default::default()).unwrap();
    assert_eq!(row[0].case_id, case_id);
    assert_eq!(row[0].stage.as_deref(), Some("not_working_at_one_visit"));

    let csv = site.ok(&["indicators", "--as", "odile", "--by", "sex", "--lang", "en"]);
    let header = csv.lines().next().unwrap().trim_start_matches('\u{feff}');
    assert!(header.starts_with("Sex,Children identified,"), "{csv}");
    assert!(
        header.contains(",Withdrawn,Prevented,Exited (two visits),Relapsed,"),
        "{csv}"
    );
    assert!(
        csv.lines().any(|l| l.starts_with("Female,1,")),
        "values in words: {csv}"
    );
    let refused = site.fails(&["indicators", "--as", "amina"]);
    assert!(refused.contains("not an officer or admin"), "{refused}");
}

/// A return decided on a supervisor's phone offline while the console approves: the case
/// holds both decisions, in conflict, told in words on the console (and in the phone's
/// picker), and out of the closed count until the supervisor keeps one.
#[test]
fn two_decisions_at_once_are_a_conflict_told_in_words_and_settled_in_the_console() {
    let server = two_teams();
    let mut amina = server.device("amina");
    let case_id = an_exited_child(&mut amina.store);
    amina
        .store
        .propose_closure(&case_id, "exited_stable", None)
        .unwrap();
    amina.sync().unwrap();
    let mut fatima_phone = server.device("fatima");
    fatima_phone.sync().unwrap();
    fatima_phone
        .store
        .decide_closure(&case_id, false, Some("encore une visite"))
        .unwrap();
    let mut fatima = Console::signed_in(&server, "fatima");
    let page = fatima.get(&format!("/console/cases/{case_id}")).1;
    let csrf = Console::csrf(&page);
    let (status, _, _) = fatima.post(
        &format!("/console/cases/{case_id}/closure"),
        &[
            ("csrf", &csrf),
            ("decision", "approve"),
            ("confirmed", "yes"),
        ],
    );
    assert_eq!(status, StatusCode::SEE_OTHER);
    fatima_phone.sync().unwrap();
    assert!(fatima_phone.store.case(&case_id).unwrap().closure.disputed);
    let picker = fatima_phone
        .store
        .conflict_choices(&case_id, suivi_core::Lang::Fr, Default::default())
        .unwrap();
    let choice = picker.iter().find(|c| c.path == "closure_status").unwrap();
    assert_eq!(choice.label, "Clôture");
    let mut words: Vec<&str> = choice.options.iter().map(|o| o.value.as_str()).collect();
    words.sort();
    assert_eq!(words, ["clôture renvoyée", "clôturé"]);

    let page = fatima.get(&format!("/console/cases/{case_id}")).1;
    assert!(page.contains("Clôture (contesté)"), "{page}");
    assert!(page.contains("clôture renvoyée") && page.contains("clôturé"));
    // The history tells each step in words (the raw paths stay in their folded details).
    assert!(
        page.contains("clôture proposée : sorti du travail, situation stable")
            && page.contains("renvoyée à l'agent « encore une visite »")
            && page.contains("clôture approuvée")
            && page.contains("Motif de clôture : sorti du travail, situation stable</bdi>"),
        "{page}"
    );
    // The steps in the order they were taken, whatever each author's clock said.
    let at = |w: &str| {
        page.find(&format!("· {w} ·"))
            .unwrap_or_else(|| panic!("{w}"))
    };
    assert!(at("clôture proposée") < at("clôture approuvée"));
    assert!(
        !page.contains("Prochaine étape"),
        "a disputed closure waits on the supervisor"
    );
    let (_, csv, _) = fatima.get("/console/indicators.csv?by=agent");
    assert!(csv.lines().any(|l| l.starts_with("amina,1,")), "{csv}");
    let header: Vec<&str> = csv
        .lines()
        .next()
        .unwrap()
        .trim_start_matches('\u{feff}')
        .split(',')
        .collect();
    let closed = header
        .iter()
        .position(|h| *h == "Dossiers clôturés")
        .unwrap();
    let row: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with("amina,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(row[closed], "0", "a disputed closure is not a closed case");

    // She keeps the approval: its place among the values the form offers.
    let shown: Vec<usize> = ["clôturé", "clôture renvoyée"]
        .iter()
        .map(|w| page.find(&format!("<bdi>{w}</bdi>")).unwrap())
        .collect();
    let keep = if shown[0] < shown[1] { "0" } else { "1" };
    let (status, _, _) = fatima.post(
        &format!("/console/cases/{case_id}/resolve"),
        &[
            ("csrf", &csrf),
            ("path", "closure_status"),
            ("choice", keep),
        ],
    );
    assert_eq!(status, StatusCode::SEE_OTHER);
    amina.sync().unwrap();
    assert_eq!(listed(&amina, &case_id).closure.as_deref(), Some("closed"));
}

/// A child past the programme's age limit (born 2008-06-01, 18 on 2026-06-01): the next step
/// says to close the case, on the phone and in the console, whatever the stage; a younger
/// child's does not.
#[test]
fn a_child_past_the_age_limit_is_offered_for_closure() {
    let server = two_teams();
    let mut amina = server.device("amina");
    let mut born = child(0);
    born.insert("dob_known".into(), json!(true));
    born.remove("estimated_age");
    born.insert("date_of_birth".into(), json!("2008-06-01"));
    let grown = amina.store.create_case(&born).unwrap();
    let young = amina.store.create_case(&child(1)).unwrap();
    amina.sync().unwrap();
    let next = |id: &str| {
        let row = listed(&amina, id);
        assert!(row.age_limit_on.is_some());
        suivi_core::outcome::row_in_words_today(row.outcome(), suivi_core::Lang::Fr)
            .unwrap()
            .next_step
            .unwrap()
    };
    assert_eq!(
        listed(&amina, &grown).age_limit_on.as_deref(),
        Some("2026-06-01")
    );
    assert_eq!(next(&grown), "Proposer la clôture : âge limite atteint");
    assert_eq!(next(&young), "Orienter vers un service");
    let mut fatima = Console::signed_in(&server, "fatima");
    let page = fatima.get(&format!("/console/cases/{grown}")).1;
    assert!(
        page.contains("Proposer la clôture : âge limite atteint"),
        "{page}"
    );
}

/// The programme report on a PostgreSQL server (served by the binary, read by an officer):
/// the same figures as on SQLite.
#[test]
fn the_report_reads_on_postgres() {
    let database = suivi_server::testing::TestDatabase::create();
    let site = suivi_tests::ServerSite::on_postgres(&database.url);
    site.ok(&[
        "user", "add", "amina", "--role", "agent", "--team", "sikasso",
    ]);
    let mut officer = site.command(&[
        "user",
        "add",
        "odile",
        "--role",
        "officer",
        "--team",
        "project",
        "--password-env",
        "ODILE_PASSWORD",
    ]);
    let out = officer
        .env("ODILE_PASSWORD", crate::console::PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let served = site.serve();
    let url = served.url();
    let mut amina = crate::erasure::Phone::enroll(&site, &url, "amina");
    let case_id = an_exited_child(&mut amina.store);
    amina.sync(&url);
    let mut odile = Console::at(&url);
    let (status, _, _) = odile.log_in("odile", crate::console::PASSWORD);
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, report, _) = odile.get("/console/report?from=2026-01&to=2026-12");
    assert_eq!(status, StatusCode::OK, "{report}");
    assert!(report.contains("Rapport du programme"), "{report}");
    assert!(
        report.contains("<th scope=\"row\">Retirés du travail</th><td class=\"num\">1</td>"),
        "{report}"
    );
    // The case page derives the outcome with the settings read from PostgreSQL too.
    let (status, page, _) = odile.get(&format!("/console/cases/{case_id}"));
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("retiré du travail"), "{page}");
}
