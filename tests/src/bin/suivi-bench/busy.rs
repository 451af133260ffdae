//! The busy server: many phones at once, on SQLite and on PostgreSQL instances.

use super::*;

/// Many devices sync at once: each agent pushes its cases and pulls.
pub(super) fn busy(ctx: &mut Ctx) -> Result<(), String> {
    let link_url = ctx.link.url();
    let server = &ctx.server;
    let figure = busy_run(ctx, "SQLite, 1 instance", &[(server, link_url)])?;
    ctx.figures.push(figure);
    Ok(())
}

/// The pull by caseload and the busy server on two instances sharing one PostgreSQL database,
/// each behind a link of the same profile; devices are spread over both (no sticky sessions).
pub(super) fn on_postgres(ctx: &mut Ctx, server_bin: &Path) -> Result<(), String> {
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
pub(super) fn busy_run(
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

pub(super) struct SyncOutcome {
    pub(super) ms: f64,
    pub(super) refused: usize,
    pub(super) up: usize,
}
