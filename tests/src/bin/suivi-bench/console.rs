//! Server-side figures: pulls by caseload, the console's pages, the officer's projections, reassignments.

use super::*;

/// A quiet team's agent and supervisor ask "anything new?" after other teams wrote
/// `other_rows` feed rows since their cursors: the server answers from its caseload indexes
/// without reading those rows. Measured over loopback, unshaped, so the time is the server's
/// (plus a loopback round trip). The other teams' changes are written straight into the
/// server's store (opaque bytes: a pull does not read them), which is how a million rows fit
/// in a benchmark run.
pub(super) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(super) fn pull_by_caseload(ctx: &mut Ctx) -> Result<(), String> {
    let figures = pull_by_caseload_on(ctx, &ctx.server, "SQLite")?;
    ctx.figures.extend(figures);
    Ok(())
}

pub(super) fn pull_by_caseload_on(
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
pub(super) fn console_session(
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
pub(super) fn console_caseload_on(
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
                let (indicators, referrals) = officer_projection(n);
                AcceptedCase {
                    new_case: Some((agents[n % agents.len()].clone(), team.clone())),
                    changes: vec![(format!("{case_id}-0"), vec![1u8; 64])],
                    case_id,
                    summary: Some(SummaryWrite {
                        name_terms: suivi_server::summary::search_terms(&summary),
                        village_key: summary
                            .village
                            .as_deref()
                            .map(suivi_server::summary::place_key),
                        summary,
                        change_count: 1,
                        indicators,
                        referrals,
                        records: bench_records(n, &agents[n % agents.len()]),
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
        let (mut times, bytes) = console_gets(
            &client,
            &url,
            &token,
            &path,
            ctx.cli.runs.max(5),
            &|body: &[u8]| contains(body, "class=\"count\"", "not a caseload page"),
        )?;
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
            "programme report (key figures, four breakdowns, closures, chart)",
            "/console/report?from=2026-01&to=2026-12",
            "Rapport du programme",
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
        (
            "agents page (one row per agent, each phone)",
            "/console/agents",
            "table class=\"cases agents\"",
        ),
        (
            "caseload sorted by the visit due, a village by its beginning",
            "/console/cases?sort=due&village=dou",
            "class=\"count\"",
        ),
    ];
    for (what, path, expect) in officer_pages {
        let (mut times, bytes) = console_gets(
            &client,
            &url,
            &token,
            path,
            ctx.cli.runs.max(3),
            &|body: &[u8]| contains(body, expect, "not the page expected"),
        )?;
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
    // The access log, as an officer reads it: the newest page, and one child's accesses found
    // by her name (a search of the project, then the log rows naming those cases).
    let officer = format!("{team}-officer");
    admin::add_user(server.store.as_ref(), &officer, Role::Officer, "", None)?;
    let (officer_client, officer_token) = console_session(server, &officer)?;
    for (what, path) in [
        ("access log, newest page", "/console/access-log".to_string()),
        (
            "access log of one child, by name",
            format!("/console/access-log?case={}", FIRST_NAMES[3]),
        ),
    ] {
        let (mut times, bytes) = console_gets(
            &officer_client,
            &url,
            &officer_token,
            &path,
            ctx.cli.runs.max(3),
            &|body: &[u8]| contains(body, "access-log", "not the access log"),
        )?;
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
            note: "the audit log holds a row per page the bench read".into(),
        });
    }
    // Each kind of record exported, as a browser downloads it: from the projections
    // (`case_records`), never the documents.
    for (what, path, rows_per_case) in [
        ("referrals as CSV", "/console/export/referrals.csv", 1),
        ("follow-ups as CSV", "/console/export/followups.csv", 2),
        ("referrals as Excel", "/console/export/referrals.xlsx", 1),
        ("cases as Excel", "/console/export/cases.xlsx", 1),
    ] {
        // A workbook holds at most `xlsx::ROWS_MAX` rows: a larger caseload is refused (413,
        // the list told why and the CSV offered), as the hardening issue decided.
        if path.ends_with(".xlsx") && total * rows_per_case > suivi_server::console::XLSX_ROWS_MAX {
            let status = client
                .get(format!("{url}{path}"))
                .header("cookie", format!("suivi_session={token}"))
                .send()
                .map_err(|e| e.to_string())?
                .status();
            if status != reqwest::StatusCode::PAYLOAD_TOO_LARGE {
                return Err(format!(
                    "{path}: {status}, expected 413 above the workbook cap"
                ));
            }
            figures.push(Figure {
                scenario: format!("console: export {what} ({store_name}, {total} cases)"),
                profile: "loopback".into(),
                runs: 1,
                median_ms: 0.0,
                min_ms: 0.0,
                max_ms: 0.0,
                bytes_up: 0,
                bytes_down: 0,
                round_trips: 1,
                floor_bytes: None,
                target: "refused above the workbook cap".into(),
                met: Some(true),
                note: format!(
                    "413: more than {} rows; the CSV export serves it",
                    suivi_server::console::XLSX_ROWS_MAX
                ),
            });
            continue;
        }
        let (mut times, bytes) = console_gets(
            &client,
            &url,
            &token,
            path,
            ctx.cli.runs.max(3),
            &|body: &[u8]| {
                if path.ends_with(".csv") {
                    let lines = body.iter().filter(|b| **b == b'\n').count();
                    if lines != total * rows_per_case + 1 {
                        return Err(format!("{lines} lines for {total} cases"));
                    }
                } else if !body.starts_with(b"PK") {
                    return Err("not a workbook".into());
                }
                Ok(())
            },
        )?;
        let (median, min, max) = summarise(&mut times);
        figures.push(Figure {
            scenario: format!("console: export {what} ({store_name}, {total} cases)"),
            profile: "loopback".into(),
            runs: times.len(),
            median_ms: median,
            min_ms: min,
            max_ms: max,
            bytes_up: 0,
            bytes_down: bytes,
            round_trips: 1,
            floor_bytes: None,
            target: "< 1 s at 10,000 cases".into(),
            met: (total == 10_000).then_some(median < 1_000.0),
            note: "labels in French, the child and agent on each row; read from case_records"
                .into(),
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

/// What an export reads of bench case `n`: a referral sent, accepted and taken into service,
/// and two visits, as core reads them from a document.
fn bench_records(n: usize, agent: &str) -> suivi_server::storage::CaseRecords {
    use serde_json::json;
    use suivi_core::case_doc::{FollowUp, Referral, TransitionRecord};
    let record = |value: serde_json::Value| serde_json::from_value(value).unwrap_or_default();
    let step = |from: &str, to: &str, day: usize| TransitionRecord {
        transition: String::new(),
        from: from.into(),
        to: to.into(),
        actor: agent.into(),
        at: format!("2026-{:02}-{:02}T09:30:00Z", 1 + n % 12, 1 + (n + day) % 28),
        note: None,
    };
    let visit = |v: usize| FollowUp {
        id: format!("f{n}-{v}"),
        form_version: 1,
        fields: record(json!({
            "visit_date": format!("2026-{:02}-{:02}", 1 + n % 12, 1 + (n + v) % 28),
            "visit_type": "home", "attends_school": v == 1, "still_working": v == 0,
            "hazardous_work_seen": false, "services_received": ["school_or_bridging_class"],
            "risk_level_now": "medium",
            "next_visit_due": format!("2026-{:02}-{:02}", 1 + (n + 1) % 12, 1 + n % 28),
            "notes": "Vu à la maison avec la mère; l'enfant va en classe passerelle."
        })),
        created_at: format!("2026-{:02}-{:02}T10:00:00Z", 1 + n % 12, 1 + (n + v) % 28),
        created_by: agent.into(),
    };
    suivi_server::storage::CaseRecords {
        referrals: vec![Referral {
            id: format!("r{n}"),
            status: "in_service".into(),
            form_version: 1,
            fields: record(json!({
                "service_type": "health", "provider": "CSCOM Misséni", "urgency": "priority",
                "reason": "Blessure au travail", "consent": true
            })),
            created_at: format!("2026-{:02}-{:02}T08:00:00Z", 1 + n % 12, 1 + n % 28),
            created_by: agent.into(),
            previous_referral: None,
            next_referral: None,
            transitions: vec![
                step("draft", "sent", 0),
                step("sent", "accepted", 1),
                step("accepted", "in_service", 2),
            ],
        }],
        followups: vec![visit(0), visit(1)],
    }
}

/// `path` fetched `runs` times over a signed-in console session, as a browser does: each answer
/// must be 200 and pass `check` (which says what is wrong); the times (the check left out) and
/// the last answer's size.
fn console_gets(
    client: &reqwest::blocking::Client,
    url: &str,
    token: &str,
    path: &str,
    runs: usize,
    check: &dyn Fn(&[u8]) -> Result<(), String>,
) -> Result<(Vec<f64>, u64), String> {
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let response = client
            .get(format!("{url}{path}"))
            .header("cookie", format!("suivi_session={token}"))
            .send()
            .map_err(|e| e.to_string())?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("{path}: {}", response.status()));
        }
        let body = response.bytes().map_err(|e| e.to_string())?;
        times.push(ms(started.elapsed()));
        check(&body).map_err(|why| format!("{path}: {why}"))?;
        bytes = body.len() as u64;
    }
    Ok((times, bytes))
}

/// Whether a page holds `needle`, else `why`.
fn contains(body: &[u8], needle: &str, why: &str) -> Result<(), String> {
    if body.windows(needle.len()).any(|w| w == needle.as_bytes()) {
        Ok(())
    } else {
        Err(why.to_string())
    }
}

/// What the officer's views read of bench case `n`: spread over 12 months, 8 communes (each
/// typed two ways), 6 sectors; a referral in one of five statuses, entered 0 to 90 days ago.
pub(super) fn officer_projection(
    n: usize,
) -> (
    suivi_server::storage::CaseIndicators,
    Vec<suivi_server::storage::ReferralSummary>,
) {
    use suivi_server::storage::{CaseIndicators, ReferralSummary};
    let communes = [
        "Kadiolo", "Misséni", "Zégoua", "Kignan", "Sikasso", "Niéna", "Loulouni", "Fourou",
    ];
    let sectors = suivi_tests::SECTORS;
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
            sex: Some(
                if n.is_multiple_of(2) {
                    "female"
                } else {
                    "male"
                }
                .into(),
            ),
            village: Some(suivi_tests::VILLAGES[(n / 3) % suivi_tests::VILLAGES.len()].into()),
            village_key: Some(suivi_server::summary::place_key(
                suivi_tests::VILLAGES[(n / 3) % suivi_tests::VILLAGES.len()],
            )),
            referred: status != "draft",
            service: served,
            stopped_working: Some(n.is_multiple_of(3)),
            days_to_service: served.then_some((n % 60) as i64),
            // Outcomes spread as a programme's are: most children identified or served, some
            // exited (withdrawn), a few relapsed, one in twenty closed.
            stage: [
                "identified",
                "receiving_services",
                "not_working_at_one_visit",
                "exited",
                "relapsed",
            ][n % 5]
                .into(),
            classification: (n % 5 == 3).then(|| "withdrawn".into()),
            closure: n.is_multiple_of(20).then(|| "closed".into()),
            closed_reason: n.is_multiple_of(20).then(|| "exited_stable".into()),
            reopenings: i64::from(n.is_multiple_of(97)),
            visits_scheduled: (n % 4) as i64,
            visits_on_time: (n % 3).min(n % 4) as i64,
        },
        vec![ReferralSummary {
            referral_id: format!("r{n}"),
            service_type: Some("health".into()),
            urgency: Some("priority".into()),
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
pub(super) fn console_reassign_on(
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
            ("confirmed", "yes"),
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
