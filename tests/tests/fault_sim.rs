//! The seeded fault simulation (`suivi_tests::sim`) on a small range of seeds: a server process
//! and four phones (each operation its own `suivi` process) through the link emulator, every
//! fault kind injected in every seed. Longer ranges: `cargo run -p suivi-tests --bin suivi-sim`.
//! A failing seed is printed with its steps; rerun it with SUIVI_SIM_SEEDS=<seed>.

use suivi_tests::sim::{self, Fault};

const SEEDS: std::ops::Range<u64> = 0..2;
const STEPS: usize = 40;

#[test]
fn every_acknowledged_record_survives_seeded_faults_and_every_side_converges() {
    let mut total = sim::Tally::default();
    for seed in sim::seeds_from_env(SEEDS) {
        match sim::run_seed(seed, STEPS) {
            Ok(tally) => total.add(&tally),
            Err(failure) => panic!("{failure}"),
        }
    }
    eprint!("{}", sim::report(&total));
    assert_eq!(total.records_lost, 0);
    assert!(total.saves_acknowledged > 0 && total.records_checked > total.saves_acknowledged);
    // Every fault kind struck at least once: a simulation whose faults all missed proves nothing.
    for fault in Fault::ALL {
        assert!(
            total.faults.get(&fault).copied().unwrap_or(0) > 0,
            "{fault:?} was never injected"
        );
    }
    assert!(total.skewed_clock_operations > 0);
}
