//! The server's memory and availability under hostile requests, measured on a separate
//! `suivi-server` process by its peak resident memory (VmHWM): no single request of at most
//! 4 MiB raises it by more than 64 MB, and 50 hostile requests at once leave it serving
//! other devices. A test binary of its own, so its load does not share the machine with the
//! end-to-end tests' timeouts.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, ReadDoc, ScalarValue, ROOT};
use suivi_core::sync::protocol::{self, CaseChanges, CONTENT_TYPE};
use suivi_core::sync::{Credentials, HttpTransport, Transport};
use suivi_core::Store;
use suivi_server::storage::Role;
use suivi_tests::bench::{self, ServerProcess};

const MB: u64 = 1_000_000;
/// The target: what one request may add to the server's peak memory.
const PER_REQUEST_RSS_MAX: u64 = 64 * MB;

fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("suivi-server");
    assert!(
        path.exists(),
        "{} is missing: run cargo build --workspace first",
        path.display()
    );
    path
}

/// `count` chained changes by `actor`, each of `chunk_ops` operations that run-length encoding
/// packs into a few dozen bytes (the same key set to null again and again).
fn op_heavy_changes(actor: &automerge::ActorId, count: usize, chunk_ops: usize) -> Vec<Vec<u8>> {
    let mut doc = AutoCommit::new().with_actor(actor.clone());
    let mut out = Vec::new();
    for _ in 0..count {
        let before = doc.get_heads();
        for _ in 0..chunk_ops {
            doc.put(ROOT, "x", ScalarValue::Null).unwrap();
        }
        doc.commit_with(
            CommitOptions::default()
                .with_message(r#"{"user":"mallory","action":"case.create"}"#)
                .with_time(0),
        );
        out.extend(
            doc.get_changes(&before)
                .into_iter()
                .map(|c| c.raw_bytes().to_vec()),
        );
    }
    out
}

fn body(push: Vec<CaseChanges>) -> Vec<u8> {
    suivi_tests::sync_body(0, push)
}

fn case(n: usize, changes: &[Vec<u8>]) -> CaseChanges {
    suivi_tests::case_changes(&format!("{n:032x}"), changes.to_vec())
}

/// A number as postcard writes it (a varint), also a sequence's length.
fn varint(v: u64, out: &mut Vec<u8>) {
    out.extend(postcard::to_stdvec(&v).unwrap());
}

/// The hostile requests, each at most 4 MiB on the wire.
fn hostile_bodies(actor: &automerge::ActorId) -> Vec<(&'static str, Vec<u8>)> {
    let one = op_heavy_changes(actor, 1, 20_000);
    let at_cap = op_heavy_changes(actor, 5, 20_000);
    let over_cap = op_heavy_changes(actor, 6, 20_000);
    // Postcard by hand: version, cursor 0, no mark, then ten million empty cases.
    let mut items = vec![];
    varint(u64::from(protocol::PROTOCOL_VERSION), &mut items);
    items.extend([0, 0]);
    varint(10_000_000, &mut items);
    items.extend(std::iter::repeat_n(0u8, 20_000_000));
    let items = zstd::bulk::compress(&items, 19).unwrap();
    // A valid start, then zeros inflating far past the limit.
    let mut zeros = vec![];
    varint(u64::from(protocol::PROTOCOL_VERSION), &mut zeros);
    zeros.extend(std::iter::repeat_n(0u8, 256 * 1024 * 1024));
    let zeros = zstd::bulk::compress(&zeros, 19).unwrap();
    let mut random = vec![0u8; 4 * 1024 * 1024 - 64];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut random);
    let bodies = vec![
        (
            "500 cases, one 20,000-operation change each",
            body((0..500).map(|n| case(n, &one)).collect()),
        ),
        (
            "500 cases at the operation cap (100,000 each)",
            body((0..500).map(|n| case(n, &at_cap)).collect()),
        ),
        (
            "one case over the operation cap",
            body(vec![case(0, &over_cap)]),
        ),
        ("ten million empty cases (zstd)", items),
        ("256 MiB of zeros (zstd)", zeros),
        ("4 MiB of random bytes", random),
    ];
    for (what, b) in &bodies {
        assert!(
            b.len() <= protocol::SYNC_BODY_BYTES_MAX,
            "{what}: {}",
            b.len()
        );
    }
    bodies
}

fn post(url: &str, credentials: &Credentials, body: Vec<u8>) -> u16 {
    let transport = HttpTransport::new(url).unwrap();
    transport
        .post("/v1/sync", CONTENT_TYPE, body, Some(credentials))
        .map(|r| r.status)
        .unwrap_or(0)
}

fn actor_of(store: &Store) -> automerge::ActorId {
    automerge::ActorId::from(hex::decode(&store.identity().actor).unwrap())
}

#[test]
fn hostile_requests_stay_within_the_memory_budget_and_the_server_keeps_serving() {
    let mut server = ServerProcess::start(&server_binary()).unwrap();
    let url = format!("http://{}", server.addr);
    let dir = tempfile::tempdir().unwrap();
    for (user, role, team) in [
        ("mallory", Role::Agent, "kayes"),
        ("amina", Role::Agent, "sikasso"),
        ("fatima", Role::Supervisor, "sikasso"),
    ] {
        suivi_server::admin::add_user(server.store.as_ref(), user, role, team, None).unwrap();
    }
    // Hostile devices: ten phones of one stolen account.
    let mut hostile: Vec<Store> = (0..10)
        .map(|n| {
            let d = dir.path().join(format!("m{n}"));
            std::fs::create_dir_all(&d).unwrap();
            bench::enroll(&server, &d, "mallory", &url).unwrap()
        })
        .collect();
    let mut amina = bench::enroll(&server, dir.path(), "amina", &url).unwrap();
    let mut fatima = bench::enroll(&server, dir.path(), "fatima", &url).unwrap();
    amina.create_case(&suivi_tests::child(1)).unwrap();
    bench::sync(&mut amina, &url).unwrap();
    bench::sync(&mut fatima, &url).unwrap();

    let credentials = hostile[0].credentials().unwrap();
    let per_phone: Vec<Vec<u8>> = hostile.iter_mut().map(hostile_body_for).collect();
    let mut bodies = hostile_bodies(&actor_of(&hostile[0]));
    bodies.push((
        "a real case and 80,000 edits, as every case a body holds",
        per_phone[0].clone(),
    ));
    for (what, body) in &bodies {
        let before = server.peak_rss_bytes();
        let started = Instant::now();
        let status = post(&url, &credentials, body.clone());
        let after = server.peak_rss_bytes();
        println!(
            "{what}: {} B, status {status}, {:.1} s, peak RSS {:.1} → {:.1} MB",
            body.len(),
            started.elapsed().as_secs_f64(),
            before as f64 / MB as f64,
            after as f64 / MB as f64
        );
        assert!(
            after.saturating_sub(before) <= PER_REQUEST_RSS_MAX,
            "{what} raised peak RSS by {} MB",
            (after - before) / MB
        );
        assert!(server.is_running());
    }

    // Fifty at once, from the ten hostile phones, while Amina and Fatima go on syncing.
    // Each phone signs its own op-heavy pushes (the server refuses other actors early); every
    // third request is one of the decoding bombs.
    let bombs: Vec<Vec<u8>> = bodies[3..6].iter().map(|(_, b)| b.clone()).collect();
    let before = server.peak_rss_bytes();
    let attack: Vec<_> = (0..50)
        .map(|n| {
            let url = url.clone();
            let phone = n % hostile.len();
            let credentials = hostile[phone].credentials().unwrap();
            let body = if n % 3 == 2 {
                bombs[(n / 3) % bombs.len()].clone()
            } else {
                per_phone[phone].clone()
            };
            std::thread::spawn(move || post(&url, &credentials, body))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    amina
        .create_case(&suivi_tests::child(2))
        .expect("a save on the phone");
    let mut synced = None;
    while started.elapsed() < Duration::from_secs(120) {
        match bench::sync(&mut amina, &url) {
            Ok(report) => {
                synced = Some(report);
                break;
            }
            Err(e) => {
                println!("amina: {e}, retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    let waited = started.elapsed();
    let report = synced.expect("Amina syncs while the attack runs");
    assert_eq!(report.cases_up, 1);
    let statuses: Vec<u16> = attack.into_iter().map(|t| t.join().unwrap()).collect();
    let after = server.peak_rss_bytes();
    println!(
        "50 at once: Amina synced after {:.1} s; statuses {statuses:?}; peak RSS {:.1} → {:.1} MB",
        waited.as_secs_f64(),
        before as f64 / MB as f64,
        after as f64 / MB as f64
    );
    assert!(server.is_running());
    bench::sync(&mut fatima, &url).unwrap();
    assert_eq!(fatima.case_count().unwrap(), 2);
}

/// The heaviest push a phone can sign that passes every per-change rule: a real case, then
/// four changes of 20,000 edits each (the village set again and again), up to the operation
/// cap. Sent as every case that fits in a body, so the server applies all of it for each
/// before the layout check at the end refuses them (a case id that does not match, a village
/// that is not text).
fn hostile_body_for(store: &mut Store) -> Vec<u8> {
    let case_id = store.create_case(&suivi_tests::child(7)).unwrap();
    let mut doc = store.load_doc(&case_id).unwrap().unwrap();
    let mut changes = doc.changes_since(&[]);
    let mut am = doc.automerge().clone().with_actor(actor_of(store));
    let ident = am.get(ROOT, "identification").unwrap().unwrap().1;
    for _ in 0..4 {
        // Alternating values: Automerge skips a put of the value a key already holds.
        for n in 0..20_000 {
            am.put(&ident, "village", n % 2 == 0).unwrap();
        }
        am.commit_with(
            CommitOptions::default()
                .with_message(r#"{"user":"mallory","action":"case.edit"}"#)
                .with_time(0),
        );
    }
    let heavy = am.get_changes(&doc.heads());
    let ops: Vec<usize> = heavy.iter().map(|c| c.len()).collect();
    assert_eq!(ops, [20_000; 4], "each edit is an operation");
    changes.extend(heavy.into_iter().map(|c| c.raw_bytes().to_vec()));
    let mut push = vec![suivi_tests::case_changes(&case_id, changes.clone())];
    // As many cases as fit the 8 MiB a body may inflate to.
    let per_case: usize = changes.iter().map(Vec::len).sum();
    let cases = (protocol::SYNC_BODY_DECOMPRESSED_BYTES_MAX / (per_case + 64)).min(500);
    push.extend((1..cases).map(|c| case(c, &changes)));
    body(push)
}

/// The `name=value` of the cookie a response sets whose pair starts with `prefix`.
fn set_cookie(headers: &reqwest::header::HeaderMap, prefix: &str) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.split(';').next().filter(|p| p.starts_with(prefix)))
        .map(str::to_string)
}

/// A console sign-in as a browser makes it, from `from`: the login page (its double-submit
/// token), then the form. Returns the status.
async fn sign_in(url: &str, from: std::net::IpAddr, user: &str, password: &str) -> u16 {
    let Ok(client) = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(from)
        .timeout(Duration::from_secs(120))
        .build()
    else {
        return 0;
    };
    let Ok(page) = client.get(format!("{url}/console/login")).send().await else {
        return 0;
    };
    let cookie = set_cookie(page.headers(), "suivi_login=").unwrap_or_default();
    let csrf = cookie.trim_start_matches("suivi_login=").to_string();
    client
        .post(format!("{url}/console/login"))
        .header(reqwest::header::COOKIE, cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("user", user),
            ("password", password),
        ])
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// 500 sign-ins at once from 100 addresses, with unknown names and a real supervisor's (wrong
/// and right passwords): password checks run a few at a time behind a short queue, so the
/// server's peak memory stays within the budget (on main at d9e481c, 200 such sign-ins took it
/// from 37 MB to 3.8 GB), and the console and sync go on answering meanwhile.
#[test]
fn parallel_sign_ins_stay_within_the_memory_budget() {
    const PASSWORD: &str = "a long console password";
    let mut server = ServerProcess::start(&server_binary()).unwrap();
    let url = format!("http://{}", server.addr);
    let dir = tempfile::tempdir().unwrap();
    for (user, role, team) in [
        ("amina", Role::Agent, "sikasso"),
        ("fatima", Role::Supervisor, "sikasso"),
        ("ali", Role::Supervisor, "kayes"),
    ] {
        suivi_server::admin::add_user(server.store.as_ref(), user, role, team, None).unwrap();
    }
    for user in ["fatima", "ali"] {
        suivi_server::admin::set_password(server.store.as_ref(), user, PASSWORD).unwrap();
    }
    let mut amina = bench::enroll(&server, dir.path(), "amina", &url).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let office: std::net::IpAddr = "127.0.0.9".parse().unwrap();
    // Warm: one sign-in of each kind (the unknown-user hash is made on first use).
    assert_eq!(
        runtime.block_on(sign_in(&url, office, "nobody", "guess")),
        401
    );
    // Ali signs in before the storm; his console must keep answering during it.
    let ali = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let session = {
        let page = ali.get(format!("{url}/console/login")).send().unwrap();
        let login = set_cookie(page.headers(), "suivi_login=").unwrap();
        let csrf = login.trim_start_matches("suivi_login=").to_string();
        let signed = ali
            .post(format!("{url}/console/login"))
            .header(reqwest::header::COOKIE, login)
            .form(&[
                ("csrf", csrf.as_str()),
                ("user", "ali"),
                ("password", PASSWORD),
            ])
            .send()
            .unwrap();
        assert_eq!(signed.status().as_u16(), 303);
        set_cookie(signed.headers(), "suivi_session=").unwrap()
    };
    let before = server.peak_rss_bytes();
    let storm = {
        let url = url.clone();
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let tries: Vec<_> = (0..500u32)
                    .map(|n| {
                        let url = url.clone();
                        let from: std::net::IpAddr =
                            format!("127.0.4.{}", n % 100 + 1).parse().unwrap();
                        tokio::spawn(async move {
                            let (user, password) = match n % 4 {
                                0 => ("fatima", "a wrong password"),
                                1 => ("fatima", PASSWORD),
                                _ => ("nobody-at-all", "a guess"),
                            };
                            let user = if user == "nobody-at-all" {
                                format!("nobody{n}")
                            } else {
                                user.to_string()
                            };
                            sign_in(&url, from, &user, password).await
                        })
                    })
                    .collect();
                let mut statuses = Vec::new();
                for t in tries {
                    statuses.push(t.await.unwrap_or(0));
                }
                statuses
            })
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    // The console answers a signed-in supervisor, and a phone syncs, while the storm runs.
    let started = Instant::now();
    let page = ali
        .get(format!("{url}/console/cases"))
        .header(reqwest::header::COOKIE, &session)
        .send()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let console_took = started.elapsed();
    amina.create_case(&suivi_tests::child(1)).unwrap();
    let started = Instant::now();
    let report = bench::sync(&mut amina, &url).expect("amina syncs during the storm");
    assert_eq!(report.cases_up, 1);
    let sync_took = started.elapsed();
    let statuses = storm.join().unwrap();
    let after = server.peak_rss_bytes();
    let count = |s: u16| statuses.iter().filter(|x| **x == s).count();
    println!(
        "500 sign-ins at once: {} signed in, {} refused, {} waiting (429), {} busy (503), {} other; \
         console page {:.2} s, sync {:.2} s; peak RSS {:.1} → {:.1} MB",
        count(303),
        count(401),
        count(429),
        count(503),
        statuses.len() - count(303) - count(401) - count(429) - count(503),
        console_took.as_secs_f64(),
        sync_took.as_secs_f64(),
        before as f64 / MB as f64,
        after as f64 / MB as f64
    );
    assert!(
        statuses.iter().all(|s| [303, 401, 429, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(count(401) > 0, "passwords were checked");
    assert!(
        count(503) > 0,
        "the queue was full: the rest were told busy"
    );
    assert!(
        after.saturating_sub(before) <= PER_REQUEST_RSS_MAX,
        "500 sign-ins raised peak RSS by {} MB",
        (after - before) / MB
    );
    assert!(server.is_running());
}
