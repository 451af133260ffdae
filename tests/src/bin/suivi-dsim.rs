//! `suivi-dsim`: the deterministic simulation (`suivi_tests::dsim`) over a range of seeds.
//!
//!     suivi-dsim --seeds 0..10000 [--steps 60] [--scratch /dev/shm] [--planted-bug]
//!     suivi-dsim --seed 1234            # replay one seed, with its log on failure
//!
//! Prints seeds per minute, the faults injected, the records checked and lost; on a failure,
//! the seed and its last steps, and exits 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use suivi_tests::dsim;

fn main() -> ExitCode {
    let mut seeds = 0..100u64;
    let mut steps = dsim::STEPS;
    let mut scratch = PathBuf::from(if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    });
    let mut planted = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = |args: &mut dyn Iterator<Item = String>| args.next().unwrap_or_default();
        match arg.as_str() {
            "--seed" => {
                let n: u64 = value(&mut args).parse().unwrap_or(0);
                seeds = n..n + 1;
            }
            "--seeds" => match dsim::parse_seeds(&value(&mut args)) {
                Some(range) => seeds = range,
                None => return usage(),
            },
            "--steps" => steps = value(&mut args).parse().unwrap_or(steps),
            "--scratch" => scratch = PathBuf::from(value(&mut args)),
            "--planted-bug" => planted = true,
            _ => return usage(),
        }
    }
    suivi_server::service::planted::set(planted);
    let started = Instant::now();
    match dsim::run_seeds(seeds, steps, &scratch) {
        Ok(tally) => {
            println!("{}", dsim::report(&tally, started.elapsed().as_secs_f64()));
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: suivi-dsim [--seed N | --seeds A..B] [--steps N] [--scratch DIR] [--planted-bug]"
    );
    ExitCode::from(2)
}
