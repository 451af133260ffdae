//! Phone-side figures: a first sync, an incremental one, nothing new, a cut sync, local work, the app during a sync.

use super::*;

pub(super) fn team(size: usize) -> String {
    format!("t{size}")
}

/// A fresh supervisor device pulls a whole team caseload over the link.
/// A point of the first-sync plot: (cases, median ms, bytes down).
pub(super) type PlotPoint = (usize, f64, u64);

/// The first-sync figure's point, the synced supervisor device, and the seeding agent's device.
pub(super) struct FirstSync {
    pub(super) point: PlotPoint,
    pub(super) supervisor: Store,
    pub(super) agent: Store,
}

pub(super) fn first_sync(ctx: &mut Ctx, size: usize) -> Result<FirstSync, String> {
    step(&format!("seeding {size} cases"));
    let agent = seed_team(&ctx.server, ctx.dir.path(), &team(size), size)?;
    let runs = if size >= 10_000 { 1 } else { ctx.cli.runs };
    let mut times = Vec::new();
    let mut usable = Vec::new();
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
        // When `case list` first held every case of the caseload (the rows sent ahead).
        usable.push(report.list_usable_ms.unwrap_or(report.duration_ms) as f64);
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
    let encoded = encodings(&device)?;
    let state = encoded.state_zstd3;
    ctx.encodings.push(encoded);
    let (median, min, max) = summarise(&mut times);
    let (usable, _, _) = summarise(&mut usable);
    let down = downs.iter().copied().max().unwrap_or(0);
    // Issue 29's targets.
    let (target, met) = if size == 1000 && ctx.profile.name == "2g" {
        (
            "list usable ≤ 2.5 s, complete ≤ 5 s, ≤ 100 KB down".to_string(),
            Some(usable <= 2500.0 && down <= 100 * 1024 && median <= 5000.0),
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
        note: format!(
            "list usable at {:.2} s; wire/floor = {:.2}; wire/state = {:.1} (state: zstd -3 of \
             its JSON, {})",
            usable / 1000.0,
            down as f64 / floor.max(1) as f64,
            down as f64 / state.max(1) as f64,
            fmt_bytes(state as u64)
        ),
    });
    Ok(FirstSync {
        point: (size, median, down),
        supervisor: device,
        agent,
    })
}

/// Enrolls a new device for a user (a user may have several devices).
pub(super) fn enroll_fresh(ctx: &Ctx, user: &str, n: usize) -> Result<Store, String> {
    let dir = ctx.dir.path().join(format!("{user}-{n}-{}", rand_suffix()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    enroll(
        &ctx.server,
        &dir,
        user,
        &format!("http://{}", ctx.server.addr),
    )
}

pub(super) fn rand_suffix() -> String {
    format!(
        "{:x}",
        Instant::now().elapsed().as_nanos()
            ^ std::process::id() as u128
            ^ rand::random::<u64>() as u128
    )
}

/// An up-to-date agent records a follow-up on 50 cases offline, then syncs.
pub(super) fn incremental(ctx: &mut Ctx, size: usize, agent: &mut Store) -> Result<(), String> {
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
pub(super) fn anything_new(ctx: &mut Ctx, size: usize, device: &mut Store) -> Result<(), String> {
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
pub(super) fn cut_sync(ctx: &mut Ctx, size: usize) -> Result<(), String> {
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

pub(super) fn store_path(ctx: &Ctx, user: &str) -> Result<PathBuf, String> {
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
pub(super) fn local(ctx: &mut Ctx, size: usize, device: &mut Store) -> Result<(), String> {
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

pub(super) fn push_local(
    ctx: &mut Ctx,
    what: &str,
    size: usize,
    times: &mut [f64],
    target_ms: Option<f64>,
) {
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
pub(super) fn app_during_sync(ctx: &mut Ctx, size: usize) -> Result<(), String> {
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
    let fetch_transport = HttpTransport::new(&ctx.link.url());
    let mut fetched = 0usize;
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
                // A row listed ahead of its case: the app fetches the case at once.
                if let Err(suivi_core::Error::CaseArriving(_)) = reader.case(&row.case_id) {
                    let mut handle = &writer;
                    fetch_transport
                        .as_ref()
                        .map_err(|e| e.to_string())
                        .and_then(|t| {
                            suivi_core::sync::fetch_cases(
                                &mut handle,
                                t,
                                std::slice::from_ref(&row.case_id),
                            )
                            .map_err(|e| e.to_string())
                        })?;
                    fetched += 1;
                }
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
            note: format!(
                "sync took {}; {fetched} case screens fetched their case first (listed ahead)",
                fmt_ms(sync_ms)
            ),
        });
    }
    Ok(())
}
