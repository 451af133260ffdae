//! `suivi-bench`: sync over an emulated 2G link, local operations on a caseload, and a server
//! under many devices, each against a real `suivi-server` process. Prints a Markdown table and
//! writes JSON (and an SVG plot of first sync against caseload size) when asked.
//!
//!     cargo build --release -p sync-server -p suivi-tests
//!     target/release/suivi-bench --json bench.json --markdown bench.md --plot bench.svg
//!     target/release/suivi-bench --smoke          # tiny sizes, lan profile: the CI run

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use suivi_core::{CaseFilter, Store};
use suivi_server::admin;
use suivi_server::storage::Role;
use suivi_tests::bench::*;
use suivi_tests::link::LinkProfile;
mod busy;
mod console;
mod report;
mod sync;
use busy::*;
use console::*;
use report::*;
use sync::*;

/// Syncs one device retries before the cut scenario gives up.
const SYNC_ATTEMPTS_MAX: usize = 200;

#[derive(Parser)]
#[command(name = "suivi-bench", about = "Suivi benchmarks over an emulated link")]
struct Cli {
    /// Link profile: 2g, 3g or lan.
    #[arg(long, default_value = "2g")]
    profile: String,
    /// Tiny sizes on the lan profile, for CI.
    #[arg(long)]
    smoke: bool,
    /// Runs per timed scenario (the 10,000-case syncs run once).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Caseload sizes for the first-sync scenario; the largest also serves the local and
    /// "anything new?" scenarios.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,3000,10000")]
    sizes: Vec<usize>,
    #[arg(long, default_value_t = 200)]
    busy_devices: usize,
    #[arg(long, default_value_t = 50)]
    busy_cases: usize,
    /// Seconds between link cuts in the cut scenario.
    #[arg(long, default_value_t = 20)]
    cut_every: u64,
    /// Feed rows other teams write before the "pull by caseload" scenario measures a quiet
    /// team's "anything new?".
    #[arg(long, default_value_t = 1_000_000)]
    other_rows: usize,
    /// Run only the first-sync scenario (its figures and the encodings table).
    #[arg(long)]
    first_sync_only: bool,
    /// Run only the console scenario (on SQLite, and on PostgreSQL with --postgres).
    #[arg(long)]
    console_only: bool,
    /// Run only the busy server (on a server holding nothing else).
    #[arg(long)]
    busy_only: bool,
    /// Cases of one team behind the console's caseload scenario (listing, search, filters).
    #[arg(long, default_value_t = 100_000)]
    console_cases: usize,
    /// Also run the pull by caseload and the busy server on two instances sharing one PostgreSQL database (a
    /// database made for the run on the test cluster: SUIVI_TEST_POSTGRES, or the one
    /// tests/postgres.sh starts).
    #[arg(long)]
    postgres: bool,
    /// The suivi-server binary (default: beside this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long)]
    markdown: Option<PathBuf>,
    #[arg(long)]
    plot: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Internal>,
}

#[derive(Subcommand)]
enum Internal {
    /// (internal) sync one device until it succeeds, then print its report and peak memory.
    DeviceSync {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        url: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Internal::DeviceSync { db, url }) => device_sync(db, url),
        None => run(cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("suivi-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Retries a sync until it completes, as the app does when the link comes back.
fn device_sync(db: &Path, url: &str) -> Result<(), String> {
    let started = Instant::now();
    let mut store = Store::open(db, BENCH_KEY).map_err(|e| e.to_string())?;
    let mut attempts = 0;
    let report = loop {
        attempts += 1;
        match sync(&mut store, url) {
            Ok(report) => break report,
            // The link came back: try again, as the app does.
            Err(e) if attempts < SYNC_ATTEMPTS_MAX => {
                eprintln!("attempt {attempts}: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    };
    let out = serde_json::json!({
        "attempts": attempts,
        "report": report,
        "cases": store.case_count().map_err(|e| e.to_string())?,
        "wall_ms": ms(started.elapsed()),
        "peak_rss_kb": peak_rss_kb(),
    });
    println!("{out}");
    Ok(())
}

struct Ctx {
    cli: Cli,
    profile: LinkProfile,
    server: ServerProcess,
    link: Link,
    dir: tempfile::TempDir,
    figures: Vec<Figure>,
    /// What each first sync received, in each candidate encoding.
    encodings: Vec<Encodings>,
}

fn step(text: &str) {
    eprintln!("· {text}");
}

fn run(mut cli: Cli) -> Result<(), String> {
    if cli.smoke {
        cli.profile = "lan".into();
        cli.runs = 1;
        cli.sizes = vec![20, 60];
        cli.busy_devices = 5;
        cli.busy_cases = 5;
        cli.cut_every = 1;
        cli.other_rows = 5_000;
        cli.console_cases = 2_000;
    }
    let profile = LinkProfile::by_name(&cli.profile).ok_or("profile is 2g, 3g or lan")?;
    let server_bin = match &cli.server_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("suivi-server"),
    };
    if !server_bin.exists() {
        return Err(format!(
            "{} not found: cargo build -p sync-server first",
            server_bin.display()
        ));
    }
    let server = ServerProcess::start(&server_bin)?;
    let link = Link::start(server.addr, profile)?;
    let mut ctx = Ctx {
        cli,
        profile,
        server,
        link,
        dir: devices_dir(),
        figures: Vec::new(),
        encodings: Vec::new(),
    };
    if ctx.cli.console_only {
        let figures = console_caseload_on(&ctx, &ctx.server, "SQLite")?;
        ctx.figures.extend(figures);
        let figure = console_reassign_on(&ctx, &ctx.server, "SQLite")?;
        ctx.figures.push(figure);
        if ctx.cli.postgres {
            let db = suivi_server::testing::TestDatabase::create();
            let instance = ServerProcess::start_on(&server_bin, Some(&db.url), None)?;
            let figures = console_caseload_on(&ctx, &instance, "PostgreSQL")?;
            ctx.figures.extend(figures);
            let figure = console_reassign_on(&ctx, &instance, "PostgreSQL")?;
            ctx.figures.push(figure);
        }
        return report(&ctx, &[]);
    }
    if ctx.cli.busy_only {
        busy(&mut ctx)?;
        return report(&ctx, &[]);
    }
    let largest = *ctx.cli.sizes.iter().max().ok_or("no sizes")?;
    let mut first_sync_points = Vec::new();
    let mut large_device = None;
    let mut incremental_agent = None;
    let sizes = ctx.cli.sizes.clone();
    for size in sizes {
        let FirstSync {
            point,
            supervisor,
            agent,
        } = first_sync(&mut ctx, size)?;
        first_sync_points.push(point);
        if size == largest {
            large_device = Some(supervisor);
        }
        if size == 1000 || (incremental_agent.is_none() && size == ctx.cli.sizes[0]) {
            incremental_agent = Some((size, agent));
        }
    }
    if ctx.cli.first_sync_only {
        return report(&ctx, &first_sync_points);
    }
    let (inc_size, mut agent) =
        incremental_agent.ok_or("no caseload for the incremental scenario")?;
    incremental(&mut ctx, inc_size, &mut agent)?;
    let mut large = large_device.ok_or("no large device")?;
    anything_new(&mut ctx, largest, &mut large)?;
    cut_sync(&mut ctx, largest)?;
    local(&mut ctx, largest, &mut large)?;
    app_during_sync(&mut ctx, largest)?;
    pull_by_caseload(&mut ctx)?;
    let figures = console_caseload_on(&ctx, &ctx.server, "SQLite")?;
    ctx.figures.extend(figures);
    let figure = console_reassign_on(&ctx, &ctx.server, "SQLite")?;
    ctx.figures.push(figure);
    busy(&mut ctx)?;
    if ctx.cli.postgres {
        on_postgres(&mut ctx, &server_bin)?;
    }
    report(&ctx, &first_sync_points)
}
