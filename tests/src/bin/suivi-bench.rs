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
    /// Run only the console scenario (on SQLite, and on PostgreSQL with --postgres).
    #[arg(long)]
    console_only: bool,
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

fn team(size: usize) -> String {
    format!("t{size}")
}

/// A fresh supervisor device pulls a whole team caseload over the link.
/// A point of the first-sync plot: (cases, median ms, bytes down).
type PlotPoint = (usize, f64, u64);

/// The first-sync figure's point, the synced supervisor device, and the seeding agent's device.
struct FirstSync {
    point: PlotPoint,
    supervisor: Store,
    agent: Store,
}

fn first_sync(ctx: &mut Ctx, size: usize) -> Result<FirstSync, String> {
    step(&format!("seeding {size} cases"));
    let agent = seed_team(&ctx.server, ctx.dir.path(), &team(size), size)?;
    let runs = if size >= 10_000 { 1 } else { ctx.cli.runs };
    let mut times = Vec::new();
    let mut downs = Vec::new();
    let mut ups = Vec::new();
    let mut trips = 0;
    let mut device = None;
    for run in 0..runs {
        step(&format!("first sync of {size} cases, run {}", run + 1));
        let mut store = enroll_fresh(ctx, &format!("sup-{}", team(size)), run)?;
        ctx.link.emulator.reset_counters();
        let started = Instant::now();
        let report = sync(&mut store, &ctx.link.url())?;
        times.push(ms(started.elapsed()));
        downs.push(ctx.link.emulator.counters().down());
        ups.push(ctx.link.emulator.counters().up());
        trips = report.round_trips;
        if store.case_count().map_err(|e| e.to_string())? as usize != size {
            return Err(format!(
                "first sync of {size}: got {} cases",
                store.case_count().unwrap_or(0)
            ));
        }
        device = Some(store);
    }
    let device = device.ok_or("no run")?;
    let floor = changes_floor(&device)?;
    let (median, min, max) = summarise(&mut times);
    let down = downs.iter().copied().max().unwrap_or(0);
    let (target, met) = if size == 1000 && ctx.profile.name == "2g" {
        (
            "≤ 100 KB down, ≤ 2 round trips, < 6 s".to_string(),
            Some(down <= 100 * 1024 && trips <= 2 && median < 6000.0),
        )
    } else {
        ("—".into(), None)
    };
    ctx.figures.push(Figure {
        scenario: format!("first sync, {size} cases"),
        profile: ctx.profile.name.into(),
        runs,
        median_ms: median,
        min_ms: min,
        max_ms: max,
        bytes_up: ups.iter().copied().max().unwrap_or(0),
        bytes_down: down,
        round_trips: trips,
        floor_bytes: Some(floor),
        target,
        met,
        note: format!("wire/floor = {:.2}", down as f64 / floor.max(1) as f64),
    });
    Ok(FirstSync {
        point: (size, median, down),
        supervisor: device,
        agent,
    })
}

/// Enrolls a new device for a user (a user may have several devices).
fn enroll_fresh(ctx: &Ctx, user: &str, n: usize) -> Result<Store, String> {
    let dir = ctx.dir.path().join(format!("{user}-{n}-{}", rand_suffix()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    enroll(
        &ctx.server,
        &dir,
        user,
        &format!("http://{}", ctx.server.addr),
    )
}

fn rand_suffix() -> String {
    format!(
        "{:x}",
        Instant::now().elapsed().as_nanos()
            ^ std::process::id() as u128
            ^ rand::random::<u64>() as u128
    )
}

/// An up-to-date agent records a follow-up on 50 cases offline, then syncs.
fn incremental(ctx: &mut Ctx, size: usize, agent: &mut Store) -> Result<(), String> {
    let edits = 50.min(size);
    let mut times = Vec::new();
    let (mut up, mut down, mut trips) = (0, 0, 0);
    let mut floor = 0;
    for run in 0..ctx.cli.runs {
        step(&format!(
            "incremental sync of {edits} follow-ups, run {}",
            run + 1
        ));
        let before: Vec<(String, Vec<automerge::ChangeHash>)> = agent
            .list_cases(&CaseFilter {
                limit: Some(edits),
                ..Default::default()
            })
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|c| {
                let heads = agent
                    .load_doc(&c.case_id)
                    .ok()
                    .flatten()
                    .map(|mut d| d.heads())
                    .unwrap_or_default();
                (c.case_id, heads)
            })
            .collect();
        edit_followups(agent, edits)?;
        // The floor: the new changes alone, compressed together.
        let mut raw = Vec::new();
        for (id, heads) in &before {
            if let Some(mut doc) = agent.load_doc(id).map_err(|e| e.to_string())? {
                raw.extend(doc.changes_since(heads));
            }
        }
        floor = suivi_core::sync::protocol::compressed_changes_size(
            &raw.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        );
        ctx.link.emulator.reset_counters();
        let started = Instant::now();
        let report = sync(agent, &ctx.link.url())?;
        times.push(ms(started.elapsed()));
        up = ctx.link.emulator.counters().up();
        down = ctx.link.emulator.counters().down();
        trips = report.round_trips;
    }
    let (median, min, max) = summarise(&mut times);
    let is_2g = ctx.profile.name == "2g";
    ctx.figures.push(Figure {
        scenario: format!("incremental, {edits} follow-ups on a {size}-case device"),
        profile: ctx.profile.name.into(),
        runs: ctx.cli.runs,
        median_ms: median,
        min_ms: min,
        max_ms: max,
        bytes_up: up,
        bytes_down: down,
        round_trips: trips,
        floor_bytes: Some(floor),
        target: "1 round trip, < 1.5 s".into(),
        met: is_2g.then_some(trips == 1 && median < 1500.0),
        note: format!("wire up/floor = {:.2}", up as f64 / floor.max(1) as f64),
    });
    Ok(())
}

/// An up-to-date device asks for news when there is none.
fn anything_new(ctx: &mut Ctx, size: usize, device: &mut Store) -> Result<(), String> {
    step("anything new?");
    sync(device, &ctx.link.url())?;
    let mut times = Vec::new();
    let (mut total, mut trips) = (0, 0);
    let (mut up, mut down) = (0, 0);
    for _ in 0..ctx.cli.runs.max(3) {
        ctx.link.emulator.reset_counters();
        let started = Instant::now();
        let report = sync(device, &ctx.link.url())?;
        times.push(ms(started.elapsed()));
        up = ctx.link.emulator.counters().up();
        down = ctx.link.emulator.counters().down();
        total = up + down;
        trips = report.round_trips;
    }
    let (median, min, max) = summarise(&mut times);
    ctx.figures.push(Figure {
        scenario: format!("anything new? nothing new, {size}-case caseload"),
        profile: ctx.profile.name.into(),
        runs: times.len(),
        median_ms: median,
        min_ms: min,
        max_ms: max,
        bytes_up: up,
        bytes_down: down,
        round_trips: trips,
        floor_bytes: None,
        target: "1 round trip, < 2 KB".into(),
        met: Some(trips == 1 && total < 2048),
        note: format!("{total} B on the wire, HTTP headers included"),
    });
    Ok(())
}

/// A first sync of the largest caseload in a separate process, with the link cut every
/// `cut_every` seconds: it resumes from its last page each time; peak memory is the child's.
fn cut_sync(ctx: &mut Ctx, size: usize) -> Result<(), String> {
    step(&format!(
        "first sync of {size} cases with the link cut every {} s",
        ctx.cli.cut_every
    ));
    let user = format!("sup-{}", team(size));
    let store = enroll_fresh(ctx, &user, 99)?;
    let db = store_path(ctx, &user)?;
    drop(store);
    ctx.link.emulator.reset_counters();
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args([
            "device-sync",
            "--db",
            &db.display().to_string(),
            "--url",
            &ctx.link.url(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Cut from this thread, where the emulator lives.
    let every = Duration::from_secs(ctx.cli.cut_every);
    let mut cuts = 0;
    let mut next_cut = Instant::now() + every;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() >= next_cut {
            ctx.link.emulator.cut_now();
            cuts += 1;
            next_cut += every;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = ms(started.elapsed());
    let mut output = String::new();
    if let Some(mut out) = child.stdout.take() {
        use std::io::Read;
        out.read_to_string(&mut output).map_err(|e| e.to_string())?;
    }
    if !status.success() {
        return Err("the cut sync did not complete".into());
    }
    let result: serde_json::Value =
        serde_json::from_str(output.trim()).map_err(|e| format!("device-sync output: {e}"))?;
    let cases = result["cases"].as_u64().unwrap_or(0) as usize;
    if cases != size {
        return Err(format!("cut sync ended with {cases} of {size} cases"));
    }
    let peak_mb = result["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0;
    let down = ctx.link.emulator.counters().down();
    let is_2g = ctx.profile.name == "2g";
    ctx.figures.push(Figure {
        scenario: format!(
            "first sync, {size} cases, link cut every {} s",
            ctx.cli.cut_every
        ),
        profile: ctx.profile.name.into(),
        runs: 1,
        median_ms: wall,
        min_ms: wall,
        max_ms: wall,
        bytes_up: ctx.link.emulator.counters().up(),
        bytes_down: down,
        round_trips: result["report"]["round_trips"].as_u64().unwrap_or(0) as usize,
        floor_bytes: None,
        target: "< 60 s; device peak memory < 100 MB".into(),
        met: is_2g.then_some(wall < 60_000.0 && peak_mb < 100.0),
        note: format!(
            "{cuts} cut(s), {} attempt(s); device peak RSS {peak_mb:.1} MB (whole process)",
            result["attempts"]
        ),
    });
    Ok(())
}

fn store_path(ctx: &Ctx, user: &str) -> Result<PathBuf, String> {
    // The newest directory made for this user by `enroll_fresh`.
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(ctx.dir.path())
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{user}-99-")))
        })
        .collect();
    dirs.sort();
    dirs.pop()
        .map(|d| device_path(&d, user))
        .ok_or_else(|| "device dir missing".into())
}

/// Local operations on the largest caseload.
fn local(ctx: &mut Ctx, size: usize, device: &mut Store) -> Result<(), String> {
    step("local operations");
    let ids: Vec<String> = device
        .list_cases(&CaseFilter::default())
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|c| c.case_id)
        .collect();
    let runs = 20;
    let mut i = 0;
    let (mut t, _) = time_runs(runs, || {
        i += 1;
        device
            .add_followup(&ids[i * 37 % ids.len()], &suivi_tests::visit(i))
            .map_err(|e| e.to_string())
    })?;
    push_local(ctx, "save a follow-up", size, &mut t, Some(5.0));
    let (mut t, _) = time_runs(10, || {
        device
            .list_cases(&CaseFilter::default())
            .map_err(|e| e.to_string())
    })?;
    push_local(
        ctx,
        &format!("list all {size} cases"),
        size,
        &mut t,
        Some(50.0),
    );
    let (mut t, _) = time_runs(10, || {
        device
            .list_cases(&CaseFilter {
                limit: Some(100),
                ..Default::default()
            })
            .map_err(|e| e.to_string())
    })?;
    push_local(
        ctx,
        "list the first 100 cases (one screen)",
        size,
        &mut t,
        None,
    );
    let (mut t, found) = time_runs(10, || {
        device
            .list_cases(&CaseFilter {
                query: Some("traore".into()),
                ..Default::default()
            })
            .map_err(|e| e.to_string())
    })?;
    push_local(
        ctx,
        &format!("search \"traore\" ({} found)", found[0].len()),
        size,
        &mut t,
        Some(50.0),
    );
    let mut k = 0;
    let (mut t, _) = time_runs(20, || {
        k += 1;
        device
            .case(&ids[k * 53 % ids.len()])
            .map_err(|e| e.to_string())
    })?;
    push_local(ctx, "open a case", size, &mut t, None);
    let target = ids[0].clone();
    for n in 0..200 {
        device
            .edit_case(&target, &village_edit(n))
            .map_err(|e| e.to_string())?;
    }
    let (mut t, history) = time_runs(5, || device.history(&target).map_err(|e| e.to_string()))?;
    push_local(
        ctx,
        &format!("history of a case with {} changes", history[0].len()),
        size,
        &mut t,
        None,
    );
    Ok(())
}

fn push_local(ctx: &mut Ctx, what: &str, size: usize, times: &mut [f64], target_ms: Option<f64>) {
    let runs = times.len();
    let (median, min, max) = summarise(times);
    ctx.figures.push(Figure {
        scenario: format!("local: {what}"),
        profile: "-".into(),
        runs,
        median_ms: median,
        min_ms: min,
        max_ms: max,
        bytes_up: 0,
        bytes_down: 0,
        round_trips: 0,
        floor_bytes: None,
        target: target_ms
            .map(|t| format!("< {t} ms"))
            .unwrap_or_else(|| "—".into()),
        met: target_ms.map(|t| median < t),
        note: format!("{size}-case device"),
    });
}

/// The app while a fresh device's first sync of the largest caseload runs over the link: a list,
/// a name search and a case screen on the read connection, and a save on the writer, which the
/// sync holds only to commit a page. On a phone, a call over 5 s on the main thread is an "app
/// not responding"; the app makes these calls off the main thread, and they must still return
/// quickly.
fn app_during_sync(ctx: &mut Ctx, size: usize) -> Result<(), String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    use suivi_core::sync::{session, Cancel, HttpTransport};
    step(&format!("the app during a first sync of {size} cases"));
    let user = format!("sup-{}", team(size));
    let dir = ctx.dir.path().join(format!("{user}-app-{}", rand_suffix()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let writer = enroll(
        &ctx.server,
        &dir,
        &user,
        &format!("http://{}", ctx.server.addr),
    )?;
    let path = device_path(&dir, &user);
    let reader = Store::open_reader(&path, BENCH_KEY).map_err(|e| e.to_string())?;
    let writer = Mutex::new(writer);
    let transport = HttpTransport::new(&ctx.link.url()).map_err(|e| e.to_string())?;
    let done = AtomicBool::new(false);
    let (mut list, mut search, mut case, mut save) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    let synced = std::thread::scope(|s| {
        let sync = s.spawn(|| {
            let mut handle = &writer;
            let out = session::run(&mut handle, &transport, &mut |_| {}, &Cancel::default());
            done.store(true, Ordering::SeqCst);
            out
        });
        let mut n = 0usize;
        while !done.load(Ordering::SeqCst) {
            let t = Instant::now();
            let rows = reader
                .list_cases(&CaseFilter {
                    limit: Some(500),
                    ..CaseFilter::default()
                })
                .map_err(|e| e.to_string())?;
            list.push(ms(t.elapsed()));
            let t = Instant::now();
            reader
                .list_cases(&CaseFilter {
                    query: Some("traore".into()),
                    limit: Some(500),
                    ..CaseFilter::default()
                })
                .map_err(|e| e.to_string())?;
            search.push(ms(t.elapsed()));
            if let Some(row) = rows.get(n % rows.len().max(1)) {
                let t = Instant::now();
                reader.case(&row.case_id).map_err(|e| e.to_string())?;
                case.push(ms(t.elapsed()));
            }
            // A few saves, as an agent would make: each adds a case the same sync then
            // pushes, so saving without pause would keep the sync going.
            if n.is_multiple_of(10) && save.len() < 5 {
                let t = Instant::now();
                writer
                    .lock()
                    .map_err(|_| "writer lock poisoned")?
                    .create_case(&suivi_tests::child(n))
                    .map_err(|e| e.to_string())?;
                save.push(ms(t.elapsed()));
            }
            n += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        sync.join()
            .map_err(|_| "sync thread panicked".to_string())?
            .map_err(|e| e.to_string())
    })?;
    let sync_ms = ms(started.elapsed());
    for (what, times) in [
        ("list (500 rows)", &mut list),
        ("name search", &mut search),
        ("case screen", &mut case),
        ("save a new case", &mut save),
    ] {
        let runs = times.len();
        let (median, min, max) = summarise(times);
        ctx.figures.push(Figure {
            scenario: format!("app during a first sync of {size} cases: {what}"),
            profile: ctx.profile.name.into(),
            runs,
            median_ms: median,
            min_ms: min,
            max_ms: max,
            bytes_up: 0,
            bytes_down: 0,
            round_trips: synced.round_trips,
            floor_bytes: None,
            target: "max < 5000 ms (no ANR)".into(),
            met: Some(runs > 0 && max < 5000.0),
            note: format!("sync took {}", fmt_ms(sync_ms)),
        });
    }
    Ok(())
}

/// A quiet team's agent and supervisor ask "anything new?" after other teams wrote
/// `other_rows` feed rows since their cursors: the server answers from its caseload indexes
/// without reading those rows. Measured over loopback, unshaped, so the time is the server's
/// (plus a loopback round trip). The other teams' changes are written straight into the
/// server's store (opaque bytes: a pull does not read them), which is how a million rows fit
/// in a benchmark run.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn pull_by_caseload(ctx: &mut Ctx) -> Result<(), String> {
    let figures = pull_by_caseload_on(ctx, &ctx.server, "SQLite")?;
    ctx.figures.extend(figures);
    Ok(())
}

fn pull_by_caseload_on(
    ctx: &Ctx,
    server: &ServerProcess,
    store_name: &str,
) -> Result<Vec<Figure>, String> {
    use suivi_server::storage::AcceptedCase;
    let rows = ctx.cli.other_rows;
    step(&format!(
        "pull by caseload ({store_name}): {rows} rows of other teams since the cursor"
    ));
    let url = format!("http://{}", server.addr);
    // Phones of this run in a directory of their own: the scenario runs once per store.
    let base = ctx
        .dir
        .path()
        .join(format!("pull-{store_name}-{}", rand_suffix()));
    std::fs::create_dir_all(&base).map_err(|e| e.to_string())?;
    let quiet = seed_team(server, &base, "quiet", 20)?;
    drop(quiet);
    // Five phones each for the quiet agent and supervisor, up to date before the other teams
    // write: each then asks once, with every one of those rows after its cursor.
    let mut devices = Vec::new();
    for user in ["agent-quiet", "sup-quiet"] {
        for _ in 0..5 {
            let dir = base.join(format!("{user}-{}", rand_suffix()));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let mut device = enroll(server, &dir, user, &url)?;
            sync(&mut device, &url)?;
            devices.push((user, device));
        }
    }
    admin::add_user(
        server.store.as_ref(),
        "agent-loud",
        Role::Agent,
        "loud",
        None,
    )?;
    let loud_dir = base.join(format!("agent-loud-{}", rand_suffix()));
    std::fs::create_dir_all(&loud_dir).map_err(|e| e.to_string())?;
    let loud = enroll(server, &loud_dir, "agent-loud", &url)?;
    let loud_device = loud
        .meta("device_id")
        .map_err(|e| e.to_string())?
        .ok_or("the loud agent is not enrolled")?;
    let changes_per_case = 10;
    let mut written = 0usize;
    let mut n = 0usize;
    while written < rows {
        let batch: Vec<AcceptedCase> = (0..100)
            .map(|_| {
                n += 1;
                let case_id = format!("{n:032x}");
                AcceptedCase {
                    new_case: Some(("agent-loud".into(), "loud".into())),
                    changes: (0..changes_per_case)
                        .map(|i| (format!("{case_id}-{i}"), vec![i as u8; 64]))
                        .collect(),
                    case_id,
                    summary: None,
                }
            })
            .collect();
        written += server
            .store
            .store_changes(&loud_device, &batch, None, unix_now())
            .map_err(|e| e.to_string())?;
    }
    let mut figures = Vec::new();
    for user in ["agent-quiet", "sup-quiet"] {
        let mut times = Vec::new();
        let mut trips = 0;
        for (_, device) in devices.iter_mut().filter(|(u, _)| *u == user) {
            let started = Instant::now();
            let report = sync(device, &url)?;
            times.push(ms(started.elapsed()));
            trips = report.round_trips;
            if report.cases_down != 0 {
                return Err(format!(
                    "{user} pulled {} cases of another team",
                    report.cases_down
                ));
            }
        }
        let (median, min, max) = summarise(&mut times);
        figures.push(Figure {
            scenario: format!(
                "anything new? {user} ({store_name}), {written} rows of other teams since the cursor"
            ),
            profile: "loopback".into(),
            runs: times.len(),
            median_ms: median,
            min_ms: min,
            max_ms: max,
            bytes_up: 0,
            bytes_down: 0,
            round_trips: trips,
            floor_bytes: None,
            target: "< 10 ms".into(),
            met: Some(median < 10.0),
            note: "one phone each run; server time plus a loopback round trip".into(),
        });
    }
    Ok(figures)
}

/// A signed-in console session for `user`, as the login page would have made it (its CSRF
/// token is `bench`), and a client that reads redirects rather than following them.
fn console_session(
    server: &ServerProcess,
    user: &str,
) -> Result<(reqwest::blocking::Client, String), String> {
    use suivi_server::storage::ConsoleSession;
    let token = format!("bench-{}", rand_suffix());
    let now = unix_now();
    server
        .store
        .add_session(&ConsoleSession {
            token_hash: suivi_server::auth::sha256_hex(&token),
            user_id: user.to_string(),
            csrf_token: "bench".into(),
            created_at: now,
            last_seen: now,
        })
        .map_err(|e| e.to_string())?;
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .map_err(|e| e.to_string())?;
    Ok((client, token))
}

/// A supervisor's console over a team of `console_cases` cases: each page fetched over HTTP
/// from a signed-in session, as a browser does (query, rendering, transfer on loopback). The
/// cases' projections are written through the store as pushes write them.
fn console_caseload_on(
    ctx: &Ctx,
    server: &ServerProcess,
    store_name: &str,
) -> Result<Vec<Figure>, String> {
    use suivi_server::storage::{AcceptedCase, CaseSummary, SummaryWrite};
    use suivi_tests::{FIRST_NAMES, LAST_NAMES, VILLAGES};
    let total = ctx.cli.console_cases;
    step(&format!(
        "console caseload ({store_name}): {total} cases of one team"
    ));
    let team = format!("console-{}", rand_suffix());
    let agents: Vec<String> = (0..20).map(|i| format!("{team}-agent-{i}")).collect();
    for agent in &agents {
        admin::add_user(server.store.as_ref(), agent, Role::Agent, &team, None)?;
    }
    let supervisor = format!("{team}-sup");
    admin::add_user(
        server.store.as_ref(),
        &supervisor,
        Role::Supervisor,
        &team,
        None,
    )?;
    let device_dir = ctx.dir.path().join(format!("{team}-device"));
    std::fs::create_dir_all(&device_dir).map_err(|e| e.to_string())?;
    let url = format!("http://{}", server.addr);
    let device = enroll(server, &device_dir, &agents[0], &url)?;
    let device_id = device
        .meta("device_id")
        .map_err(|e| e.to_string())?
        .ok_or("not enrolled")?;
    let statuses = ["draft", "sent", "accepted", "in_service", "completed"];
    let risks = ["low", "medium", "high", "critical"];
    let seeding = Instant::now();
    let mut n = 0usize;
    while n < total {
        let batch: Vec<AcceptedCase> = (0..500.min(total - n))
            .map(|_| {
                n += 1;
                let case_id = format!("c0{:030x}", n);
                let summary = CaseSummary {
                    case_id: case_id.clone(),
                    first_name: FIRST_NAMES[n % FIRST_NAMES.len()].to_string(),
                    last_name: format!("{} {}", LAST_NAMES[(n / 7) % LAST_NAMES.len()], n % 997),
                    province: Some("Sikasso".into()),
                    commune: Some("Kadiolo".into()),
                    village: Some(VILLAGES[(n / 3) % VILLAGES.len()].to_string()),
                    risk_level: Some(risks[n % risks.len()].into()),
                    referral_statuses: vec![statuses[n % statuses.len()].into()],
                    next_followup_due: Some(format!("2026-{:02}-{:02}", 1 + n % 12, 1 + n % 28)),
                    referral_count: 1,
                    followup_count: 1,
                    conflict_count: u32::from(n.is_multiple_of(50)),
                    ..Default::default()
                };
                let names = [summary.first_name.as_str(), summary.last_name.as_str()];
                let (indicators, referrals) = officer_projection(n);
                AcceptedCase {
                    new_case: Some((agents[n % agents.len()].clone(), team.clone())),
                    changes: vec![(format!("{case_id}-0"), vec![1u8; 64])],
                    case_id,
                    summary: Some(SummaryWrite {
                        name_terms: suivi_core::names::search_terms(&names),
                        village_key: summary
                            .village
                            .as_deref()
                            .map(suivi_server::summary::place_key),
                        summary,
                        change_count: 1,
                        indicators,
                        referrals,
                        ..Default::default()
                    }),
                }
            })
            .collect();
        server
            .store
            .store_changes(&device_id, &batch, None, unix_now())
            .map_err(|e| e.to_string())?;
    }
    step(&format!(
        "  seeded {total} cases with their projections in {:.1} s",
        seeding.elapsed().as_secs_f64()
    ));
    // A signed-in session, as the login page would have made it.
    let (client, token) = console_session(server, &supervisor)?;
    let pages = [
        ("caseload, first page", "/console/cases".to_string()),
        ("caseload, page 100", "/console/cases?page=100".to_string()),
        (
            "search a name across spellings",
            "/console/cases?q=yousef+traore".to_string(),
        ),
        ("search a name prefix", "/console/cases?q=kha".to_string()),
        (
            "filter village + risk",
            format!(
                "/console/cases?village={}&risk=high",
                VILLAGES[2].replace(' ', "+")
            ),
        ),
        (
            "filter overdue + referral status",
            "/console/cases?overdue=1&status=sent".to_string(),
        ),
        (
            "filter agent + conflicts",
            format!("/console/cases?agent={}&conflicts=1", agents[0]),
        ),
    ];
    let mut figures = Vec::new();
    for (what, path) in pages {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..ctx.cli.runs.max(5) {
            let started = Instant::now();
            let response = client
                .get(format!("{url}{path}"))
                .header("cookie", format!("suivi_session={token}"))
                .send()
                .map_err(|e| e.to_string())?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(format!("{path}: {}", response.status()));
            }
            let body = response.text().map_err(|e| e.to_string())?;
            times.push(ms(started.elapsed()));
            if !body.contains("class=\"count\"") {
                return Err(format!("{path}: not a caseload page"));
            }
            bytes = body.len() as u64;
        }
        let (median, min, max) = summarise(&mut times);
        figures.push(Figure {
            scenario: format!("console: {what} ({store_name}, {total} cases in the team)"),
            profile: "loopback".into(),
            runs: times.len(),
            median_ms: median,
            min_ms: min,
            max_ms: max,
            bytes_up: 0,
            bytes_down: bytes,
            round_trips: 1,
            floor_bytes: None,
            target: "< 200 ms".into(),
            met: Some(median < 200.0),
            note: "HTTP GET of the rendered page from a signed-in session".into(),
        });
    }
    // The officer's views over the same cases, from the projections.
    let officer_pages = [
        (
            "indicators by commune",
            "/console/indicators?by=commune",
            "<svg",
        ),
        (
            "indicators by month",
            "/console/indicators?by=month",
            "<svg",
        ),
        (
            "indicators as CSV",
            "/console/indicators.csv?by=sector",
            "\u{feff}",
        ),
        (
            "project referrals and stuck ones",
            "/console/referrals?days=30",
            "id=\"stuck\"",
        ),
    ];
    for (what, path, expect) in officer_pages {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..ctx.cli.runs.max(3) {
            let started = Instant::now();
            let response = client
                .get(format!("{url}{path}"))
                .header("cookie", format!("suivi_session={token}"))
                .send()
                .map_err(|e| e.to_string())?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(format!("{path}: {}", response.status()));
            }
            let body = response.text().map_err(|e| e.to_string())?;
            times.push(ms(started.elapsed()));
            if !body.contains(expect) {
                return Err(format!("{path}: not the page expected"));
            }
            bytes = body.len() as u64;
        }
        let (median, min, max) = summarise(&mut times);
        figures.push(Figure {
            scenario: format!("console: {what} ({store_name}, {total} cases)"),
            profile: "loopback".into(),
            runs: times.len(),
            median_ms: median,
            min_ms: min,
            max_ms: max,
            bytes_up: 0,
            bytes_down: bytes,
            round_trips: 1,
            floor_bytes: None,
            target: "< 2 s".into(),
            met: Some(median < 2_000.0),
            note: "computed from the projections (case_indicators, referral_summaries), never the documents".into(),
        });
    }
    // An export of every case, streamed: the server's peak memory must not grow by the file.
    let before = server.peak_rss_bytes();
    let started = Instant::now();
    let mut response = client
        .get(format!("{url}/console/export/cases.csv"))
        .header("cookie", format!("suivi_session={token}"))
        .send()
        .map_err(|e| e.to_string())?;
    let mut exported = 0u64;
    let mut lines = 0u64;
    let mut buffer = [0u8; 64 * 1024];
    loop {
        use std::io::Read;
        let n = response.read(&mut buffer).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        exported += n as u64;
        lines += buffer[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
    let elapsed = ms(started.elapsed());
    let grown = server.peak_rss_bytes().saturating_sub(before);
    if lines != total as u64 + 1 {
        return Err(format!("export: {lines} lines for {total} cases"));
    }
    step(&format!(
        "  export of {total} cases: {} in {:.1} s, server peak memory +{}",
        fmt_bytes(exported),
        elapsed / 1000.0,
        fmt_bytes(grown)
    ));
    figures.push(Figure {
        scenario: format!(
            "console: export every case as CSV, streamed ({store_name}, {total} cases)"
        ),
        profile: "loopback".into(),
        runs: 1,
        median_ms: elapsed,
        min_ms: elapsed,
        max_ms: elapsed,
        bytes_up: 0,
        bytes_down: exported,
        round_trips: 1,
        floor_bytes: None,
        // A fixed bound, whatever the number of cases: the export holds a page of cases and a
        // chunk; what else grows is caches and a thread's stack.
        target: "server peak memory grows by < 16 MiB".into(),
        met: Some(grown < 16 * 1024 * 1024),
        note: format!(
            "server peak resident memory grew by {} (SQLite's page cache, up to 64 MiB, fills with the pages read too)",
            fmt_bytes(grown)
        ),
    });
    Ok(figures)
}

/// What the officer's views read of bench case `n`: spread over 12 months, 8 communes (each
/// typed two ways), 6 sectors; a referral in one of five statuses, entered 0 to 90 days ago.
fn officer_projection(
    n: usize,
) -> (
    suivi_server::storage::CaseIndicators,
    Vec<suivi_server::storage::ReferralSummary>,
) {
    use suivi_server::storage::{CaseIndicators, ReferralSummary};
    let communes = [
        "Kadiolo", "Misséni", "Zégoua", "Kignan", "Sikasso", "Niéna", "Loulouni", "Fourou",
    ];
    let sectors = [
        "cotton",
        "artisanal_gold_mining",
        "crafts",
        "textile",
        "domestic_work",
        "street_work",
    ];
    let statuses = ["draft", "sent", "accepted", "in_service", "completed"];
    let commune = communes[n % communes.len()];
    let typed = if n.is_multiple_of(5) {
        commune.to_uppercase()
    } else {
        commune.to_string()
    };
    let status = statuses[n % statuses.len()];
    let served = matches!(status, "in_service" | "completed");
    let now = unix_now();
    let since = now - (n % 90) as i64 * 86_400;
    (
        CaseIndicators {
            counted: true,
            identified_on: Some(format!("2026-{:02}-{:02}", 1 + n % 12, 1 + n % 28)),
            province: Some("Sikasso".into()),
            province_key: Some("sikasso".into()),
            commune_key: Some(suivi_server::summary::place_key(&typed)),
            commune: Some(typed),
            sector: Some(sectors[n % sectors.len()].into()),
            referred: status != "draft",
            service: served,
            stopped_working: Some(n.is_multiple_of(3)),
            days_to_service: served.then_some((n % 60) as i64),
        },
        vec![ReferralSummary {
            referral_id: format!("r{n}"),
            service_type: Some("health".into()),
            provider: Some(format!("CSCOM {commune}")),
            provider_key: Some(suivi_server::summary::place_key(commune)),
            status: status.into(),
            created_at: Some(since - 86_400),
            status_since: Some(since),
            secs_in: [Some(3_600), None, None, None, None],
        }],
    )
}

/// A supervisor reassigns every case of one agent (1,000, each with 3 changes) to another, from
/// the console's caseload filtered by that agent: one HTTP POST, timed to its answer.
fn console_reassign_on(
    ctx: &Ctx,
    server: &ServerProcess,
    store_name: &str,
) -> Result<Figure, String> {
    use suivi_server::storage::{AcceptedCase, CaseSummary, SummaryWrite};
    let cases = if ctx.cli.smoke { 100 } else { 1_000 };
    step(&format!(
        "console reassignment ({store_name}): {cases} cases at once"
    ));
    let team = format!("handover-{}", rand_suffix());
    let (from, to, sup) = (
        format!("{team}-a"),
        format!("{team}-b"),
        format!("{team}-s"),
    );
    for (user, role) in [
        (&from, Role::Agent),
        (&to, Role::Agent),
        (&sup, Role::Supervisor),
    ] {
        admin::add_user(server.store.as_ref(), user, role, &team, None)?;
    }
    let device_dir = ctx.dir.path().join(format!("{team}-device"));
    std::fs::create_dir_all(&device_dir).map_err(|e| e.to_string())?;
    let url = format!("http://{}", server.addr);
    let device = enroll(server, &device_dir, &from, &url)?;
    let device_id = device
        .meta("device_id")
        .map_err(|e| e.to_string())?
        .ok_or("not enrolled")?;
    // Real documents, as the agent's phone made them (created, edited, a visit): the console
    // writes the reassignment into each, so the figure includes loading and checking them.
    let forms = suivi_core::FormRegistry::builtin();
    let actor =
        automerge::ActorId::from(hex::decode(&device.identity().actor).map_err(|e| e.to_string())?);
    let mut batch: Vec<AcceptedCase> = Vec::with_capacity(cases);
    for n in 0..cases {
        let case_id = format!("e0{n:030x}");
        let ctx = suivi_core::ChangeContext::now(from.clone());
        let form = forms
            .latest(suivi_core::forms::IDENTIFICATION)
            .map_err(|e| e.to_string())?;
        let mut doc = suivi_core::CaseDoc::create(
            &case_id,
            actor.clone(),
            form,
            &suivi_tests::child(n),
            &ctx,
        )
        .map_err(|e| e.to_string())?;
        let mut edit = suivi_core::Record::new();
        edit.insert("village".into(), serde_json::json!("Kaniko"));
        doc.edit_identification(&forms, &edit, &ctx)
            .map_err(|e| e.to_string())?;
        doc.add_followup(&forms, &suivi_tests::visit(n), &ctx)
            .map_err(|e| e.to_string())?;
        let changes = doc
            .automerge()
            .get_changes(&[])
            .iter()
            .map(|c| (c.hash().to_string(), c.raw_bytes().to_vec()))
            .collect();
        batch.push(AcceptedCase {
            new_case: Some((from.clone(), team.clone())),
            changes,
            summary: Some(SummaryWrite {
                summary: CaseSummary {
                    case_id: case_id.clone(),
                    first_name: format!("Child {n}"),
                    ..Default::default()
                },
                change_count: 3,
                ..Default::default()
            }),
            case_id,
        });
    }
    for chunk in batch.chunks(500) {
        server
            .store
            .store_changes(&device_id, chunk, None, unix_now())
            .map_err(|e| e.to_string())?;
    }
    let (client, token) = console_session(server, &sup)?;
    let started = Instant::now();
    let response = client
        .post(format!("{url}/console/reassign"))
        .header("cookie", format!("suivi_session={token}"))
        .form(&[
            ("csrf", "bench"),
            ("agent", from.as_str()),
            ("to", to.as_str()),
        ])
        .send()
        .map_err(|e| e.to_string())?;
    let took = ms(started.elapsed());
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !location.ends_with(&format!("reassigned={cases}")) {
        return Err(format!(
            "reassignment answered {} {location}",
            response.status()
        ));
    }
    let audited = server
        .store
        .audit_log(0, usize::MAX)
        .map_err(|e| e.to_string())?
        .iter()
        .filter(|r| r.action == "case.reassign" && r.actor == sup)
        .count();
    if audited != cases {
        return Err(format!("{audited} audit rows for {cases} cases"));
    }
    Ok(Figure {
        scenario: format!("console: reassign {cases} cases at once ({store_name}, 3 changes each)"),
        profile: "loopback".into(),
        runs: 1,
        median_ms: took,
        min_ms: took,
        max_ms: took,
        bytes_up: 0,
        bytes_down: 0,
        round_trips: 1,
        floor_bytes: None,
        target: "< 10 s".into(),
        met: Some(took < 10_000.0),
        note: "one POST from the filtered caseload; each case audited".into(),
    })
}

/// Many devices sync at once: each agent pushes its cases and pulls.
fn busy(ctx: &mut Ctx) -> Result<(), String> {
    let link_url = ctx.link.url();
    let server = &ctx.server;
    let figure = busy_run(ctx, "SQLite, 1 instance", &[(server, link_url)])?;
    ctx.figures.push(figure);
    Ok(())
}

/// The pull by caseload and the busy server on two instances sharing one PostgreSQL database,
/// each behind a link of the same profile; devices are spread over both (no sticky sessions).
fn on_postgres(ctx: &mut Ctx, server_bin: &Path) -> Result<(), String> {
    let db = suivi_server::testing::TestDatabase::create();
    let first = ServerProcess::start_on(server_bin, Some(&db.url), None)?;
    let second = ServerProcess::start_on(server_bin, Some(&db.url), Some(&first.key_file))?;
    let figures = pull_by_caseload_on(ctx, &first, "PostgreSQL")?;
    ctx.figures.extend(figures);
    let figures = console_caseload_on(ctx, &second, "PostgreSQL")?;
    ctx.figures.extend(figures);
    let figure = console_reassign_on(ctx, &second, "PostgreSQL")?;
    ctx.figures.push(figure);
    let links = [
        Link::start(first.addr, ctx.profile)?,
        Link::start(second.addr, ctx.profile)?,
    ];
    let figure = busy_run(
        ctx,
        "PostgreSQL, 2 instances",
        &[(&first, links[0].url()), (&second, links[1].url())],
    )?;
    ctx.figures.push(figure);
    Ok(())
}

/// `busy_devices` phones, each with `busy_cases` new cases, sync at once through `servers`
/// (phone i through server i mod n).
fn busy_run(
    ctx: &Ctx,
    label: &str,
    servers: &[(&ServerProcess, String)],
) -> Result<Figure, String> {
    let (devices, cases) = (ctx.cli.busy_devices, ctx.cli.busy_cases);
    step(&format!(
        "busy server ({label}): preparing {devices} devices with {cases} cases each"
    ));
    let run = rand_suffix();
    let mut stores = Vec::with_capacity(devices);
    for d in 0..devices {
        let (server, _) = &servers[d % servers.len()];
        let user = format!("busy-{run}-{d}");
        admin::add_user(
            servers[0].0.store.as_ref(),
            &user,
            Role::Agent,
            &format!("busy-team-{}", d % 20),
            None,
        )?;
        let dir = ctx.dir.path().join(&user);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut store = enroll(server, &dir, &user, &format!("http://{}", server.addr))?;
        store
            .import(&caseload(d * cases, cases))
            .map_err(|e| e.to_string())?;
        stores.push(store);
    }
    step(&format!(
        "busy server ({label}): {devices} devices sync at once"
    ));
    let cpu = || servers.iter().map(|(s, _)| s.cpu_seconds()).sum::<f64>();
    let cpu_before = cpu();
    let started = Instant::now();
    let results: Vec<Result<SyncOutcome, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .iter_mut()
            .enumerate()
            .map(|(d, store)| {
                let url = servers[d % servers.len()].1.clone();
                scope.spawn(move || {
                    let t = Instant::now();
                    let report = sync(store, &url)?;
                    Ok(SyncOutcome {
                        ms: ms(t.elapsed()),
                        refused: report.refused.len(),
                        up: report.cases_up,
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("panicked".into())))
            .collect()
    });
    let wall = started.elapsed();
    let cpu = cpu() - cpu_before;
    let ok: Vec<&SyncOutcome> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let failed = results.len() - ok.len();
    let refused: usize = ok.iter().map(|o| o.refused).sum();
    let pushed: usize = ok.iter().map(|o| o.up).sum();
    let mut times: Vec<f64> = ok.iter().map(|o| o.ms).collect();
    let (median, min, max) = summarise(&mut times);
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        eprintln!("a busy sync failed: {e}");
    }
    if failed > 0 {
        return Err(format!("{failed} busy syncs failed ({label})"));
    }
    Ok(Figure {
        scenario: format!("busy server ({label}): {devices} devices × {cases} cases at once"),
        profile: ctx.profile.name.into(),
        runs: devices,
        median_ms: median,
        min_ms: min,
        max_ms: max,
        bytes_up: 0,
        bytes_down: 0,
        round_trips: 0,
        floor_bytes: None,
        target: "all complete, none refused".into(),
        met: Some(refused == 0 && pushed == devices * cases),
        note: format!(
            "{:.1} syncs/s, {:.1} s wall, server CPU {cpu:.1} s (instances only){}; {failed} failed, {refused} refused",
            devices as f64 / wall.as_secs_f64(),
            wall.as_secs_f64(),
            if servers.len() > 1 { ", the database's own CPU not counted" } else { "" }
        ),
    })
}

struct SyncOutcome {
    ms: f64,
    refused: usize,
    up: usize,
}

fn markdown(figures: &[Figure]) -> String {
    let mut out = String::from(
        "| scenario | profile | runs | median | min–max | bytes up | bytes down | floor | round trips | target | met | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for f in figures {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {}–{} | {} | {} | {} | {} | {} | {} | {} |\n",
            f.scenario,
            f.profile,
            f.runs,
            fmt_ms(f.median_ms),
            fmt_ms(f.min_ms),
            fmt_ms(f.max_ms),
            fmt_bytes(f.bytes_up),
            fmt_bytes(f.bytes_down),
            f.floor_bytes
                .map(|b| fmt_bytes(b as u64))
                .unwrap_or_else(|| "—".into()),
            if f.round_trips > 0 {
                f.round_trips.to_string()
            } else {
                "—".into()
            },
            f.target,
            match f.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            },
            f.note
        ));
    }
    out
}

fn fmt_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else {
        format!("{v:.2} ms")
    }
}

fn fmt_bytes(b: u64) -> String {
    if b == 0 {
        "—".into()
    } else if b >= 10 * 1024 {
        format!("{:.1} KB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

/// An SVG of first-sync time and bytes down against caseload size (log scale).
fn plot(points: &[PlotPoint], profile: &str) -> String {
    let (w, h, pad) = (640.0, 360.0, 60.0);
    let xs: Vec<f64> = points.iter().map(|p| (p.0 as f64).log10()).collect();
    let (xmin, xmax) = (
        xs.iter().cloned().fold(f64::MAX, f64::min),
        xs.iter().cloned().fold(f64::MIN, f64::max),
    );
    let tmax = points
        .iter()
        .map(|p| p.1 / 1000.0)
        .fold(0.0, f64::max)
        .max(1.0);
    let bmax = points
        .iter()
        .map(|p| p.2 as f64 / 1024.0)
        .fold(0.0, f64::max)
        .max(1.0);
    let x = |v: f64| pad + (v - xmin) / (xmax - xmin).max(1e-9) * (w - 2.0 * pad);
    let y = |v: f64, max: f64| h - pad - v / max * (h - 2.0 * pad);
    let line = |ys: Vec<f64>, max: f64| {
        xs.iter()
            .zip(ys)
            .map(|(a, b)| format!("{:.1},{:.1}", x(*a), y(b, max)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let times = line(points.iter().map(|p| p.1 / 1000.0).collect(), tmax);
    let bytes = line(points.iter().map(|p| p.2 as f64 / 1024.0).collect(), bmax);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{pad}\" y=\"24\" font-size=\"14\">First sync on the {profile} profile against caseload size</text>\n\
         <line x1=\"{pad}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"black\"/>\n\
         <line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{0}\" stroke=\"black\"/>\n\
         <polyline points=\"{times}\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n\
         <polyline points=\"{bytes}\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/>\n\
         <text x=\"{pad}\" y=\"44\" fill=\"#1f77b4\">time (s), max {tmax:.1} s</text>\n\
         <text x=\"{2}\" y=\"44\" fill=\"#d62728\">bytes down (KB), max {bmax:.0} KB</text>\n",
        h - pad,
        w - pad,
        w / 2.0
    );
    for (p, xv) in points.iter().zip(&xs) {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{} cases</text>\n<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1f77b4\"/>\n<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#d62728\"/>\n",
            x(*xv),
            h - pad + 18.0,
            p.0,
            x(*xv),
            y(p.1 / 1000.0, tmax),
            x(*xv),
            y(p.2 as f64 / 1024.0, bmax)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

fn report(ctx: &Ctx, points: &[PlotPoint]) -> Result<(), String> {
    let table = markdown(&ctx.figures);
    println!("{table}");
    let write = |path: &Option<PathBuf>, text: &str| -> Result<(), String> {
        if let Some(path) = path {
            std::fs::File::create(path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    };
    write(
        &ctx.cli.json,
        &serde_json::to_string_pretty(&ctx.figures).map_err(|e| e.to_string())?,
    )?;
    write(&ctx.cli.markdown, &table)?;
    if points.len() >= 2 {
        write(&ctx.cli.plot, &plot(points, ctx.profile.name))?;
    }
    Ok(())
}
