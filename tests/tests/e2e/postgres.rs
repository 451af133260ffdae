//! The server on PostgreSQL: several `suivi-server` processes on one database, devices syncing
//! through any of them in any order, and the soak that holds the feed's sequencer for seconds
//! while they do.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::postgres::NoTls;
use rand::{Rng, SeedableRng};
use suivi_core::sync::HttpTransport;
use suivi_core::Store;
use suivi_server::at_rest::KeySource;
use suivi_server::storage::Role;
use suivi_server::testing::TestDatabase;
use suivi_tests::{child, visit, ServerSite, DEVICE_KEY};

/// An enrolled phone of `user`, through the instance at `url`.
fn phone(dir: &std::path::Path, user: &str, code: &str, url: &str) -> Store {
    let mut store = Store::create(
        &dir.join(format!("{user}.db")),
        DEVICE_KEY,
        user,
        &format!("{user}-phone"),
    )
    .unwrap();
    store
        .enroll(&HttpTransport::new(url).unwrap(), url, code)
        .unwrap();
    store
}

fn sync(store: &mut Store, url: &str) {
    store
        .sync(&HttpTransport::new(url).unwrap(), &mut |_| {})
        .unwrap_or_else(|e| panic!("sync through {url}: {e}"));
}

fn heads(store: &Store, case_id: &str) -> Vec<automerge::ChangeHash> {
    let mut heads = store.load_doc(case_id).unwrap().unwrap().heads();
    heads.sort();
    heads
}

fn case_ids(store: &Store) -> BTreeSet<String> {
    store
        .list_cases(&suivi_core::CaseFilter::default())
        .unwrap()
        .into_iter()
        .map(|c| c.case_id)
        .collect()
}

/// Admin commands and two instances on one database: a case pushed through one instance reaches
/// the supervisor through the other, and an enrollment code made on one host enrolls on another.
/// What the operator can get wrong is refused with a message that says what to do.
#[test]
fn two_instances_on_one_database_serve_the_same_devices() {
    let db = TestDatabase::create();
    let first = ServerSite::on_postgres(&db.url);
    first.ok(&[
        "user", "add", "amina", "--role", "agent", "--team", "sikasso",
    ]);
    first.ok(&[
        "user",
        "add",
        "fatima",
        "--role",
        "supervisor",
        "--team",
        "sikasso",
    ]);
    assert!(
        first.key_file().exists(),
        "the first start made the key file"
    );
    let second = first.another_instance();
    let (a, b) = (first.serve(), second.serve());
    let dir = tempfile::tempdir().unwrap();
    let code = first.ok(&["device", "code", "amina"]).trim().to_string();
    let mut amina = phone(dir.path(), "amina", &code, &b.url());
    let code = second.ok(&["device", "code", "fatima"]).trim().to_string();
    let mut fatima = phone(dir.path(), "fatima", &code, &a.url());
    let case = amina.create_case(&child(1)).unwrap();
    sync(&mut amina, &a.url());
    sync(&mut fatima, &b.url());
    assert_eq!(case_ids(&fatima), BTreeSet::from([case.clone()]));
    fatima.add_followup(&case, &visit(1)).unwrap();
    sync(&mut fatima, &b.url());
    sync(&mut amina, &a.url());
    assert_eq!(heads(&amina, &case), heads(&fatima, &case));
    let listed = second.ok(&["device", "list"]);
    assert!(
        listed.contains("amina-phone") && listed.contains("fatima-phone"),
        "{listed}"
    );

    // A third host given another key file does not start: it cannot read this database.
    let stranger = ServerSite::on_postgres(&db.url);
    std::fs::write(
        stranger.key_file(),
        format!(
            "database-key = {}\ncode-key = {}\n",
            "11".repeat(32),
            "22".repeat(32)
        ),
    )
    .unwrap();
    let refused = stranger.fails(&["device", "list"]);
    assert!(refused.contains("does not open"), "{refused}");
    // One with no key file at all is told to restore it, and no new key is made.
    let keyless = ServerSite::on_postgres(&db.url);
    let refused = keyless.fails(&["device", "list"]);
    assert!(refused.contains("key file"), "{refused}");
    assert!(!keyless.key_file().exists());
    // A passphrase is for SQLite; PostgreSQL takes the key file.
    let out = first
        .command(&["device", "list"])
        .env("SUIVI_SERVER_KEY", "a passphrase")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("same key file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refused = first.fails(&["store", "encrypt"]);
    assert!(refused.contains("SQLite"), "{refused}");
    // The URL's password never reaches a message.
    assert!(!refused.contains("suivi-test"), "{refused}");
}

/// The soak: 3 instances, 32 phones (two teams of 14 agents and 2 supervisors) creating cases
/// and follow-ups and syncing through a random instance each time, while another session holds
/// the feed's sequencer for 1.5 s again and again (a commit that takes seconds). At the end every
/// supervisor holds every case of its team at its author's heads, every agent exactly her own
/// cases, and the feed has each change once with no gap. `SUIVI_SOAK_SECONDS` makes it longer
/// (default 12).
#[test]
fn soak_three_instances_thirty_two_phones_and_a_stalled_sequencer() {
    let seconds: u64 = std::env::var("SUIVI_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let db = TestDatabase::create();
    let first = ServerSite::on_postgres(&db.url);
    let opened = suivi_server::at_rest::open_postgres(
        &db.url,
        &first.data(),
        &KeySource::File(first.key_file()),
    )
    .unwrap();
    let mut people = Vec::new();
    for team in ["sikasso", "souk-sebt"] {
        for n in 0..16 {
            let (user, role) = if n < 2 {
                (format!("{team}-supervisor-{n}"), Role::Supervisor)
            } else {
                (format!("{team}-agent-{n}"), Role::Agent)
            };
            suivi_server::admin::add_user(opened.store.as_ref(), &user, role, team, None).unwrap();
            people.push((user, role, team));
        }
    }
    let sites = [first.another_instance(), first.another_instance()];
    let servers = [first.serve(), sites[0].serve(), sites[1].serve()];
    let urls: Vec<String> = servers.iter().map(|s| s.url()).collect();
    let dir = tempfile::tempdir().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let stalls = Arc::new(AtomicUsize::new(0));
    let stall_url = db.url.clone();
    let staller = {
        let (stop, stalls) = (stop.clone(), stalls.clone());
        std::thread::spawn(move || {
            let mut client = ::postgres::Client::connect(&stall_url, NoTls).unwrap();
            while !stop.load(Ordering::SeqCst) {
                let mut tx = client.transaction().unwrap();
                tx.query("SELECT seq FROM feed_head FOR UPDATE", &[])
                    .unwrap();
                std::thread::sleep(Duration::from_millis(1500));
                tx.commit().unwrap();
                stalls.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let phones: Vec<(String, Role, &str, Store)> = std::thread::scope(|scope| {
        let handles: Vec<_> = people
            .iter()
            .enumerate()
            .map(|(i, (user, role, team))| {
                let code = suivi_server::admin::enrollment_code(
                    opened.store.as_ref(),
                    &opened.codes,
                    user,
                )
                .unwrap();
                let (urls, dir) = (&urls, dir.path());
                scope.spawn(move || {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64);
                    let mut store = phone(dir, user, &code, &urls[rng.gen_range(0..urls.len())]);
                    let mut own: Vec<String> = Vec::new();
                    let mut n = 0;
                    while Instant::now() < deadline {
                        if *role == Role::Agent {
                            if own.is_empty() || rng.gen_bool(0.5) {
                                own.push(store.create_case(&child(i * 1000 + n)).unwrap());
                            } else {
                                let case = &own[rng.gen_range(0..own.len())];
                                store.add_followup(case, &visit(n)).unwrap();
                            }
                            n += 1;
                        }
                        sync(&mut store, &urls[rng.gen_range(0..urls.len())]);
                        std::thread::sleep(Duration::from_millis(rng.gen_range(100..400)));
                    }
                    (user.clone(), *role, *team, store)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    stop.store(true, Ordering::SeqCst);
    staller.join().unwrap();
    assert!(
        stalls.load(Ordering::SeqCst) >= 2,
        "the sequencer was held while phones synced"
    );

    // Everything pushed, then everything pulled, each through a random instance.
    let mut phones = phones;
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    for _round in 0..2 {
        for (_, _, _, store) in phones.iter_mut() {
            sync(store, &urls[rng.gen_range(0..urls.len())]);
        }
    }
    let mut team_cases: BTreeMap<&str, BTreeMap<String, Vec<automerge::ChangeHash>>> =
        BTreeMap::new();
    for (user, role, team, store) in &phones {
        if *role == Role::Agent {
            let cases = case_ids(store);
            assert!(!cases.is_empty(), "{user} made cases");
            for case in cases {
                let h = heads(store, &case);
                team_cases.entry(team).or_default().insert(case, h);
            }
        }
    }
    let mut total_cases = 0;
    for (user, role, team, store) in &phones {
        let expected = &team_cases[team];
        if *role == Role::Supervisor {
            let held = case_ids(store);
            assert_eq!(
                held.len(),
                expected.len(),
                "{user} holds every case of {team}, and only those"
            );
            for (case, h) in expected {
                assert!(held.contains(case), "{user} is missing {case}");
                assert_eq!(
                    &heads(store, case),
                    h,
                    "{user} holds {case} at its author's heads"
                );
            }
        } else {
            total_cases += case_ids(store).len();
        }
    }
    // The feed: each stored change once (no duplicate), positions 1..head with no gap.
    let mut client = ::postgres::Client::connect(&db.url, NoTls).unwrap();
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM changes),
                    (SELECT count(*) FROM feed WHERE audience IS NULL),
                    (SELECT count(DISTINCT change_id) FROM feed WHERE audience IS NULL),
                    (SELECT count(*) FROM feed), (SELECT coalesce(max(seq), 0) FROM feed),
                    (SELECT seq FROM feed_head)",
            &[],
        )
        .unwrap();
    let (changes, rows, distinct, all, max, head): (i64, i64, i64, i64, i64, i64) = (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    );
    assert_eq!(rows, changes, "one feed row per change");
    assert_eq!(distinct, changes, "no change twice");
    assert_eq!((all, max), (head, head), "positions 1..head, no gap");
    eprintln!(
        "soak: {seconds} s, 3 instances, 32 phones, {total_cases} cases, {changes} changes, \
         sequencer held {} times for 1.5 s",
        stalls.load(Ordering::SeqCst)
    );
    drop(servers);
}

/// Every row a store serves, as the trait reads it: users, devices, erasures, quarantine, quotas
/// and usage, and the whole feed as an officer's device pulls it (positions, payloads, verified
/// authors, times) with the mark at its end.
fn served_dump(store: &dyn suivi_server::ServerStore, users: &[&str]) -> String {
    use suivi_server::storage::Viewer;
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 86_400;
    let mut out = String::new();
    for user in users {
        out += &format!("{:?}\n", store.user(user).unwrap());
    }
    for device in store.devices().unwrap() {
        out += &format!(
            "{device:?} quota {:?} usage {:?}\n",
            store.device_quota(&device.device_id).unwrap(),
            store.device_usage(&device.device_id, today).unwrap()
        );
    }
    out += &format!(
        "erased {:?}\nquarantined {:?}\n",
        store.erasures_after(0, 1000).unwrap(),
        store.quarantined_cases().unwrap()
    );
    let officer = Viewer {
        user_id: "omar".into(),
        role: Role::Officer,
        team: "project".into(),
        device_id: "none".into(),
    };
    let page = store.feed_page(&officer, 0, usize::MAX).unwrap();
    assert!(!page.more);
    for row in &page.rows {
        out += &format!(
            "{} {} {} {} {} {}\n",
            row.seq,
            row.case_id,
            hex::encode(&row.data),
            row.user_id,
            row.device_id,
            row.received_at
        );
    }
    let ids: Vec<String> = store.case_ids().unwrap();
    let access = store.case_access(&ids).unwrap();
    for id in &ids {
        let a = &access[id];
        out += &format!("{id} {} {} {:?}\n", a.created_by, a.team, a.assignees);
    }
    out += &format!(
        "end {} mark {}\n",
        page.cursor,
        hex::encode(store.feed_mark(page.cursor).unwrap())
    );
    out
}

/// A district's SQLite server moves to PostgreSQL: `migrate-store` copies every table, the two
/// stores serve the same rows, and the phones notice nothing — the same cursors and marks (no
/// reset, nothing pulled twice), tokens and a pending enrollment code still good, a revoked
/// phone still revoked, an erased case still erased, a quota override kept.
#[test]
fn a_sqlite_server_moves_to_postgres_and_its_phones_notice_nothing() {
    let site = ServerSite::new();
    for (user, role) in [
        ("amina", "agent"),
        ("karim", "agent"),
        ("fatima", "supervisor"),
    ] {
        site.ok(&["user", "add", user, "--role", role, "--team", "sikasso"]);
    }
    site.ok(&[
        "user", "add", "omar", "--role", "officer", "--team", "project",
    ]);
    let served = site.serve();
    let dir = tempfile::tempdir().unwrap();
    let code =
        |site: &ServerSite, user: &str| site.ok(&["device", "code", user]).trim().to_string();
    let mut amina = phone(dir.path(), "amina", &code(&site, "amina"), &served.url());
    let mut fatima = phone(dir.path(), "fatima", &code(&site, "fatima"), &served.url());
    let karim_dir = tempfile::tempdir().unwrap();
    let mut karim = phone(
        karim_dir.path(),
        "karim",
        &code(&site, "karim"),
        &served.url(),
    );
    let cases: Vec<String> = (0..4)
        .map(|n| amina.create_case(&child(n)).unwrap())
        .collect();
    amina.add_followup(&cases[0], &visit(1)).unwrap();
    sync(&mut amina, &served.url());
    sync(&mut fatima, &served.url());
    sync(&mut karim, &served.url());
    site.ok(&["case", "assign", &cases[1], "karim"]);
    site.ok(&["case", "erase", &cases[3]]);
    let karim_device = karim.credentials().unwrap().device_id;
    site.ok(&["device", "revoke", &karim_device]);
    let amina_device = amina.credentials().unwrap().device_id;
    site.ok(&[
        "device",
        "quota",
        &amina_device,
        "--new-cases-per-day",
        "5000",
    ]);
    sync(&mut fatima, &served.url());
    // A code made before the move, used after it.
    let pending = code(&site, "fatima");
    drop(served);

    let db = TestDatabase::create();
    let from = format!("sqlite:{}", site.data().display());
    let out = site.ok(&["migrate-store", "--from", &from, "--to", &db.url]);
    assert!(out.contains("every table compared"), "{out}");
    assert!(
        !out.contains("suivi-test"),
        "the password is not printed: {out}"
    );
    // Migrating again into a database that holds data is refused.
    let again = site.fails(&["migrate-store", "--from", &from, "--to", &db.url]);
    assert!(again.contains("already holds"), "{again}");

    // Both stores, opened side by side, serve the same rows (the command compared its own
    // copy table by table; this reads both through the trait).
    let users = ["amina", "karim", "fatima", "omar"];
    let key = site.database_key();
    let sqlite = suivi_server::SqliteStore::open(&site.db(), Some(&key)).unwrap();
    let raw: [u8; 32] = hex::decode(&key[2..66]).unwrap().try_into().unwrap();
    let pg = suivi_server::PostgresStore::open(&db.url, &raw).unwrap();
    let before = served_dump(&sqlite, &users);
    assert!(before.contains(&cases[0]));
    assert_eq!(before, served_dump(&pg, &users), "the stores differ");
    drop((sqlite, pg));

    let moved = ServerSite {
        database: Some(db.url.clone()),
        ..ServerSite::new()
    };
    std::fs::copy(site.key_file(), moved.key_file()).unwrap();
    let served = moved.serve();
    let url = served.url();
    for phone in [&mut amina, &mut fatima] {
        let report = phone
            .sync(&HttpTransport::new(&url).unwrap(), &mut |_| {})
            .unwrap();
        assert!(!report.server_reset, "the phone noticed the move");
        assert_eq!(report.changes_down, 0, "nothing pulled again");
        assert_eq!(report.changes_up, 0);
    }
    amina.add_followup(&cases[0], &visit(2)).unwrap();
    sync(&mut amina, &url);
    sync(&mut fatima, &url);
    assert_eq!(heads(&fatima, &cases[0]), heads(&amina, &cases[0]));
    assert!(!case_ids(&fatima).contains(&cases[3]), "still erased");
    let second_dir = tempfile::tempdir().unwrap();
    let mut second = phone(second_dir.path(), "fatima", &pending, &url);
    sync(&mut second, &url);
    assert_eq!(case_ids(&second), case_ids(&fatima));
    assert!(matches!(
        karim.sync(&HttpTransport::new(&url).unwrap(), &mut |_| {}),
        Err(suivi_core::Error::DeviceRevoked)
    ));
    let quota = moved.ok(&["device", "quota", &amina_device]);
    assert!(
        quota.contains("of 5000 new cases") && quota.contains("override"),
        "{quota}"
    );
}
