//! Five devices and a server, random offline edits and random sync order, over many seeds:
//! every device converges with the server and nothing is lost. A failing seed is printed; rerun
//! it with SUIVI_SIM_SEED=<seed>.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use suivi_server::admin;
use suivi_server::storage::prelude::*;
use suivi_server::storage::Role;
use suivi_tests::{child, record, referral, visit, TestDevice, TestServer};

const SEEDS: u64 = 6;
const STEPS: usize = 60;

fn run_seed(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let server = TestServer::start();
    // Three agents and a supervisor in one team, an agent in another.
    for (user, role, team) in [
        ("amina", Role::Agent, "souk-sebt"),
        ("youssef", Role::Agent, "souk-sebt"),
        ("salma", Role::Agent, "souk-sebt"),
        ("fatima", Role::Supervisor, "souk-sebt"),
        ("moussa", Role::Agent, "sikasso"),
    ] {
        server.add_user(user, role, team);
    }
    let users = ["amina", "youssef", "salma", "fatima", "moussa"];
    let mut devices: Vec<TestDevice> = users.iter().map(|u| server.device(u)).collect();
    let mut created = 0usize;
    for step in 0..STEPS {
        let d = rng.gen_range(0..devices.len());
        let ids = devices[d].case_ids();
        let pick =
            |rng: &mut StdRng| (!ids.is_empty()).then(|| ids[rng.gen_range(0..ids.len())].clone());
        match rng.gen_range(0..10) {
            0..=1 => {
                devices[d].store.create_case(&child(created)).unwrap();
                created += 1;
            }
            2..=3 => {
                if let Some(id) = pick(&mut rng) {
                    let village = ["Kignan", "Misséni", "Zégoua"][rng.gen_range(0..3)];
                    devices[d]
                        .store
                        .edit_case(
                            &id,
                            &record(json!({"village": village, "hours_per_week": step})),
                        )
                        .unwrap();
                }
            }
            4 => {
                if let Some(id) = pick(&mut rng) {
                    devices[d].store.refer(&id, &referral(step)).unwrap();
                }
            }
            5 => {
                if let Some(id) = pick(&mut rng) {
                    devices[d].store.add_followup(&id, &visit(step)).unwrap();
                }
            }
            6 => {
                // A supervisor hands a case to another agent now and then.
                if let Some(id) = server_case(&server, &mut rng) {
                    let to = ["amina", "youssef", "salma", "moussa"][rng.gen_range(0..4)];
                    admin::assign(server.store.as_ref(), &id, to).unwrap();
                }
            }
            _ => {
                devices[d]
                    .sync()
                    .unwrap_or_else(|e| panic!("seed {seed} step {step}: sync failed: {e}"));
            }
        }
    }
    // Everyone syncs until quiet: twice round is enough, since a round carries every change up
    // and the second carries everything down.
    for _ in 0..2 {
        for device in devices.iter_mut() {
            device
                .sync()
                .unwrap_or_else(|e| panic!("seed {seed}: final sync failed: {e}"));
        }
    }
    for (user, device) in users.iter().zip(&devices) {
        assert_eq!(
            device.store.unsynced_case_count().unwrap(),
            0,
            "seed {seed}: {user} kept unsynced changes"
        );
        let expected = readable_cases(&server, user);
        assert_eq!(
            device.case_ids(),
            expected,
            "seed {seed}: {user}'s caseload differs from what the server allows"
        );
        for id in &expected {
            assert_eq!(
                device.case_heads(id),
                server.case_heads(id),
                "seed {seed}: {user} and server differ on case {id}"
            );
        }
    }
}

fn server_case(server: &TestServer, rng: &mut StdRng) -> Option<String> {
    let ids = all_case_ids(server);
    (!ids.is_empty()).then(|| ids[rng.gen_range(0..ids.len())].clone())
}

fn all_case_ids(server: &TestServer) -> Vec<String> {
    let conn = rusqlite::Connection::open(server.dir.path().join("server.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT case_id FROM cases ORDER BY case_id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The cases the server's rules let this user read.
fn readable_cases(server: &TestServer, user: &str) -> Vec<String> {
    let ids = all_case_ids(server);
    let access = server.store.case_access(&ids).unwrap();
    let user = server.store.user(user).unwrap().unwrap();
    let mut out: Vec<String> = ids
        .into_iter()
        .filter(|id| suivi_core::policy::may_read(&user.subject(), &access[id].ownership()))
        .collect();
    out.sort();
    out
}

#[test]
fn five_devices_random_offline_edits_converge_over_many_seeds() {
    let seeds: Vec<u64> = match std::env::var("SUIVI_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("a number")],
        Err(_) => (0..SEEDS)
            .map(|i| 0x5u64.wrapping_mul(1_000_003).wrapping_add(i * 7919))
            .collect(),
    };
    for seed in seeds {
        let result = std::panic::catch_unwind(|| run_seed(seed));
        if let Err(panic) = result {
            eprintln!("simulation failed with seed {seed}: rerun with SUIVI_SIM_SEED={seed}");
            std::panic::resume_unwind(panic);
        }
    }
}
