//! Forms published from the server: a version an admin publishes on a running server reaches
//! phones at their next sync, with the cases that use it; new records use it, old records keep
//! the version they were written with; the server refuses a record under a version it never
//! published. On SQLite and on PostgreSQL.

use serde_json::json;
use suivi_core::forms::{FieldType, FormDefinition, FormRegistry, IDENTIFICATION};
use suivi_core::sync::protocol::{self, RefusalReason, SyncResponse, CONTENT_TYPE};
use suivi_core::sync::{HttpTransport, Transport};
use suivi_core::{CaseDoc, ChangeContext, Error};
use suivi_tests::{case_changes, child, first_page, record, sync_body, ServerSite};

use crate::erasure::Phone;

/// Identification version 2 (`tests/fixtures/identification.v2.json`, which the Kotlin test
/// publishes too): a new required question, `household_size`, and a new work sector, fishing.
pub(crate) fn identification_v2() -> FormDefinition {
    FormDefinition::from_json(include_str!("../../fixtures/identification.v2.json")).unwrap()
}

fn write(dir: &tempfile::TempDir, name: &str, form: &FormDefinition) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, serde_json::to_string_pretty(form).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

fn published_on_a_running_server_reaches_phones(site: &ServerSite) {
    for (user, role) in [
        ("amina", "agent"),
        ("fatima", "supervisor"),
        ("nadia", "admin"),
    ] {
        site.ok(&["user", "add", user, "--role", role, "--team", "souk-sebt"]);
    }
    let served = site.serve();
    let url = served.url();
    let mut amina = Phone::enroll(site, &url, "amina");
    let old_case = amina.store.create_case(&child(1)).unwrap();
    assert_eq!(
        amina.sync(&url).forms_received,
        0,
        "built-in forms are not sent"
    );

    // The admin publishes version 2 while the server runs.
    let files = tempfile::tempdir().unwrap();
    let v2 = identification_v2();
    let v2_file = write(&files, "identification.v2.json", &v2);
    let published = site.ok(&["form", "publish", &v2_file, "--by", "nadia"]);
    assert!(
        published.contains("published identification version 2"),
        "{published}"
    );
    let again = site.ok(&["form", "publish", &v2_file, "--by", "nadia"]);
    assert!(again.contains("already published"), "{again}");
    // Only an admin publishes; a published version never changes; a field keeps its type.
    let refused = site.fails(&["form", "publish", &v2_file, "--by", "fatima"]);
    assert!(refused.contains("only an admin"), "{refused}");
    let mut changed = v2.clone();
    changed.title.fr = "Identification (modifiée)".into();
    let changed_file = write(&files, "changed.json", &changed);
    let refused = site.fails(&["form", "publish", &changed_file, "--by", "nadia"]);
    assert!(
        refused.contains("never changes; publish version 3"),
        "{refused}"
    );
    let mut retyped = v2.clone();
    retyped.version = 3;
    let household = retyped
        .fields
        .iter_mut()
        .find(|f| f.id == "household_size")
        .unwrap();
    household.field_type = FieldType::Text;
    household.constraints = Default::default();
    let retyped_file = write(&files, "retyped.json", &retyped);
    let refused = site.fails(&["form", "publish", &retyped_file, "--by", "nadia"]);
    assert!(
        refused.contains("field household_size was integer in version 2 and would become text"),
        "{refused}"
    );
    let list = site.ok(&["form", "list"]);
    assert!(list.contains("identification\tv1\tactive"), "{list}");
    assert!(list.contains("by built-in"), "{list}");
    assert!(list.contains("identification\tv2\tactive"), "{list}");
    assert!(list.contains("by nadia"), "{list}");
    assert!(!list.contains("\tv3\t"), "{list}");

    // Amina's next sync brings it; new records use it and ask for its new required field.
    let report = amina.sync(&url);
    assert_eq!(report.forms_received, 1);
    assert!(
        report.forms_refused.is_empty(),
        "{:?}",
        report.forms_refused
    );
    let forms = amina.store.forms().unwrap();
    assert_eq!(forms.latest(IDENTIFICATION).unwrap(), &v2);
    match amina.store.create_case(&child(2)) {
        Err(Error::Validation(errors)) => {
            assert!(
                errors.iter().any(|e| e.field == "household_size"),
                "{errors:?}"
            );
        }
        other => panic!("a v2 record without household_size: {other:?}"),
    }
    let mut new_record = child(2);
    new_record.insert("household_size".into(), json!(6));
    new_record.insert("work_sector".into(), json!("fishing"));
    let new_case = amina.store.create_case(&new_record).unwrap();
    assert_eq!(amina.store.case(&new_case).unwrap().identification_form, 2);
    // The old record keeps version 1: it opens, and an edit is checked against version 1.
    let old = amina.store.case(&old_case).unwrap();
    assert_eq!(old.identification_form, 1);
    assert!(!old.identification.contains_key("household_size"));
    amina
        .store
        .edit_case(&old_case, &record(json!({"village": "Tnine"})))
        .unwrap();
    assert_eq!(amina.store.case(&old_case).unwrap().identification_form, 1);
    let report = amina.sync(&url);
    assert_eq!(report.cases_up, 2, "{:?}", report.refused);
    assert!(report.refused.is_empty(), "{:?}", report.refused);

    // A phone enrolled now gets the form and the cases that use it in one sync: none is set
    // aside for an unknown version.
    let mut fatima = Phone::enroll(site, &url, "fatima");
    let report = fatima.sync(&url);
    assert_eq!(report.forms_received, 1);
    assert!(report.quarantined.is_empty(), "{:?}", report.quarantined);
    let seen = fatima.store.case(&new_case).unwrap();
    assert_eq!(seen.identification_form, 2);
    assert_eq!(seen.identification["household_size"], json!(6));
    assert_eq!(
        fatima.store.case(&old_case).unwrap().identification["village"],
        json!("Tnine")
    );
    // "Anything new?" with nothing new: no form travels, and both bodies stay small.
    let quiet = fatima.sync(&url);
    assert_eq!(quiet.forms_received, 0);
    assert!(
        quiet.bytes_up < 2048 && quiet.bytes_down < 2048,
        "{} up, {} down",
        quiet.bytes_up,
        quiet.bytes_down
    );

    // The server refuses a record under a version it never published.
    let mut unknown = v2.clone();
    unknown.version = 9;
    let actor = automerge::ActorId::from(hex::decode(&amina.store.identity().actor).unwrap());
    let case_id = "0123456789abcdef0123456789abcdef";
    let mut doc = CaseDoc::create(
        case_id,
        actor,
        &unknown,
        &new_record,
        &ChangeContext::now("amina"),
    )
    .unwrap();
    let transport = HttpTransport::new(&url).unwrap();
    let reply = transport
        .post(
            "/v1/sync",
            CONTENT_TYPE,
            sync_body(0, vec![case_changes(case_id, doc.changes_since(&[]))]),
            Some(&amina.store.credentials().unwrap()),
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    let response: SyncResponse = first_page(&reply.body);
    assert_eq!(response.refused.len(), 1, "{response:?}");
    assert_eq!(response.refused[0].reason, RefusalReason::Invalid);
    assert!(
        response.refused[0].detail.contains("identification_form"),
        "{:?}",
        response.refused[0]
    );

    // Retiring version 2 sends phones back to version 1 for new records; version 2 records
    // still open with their own version.
    site.ok(&["form", "retire", "identification", "2", "--by", "nadia"]);
    let report = amina.sync(&url);
    assert_eq!(report.forms_received, 1);
    let forms = amina.store.forms().unwrap();
    assert!(forms.is_retired(IDENTIFICATION, 2));
    assert_eq!(forms.latest(IDENTIFICATION).unwrap().version, 1);
    let later = amina.store.create_case(&child(3)).unwrap();
    assert_eq!(amina.store.case(&later).unwrap().identification_form, 1);
    assert_eq!(amina.store.case(&new_case).unwrap().identification_form, 2);
    let refused = site.fails(&["form", "retire", "identification", "1", "--by", "nadia"]);
    assert!(refused.contains("last active version"), "{refused}");
}

#[test]
fn a_form_published_on_a_running_server_reaches_phones_on_sqlite() {
    published_on_a_running_server_reaches_phones(&ServerSite::new());
}

#[test]
fn a_form_published_on_a_running_server_reaches_phones_on_postgres() {
    let database = suivi_server::testing::TestDatabase::create();
    published_on_a_running_server_reaches_phones(&ServerSite::on_postgres(&database.url));
}

/// A workbook of text cells: (sheet, rows); empty strings leave the cell empty.
fn workbook(sheets: &[(&str, Vec<Vec<&str>>)]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    for (name, rows) in sheets {
        let sheet = book.add_worksheet();
        sheet.set_name(*name).unwrap();
        for (r, row) in rows.iter().enumerate() {
            for (c, text) in row.iter().enumerate() {
                if !text.is_empty() {
                    sheet.write_string(r as u32, c as u16, *text).unwrap();
                }
            }
        }
    }
    book.save_to_buffer().unwrap()
}

/// Programme staff author a version as an XLSForm workbook: `form publish` converts it and
/// phones receive exactly the definition it holds. A workbook with mistakes, or one that is not
/// a workbook at all, is refused with where each mistake is, and nothing is published.
#[test]
fn an_xlsform_workbook_is_published_and_a_bad_one_publishes_nothing() {
    let site = ServerSite::new();
    site.ok(&[
        "user", "add", "amina", "--role", "agent", "--team", "sikasso",
    ]);
    site.ok(&[
        "user", "add", "nadia", "--role", "admin", "--team", "sikasso",
    ]);
    let files = tempfile::tempdir().unwrap();
    let path = |name: &str, bytes: &[u8]| {
        let path = files.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_string_lossy().into_owned()
    };
    let v2 = identification_v2();
    let good = path(
        "identification-v2.xlsx",
        &suivi_core::forms::xlsform::export(&v2).unwrap(),
    );

    let listed = site.ok(&["form", "list"]);
    let bad = path(
        "mistakes.xlsx",
        &workbook(&[
            (
                "survey",
                vec![
                    vec![
                        "type",
                        "name",
                        "label::French",
                        "label::English",
                        "label::Arabic",
                        "relevant",
                    ],
                    vec!["text", "provider", "Structure", "Provider", "الجهة", ""],
                    vec!["colour", "shade", "Teinte", "Shade", "اللون", ""],
                    vec![
                        "select_one services",
                        "service_type",
                        "Service",
                        "Service",
                        "الخدمة",
                        "",
                    ],
                    vec![
                        "text",
                        "note",
                        "Note",
                        "Note",
                        "ملاحظة",
                        "${provider} != 'x'",
                    ],
                ],
            ),
            (
                "choices",
                vec![
                    vec![
                        "list_name",
                        "name",
                        "label::French",
                        "label::English",
                        "label::Arabic",
                    ],
                    vec!["urgency", "routine", "Routine", "Routine", "عادية"],
                ],
            ),
            (
                "settings",
                vec![
                    vec![
                        "form_id",
                        "version",
                        "form_title::French",
                        "form_title::English",
                        "form_title::Arabic",
                    ],
                    vec!["referral", "2", "Orientation", "Referral", "الإحالة"],
                ],
            ),
        ]),
    );
    let refused = site.fails(&["form", "publish", &bad, "--by", "nadia"]);
    for expected in [
        "survey row 3",
        "colour",
        "survey row 4",
        "services",
        "survey row 5",
    ] {
        assert!(refused.contains(expected), "{expected} in {refused}");
    }
    let good_bytes = std::fs::read(&good).unwrap();
    let torn = path("torn.xlsx", &good_bytes[..good_bytes.len() / 2]);
    let refused = site.fails(&["form", "publish", &torn, "--by", "nadia"]);
    assert!(refused.contains("cannot be published"), "{refused}");
    assert_eq!(site.ok(&["form", "list"]), listed, "nothing was published");

    let published = site.ok(&["form", "publish", &good, "--by", "nadia"]);
    assert!(
        published.contains("published identification version 2"),
        "{published}"
    );
    let served = site.serve();
    let url = served.url();
    let mut amina = Phone::enroll(&site, &url, "amina");
    assert_eq!(amina.sync(&url).forms_received, 1);
    assert_eq!(
        amina.store.forms().unwrap().latest(IDENTIFICATION).unwrap(),
        &v2,
        "the phone holds exactly what the workbook said"
    );
}

/// A server response is untrusted: a definition that does not check, or another definition
/// under a version the phone holds, is refused and reported; a good one in the same response is
/// kept, and a case that uses it, pulled in that response, is saved, not set aside.
#[test]
fn a_phone_checks_the_forms_a_server_sends_and_keeps_only_good_ones() {
    use suivi_core::forms::REFERRAL;
    use suivi_core::sync::protocol::{Author, FormUpdate};
    let mut referral_v2 = FormRegistry::builtin().get(REFERRAL, 1).unwrap().clone();
    referral_v2.version = 2;
    referral_v2.fields.retain(|f| f.id != "urgency");
    let mut forms = FormRegistry::builtin();
    forms.add(referral_v2.clone());
    let case_id = "0123456789abcdef0123456789abcdef";
    let mut doc = CaseDoc::create(
        case_id,
        automerge::ActorId::from(vec![7u8; 16]),
        forms.get(IDENTIFICATION, 1).unwrap(),
        &child(1),
        &ChangeContext::now("amina"),
    )
    .unwrap();
    let mut referral = suivi_tests::referral(1);
    referral.remove("urgency");
    doc.add_referral(&forms, &referral, &ChangeContext::now("amina"))
        .unwrap();
    let mut rewritten = FormRegistry::builtin()
        .get(IDENTIFICATION, 1)
        .unwrap()
        .clone();
    rewritten.title.fr = "Identification (réécrite)".into();
    let page = protocol::encode(&SyncResponse {
        authors: vec![Author {
            user: "amina".into(),
            device: "amina-phone".into(),
        }],
        pull: vec![suivi_tests::fuzz::pulled_case(
            case_id,
            doc.changes_since(&[]),
        )],
        mark: serde_bytes::ByteBuf::from(vec![1; 32]),
        forms: vec![
            FormUpdate {
                definition: "{\"id\": \"referral\", \"version\": 3".into(),
                retired: false,
            },
            FormUpdate {
                definition: rewritten.canonical_json(),
                retired: false,
            },
            FormUpdate {
                definition: referral_v2.canonical_json(),
                retired: false,
            },
        ],
        ..suivi_tests::fuzz::nothing_new(1, 9)
    })
    .unwrap();
    let (mut phone, server, dir) = suivi_tests::fuzz::hostile_phone(page);
    let report = phone.sync(&server, &mut |_| {}).unwrap();
    assert_eq!(report.forms_received, 1);
    assert_eq!(report.forms_refused.len(), 2, "{:?}", report.forms_refused);
    assert!(report.forms_refused[0].contains("does not check"));
    assert!(report.forms_refused[1].contains("identification v1 differs"));
    assert!(report.quarantined.is_empty(), "{:?}", report.quarantined);
    let held = phone.forms().unwrap();
    assert_eq!(held.latest(REFERRAL).unwrap(), &referral_v2);
    assert_ne!(
        held.get(IDENTIFICATION, 1).unwrap().title.fr,
        rewritten.title.fr,
        "the version the phone ships stays as it is"
    );
    let case = phone.case(case_id).unwrap();
    assert_eq!(case.referrals[0].form_version, 2);
    assert_eq!(phone.meta("forms_cursor").unwrap().as_deref(), Some("9"));
    // Refused by this app version: the same app goes on from the cursor, an updated one asks
    // for the whole forms feed again (it may read what this one could not).
    assert_eq!(
        phone.meta("forms_refused_by").unwrap(),
        Some(phone.app_version().unwrap())
    );
    let seen = |server: &suivi_tests::fuzz::HostileServer| {
        let requests = server.requests.lock().unwrap();
        protocol::decode_request(requests.last().unwrap())
            .unwrap()
            .forms_seen
    };
    phone.sync(&server, &mut |_| {}).unwrap();
    assert_eq!(seen(&server), 9);
    phone.sync(&server, &mut |_| {}).unwrap();
    assert_eq!(seen(&server), 9, "the same app goes on from its cursor");
    phone.set_app_version("suivi-android 2.0").unwrap();
    phone.sync(&server, &mut |_| {}).unwrap();
    assert_eq!(seen(&server), 0);
    // Nothing refused this time: the note goes, and the next sync goes on from the cursor.
    assert_eq!(phone.meta("forms_refused_by").unwrap(), None);
    phone.sync(&server, &mut |_| {}).unwrap();
    assert_eq!(seen(&server), 0, "the cursor the full read ended at");
    // The forms stay across a restart, read from the encrypted store.
    drop(phone);
    let phone = suivi_core::Store::open(&dir.path().join("p.db"), suivi_tests::DEVICE_KEY).unwrap();
    assert_eq!(phone.forms().unwrap().latest(REFERRAL).unwrap().version, 2);
}

/// More new versions than one response holds: the first responses carry forms and no case, so
/// a case never arrives before the version it uses.
#[test]
fn more_forms_than_a_response_holds_come_before_any_case() {
    use suivi_core::forms::FOLLOWUP;
    use suivi_server::storage::Role;
    let server = suivi_tests::TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    server.add_user("fatima", Role::Supervisor, "sikasso");
    server.add_user("nadia", Role::Admin, "sikasso");
    let newest = 21;
    for version in 2..=newest {
        let mut followup = FormRegistry::builtin().get(FOLLOWUP, 1).unwrap().clone();
        followup.version = version;
        suivi_server::forms::publish(server.store.as_ref(), &followup, "nadia", 1).unwrap();
    }
    let mut amina = server.device("amina");
    assert_eq!(amina.sync().unwrap().forms_received, 20);
    let case_id = amina.store.create_case(&child(1)).unwrap();
    amina
        .store
        .add_followup(&case_id, &suivi_tests::visit(1))
        .unwrap();
    amina.sync().unwrap();

    let mut fatima = server.device("fatima");
    let first = suivi_tests::raw_sync(&server, &fatima, vec![]);
    assert_eq!(
        first.forms.len(),
        suivi_server::forms::FORMS_PER_RESPONSE_MAX - 3,
        "the built-in versions take their places in the feed but are not sent"
    );
    assert!(first.pull.is_empty(), "no case before its forms");
    assert!(first.more);
    let report = fatima.sync().unwrap();
    assert_eq!(report.forms_received, 20);
    assert_eq!(report.cases_down, 1);
    assert!(report.quarantined.is_empty(), "{:?}", report.quarantined);
    let case = fatima.store.case(&case_id).unwrap();
    assert_eq!(case.followups[0].form_version, newest);
}

/// The `suivi` command on a phone: a version published on the running server arrives with
/// `suivi sync`, `suivi forms` and `suivi form` show it, `suivi case new` records with it and
/// asks for its new question, an older case keeps its version and `suivi case move-form` moves
/// it.
/// A site with Amina (agent) and Nadia (admin) in Sikasso, served, and Amina's `suivi` store
/// enrolled on it: the server, its process, the store's directory and the store's path.
fn amina_enrolled_with_suivi() -> (
    ServerSite,
    suivi_tests::Served,
    tempfile::TempDir,
    std::path::PathBuf,
) {
    use crate::cli::suivi;
    let site = ServerSite::new();
    site.ok(&[
        "user", "add", "amina", "--role", "agent", "--team", "sikasso",
    ]);
    site.ok(&[
        "user", "add", "nadia", "--role", "admin", "--team", "sikasso",
    ]);
    let served = site.serve();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("amina.db");
    suivi(&db, &["init", "--user", "amina", "--device", "tecno"]);
    let code = site.ok(&["device", "code", "amina"]).trim().to_string();
    suivi(&db, &["enroll", "--server", &served.url(), "--code", &code]);
    (site, served, dir, db)
}

#[test]
fn the_suivi_command_receives_a_published_form_and_records_with_it() {
    use crate::cli::suivi;
    let (site, _served, _dir, db) = amina_enrolled_with_suivi();
    let fields = crate::cli::CHILD;
    let new_case = |extra: &[&str]| {
        let mut args = vec!["case", "new"];
        for f in fields.iter().chain(extra) {
            args.extend(["--set", f]);
        }
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    let args = new_case(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let old = suivi(&db, &args)["case_id"].as_str().unwrap().to_string();
    suivi(&db, &["sync"]);

    let files = tempfile::tempdir().unwrap();
    let v2 = write(&files, "identification.v2.json", &identification_v2());
    site.ok(&["form", "publish", &v2, "--by", "nadia"]);
    let report = suivi(&db, &["sync"]);
    assert_eq!(report["forms_received"], 1, "{report}");
    let held = suivi(&db, &["forms"]);
    let identification: Vec<(u64, bool)> = held
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "identification")
        .map(|f| {
            (
                f["version"].as_u64().unwrap(),
                f["retired"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(identification, [(1, false), (2, false)]);
    let form = suivi(&db, &["form", "identification"]);
    assert_eq!(form["version"], 2);
    assert!(form["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["id"] == "household_size"));

    // A new case asks for the new question, and is recorded with version 2.
    let out = std::process::Command::new(crate::cli::suivi_binary())
        .arg("--json")
        .args(&args)
        .env("SUIVI_DB", &db)
        .env("SUIVI_KEY", "clé de test")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("household_size")
            || String::from_utf8_lossy(&out.stderr).contains("household_size"),
        "{out:?}"
    );
    let with_household = new_case(&["household_size=6"]);
    let with_household: Vec<&str> = with_household.iter().map(String::as_str).collect();
    let new = suivi(&db, &with_household)["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = suivi(&db, &["case", "show", &new]);
    assert_eq!(shown["identification_form"], 2);
    // The older case keeps version 1 until moved.
    assert_eq!(
        suivi(&db, &["case", "show", &old])["identification_form"],
        1
    );
    let moved = suivi(
        &db,
        &["case", "move-form", &old, "--set", "household_size=4"],
    );
    assert_eq!(moved["identification_form"], 2);
    let report = suivi(&db, &["sync"]);
    assert_eq!(report["cases_up"], 2, "{report}");
    assert_eq!(report["refused"].as_array().unwrap().len(), 0, "{report}");
}

/// The console shows a record with the version it names: a record moved to a version that
/// dropped a question shows that answer apart, read-only, labelled from the version that asked.
#[test]
fn the_console_shows_a_moved_record_with_its_version_and_what_an_earlier_one_asked() {
    use crate::console::{two_teams, Console};
    use reqwest::StatusCode;
    let server = two_teams();
    server.add_user("nadia", suivi_server::storage::Role::Admin, "sikasso");
    let mut amina = server.device("amina");
    let mut answered = child(4);
    answered.insert("tasks".into(), json!("Porte les sacs de coton"));
    let case_id = amina.store.create_case(&answered).unwrap();
    amina.sync().unwrap();
    // Version 2 drops `tasks` and asks for the household's size.
    let mut v2 = identification_v2();
    v2.fields.retain(|f| f.id != "tasks");
    suivi_server::forms::publish(server.store.as_ref(), &v2, "nadia", 1).unwrap();
    amina.sync().unwrap();
    amina
        .store
        .move_case_form(&case_id, &record(json!({"household_size": 5})))
        .unwrap();
    let report = amina.sync().unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);

    let mut fatima = Console::signed_in(&server, "fatima");
    let (status, page, _) = fatima.get(&format!("/console/cases/{case_id}"));
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("version du formulaire 2"), "{page}");
    assert!(page.contains("Personnes dans le ménage"), "{page}");
    let earlier = page
        .split("Demandé par une version antérieure du formulaire")
        .nth(1)
        .expect("the answers an earlier version asked, apart");
    assert!(earlier.contains("Porte les sacs de coton"), "{earlier}");
}

/// Identification version 2 with some labels in Bambara (`bm`), as a programme in Sikasso
/// writes them in an XLSForm's `label::bm` column: the title, the first name, the sex and its
/// choices; every other label has none.
fn identification_v2_in_bambara() -> FormDefinition {
    let mut form = identification_v2();
    let bm = |label: &mut suivi_core::forms::Label, text: &str| {
        label.more.insert("bm".into(), text.into());
    };
    bm(&mut form.title, "Denmisɛn dɔnni");
    for field in &mut form.fields {
        match field.id.as_str() {
            "child_first_name" => bm(&mut field.label, "Tɔgɔ"),
            "sex" => {
                bm(&mut field.label, "Cɛya walima musoya");
                for choice in &mut field.choices {
                    let text = if choice.id == "female" {
                        "Denmuso"
                    } else {
                        "Dencɛ"
                    };
                    bm(&mut choice.label, text);
                }
            }
            _ => {}
        }
    }
    form
}

/// A form carrying a further language is published from a workbook like any version; a phone
/// set to that language reads its labels, French where the form has none, and its own words
/// in French; a phone set to French reads French.
#[test]
fn a_form_written_in_bambara_reaches_a_phone_set_to_bambara() {
    use crate::cli::{suivi, suivi_binary};
    let (site, _served, _dir, db) = amina_enrolled_with_suivi();

    let files = tempfile::tempdir().unwrap();
    let workbook = files.path().join("identification-v2-bm.xlsx");
    let written = suivi_core::forms::xlsform::export(&identification_v2_in_bambara()).unwrap();
    std::fs::write(&workbook, written).unwrap();
    site.ok(&[
        "form",
        "publish",
        workbook.to_str().unwrap(),
        "--by",
        "nadia",
    ]);
    assert_eq!(suivi(&db, &["sync"])["forms_received"], 1);

    let shown = |args: &[&str], lang: &str| {
        let out = std::process::Command::new(suivi_binary())
            .args(args)
            .env("SUIVI_DB", &db)
            .env("SUIVI_KEY", "clé de test")
            .env_remove("LC_ALL")
            .env("LANG", lang)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (form, _) = shown(&["form", "identification"], "bm_ML.UTF-8");
    for bambara in [
        "Denmisɛn dɔnni",
        "Tɔgɔ",
        "Cɛya walima musoya",
        "Denmuso",
        "Dencɛ",
    ] {
        assert!(form.contains(bambara), "{bambara} in:\n{form}");
    }
    assert!(
        form.contains("Nom de famille de l'enfant"),
        "no Bambara label: the French one\n{form}"
    );
    let (form, _) = shown(&["form", "identification"], "fr_FR.UTF-8");
    assert!(
        form.contains("Prénom de l'enfant") && !form.contains("Tɔgɔ"),
        "{form}"
    );
    // The command's own words in Bambara are French.
    let (_, refused) = shown(&["case", "show", "0000"], "bm_ML.UTF-8");
    let (_, in_french) = shown(&["case", "show", "0000"], "fr_FR.UTF-8");
    assert!(!refused.is_empty());
    assert_eq!(refused, in_french);
}

/// An app released before further languages kept a Bambara version without its Bambara (and
/// marked nothing); updated, the phone asks for the whole forms feed once and takes the same
/// version again whole, refusing nothing and setting no case aside.
#[test]
fn an_updated_phone_takes_again_the_labels_an_older_app_dropped() {
    use suivi_core::sync::protocol::FormUpdate;
    let whole = identification_v2_in_bambara();
    let page = |form: &FormDefinition| {
        protocol::encode(&SyncResponse {
            forms: vec![FormUpdate {
                definition: form.canonical_json(),
                retired: false,
            }],
            ..suivi_tests::fuzz::nothing_new(1, 9)
        })
        .unwrap()
    };
    // What the older app stored: the version in French, English and Arabic only.
    let (mut phone, older_server, _dir) =
        suivi_tests::fuzz::hostile_phone(page(&whole.in_app_languages()));
    phone.sync(&older_server, &mut |_| {}).unwrap();
    let bm = suivi_core::Lang::from_tag("bm");
    let held = |phone: &suivi_core::Store| {
        phone
            .forms()
            .unwrap()
            .get(IDENTIFICATION, 2)
            .unwrap()
            .clone()
    };
    assert_eq!(held(&phone).title.get(bm), "Identification de l'enfant");
    phone.delete_meta("forms_read_as").unwrap();

    let server = suivi_tests::fuzz::HostileServer::new(page(&whole));
    let report = phone.sync(&server, &mut |_| {}).unwrap();
    let seen: Vec<u64> = server
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| protocol::decode_request(r).unwrap().forms_seen)
        .collect();
    assert_eq!(seen, [0], "the whole forms feed, once");
    assert!(
        report.forms_refused.is_empty(),
        "{:?}",
        report.forms_refused
    );
    assert!(report.quarantined.is_empty());
    assert_eq!(held(&phone), whole);
    assert_eq!(held(&phone).title.get(bm), "Denmisɛn dɔnni");
    phone.sync(&server, &mut |_| {}).unwrap();
    let last = protocol::decode_request(server.requests.lock().unwrap().last().unwrap()).unwrap();
    assert_eq!(last.forms_seen, 9, "and on from its cursor after");

    // A version that differs in more than its further languages is still refused.
    let mut rewritten = whole.clone();
    rewritten.title.fr = "Identification (réécrite)".into();
    let server = suivi_tests::fuzz::HostileServer::new(page(&rewritten));
    phone.delete_meta("forms_read_as").unwrap();
    let report = phone.sync(&server, &mut |_| {}).unwrap();
    assert_eq!(report.forms_refused.len(), 1, "{:?}", report.forms_refused);
    assert_eq!(held(&phone), whole);
}
