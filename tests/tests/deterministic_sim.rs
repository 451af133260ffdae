//! The deterministic simulation in CI (`suivi_tests::dsim`): the seeds that fit in about a
//! minute, a seed replayed exactly, and the planted bug found. The clock and ids it simulates
//! are process-wide, so this binary holds these tests alone and runs them one at a time.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::sync::Mutex;

use suivi_tests::dsim;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn scratch() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// `SUIVI_DSIM_SEEDS=A..B` runs other seeds (the full 10,000: RELIABILITY.md).
#[test]
fn every_seed_keeps_every_record_and_converges() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let seeds = dsim::seeds_from_env(0..400);
    let started = std::time::Instant::now();
    match dsim::run_seeds(seeds, dsim::STEPS, &scratch()) {
        Ok(tally) => {
            println!("{}", dsim::report(&tally, started.elapsed().as_secs_f64()));
            assert_eq!(tally.lost, 0);
            assert!(
                tally.records_checked > 0,
                "the seeds recorded nothing to check"
            );
            for fault in [
                "requests lost",
                "replies lost",
                "requests delayed",
                "requests duplicated",
                "streams cut mid-frame",
                "server restarts",
                "restores from an older backup",
                "reassignments",
                "merges",
                "erasures",
            ] {
                assert!(
                    tally.faults.get(fault).copied().unwrap_or(0) > 0,
                    "no seed injected {fault}"
                );
            }
        }
        Err(failure) => panic!("{failure}"),
    }
}

#[test]
fn a_seed_replays_exactly() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (first, first_log) = dsim::trace_seed(11, dsim::STEPS, &scratch()).unwrap();
    let (second, second_log) = dsim::trace_seed(11, dsim::STEPS, &scratch()).unwrap();
    // Case and record ids, faults and every sync's outcome, line by line.
    assert_eq!(first_log, second_log);
    assert_eq!(format!("{first:?}"), format!("{second:?}"));
    let (_, other_log) = dsim::trace_seed(12, dsim::STEPS, &scratch()).unwrap();
    assert_ne!(first_log, other_log, "another seed, another run");
}

/// The bug planted behind the `simulation` feature (a push that stores two cases or more
/// acknowledges the last without storing it) is found within five seeds.
#[test]
fn the_planted_bug_is_found_within_five_seeds() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    suivi_server::service::planted::set(true);
    let found = dsim::run_seeds(0..5, dsim::STEPS, &scratch());
    suivi_server::service::planted::set(false);
    let failure = found.expect_err("the planted bug went unseen for five seeds");
    assert!(failure.what.contains("is not on the server"), "{failure}");
}
