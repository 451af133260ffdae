//! The officer's audit: tamper evidence. Someone with write access to the database rewrites a
//! stored change together with its hash (and, as a careful editor would, every feed mark after
//! it), edits and deletes audit rows; `suivi-server verify` reports each, on SQLite and on
//! PostgreSQL, from the checkpoints the server journalled outside the database.

use suivi_server::storage::next_audit_mark;
use suivi_tests::{child, referral, ServerSite};

use crate::erasure::Phone;

/// The console's two teams, and Odile, an officer of the project with a console password.
pub(crate) fn two_teams_and_an_officer() -> suivi_tests::TestServer {
    use suivi_server::{admin, storage::Role};
    let server = crate::console::two_teams();
    server.add_user("odile", Role::Officer, "");
    admin::set_password(server.store.as_ref(), "odile", crate::console::PASSWORD).unwrap();
    server
}

/// Direct access to a site's database, as its editor has it.
pub(crate) trait Editor {
    fn query(&mut self, sql: &str) -> Vec<Vec<Option<String>>>;
    fn execute(&mut self, sql: &str);
    /// The feed in order: (seq, change hash, audience, case); `None` hash for an erased row.
    #[allow(clippy::type_complexity)]
    fn feed(&mut self) -> Vec<(i64, Option<String>, Option<String>, String)> {
        self.query(
            "SELECT f.seq, c.hash, f.audience, f.case_id FROM feed f
             JOIN changes c ON c.id = f.change_id ORDER BY f.seq",
        )
        .into_iter()
        .map(|r| {
            (
                r[0].as_deref().unwrap().parse().unwrap(),
                r[1].clone(),
                r[2].clone(),
                r[3].clone().unwrap(),
            )
        })
        .collect()
    }
    /// Rewrites every feed mark from the start so the chain links hold again, with the formula
    /// the database records (an editor knows it: it is in the code and in the database).
    fn rechain_feed(&mut self) {
        let from: u64 = self.query("SELECT case_id_from FROM feed_mark_formula")[0][0]
            .as_deref()
            .unwrap()
            .parse()
            .unwrap();
        let marks = suivi_server::storage::FeedMarks { case_id_from: from };
        let mut previous = Vec::new();
        for (seq, hash, audience, case_id) in self.feed() {
            let mark = marks.next(
                &previous,
                seq as u64,
                hash.as_deref().unwrap(),
                audience.as_deref(),
                &case_id,
            );
            self.execute(&format!(
                "UPDATE feed SET mark = {} WHERE seq = {seq}",
                self.blob(&mark)
            ));
            previous = mark;
        }
    }
    /// Rewrites every audit mark from the start.
    fn rechain_audit(&mut self) {
        let rows = self.query("SELECT id, at, actor, action, subject FROM audit_log ORDER BY id");
        let mut previous = Vec::new();
        for r in rows {
            let id: u64 = r[0].as_deref().unwrap().parse().unwrap();
            let mark = next_audit_mark(
                &previous,
                id,
                r[1].as_deref().unwrap().parse().unwrap(),
                r[2].as_deref().unwrap(),
                r[3].as_deref().unwrap(),
                r[4].as_deref().unwrap(),
            );
            self.execute(&format!(
                "UPDATE audit_log SET mark = {} WHERE id = {id}",
                self.blob(&mark)
            ));
            previous = mark;
        }
    }
    fn blob(&self, bytes: &[u8]) -> String;
}

impl Editor for rusqlite::Connection {
    fn query(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut stmt = self.prepare(sql).unwrap();
        let width = stmt.column_count();
        stmt.query_map([], |r| {
            (0..width)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => None,
                        rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
                        v => Some(v.as_str().unwrap().to_string()),
                    })
                })
                .collect()
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }
    fn execute(&mut self, sql: &str) {
        self.execute_batch(sql).unwrap();
    }
    fn blob(&self, bytes: &[u8]) -> String {
        format!("x'{}'", hex::encode(bytes))
    }
}

impl Editor for postgres::Client {
    fn query(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        // Every column as text, whatever its type.
        let rows = postgres::Client::simple_query(self, sql).unwrap();
        rows.into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    }
    fn execute(&mut self, sql: &str) {
        self.batch_execute(sql).unwrap();
    }
    fn blob(&self, bytes: &[u8]) -> String {
        format!("'\\x{}'::bytea", hex::encode(bytes))
    }
}

/// A change Amina's device never made, under her device's actor: what a forger writes.
fn forged_change(actor_hex: &str) -> (String, Vec<u8>) {
    use automerge::transaction::Transactable;
    let mut doc = automerge::AutoCommit::new()
        .with_actor(automerge::ActorId::from(hex::decode(actor_hex).unwrap()));
    doc.put(automerge::ROOT, "risk_level", "low").unwrap();
    doc.commit();
    let change = doc.get_last_local_change().unwrap().clone();
    (change.hash().to_string(), change.raw_bytes().to_vec())
}

/// What a careful forger writes in place of a case's last change: a change on top of the ones
/// before it, under the same device's actor (so with the same sequence number), that sets the
/// child's risk level to `risk` (another than recorded). The case still loads; only the
/// evidence tells.
pub(crate) fn forged_replacement(
    before: &[Vec<u8>],
    actor_hex: &str,
    risk: &str,
) -> (String, Vec<u8>) {
    use automerge::transaction::Transactable;
    use automerge::ReadDoc;
    let mut doc = automerge::AutoCommit::new();
    for change in before {
        doc.load_incremental(change).unwrap();
    }
    doc.set_actor(automerge::ActorId::from(hex::decode(actor_hex).unwrap()));
    match doc.get(automerge::ROOT, "identification").unwrap() {
        Some((automerge::Value::Object(_), id)) => doc.put(&id, "risk_level", risk).unwrap(),
        _ => panic!("a case document has its identification"),
    }
    doc.commit();
    let change = doc.get_last_local_change().unwrap().clone();
    (change.hash().to_string(), change.raw_bytes().to_vec())
}

/// Amina records two cases and a referral, then the admin assigns one to Karim: changes in
/// the feed, rows in the audit log. Returns a case whose change the editor rewrites.
fn some_history(site: &ServerSite) -> String {
    for (user, role) in [
        ("amina", "agent"),
        ("karim", "agent"),
        ("fatima", "supervisor"),
    ] {
        site.ok(&["user", "add", user, "--role", role, "--team", "sikasso"]);
    }
    let served = site.serve();
    let url = served.url();
    let mut amina = Phone::enroll(site, &url, "amina");
    let _fatima = Phone::enroll(site, &url, "fatima");
    let case_id = amina.store.create_case(&child(1)).unwrap();
    amina.store.refer(&case_id, &referral(1)).unwrap();
    let other = amina.store.create_case(&child(2)).unwrap();
    amina.sync(&url);
    site.ok(&["case", "assign", &other, "karim"]);
    site.ok(&["case", "assign", &case_id, "fatima"]);
    drop(served);
    case_id
}

fn verify_fails(site: &ServerSite) -> String {
    let out = site.run(&["verify"]);
    assert!(!out.status.success(), "verify should report tampering");
    String::from_utf8(out.stdout).unwrap()
}

/// The whole scenario on one store; `editor` opens its database as its editor would.
fn tampering_is_reported(site: &ServerSite, editor: &mut dyn Editor, payload_sealed: bool) {
    let case_id = some_history(site);
    assert!(site.ok(&["checkpoint"]).contains("checkpoint: feed row"));
    assert!(site.ok(&["checkpoint"]).contains("nothing moved"));
    let clean = site.ok(&["verify"]);
    assert!(clean.contains("verified: the stored history"), "{clean}");
    // The serving server journalled one as it started, the command one at the end.
    assert!(clean.contains("2 checkpoints in"), "{clean}");

    // The editor replaces the case's first change with a forged one under Amina's actor,
    // stored hash and all, then rewrites every feed mark so each link holds again.
    let actor = editor.query(
        "SELECT actor FROM devices WHERE user_id = 'amina' AND device_id NOT LIKE 'console-%'",
    )[0][0]
        .clone()
        .unwrap();
    let (forged_hash, forged_bytes) = forged_change(&actor);
    let id = editor.query(&format!(
        "SELECT min(id) FROM changes WHERE case_id = '{case_id}'"
    ))[0][0]
        .clone()
        .unwrap();
    let data = if payload_sealed {
        // PostgreSQL seals payloads under the key file: without it, the editor can only
        // leave the old sealed bytes under the new hash.
        "data".to_string()
    } else {
        editor.blob(&forged_bytes)
    };
    editor.execute(&format!(
        "UPDATE changes SET hash = '{forged_hash}', data = {data} WHERE id = {id}"
    ));
    editor.rechain_feed();
    let report = verify_fails(site);
    assert!(
        report.contains("NOT VERIFIED: feed up to row")
            && report.contains("is not the one checkpointed"),
        "{report}"
    );
    assert!(
        !report.contains("its mark does not follow"),
        "the links were rewritten: only the checkpoint shows it\n{report}"
    );
    if payload_sealed {
        assert!(
            report.contains("its stored bytes are not a change"),
            "{report}"
        );
    }

    // The audit log: one row's subject edited, another deleted, and the last one (the
    // checkpoint's) deleted too.
    let ids: Vec<u64> = editor
        .query("SELECT id FROM audit_log ORDER BY id")
        .into_iter()
        .map(|r| r[0].as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(ids.len() >= 5, "{ids:?}");
    editor.execute(&format!(
        "UPDATE audit_log SET subject = 'nothing happened' WHERE id = {}",
        ids[1]
    ));
    editor.execute(&format!("DELETE FROM audit_log WHERE id = {}", ids[3]));
    editor.execute(&format!(
        "DELETE FROM audit_log WHERE id = {}",
        ids[ids.len() - 1]
    ));
    let report = verify_fails(site);
    for expected in [
        format!(
            "NOT VERIFIED: audit row {}: its mark does not follow",
            ids[1]
        ),
        format!(
            "NOT VERIFIED: audit row {}: its mark does not follow",
            ids[4]
        ),
        format!(
            "NOT VERIFIED: audit log up to row {}, checkpointed at",
            ids[ids.len() - 1]
        ),
    ] {
        assert!(report.contains(&expected), "{expected}\n{report}");
    }
    assert!(report.contains("rows after it were deleted"), "{report}");

    // Rechained, the links hold, and the checkpoint still tells.
    editor.rechain_audit();
    let report = verify_fails(site);
    assert!(!report.contains("NOT VERIFIED: audit row"), "{report}");
    assert!(
        report.contains("NOT VERIFIED: audit log up to row"),
        "{report}"
    );
}

/// A SQLite site, its database made by a first command, and a connection that edits it
/// directly, as someone holding the key file could.
fn sqlite_site() -> (ServerSite, rusqlite::Connection) {
    let site = ServerSite::new();
    site.ok(&[
        "user", "add", "admin2", "--role", "admin", "--team", "project",
    ]);
    let db = rusqlite::Connection::open(site.db()).unwrap();
    db.pragma_update(None, "key", site.database_key()).unwrap();
    (site, db)
}

#[test]
fn verify_reports_a_rewritten_change_and_edited_or_deleted_audit_rows_on_sqlite() {
    let (site, mut db) = sqlite_site();
    tampering_is_reported(&site, &mut db, false);
}

#[test]
fn verify_reports_a_rewritten_change_and_edited_or_deleted_audit_rows_on_postgres() {
    let database = suivi_server::testing::TestDatabase::create();
    let site = ServerSite::on_postgres(&database.url);
    site.ok(&[
        "user", "add", "admin2", "--role", "admin", "--team", "project",
    ]);
    let mut db = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
    tampering_is_reported(&site, &mut db, true);
}

/// The console's side: a case's history shows as verified once checkpointed, as pending for
/// what is newer, and as not verified once its stored change is rewritten in the database;
/// every view and search of a child's data is in the access log (ids, no names), which
/// officers read filtered by user and by case, and supervisors do not read.
#[test]
fn an_officer_sees_a_history_verified_or_not_and_reads_who_viewed_which_child() {
    use crate::console::Console;
    use reqwest::StatusCode;
    use suivi_server::storage::prelude::*;

    let server = two_teams_and_an_officer();
    let mut amina = server.device("amina");
    let case_id = amina.store.create_case(&child(1)).unwrap();
    amina.store.refer(&case_id, &referral(1)).unwrap();
    amina.sync().unwrap();

    // Fatima searches for the child by name and lists her caseload.
    let name = child(1)["child_first_name"].as_str().unwrap().to_string();
    let mut fatima = Console::signed_in(&server, "fatima");
    let (_, page, _) = fatima.get(&format!("/console/cases?q={}", name));
    assert!(page.contains(&case_id));
    fatima.get("/console/cases");

    let mut odile = Console::signed_in(&server, "odile");
    let case_page = format!("/console/cases/{case_id}");
    let (_, page, _) = odile.get(&case_page);
    assert!(page.contains("evidence-pending"), "not checkpointed yet");
    server.checkpoint();
    let (_, page, _) = odile.get(&case_page);
    assert!(page.contains("evidence-verified"), "{page}");

    // A visit after the checkpoint is pending until the next one.
    amina
        .store
        .add_followup(&case_id, &suivi_tests::visit(1))
        .unwrap();
    amina.sync().unwrap();
    let (_, page, _) = odile.get(&case_page);
    assert!(page.contains("evidence-pending"));
    server.checkpoint();
    let (_, page, _) = odile.get(&case_page);
    assert!(page.contains("evidence-verified"));
    assert!(
        !page.contains("Faible"),
        "the risk level recorded is medium"
    );

    // The database's editor rewrites the referral's change, hash and feed marks included.
    let mut db = rusqlite::Connection::open(server.dir.path().join("server.db")).unwrap();
    let actor = hex::encode(suivi_tests::actor_of(&amina).to_bytes());
    let mut stored = server.store.case_stored_changes(&case_id).unwrap();
    let last = stored.pop().unwrap();
    let before: Vec<Vec<u8>> = stored.into_iter().map(|c| c.data).collect();
    let (forged_hash, forged_bytes) = forged_replacement(&before, &actor, "low");
    let id = last.id;
    let blob = db.blob(&forged_bytes);
    Editor::execute(
        &mut db,
        &format!("UPDATE changes SET hash = '{forged_hash}', data = {blob} WHERE id = {id}"),
    );
    db.rechain_feed();
    let (status, page, _) = odile.get(&case_page);
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("evidence-failed"), "{page}");
    assert!(page.contains("is not the one checkpointed"), "{page}");
    assert!(
        page.contains("Faible"),
        "the forged risk level shows: the case still reads"
    );
    assert!(!page.contains("evidence-verified"));

    // The access log: Odile's own views, then Fatima's search of this child, by case (its id,
    // or the child's name), by kind of action and by dates; actions in words.
    let (status, log, _) = odile.get("/console/access-log?user=odile");
    assert_eq!(status, StatusCode::OK);
    assert!(log.contains("a consulté un dossier") && log.contains(&case_id));
    assert!(!log.contains("a cherché un nom"), "filtered by user");
    let (_, log, _) = odile.get(&format!("/console/access-log?case={case_id}"));
    assert!(log.contains("a cherché un nom") && log.contains("fatima"));
    assert!(log.contains("a consulté la liste"));
    assert!(log.contains(&name), "a row about one case names its child");
    let first_name = name.split(' ').next().unwrap();
    let (_, by_name, _) = odile.get(&format!(
        "/console/access-log?case={}",
        first_name.to_lowercase()
    ));
    assert!(
        by_name.contains("a cherché un nom") && by_name.contains(&case_id),
        "found by the child's name"
    );
    let (_, exports, _) = odile.get("/console/access-log?action=viewed&user=fatima");
    assert!(exports.contains("a cherché un nom") && !exports.contains("s'est connecté"));
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let (_, later, _) = odile.get(&format!("/console/access-log?from={tomorrow}"));
    assert!(later.contains("Aucune ligne"), "nothing written tomorrow");
    let (_, until_today, _) = odile.get(&format!(
        "/console/access-log?from={}&to={today}&case={case_id}",
        today.pred_opt().unwrap()
    ));
    assert!(until_today.contains("a cherché un nom"));
    // The log itself keeps ids, never a child's name nor what was searched.
    let rows = server.store.audit_log(0, 1000).unwrap();
    assert!(rows.iter().all(|r| !r.subject.contains(&name)));
    let search = rows.iter().find(|r| r.action == "console.search").unwrap();
    assert_eq!(
        (search.actor.as_str(), search.subject.as_str()),
        ("fatima", case_id.as_str())
    );
    // Reading names in the log leaves a trace of its own.
    assert!(rows
        .iter()
        .any(|r| r.action == "console.access_log_viewed" && r.actor == "odile"));
    let (_, log, _) = odile.get("/console/access-log?case=not-a-case");
    assert!(log.contains("Aucune ligne"));
    let (status, _, _) = fatima.get("/console/access-log");
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "supervisors do not read the log"
    );
}

/// The bytes of a download, and its response headers.
fn download(
    console: &mut crate::console::Console,
    path: &str,
) -> (reqwest::StatusCode, Vec<u8>, reqwest::header::HeaderMap) {
    console.get_bytes(path)
}

/// A CSV download parsed: its header row and its rows, the byte-order mark checked.
pub(crate) fn csv_rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    assert!(
        bytes.starts_with("\u{feff}".as_bytes()),
        "UTF-8 with its byte-order mark"
    );
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let headers = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (headers, rows)
}

/// Exports of cases, referrals (a row per link of a chain) and follow-ups, as CSV and JSON:
/// the reader's scope only, headers in the console's language, accents and Arabic intact, a
/// hostile name made inert for spreadsheets, each export audited.
#[test]
fn exports_hold_the_readers_scope_with_formulas_neutralised_and_are_audited() {
    use crate::console::Console;
    use reqwest::StatusCode;
    use suivi_server::storage::prelude::*;

    let server = two_teams_and_an_officer();
    let mut amina = server.device("amina");
    let mut hostile = child(1);
    hostile.insert(
        "child_first_name".into(),
        "=HYPERLINK(\"http://evil\",\"clic\")".into(),
    );
    hostile.insert("child_last_name".into(), "@SUM(1+1)".into());
    hostile.insert("commune".into(), "القصيبة".into());
    let hostile_case = amina.store.create_case(&hostile).unwrap();
    let (chained, first, second) = a_transferred_chain(&mut amina);
    amina.sync().unwrap();
    let mut moussa = server.device("moussa");
    let elsewhere = moussa.store.create_case(&child(3)).unwrap();
    moussa.sync().unwrap();

    let mut fatima = Console::signed_in(&server, "fatima");
    let (_, page, _) = fatima.get("/console/cases");
    assert!(page.contains("/console/export/referrals.csv"));
    let (status, bytes, headers) = download(&mut fatima, "/console/export/cases.csv");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"suivi-cases-"));
    let (header, rows) = csv_rows(&bytes);
    assert_eq!(&header[..3], ["Dossier", "Prénom", "Nom"]);
    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ids.len(), 2, "Fatima's team only: {ids:?}");
    assert!(ids.contains(&hostile_case.as_str()) && !ids.contains(&elsewhere.as_str()));
    let row = rows.iter().find(|r| r[0] == hostile_case).unwrap();
    assert_eq!(row[1], "'=HYPERLINK(\"http://evil\",\"clic\")");
    assert_eq!(row[2], "'@SUM(1+1)");
    assert_eq!(row[6], "القصيبة");
    assert!(
        !bytes.windows(2).any(|w| w == b",="),
        "no cell starts with ="
    );

    // Referrals: one row per link, the chain in order, each with the child and the agent, the
    // statuses and choices in the reader's words.
    let (_, bytes, _) = download(&mut fatima, "/console/export/referrals.csv");
    let (header, rows) = csv_rows(&bytes);
    assert_eq!(
        &header[..5],
        ["Dossier", "Enfant", "Agent", "Orientation", "Maillon"]
    );
    let links: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|r| (r[3].as_str(), r[4].as_str(), r[5].as_str(), r[9].as_str()))
        .collect();
    assert_eq!(
        links,
        [
            (first.as_str(), "1", "", "transférée"),
            (second.as_str(), "2", first.as_str(), "envoyée"),
        ]
    );
    let child_name = format!(
        "{} {}",
        suivi_tests::FIRST_NAMES[2],
        suivi_tests::LAST_NAMES[0]
    );
    assert!(rows.iter().all(|r| r[1] == child_name && r[2] == "amina"));
    assert_eq!(rows[0][6], "Santé", "the service's label");
    assert_eq!(rows[0][8], "Prioritaire", "the urgency's label");
    let transferred_at = &rows[0][17];
    assert!(
        chrono::NaiveDateTime::parse_from_str(transferred_at, "%Y-%m-%d %H:%M").is_ok(),
        "a time a spreadsheet reads, to the minute: {transferred_at}"
    );
    // As codes, for an analysis.
    let (_, bytes, _) = download(&mut fatima, "/console/export/referrals.csv?values=codes");
    let (_, rows) = csv_rows(&bytes);
    assert_eq!(
        (
            rows[0][6].as_str(),
            rows[0][8].as_str(),
            rows[0][9].as_str()
        ),
        ("health", "priority", "transferred")
    );

    // Follow-ups as JSON: stable keys, codes unless asked, the child named.
    let (status, bytes, headers) = download(&mut fatima, "/console/export/followups.json");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["case_id"], chained.as_str());
    assert_eq!(rows[0]["child"], child_name.as_str());
    assert_eq!(rows[0]["still_working"], false);
    assert_eq!(
        rows[0]["services_received"],
        serde_json::json!(["vocational_training"])
    );
    let (_, bytes, _) = download(&mut fatima, "/console/export/followups.json?values=labels");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(rows[0]["still_working"], "Non");
    assert_eq!(
        rows[0]["services_received"],
        serde_json::json!(["Formation professionnelle / apprentissage"])
    );

    // The list's filters: the export holds what the list shows.
    let (_, page, _) = fatima.get("/console/cases?status=transferred");
    assert!(
        page.contains("/console/export/cases.csv?status=transferred"),
        "the export links carry the filters"
    );
    let (_, bytes, _) = download(&mut fatima, "/console/export/cases.csv?status=transferred");
    let (_, rows) = csv_rows(&bytes);
    let kept: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(kept, [chained.as_str()], "the one case with a transfer");
    assert_eq!(rows[0][3], "Fille", "the sex's label");
    assert_eq!(rows[0][13], "envoyée; transférée", "the statuses in words");

    // In English, and for an officer: the whole project.
    let mut odile = Console::signed_in(&server, "odile");
    odile.get("/console/lang/en?back=/console/cases");
    let (_, bytes, _) = download(&mut odile, "/console/export/cases.csv");
    let (header, rows) = csv_rows(&bytes);
    assert_eq!(&header[..2], ["Case", "First name"]);
    assert_eq!(rows.len(), 3);
    let (status, _, _) = odile.get("/console/export/users.csv");
    assert_eq!(status, StatusCode::NOT_FOUND);

    let exports: Vec<(String, String)> = server
        .store
        .audit_log(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "console.export")
        .map(|r| (r.actor, r.subject))
        .collect();
    assert_eq!(
        exports,
        [
            ("fatima".to_string(), "cases.csv".to_string()),
            ("fatima".into(), "referrals.csv".into()),
            ("fatima".into(), "referrals.csv".into()),
            ("fatima".into(), "followups.json".into()),
            ("fatima".into(), "followups.json".into()),
            ("fatima".into(), "cases.csv filtered".into()),
            ("odile".into(), "cases.csv".into()),
        ]
    );
}

/// An officer writes audit notes from the console, and nothing else: the note is a console
/// change with the officer's verified author and reaches the agent's phone; a settlement or a
/// reassignment posted by hand is refused, and the case page offers neither.
#[test]
fn an_officer_writes_audit_notes_from_the_console_and_nothing_else() {
    use crate::console::{a_conflict_made_on_two_phones, Console};
    use reqwest::StatusCode;

    let server = two_teams_and_an_officer();
    let (mut amina, _fatima_phone, case_id) = a_conflict_made_on_two_phones(&server);
    let page_path = format!("/console/cases/{case_id}");

    let mut odile = Console::signed_in(&server, "odile");
    let (_, page, _) = odile.get(&page_path);
    assert!(
        page.contains("class=\"note\""),
        "an officer gets the note form"
    );
    assert!(
        page.contains("Kaniko") && page.contains("Kafiné"),
        "conflicts are read"
    );
    assert!(
        !page.contains("name=\"choice\""),
        "…but not settled by an officer"
    );
    assert!(!page.contains("/reassign\""), "nor reassigned");
    let csrf = Console::csrf(&page);
    let note = "Orientation vérifiée avec le CSCOM : prise en charge confirmée.";
    let (status, _, headers) = odile.post(
        &format!("{page_path}/notes"),
        &[("csrf", &csrf), ("text", note)],
    );
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], format!("{page_path}?noted=1"));
    let (_, page, _) = odile.get(&page_path);
    assert!(page.contains(note));
    // In the history: verified as Odile's, made in the console.
    assert!(
        page.contains(&format!("Note d'audit : « {note} »")),
        "{page}"
    );
    assert!(page.contains("audit.note"), "its action in the raw view");
    assert!(page.contains("vérifié: <bdi>odile</bdi>"), "{page}");

    // Posted by hand anyway: a settlement and a reassignment are refused.
    let (status, _, _) = odile.post(
        &format!("{page_path}/resolve"),
        &[
            ("csrf", &csrf),
            ("path", "identification.village"),
            ("choice", "0"),
        ],
    );
    assert!(
        status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::NOT_FOUND,
        "{status}"
    );
    let (status, _, _) = odile.post(
        &format!("{page_path}/reassign"),
        &[("csrf", &csrf), ("to", "karim")],
    );
    assert!(status.is_client_error(), "{status}");
    let (status, refused, _) = odile.post(
        &format!("{page_path}/notes"),
        &[("csrf", &csrf), ("text", "  ")],
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        Console::alert(&refused).is_some_and(|a| a.starts_with("Note refus")),
        "told on the case page: {refused}"
    );
    assert!(
        refused.contains("class=\"note\""),
        "its note form still there"
    );
    let (status, _, _) = odile.post(&format!("{page_path}/notes"), &[("text", "no token")]);
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A supervisor gets no note form; the agent's phone gets the note.
    let mut fatima = Console::signed_in(&server, "fatima");
    let (_, page, _) = fatima.get(&page_path);
    assert!(!page.contains("class=\"note\""));
    amina.sync().unwrap();
    let detail = amina.store.case(&case_id).unwrap();
    assert_eq!(detail.conflicts.len(), 1, "still unsettled");
    let notes: Vec<(&str, &str)> = detail
        .audit_notes
        .iter()
        .map(|n| (n.author.as_str(), n.text.as_str()))
        .collect();
    assert_eq!(notes, [("odile", note)]);
}

/// A child referred to CSCOM Misséni, the referral sent then transferred to ONG Enfance, and a
/// visit recording a service received and that the child no longer works: (case, first
/// referral, second referral).
fn a_transferred_chain(amina: &mut suivi_tests::TestDevice) -> (String, String, String) {
    use suivi_core::Transition;
    let case = amina.store.create_case(&child(2)).unwrap();
    let first = amina.store.refer(&case, &referral(1)).unwrap();
    amina
        .store
        .transition_referral(&first, Transition::Send, None, None)
        .unwrap();
    let second = amina
        .store
        .transition_referral(
            &first,
            Transition::Transfer,
            Some("plus proche"),
            Some("ONG Enfance"),
        )
        .unwrap()
        .unwrap();
    let mut visit = suivi_tests::visit(1);
    visit.insert(
        "services_received".into(),
        serde_json::json!(["vocational_training"]),
    );
    visit.insert("still_working".into(), serde_json::json!(false));
    amina.store.add_followup(&case, &visit).unwrap();
    (case, first, second)
}

/// A small project for the officer's views: in Amina's team, a child referred, transferred to
/// a second provider and visited (a service received, no longer working); another referred and
/// taken into service, in the same commune spelled otherwise; a third not referred. Moussa's
/// team has one more. Returns (transferred case, its first and second referral, served case).
pub(crate) fn a_small_project(
    server: &suivi_tests::TestServer,
) -> (String, String, String, String) {
    use suivi_core::Transition;
    let mut amina = server.device("amina");
    let (transferred, first, second) = a_transferred_chain(&mut amina);
    let mut other_spelling = child(4);
    other_spelling.insert("commune".into(), "KADIOLO".into());
    let served = amina.store.create_case(&other_spelling).unwrap();
    let r = amina.store.refer(&served, &referral(2)).unwrap();
    for step in [Transition::Send, Transition::Accept, Transition::Start] {
        amina
            .store
            .transition_referral(&r, step, None, None)
            .unwrap();
    }
    let mut elsewhere = child(6);
    elsewhere.insert("commune".into(), "Misséni".into());
    amina.store.create_case(&elsewhere).unwrap();
    amina.sync().unwrap();
    let mut moussa = server.device("moussa");
    moussa.store.create_case(&child(8)).unwrap();
    moussa.sync().unwrap();
    (transferred, first, second, served)
}

/// An officer audits a referral chain end to end on the case page, reads the project's
/// referrals by service, provider and status, and the indicators per commune (spellings
/// grouped, a chart, a CSV), each scoped to the reader.
#[test]
fn an_officer_audits_a_chain_and_reads_the_referrals_and_indicators() {
    use crate::console::Console;
    use reqwest::StatusCode;

    let server = two_teams_and_an_officer();
    let (transferred, first, second, _served) = a_small_project(&server);
    let mut odile = Console::signed_in(&server, "odile");

    // The chain: each step with its verified author and both times.
    let (_, page, _) = odile.get(&format!("/console/cases/{transferred}"));
    let chain = &page[page.find("id=\"chain\"").unwrap()..page.find("class=\"history\"").unwrap()];
    let steps: Vec<&str> = chain.split("<li class=\"step\">").skip(1).collect();
    assert_eq!(steps.len(), 6, "{chain}");
    for (step, expected) in steps.iter().zip([
        "Identification",
        "Orienté vers <bdi>CSCOM Misséni</bdi>",
        "brouillon → envoyée",
        "envoyée → transférée",
        "Transféré vers <bdi>ONG Enfance</bdi>",
        "Visite du",
    ]) {
        assert!(step.contains(expected), "{expected} in {step}");
        assert!(step.contains("✔ vérifié: <bdi>amina</bdi>"), "{step}");
        assert!(
            step.contains("<bdi>amina-phone</bdi>"),
            "the phone by its name: {step}"
        );
        assert!(step.contains("reçu par le serveur") && step.contains("heure du téléphone"));
    }
    assert!(
        steps[5].contains("Formation professionnelle") || steps[5].contains("formation"),
        "{}",
        steps[5]
    );
    assert!(page.contains(&first) && page.contains(&second));

    // The project's referrals: by service, provider and status; none stuck yet.
    let (status, page, _) = odile.get("/console/referrals?days=1");
    assert_eq!(status, StatusCode::OK);
    for provider in ["CSCOM Misséni", "ONG Enfance", "Mairie de Kignan"] {
        assert!(page.contains(provider), "{provider}");
    }
    assert!(page.contains("status-transferred") && page.contains("status-in_service"));
    assert!(page.contains("Aucune ligne"), "nothing is a day old");

    // Indicators per commune: Kadiolo and KADIOLO are one, Moussa's case counted for an
    // officer, not for Fatima.
    let (_, page, _) = odile.get("/console/indicators?by=commune");
    assert!(page.contains("<svg class=\"chart\""));
    assert!(page.contains("Orthographes regroupées") && page.contains("KADIOLO (1)"));
    let (status, bytes, headers) = download(&mut odile, "/console/indicators.csv?by=commune");
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("suivi-indicators-commune-"));
    let (header, rows) = csv_rows(&bytes);
    assert_eq!(header[1], "Enfants identifiés");
    let kadiolo = rows.iter().find(|r| r[0] == "Kadiolo").unwrap();
    // Identified (Amina's two and Moussa's), referred, receiving a service, no longer working,
    // overdue (the visit set the next one for 2026-12-02), median days to a first service.
    assert_eq!(&kadiolo[1..7], ["3", "2", "2", "1", "1", "0"], "{rows:?}");
    // The spellings grouped come last, after the outcome columns.
    let spellings = header
        .iter()
        .position(|h| h == "Orthographes regroupées")
        .unwrap();
    assert_eq!(spellings, header.len() - 1);
    assert!(
        kadiolo[spellings].contains("Kadiolo (2)") && kadiolo[spellings].contains("KADIOLO (1)")
    );
    let total = rows.last().unwrap();
    assert_eq!((total[0].as_str(), total[1].as_str()), ("Total", "4"));
    let mut fatima = Console::signed_in(&server, "fatima");
    let (_, bytes, _) = download(&mut fatima, "/console/indicators.csv?by=sector");
    let (header, rows) = csv_rows(&bytes);
    assert_eq!(header[0], "Secteur de travail");
    assert_eq!(rows.last().unwrap()[1], "3", "Fatima's team only");

    // By sex, age band at identification, agent and team (children 2, 4, 6 and 8: girls of
    // 10, 12, 14 and 16), in age order.
    let breakdown = |odile: &mut Console, by: &str| -> Vec<(String, String)> {
        let (_, bytes, _) = download(odile, &format!("/console/indicators.csv?by={by}"));
        let (_, rows) = csv_rows(&bytes);
        rows.into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect()
    };
    let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        breakdown(&mut odile, "sex"),
        pairs(&[("Fille", "4"), ("Total", "4")])
    );
    assert_eq!(
        breakdown(&mut odile, "age"),
        pairs(&[
            ("5-11 ans", "1"),
            ("12-14 ans", "2"),
            ("15-17 ans", "1"),
            ("Total", "4")
        ])
    );
    assert_eq!(
        breakdown(&mut odile, "agent"),
        pairs(&[("amina", "3"), ("moussa", "1"), ("Total", "4")])
    );
    let teams = breakdown(&mut odile, "team");
    assert_eq!(teams.len(), 3, "two teams and the total: {teams:?}");
    let (_, page, _) = odile.get("/console/indicators?by=age");
    assert!(
        page.contains("<option value=\"age\" selected"),
        "the grouping offered"
    );
}

/// Two subtler edits: a change moved to another case (its case id rewritten in `changes` and
/// the feed: hash, author and marks all still hold), and a live feed row passed off as erased
/// (moved to `erased_feed_marks` with what its mark covers, or with its mark alone).
#[test]
fn verify_sees_a_change_moved_to_another_case_and_a_row_passed_off_as_erased() {
    let (site, mut db) = sqlite_site();
    let case_id = some_history(&site);
    site.ok(&["checkpoint"]);
    assert!(site.ok(&["verify"]).contains("verified:"));
    let other = db.query(&format!(
        "SELECT case_id FROM changes WHERE case_id <> '{case_id}' LIMIT 1"
    ))[0][0]
        .clone()
        .unwrap();

    // The referral (it depends on the case's first change) moved to the other case.
    let moved = db.query(&format!(
        "SELECT max(id) FROM changes WHERE case_id = '{case_id}'"
    ))[0][0]
        .clone()
        .unwrap();
    Editor::execute(
        &mut db,
        &format!(
            "UPDATE changes SET case_id = '{other}' WHERE id = {moved};
             UPDATE feed SET case_id = '{other}' WHERE change_id = {moved}"
        ),
    );
    let report = verify_fails(&site);
    assert!(
        report.contains(&format!("NOT VERIFIED: case {other}: change"))
            && report.contains("depends on changes this case does not hold"),
        "{report}"
    );
    // Feed marks cover the case id: the moved row no longer follows its mark either (on main at
    // d9e481c marks and checkpoints still held, and only the dependencies told).
    assert!(
        report.contains("NOT VERIFIED: feed row") && report.contains(&format!("(case {other})")),
        "{report}"
    );
    Editor::execute(
        &mut db,
        &format!(
            "UPDATE changes SET case_id = '{case_id}' WHERE id = {moved};
             UPDATE feed SET case_id = '{case_id}' WHERE change_id = {moved}"
        ),
    );
    assert!(
        site.ok(&["verify"]).contains("verified:"),
        "put back, it verifies"
    );

    // A live row passed off as erased, with what its mark covers: its case was never erased.
    let seq = db.query(&format!(
        "SELECT min(seq) FROM feed WHERE case_id = '{other}'"
    ))[0][0]
        .clone()
        .unwrap();
    Editor::execute(
        &mut db,
        &format!(
            "INSERT INTO erased_feed_marks (seq, mark, case_id, hash, audience)
               SELECT f.seq, f.mark, f.case_id, c.hash, f.audience
               FROM feed f JOIN changes c ON c.id = f.change_id WHERE f.seq = {seq};
             DELETE FROM feed WHERE seq = {seq}"
        ),
    );
    let report = verify_fails(&site);
    assert!(
        report.contains(&format!(
            "NOT VERIFIED: feed row {seq} is kept as erased, but case {other} was never erased"
        )),
        "{report}"
    );
    assert!(
        report.contains("(1 of erased cases)"),
        "the summary counts erased rows in the form erasures now keep: {report}"
    );
    // With its mark alone, as rows erased before this version are: only a note says so.
    Editor::execute(
        &mut db,
        &format!("UPDATE erased_feed_marks SET case_id = NULL, hash = NULL WHERE seq = {seq}"),
    );
    let out = site.run(&["verify"]);
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(
        report
            .contains("NOTE: 1 feed rows were erased before erasures kept what their marks cover"),
        "{report}"
    );
}

/// The same exports as `.xlsx` workbooks: typed cells (a birth year is a number, a time is a
/// date a spreadsheet sorts, a boolean of codes is a boolean), labels by default, the hostile
/// name neutralised as in CSV and no cell a formula, the sheet right to left in Arabic.
#[test]
fn exports_open_as_workbooks_with_typed_cells() {
    use crate::console::Console;
    use calamine::{Data, Reader, Xlsx};
    let server = two_teams_and_an_officer();
    let mut amina = server.device("amina");
    let mut hostile = child(1);
    hostile.insert(
        "child_first_name".into(),
        "=HYPERLINK(\"http://evil\")".into(),
    );
    let hostile_case = amina.store.create_case(&hostile).unwrap();
    let (chained, _, _) = a_transferred_chain(&mut amina);
    amina.sync().unwrap();
    let mut fatima = Console::signed_in(&server, "fatima");
    let sheet = |bytes: Vec<u8>| {
        let mut book = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        let name = book.sheet_names()[0].clone();
        book.worksheet_range(&name).unwrap()
    };
    let (status, bytes, headers) = download(&mut fatima, "/console/export/cases.xlsx");
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(
        headers["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .ends_with(".xlsx\""));
    let range = sheet(bytes.clone());
    let rows: Vec<&[Data]> = range.rows().collect();
    assert_eq!(rows[0][0], Data::String("Dossier".into()));
    let hostile_row = rows
        .iter()
        .find(|r| r[0] == Data::String(hostile_case.clone()))
        .unwrap();
    assert_eq!(
        hostile_row[1],
        Data::String("'=HYPERLINK(\"http://evil\")".into())
    );
    assert!(
        matches!(hostile_row[4], Data::Float(_)),
        "a birth year is a number"
    );
    assert!(
        matches!(hostile_row[17], Data::DateTime(_)),
        "{:?}",
        hostile_row[17]
    );
    assert_eq!(hostile_row[3], Data::String("Garçon".into()));
    // No cell of any export is a formula.
    for kind in ["cases", "referrals", "followups"] {
        let (_, bytes, _) = download(&mut fatima, &format!("/console/export/{kind}.xlsx"));
        let mut book = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        let name = book.sheet_names()[0].clone();
        let formulas = book.worksheet_formula(&name).unwrap();
        assert!(
            formulas.used_cells().all(|(_, _, f)| f.is_empty()),
            "{kind}: no formula"
        );
    }
    let (_, bytes, _) = download(&mut fatima, "/console/export/followups.xlsx?values=codes");
    let range = sheet(bytes);
    let visit: Vec<&[Data]> = range.rows().collect();
    assert_eq!(visit[1][0], Data::String(chained.clone()));
    assert_eq!(visit[1][7], Data::Bool(false), "still working, as a code");
    assert!(matches!(visit[1][4], Data::DateTime(_)), "the visit's date");
    // In Arabic the sheet reads right to left.
    fatima.get("/console/lang/ar?back=/console/cases");
    let (_, bytes, _) = download(&mut fatima, "/console/export/cases.xlsx");
    let sheet_xml = {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut xml = String::new();
        std::io::Read::read_to_string(
            &mut zip.by_name("xl/worksheets/sheet1.xml").unwrap(),
            &mut xml,
        )
        .unwrap();
        xml
    };
    assert!(sheet_xml.contains("rightToLeft=\"1\""), "{sheet_xml}");
}

/// Reads a CSV export back as a spreadsheet in each dialect would split it (Python's csv module
/// with `,`, `;` and tab as the separator) and returns every cell that would start a formula.
fn formula_cells(bytes: &[u8]) -> Vec<String> {
    use std::io::Write;
    const CHECK: &str = r#"
import csv, io, json, sys
text = sys.stdin.buffer.read().decode("utf-8-sig")
bad = []
for delimiter in [",", ";", "\t"]:
    for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
        for cell in row:
            start = cell.lstrip(' "')
            if start[:1] in ("=", "+", "-", "@", "\t", "\r"):
                bad.append(delimiter + " " + cell)
print(json.dumps(bad))
"#;
    let mut python = std::process::Command::new("python3")
        .args(["-c", CHECK])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    python.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Names and villages a hostile phone could send, with formulas after every separator a
/// spreadsheet might split on: no export (cases, referrals, follow-ups, indicators) has a cell
/// that starts a formula in the `,`, `;` or tab dialect (on main at d9e481c, `ok;=cmd…` was
/// written raw and a French-locale spreadsheet made `=cmd…` a cell of its own).
#[test]
fn exports_carry_no_formula_in_any_dialect() {
    use crate::console::Console;
    let server = two_teams_and_an_officer();
    let mut amina = server.device("amina");
    let hostile = [
        "ok;=cmd|' /C calc'!A0",
        "a,=1+1",
        "x\t-2",
        "ligne\n@SUM(1)",
        "v;\"=HYPERLINK(\"\"x\"\")",
        "w; +1",
        "=1;=2,=3",
    ];
    for (n, text) in hostile.iter().enumerate() {
        let mut c = child(n + 1);
        c.insert("child_first_name".into(), (*text).into());
        c.insert("child_last_name".into(), format!("Nom;{text}").into());
        c.insert("village".into(), format!("{text},;village").into());
        c.insert("commune".into(), format!("-{text}").into());
        amina.store.create_case(&c).unwrap();
    }
    a_transferred_chain(&mut amina);
    amina.sync().unwrap();
    let mut odile = Console::signed_in(&server, "odile");
    for path in [
        "/console/export/cases.csv",
        "/console/export/referrals.csv",
        "/console/export/followups.csv",
        "/console/indicators.csv?by=commune",
        "/console/indicators.csv?by=province",
    ] {
        let (status, bytes, _) = download(&mut odile, path);
        assert_eq!(status, reqwest::StatusCode::OK, "{path}");
        let text = String::from_utf8_lossy(&bytes);
        if path.contains("cases") {
            assert!(
                text.contains("ok;'=cmd"),
                "{path}: the name is kept: {text}"
            );
        }
        let bad = formula_cells(&bytes);
        assert!(bad.is_empty(), "{path}: {bad:?}");
    }
}

/// `kill`, systemd and container stops send SIGTERM (here to a server also answering health
/// checks on its own listener): the server stops with its stop checkpoint,
/// as on Ctrl-C, so the last minute's audit rows are journalled (on main at d9e481c it exited
/// without it, and they could be cut undetected).
#[test]
fn sigterm_journals_the_stop_checkpoint() {
    let site = ServerSite::new();
    site.ok(&[
        "user", "add", "amina", "--role", "agent", "--team", "sikasso",
    ]);
    let health = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut served = site.serve_with(&["--health-listen", &health.to_string()]);
    let url = served.url();
    // The health listener answers beside the main one.
    let started = std::time::Instant::now();
    let answer = loop {
        use std::io::{Read, Write};
        if let Ok(mut c) = std::net::TcpStream::connect(health) {
            c.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .unwrap();
            let mut reply = String::new();
            let _ = c.read_to_string(&mut reply);
            break reply;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Rows after the start checkpoint: an enrollment, a sync.
    let mut amina = Phone::enroll(&site, &url, "amina");
    amina.store.create_case(&child(1)).unwrap();
    amina.sync(&url);
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let exit = served.child.wait().unwrap();
    assert!(exit.success(), "a clean stop: {exit:?}");
    assert!(
        site.ok(&["checkpoint"]).contains("nothing moved"),
        "the stop checkpoint holds where both chains stand"
    );
}

/// Rebinding a device in the database: its user changed (all of Amina's work would show as
/// Karim's), or its actor swapped. `verify` holds every device to its enrollment in the chained
/// audit log (on main at d9e481c both passed with "verified").
#[test]
fn verify_sees_a_device_rebound_to_another_user_or_actor() {
    let (site, mut db) = sqlite_site();
    some_history(&site);
    site.ok(&["checkpoint"]);
    assert!(site.ok(&["verify"]).contains("verified:"));
    let rows = db.query(
        "SELECT device_id, actor FROM devices WHERE user_id = 'amina' AND device_id NOT LIKE 'console-%'",
    );
    let (device, actor) = (rows[0][0].clone().unwrap(), rows[0][1].clone().unwrap());

    // The device rebound in the database: `verify` names the device and what it was bound to.
    let rebound = |db: &mut _, set: &str, says: &str| {
        Editor::execute(
            db,
            &format!("UPDATE devices SET {set} WHERE device_id = '{device}'"),
        );
        let report = verify_fails(&site);
        assert!(report.contains(says), "{report}");
    };
    rebound(
        &mut db,
        "user_id = 'karim'",
        &format!("NOT VERIFIED: device {device}: it is bound to user karim, but amina enrolled it"),
    );
    Editor::execute(
        &mut db,
        &format!("UPDATE devices SET user_id = 'amina' WHERE device_id = '{device}'"),
    );
    assert!(site.ok(&["verify"]).contains("verified:"), "put back");

    // Another actor: the device's changes would be taken as someone else's.
    let other = "ab".repeat(16);
    rebound(
        &mut db,
        &format!("actor = '{other}'"),
        &format!(
            "NOT VERIFIED: device {device}: its actor is {other}, but it was enrolled with {actor}"
        ),
    );
}

/// An erasure added by hand: an `erasures` row for a live case, its rows converted the way an
/// erasure keeps them. On main at d9e481c `verify` passed it and every phone deleted the case
/// at its next sync. Now every erasure must be in the chained audit log (one missing from this
/// host's erasure journal is noted), and one that is not is never announced to phones.
#[test]
fn verify_sees_an_erasure_added_by_hand() {
    let (site, mut db) = sqlite_site();
    let case_id = some_history(&site);
    // Fatima's phone holds the team's cases.
    let mut fatima = {
        let served = site.serve();
        let mut fatima = Phone::enroll(&site, &served.url(), "fatima");
        fatima.sync(&served.url());
        fatima
    };
    assert!(fatima.store.case(&case_id).is_ok());
    site.ok(&["checkpoint"]);
    assert!(site.ok(&["verify"]).contains("verified:"));
    Editor::execute(
        &mut db,
        &format!(
            "INSERT INTO erased_feed_marks (seq, mark, case_id, hash, audience)
               SELECT f.seq, f.mark, f.case_id, c.hash, f.audience
               FROM feed f LEFT JOIN changes c ON c.id = f.change_id WHERE f.case_id = '{case_id}';
             DELETE FROM feed WHERE case_id = '{case_id}';
             DELETE FROM changes WHERE case_id = '{case_id}';
             INSERT INTO erasures (case_id, at) VALUES ('{case_id}', 0)"
        ),
    );
    let report = verify_fails(&site);
    assert!(
        report.contains(&format!(
            "NOT VERIFIED: case {case_id} is held as erased, but no erasure of it is in the audit log"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "NOTE: case {case_id} is held as erased, but not in this host's erasure journal"
        )),
        "{report}"
    );
    // Nor is it announced: Fatima's phone keeps the child's case (on main at d9e481c every
    // phone deleted it at its next sync).
    let served = site.serve();
    let report = fatima.sync(&served.url());
    assert_eq!(report.erased, 0, "{report:?}");
    assert!(fatima.store.case(&case_id).is_ok());
}

/// A live case's newest change deleted and its feed row kept as a row of a case that was
/// really erased: on main at d9e481c the row's mark did not cover its case id, so `verify`
/// passed it. Marks now cover the case id, so the row no longer follows its mark.
#[test]
fn verify_sees_a_live_row_relabelled_as_a_really_erased_cases() {
    let (site, mut db) = sqlite_site();
    let case_id = some_history(&site);
    let other = db.query(&format!(
        "SELECT case_id FROM changes WHERE case_id <> '{case_id}' LIMIT 1"
    ))[0][0]
        .clone()
        .unwrap();
    site.ok(&["case", "erase", &other]);
    site.ok(&["checkpoint"]);
    assert!(site.ok(&["verify"]).contains("verified:"));
    let row = db.query(&format!(
        "SELECT seq, change_id FROM feed WHERE case_id = '{case_id}' AND audience IS NULL
         ORDER BY seq DESC LIMIT 1"
    ));
    let (seq, change) = (row[0][0].clone().unwrap(), row[0][1].clone().unwrap());
    // Every row of the change (its copy queued for an assignment too) kept as the erased
    // case's, then the change deleted.
    Editor::execute(
        &mut db,
        &format!(
            "INSERT INTO erased_feed_marks (seq, mark, case_id, hash, audience)
               SELECT f.seq, f.mark, '{other}', c.hash, f.audience
               FROM feed f JOIN changes c ON c.id = f.change_id WHERE f.change_id = {change};
             DELETE FROM feed WHERE change_id = {change};
             DELETE FROM changes WHERE id = {change}"
        ),
    );
    let report = verify_fails(&site);
    assert!(
        report.contains(&format!("NOT VERIFIED: feed row {seq} (case {other})")),
        "{report}"
    );
}

/// Amina (agent) records a case and Fatima (her supervisor) pulls it, through a server that
/// is stopped again: the phones and the case id.
fn a_case_recorded_and_read(site: &ServerSite) -> (Phone, Phone, String) {
    for (user, role) in [("amina", "agent"), ("fatima", "supervisor")] {
        site.ok(&["user", "add", user, "--role", role, "--team", "sikasso"]);
    }
    let served = site.serve();
    let url = served.url();
    let mut amina = Phone::enroll(site, &url, "amina");
    let mut fatima = Phone::enroll(site, &url, "fatima");
    let case_id = amina.store.create_case(&child(1)).unwrap();
    amina.sync(&url);
    fatima.sync(&url);
    (amina, fatima, case_id)
}

/// A server upgraded from marks without the case id: rows written before keep their marks,
/// which phones hold; the new formula starts at the first row written after. A phone whose
/// cursor sits on a pre-upgrade row syncs on with no reset, new rows chain on, and `verify`
/// passes across the boundary.
#[test]
fn a_phone_holding_a_pre_upgrade_mark_syncs_on_across_the_new_formula() {
    let (site, mut db) = sqlite_site();
    {
        let (mut amina, mut fatima, _) = a_case_recorded_and_read(&site);
        // The database as the release before left it: every mark without the case id, and the
        // upgrade's recorded row just after them.
        let rows = db.feed();
        let mut previous = Vec::new();
        for (seq, hash, audience, _) in &rows {
            let mark = suivi_server::storage::next_feed_mark(
                &previous,
                *seq as u64,
                hash.as_deref().unwrap(),
                audience.as_deref(),
            );
            let blob = db.blob(&mark);
            Editor::execute(
                &mut db,
                &format!("UPDATE feed SET mark = {blob} WHERE seq = {seq}"),
            );
            previous = mark;
        }
        let end = rows.last().unwrap().0;
        Editor::execute(
            &mut db,
            &format!("UPDATE feed_mark_formula SET case_id_from = {}", end + 1),
        );
        // Fatima's phone holds the old mark at its cursor, as it would have from that release,
        // and the journal the checkpoints of the old marks (this test's first server wrote new
        // ones: gone, as that server never ran on the old release).
        fatima.set_mark(&previous);
        std::fs::remove_file(suivi_server::evidence::journal_path(&site.data())).unwrap();
        let served = site.serve();
        let url = served.url();
        amina.store.create_case(&child(2)).unwrap();
        amina.sync(&url);
        let report = fatima.sync(&url);
        assert!(
            !report.server_reset,
            "the old mark still matches: {report:?}"
        );
        assert_eq!(report.cases_down, 1);
        assert_eq!(fatima.store.case_count().unwrap(), 2);
        let last = db.feed().last().unwrap().0;
        assert!(last > end, "a row written after the upgrade");
    }
    site.ok(&["checkpoint"]);
    assert!(site.ok(&["verify"]).contains("verified:"));
}

/// A forged but valid change under Amina's actor, stored with a feed row chained after the
/// head: no link breaks, and before the next checkpoint `verify` cannot tell; Fatima's phone
/// would show it as Amina's. Amina's phone is the witness: the server lists back the changes
/// it holds under her device (protocol 6), hers lacks that one, she reports it, and the server
/// records it for the officer and sets the case aside (on main at d9e481c nothing noticed, and
/// the next checkpoint made it permanent).
#[test]
fn a_phone_witnesses_a_change_forged_under_its_name() {
    let (site, mut db) = sqlite_site();
    let (mut amina, _fatima, case_id) = a_case_recorded_and_read(&site);
    site.ok(&["checkpoint"]);

    // The editor writes a new change under Amina's actor after her last one, and a feed row
    // for it chained after the head, with the formula the database records.
    let row = db.query(
        "SELECT device_id, actor FROM devices WHERE user_id = 'amina' AND device_id NOT LIKE 'console-%'",
    );
    let (device, actor) = (row[0][0].clone().unwrap(), row[0][1].clone().unwrap());
    let stored: Vec<Vec<u8>> = db
        .query(&format!(
            "SELECT hex(data) FROM changes WHERE case_id = '{case_id}' ORDER BY id"
        ))
        .into_iter()
        .map(|r| hex::decode(r[0].as_deref().unwrap()).unwrap())
        .collect();
    let (hash, bytes) = forged_replacement(&stored, &actor, "low");
    let head = db.query("SELECT seq, hex(mark) FROM feed ORDER BY seq DESC LIMIT 1");
    let seq: u64 = head[0][0].as_deref().unwrap().parse::<u64>().unwrap() + 1;
    let previous = hex::decode(head[0][1].as_deref().unwrap()).unwrap();
    let from: u64 = db.query("SELECT case_id_from FROM feed_mark_formula")[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    let mark = suivi_server::storage::FeedMarks { case_id_from: from }
        .next(&previous, seq, &hash, None, &case_id);
    let (data, mark) = (db.blob(&bytes), db.blob(&mark));
    Editor::execute(
        &mut db,
        &format!(
            "INSERT INTO changes (hash, case_id, origin_device, received_at, data)
               VALUES ('{hash}', '{case_id}', '{device}', 0, {data});
             INSERT INTO feed (seq, change_id, case_id, audience, owner, team, mark)
               SELECT {seq}, id, '{case_id}', NULL, 'amina', 'sikasso', {mark}
               FROM changes WHERE hash = '{hash}'"
        ),
    );
    assert!(
        site.ok(&["verify"]).contains("verified:"),
        "no link breaks: before a checkpoint, only a witness can tell"
    );

    let served = site.serve();
    let url = served.url();
    let report = amina.sync(&url);
    assert_eq!(report.forgeries, 1, "{report:?}");
    assert_eq!(
        amina.store.forgeries().unwrap(),
        [(case_id.clone(), hash.clone(), false)]
    );
    // The report travels with the next request.
    amina.sync(&url);
    assert_eq!(
        amina.store.forgeries().unwrap(),
        [(case_id.clone(), hash.clone(), true)]
    );
    drop(served);
    let report = verify_fails(&site);
    assert!(
        report.contains(&format!(
            "NOT VERIFIED: case {case_id}: device {device} reported change {hash}, stored under its name, as one it never wrote"
        )),
        "{report}"
    );
    assert!(
        site.ok(&["case", "quarantined"]).contains(&case_id),
        "set aside: it spreads no further"
    );
    // Reviewed by an admin (a supervisor may not), it is a note, no longer a finding.
    site.ok(&[
        "user", "add", "nadia", "--role", "admin", "--team", "project",
    ]);
    let refused = site.fails(&[
        "case",
        "forgery-reviewed",
        &case_id,
        &hash,
        "--by",
        "fatima",
    ]);
    assert!(refused.contains("not an officer or admin"), "{refused}");
    site.ok(&["case", "forgery-reviewed", &case_id, &hash, "--by", "nadia"]);
    let report = site.ok(&["verify"]);
    assert!(report.contains("verified:"), "{report}");
    assert!(report.contains("NOTE (reviewed): case"), "{report}");
}

/// The history an officer audits speaks the reader's words, in French and in Arabic: each
/// change one line of what happened (a referral by its provider and service, statuses and
/// values by their labels), the phone by its name beside its id, times to the minute in the
/// project's zone; the document paths stay one click away (`details.raw`) and nowhere else.
#[test]
fn an_officer_reads_a_history_in_words_in_french_and_arabic() {
    use crate::console::Console;

    let server = two_teams_and_an_officer();
    let (transferred, _first, _second, _served) = a_small_project(&server);
    let mut odile = Console::signed_in(&server, "odile");
    let told = |page: &str| -> String {
        let history = &page[page.find("class=\"history\"").unwrap()..];
        // What the reader reads without opening the raw view.
        let mut shown = String::new();
        let mut rest = history;
        while let Some(start) = rest.find("<details class=\"raw\">") {
            shown.push_str(&rest[..start]);
            rest = &rest[start..];
            rest = &rest[rest.find("</details>").unwrap() + "</details>".len()..];
        }
        shown.push_str(rest);
        shown
    };
    let (_, page, _) = odile.get(&format!("/console/cases/{transferred}"));
    let shown = told(&page);
    for words in [
        "Enfant identifié",
        "Orientation vers CSCOM Misséni",
        "brouillon → envoyée",
        "Transférée vers ONG Enfance",
        "Visite de suivi du",
    ] {
        assert!(shown.contains(words), "{words} in {shown}");
    }
    // Amina's phone by its name, its id beside it.
    assert!(shown.contains("amina-phone"), "{shown}");
    assert!(
        page.contains("<details class=\"raw\">"),
        "the paths one click away"
    );
    for raw in [
        "referrals.",
        "followups.",
        "identification.",
        "referral.send",
        "case.create",
        " UTC",
        "in_service",
        "school_or_bridging_class",
    ] {
        assert!(!shown.contains(raw), "{raw} in the words: {shown}");
    }
    let seconds = regex::Regex::new(r"\d\d:\d\d:\d\d|\.\d{3,}").unwrap();
    assert!(!seconds.is_match(&shown), "to the minute: {shown}");

    odile.get("/console/lang/ar?back=/console/cases");
    let (_, page, _) = odile.get(&format!("/console/cases/{transferred}"));
    let shown = told(&page);
    for words in ["إحالة إلى", "مسودة ← مُرسلة", "حُوّلت إلى"] {
        assert!(shown.contains(words), "{words} in {shown}");
    }
    for raw in ["referrals.", "brouillon", "Orientation", "draft"] {
        assert!(!shown.contains(raw), "{raw} in the Arabic words: {shown}");
    }
}

/// An officer reads the possible duplicates but is offered nothing to do about them (a merge or
/// "not the same child" is a supervisor's), and is told who does it; a supervisor sees both.
#[test]
fn an_officer_sees_duplicates_without_the_buttons_only_a_supervisor_may_use() {
    use crate::console::Console;

    let server = two_teams_and_an_officer();
    let mut amina = server.device("amina");
    let mut karim = server.device("karim");
    let (kept, merged) = crate::console::same_child_twice(&mut amina, &mut karim);
    amina.sync().unwrap();
    karim.sync().unwrap();
    let mut odile = Console::signed_in(&server, "odile");
    let (_, page, _) = odile.get("/console/duplicates");
    assert!(page.contains(&kept) && page.contains(&merged), "{page}");
    assert!(
        !page.contains("form class=\"merge\"") && !page.contains("form class=\"distinct\""),
        "{page}"
    );
    assert!(page.contains("Seul un superviseur ou un administrateur fusionne"));
    let mut fatima = Console::signed_in(&server, "fatima");
    let (_, page, _) = fatima.get("/console/duplicates");
    assert!(page.contains("form class=\"merge\"") && page.contains("form class=\"distinct\""));
}
