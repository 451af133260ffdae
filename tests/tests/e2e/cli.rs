//! The `suivi` device command against a real server: init, record offline, enroll, sync.

use std::path::PathBuf;
use std::process::Command;

use suivi_server::storage::Role;
use suivi_tests::TestServer;

/// The `suivi` binary beside this test binary (built by `cargo test --workspace --features
/// suivi-core/cli`, as the README's test command does).
pub fn suivi_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("suivi");
    assert!(
        path.exists(),
        "{} is missing: run the tests with --features suivi-core/cli",
        path.display()
    );
    path
}

pub fn suivi(db: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(suivi_binary())
        .arg("--json")
        .args(args)
        .env("SUIVI_DB", db)
        .env("SUIVI_KEY", "clé de test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `suivi case new` with `CHILD`: the new case's JSON.
pub fn new_child(db: &std::path::Path) -> serde_json::Value {
    let mut args = vec!["case", "new"];
    for f in &CHILD {
        args.push("--set");
        args.push(f);
    }
    suivi(db, &args)
}

/// A child as `suivi case new --set` takes it (identification version 1).
pub const CHILD: [&str; 13] = [
    "child_first_name=Oumou",
    "child_last_name=Sangaré",
    "sex=female",
    "dob_known=non",
    "estimated_age=13",
    "province=Sikasso",
    "commune=Kadiolo",
    "village=Zégoua",
    "school_status=never_enrolled",
    "works=oui",
    "work_sector=cotton",
    "risk_level=high",
    "consent_to_share=oui",
];

#[test]
fn the_command_enrolls_and_syncs_a_case_recorded_offline() {
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    server.add_user("fatima", Role::Supervisor, "sikasso");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("amina.db");
    suivi(&db, &["init", "--user", "amina", "--device", "tecno"]);
    new_child(&db);
    let code = server.code("amina");
    let enrolled = suivi(&db, &["enroll", "--server", &server.url(), "--code", &code]);
    assert_eq!(enrolled["role"], "agent");
    let report = suivi(&db, &["sync"]);
    assert_eq!(report["cases_up"], 1);
    assert_eq!(report["round_trips"], 1);
    let again = suivi(&db, &["sync"]);
    assert_eq!(again["cases_up"], 0, "nothing is pushed twice");

    let mut supervisor = server.device("fatima");
    supervisor.sync().unwrap();
    let cases = supervisor.store.list_cases(&Default::default()).unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].last_name, "Sangaré");
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("amina.db");
    suivi(&db, &["init", "--user", "amina", "--device", "tecno"]);
    // `suivi case list | head -0`: the reading end is closed before anything is written.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(suivi_binary())
        .args(["case", "list"])
        .env("SUIVI_DB", &db)
        .env("SUIVI_KEY", "clé de test")
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}

/// A training day: a room of phones enrolls from one address (the office Wi-Fi). The default
/// per-address limit slows the 31st attempt; `serve --enroll-burst` raises it.
#[test]
fn enroll_burst_lets_a_room_of_phones_enroll_from_one_address() {
    use suivi_core::sync::{HttpTransport, Transport};
    use suivi_tests::ServerSite;
    let site = ServerSite::new();
    site.ok(&[
        "user", "add", "amina", "--role", "agent", "--team", "sikasso",
    ]);
    let statuses = |served: &suivi_tests::Served| -> Vec<u16> {
        let transport = HttpTransport::new(&served.url()).unwrap();
        (0..40)
            .map(|n| {
                let body = serde_json::to_vec(&serde_json::json!({
                    "code": "AAAAAAAAAA", "user": "amina", "actor": format!("{n:032x}"),
                    "device_name": "room"
                }))
                .unwrap();
                transport
                    .post("/v1/enroll", "application/json", body, None)
                    .unwrap()
                    .status
            })
            .collect()
    };
    let default = statuses(&site.serve());
    assert_eq!(
        default.iter().filter(|s| **s == 429).count(),
        10,
        "{default:?}"
    );
    let raised = statuses(&site.serve_with(&["--enroll-burst", "100"]));
    assert!(raised.iter().all(|s| *s == 403), "{raised:?}");
}

/// Behind a load balancer every phone comes from one address: `serve --connections-per-ip`
/// sets how many connections that address may hold (64 by default); one past it is closed
/// before it is read, the others are served.
#[test]
fn connections_per_ip_sets_the_per_address_cap() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let site = suivi_tests::ServerSite::new();
    let served = site.serve_with(&["--connections-per-ip", "2"]);
    // A connection answered once and kept open: the server has counted it. (A slot may still be
    // held a moment by the start-up probe's closed connection: then try again.)
    let answered = || -> Option<TcpStream> {
        let mut c = TcpStream::connect(served.addr).ok()?;
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .ok()?;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 512];
        while !answer.ends_with(b"\r\n\r\nok") {
            match c.read(&mut chunk) {
                Ok(n) if n > 0 => answer.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
        Some(c)
    };
    let held: Vec<TcpStream> = (0..2)
        .map(|_| {
            (0..50)
                .find_map(|_| {
                    answered().or_else(|| {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        None
                    })
                })
                .expect("two connections are served")
        })
        .collect();
    let mut third = TcpStream::connect(served.addr).unwrap();
    third
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    // Written or not (the server may have closed it already), it gets no answer.
    let _ = third.write_all(request);
    let mut refused = String::new();
    let _ = third.read_to_string(&mut refused);
    assert!(
        refused.is_empty(),
        "the third connection was served: {refused}"
    );
    let mut first = &held[0];
    first.write_all(request).unwrap();
    let mut answer = String::new();
    first.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// The command proposes a closure offline and shows the case's stage and closure in words; an
/// agent's command cannot decide it; the supervisor's approval comes back at the next sync.
#[test]
fn the_command_proposes_a_closure_and_shows_it_decided() {
    let server = TestServer::start();
    server.add_user("amina", Role::Agent, "sikasso");
    server.add_user("fatima", Role::Supervisor, "sikasso");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("amina.db");
    suivi(&db, &["init", "--user", "amina", "--device", "tecno"]);
    let case_id = new_child(&db)["case_id"].as_str().unwrap().to_string();
    let proposed = suivi(
        &db,
        &[
            "case",
            "close",
            &case_id,
            "--reason",
            "moved_away",
            "--note",
            "parti à Bamako",
        ],
    );
    assert_eq!(proposed["closure"]["status"], "proposed");
    let text = |args: &[&str]| {
        let out = Command::new(suivi_binary())
            .args(["--lang", "fr"])
            .args(args)
            .env("SUIVI_DB", &db)
            .env("SUIVI_KEY", "clé de test")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (_, shown) = text(&["case", "show", &case_id]);
    assert!(shown.contains("Étape: identifié"), "{shown}");
    assert!(
        shown.contains("Clôture: clôture proposée — parti de la zone"),
        "{shown}"
    );
    assert!(
        shown.contains("clôture proposée  amina  parti de la zone : parti à Bamako"),
        "{shown}"
    );
    let (_, listed) = text(&["case", "list"]);
    assert!(listed.contains("[clôture proposée]"), "{listed}");
    let (ok, refused) = text(&["case", "decide", &case_id, "approve"]);
    assert!(
        !ok && refused.contains("supervisors and admins decide closures"),
        "{refused}"
    );

    let code = server.code("amina");
    suivi(&db, &["enroll", "--server", &server.url(), "--code", &code]);
    suivi(&db, &["sync"]);
    let mut fatima = server.device("fatima");
    fatima.sync().unwrap();
    fatima.store.decide_closure(&case_id, true, None).unwrap();
    fatima.sync().unwrap();
    suivi(&db, &["sync"]);
    let (_, shown) = text(&["case", "show", &case_id]);
    assert!(
        shown.contains("Clôture: clôturé — parti de la zone"),
        "{shown}"
    );
    assert!(shown.contains("clôture approuvée  fatima"), "{shown}");
    assert!(
        !shown.contains("Prochaine étape"),
        "a closed case has no next step"
    );
}
