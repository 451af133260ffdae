//! The seeded fault simulation over a range of seeds, longer than CI runs it; prints the counts
//! RELIABILITY.md keeps. `cargo build && cargo run -p suivi-tests --bin suivi-sim -- --seeds 0..100`
//! (needs root for the tmpfs and libfaketime: `apt install faketime`). Stops at the first
//! failing seed, printed with its steps.

use clap::Parser;
use suivi_tests::sim;

#[derive(Parser)]
#[command(about = "Seeded fault simulation: a server and four phones, each its own process")]
struct Args {
    /// A seed, or a range a..b.
    #[arg(long, default_value = "0..20")]
    seeds: String,
    /// Steps per seed.
    #[arg(long, default_value_t = 60)]
    steps: usize,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let Some(seeds) = sim::parse_seeds(&args.seeds) else {
        eprintln!("--seeds: a seed or a range a..b");
        return std::process::ExitCode::from(2);
    };
    let mut total = sim::Tally::default();
    for seed in seeds {
        match sim::run_seed(seed, args.steps) {
            Ok(tally) => {
                eprintln!(
                    "seed {seed}: ok, {} faults, {} records checked, {:.1} s",
                    tally.faults_injected(),
                    tally.records_checked,
                    tally.elapsed.as_secs_f64()
                );
                total.add(&tally);
            }
            Err(failure) => {
                eprintln!("{failure}");
                print!("{}", sim::report(&total));
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    print!("{}", sim::report(&total));
    std::process::ExitCode::SUCCESS
}
