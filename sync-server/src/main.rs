//! `suivi-server`: serve devices, and administer users, devices and caseloads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use suivi_server::at_rest::{self, KeySource};
use suivi_server::storage::Role;
use suivi_server::{admin, demo, evidence, forms, open_store, state};

/// A line on standard output; a reader that stopped early (`suivi-server device list | head`)
/// ends the command quietly instead of the panic `println!` gives.
macro_rules! say {
    ($($arg:tt)*) => { print_line(&format!($($arg)*)) };
}

fn print_line(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: standard output: {e}");
            std::process::exit(1);
        }
    }
}

#[derive(Parser)]
#[command(
    name = "suivi-server",
    version,
    about = "Suivi sync server: caseloads merged from many devices"
)]
struct Cli {
    /// Where the embedded SQLite database lives.
    #[arg(long, env = "SUIVI_DATA", default_value = "./data", global = true)]
    data: PathBuf,
    /// The key file (database key and enrollment-code secret), kept outside the data directory
    /// and backed up apart from it. Generated on first start. Default: beside the data
    /// directory, `<data>.key`. SUIVI_SERVER_KEY (a passphrase) replaces it.
    #[arg(long, env = "SUIVI_KEY_FILE", global = true)]
    key_file: Option<PathBuf>,
    /// Where the data lives: `sqlite` (the default: one encrypted file in the data directory)
    /// or a PostgreSQL URL, postgres://user:password@host:port/database, which several
    /// instances may share (each given the same key file).
    #[arg(long, env = "SUIVI_DATABASE", global = true, hide_env_values = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve devices: plain HTTP on loopback, or HTTPS with --tls-cert and --tls-key.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The project's time zone, an IANA name (`Africa/Casablanca`, `Africa/Bamako`): the
        /// console shows times in it.
        #[arg(long, env = "SUIVI_TIME_ZONE", default_value = "UTC")]
        time_zone: String,
        /// PEM certificate chain: serve HTTPS (rustls), on any address.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Enrollments one IP address may try at once before it is slowed to one every 5 s.
        /// Raise it for a training day where a room of phones enrolls behind one Wi-Fi.
        #[arg(long, default_value_t = suivi_server::api::ENROLL_PER_IP_BURST)]
        enroll_burst: u32,
        /// Open connections one IP address may hold. Behind a reverse proxy or a load
        /// balancer every phone comes from its address: raise this up to the total cap (512).
        #[arg(long, default_value_t = suivi_server::conn::CONNECTIONS_PER_IP_MAX)]
        connections_per_ip: usize,
        /// The checkpoint journal (default: beside the data directory). Put it where the
        /// database's editors cannot write: another mount, an append-only file.
        #[arg(long)]
        checkpoint_journal: Option<PathBuf>,
        /// Also answer `/healthz` on this loopback address, with connection caps of its own:
        /// a monitor is answered while a flood fills the main listener's.
        #[arg(long)]
        health_listen: Option<SocketAddr>,
    },
    /// Users: agents, supervisors, officers, admins, each in a team.
    #[command(subcommand)]
    User(UserCommand),
    /// Devices: enrollment codes, list, revoke.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Caseloads: assign a case to a user.
    #[command(subcommand)]
    Case(CaseCommand),
    /// Forms: publish a new version (JSON or XLSForm), list, retire. Devices receive new
    /// versions at their next sync.
    #[command(subcommand)]
    Form(FormCommand),
    /// The programme's outcome settings (ARCHITECTURE.md, "Outcomes"): shown without options;
    /// with them, published as a new version, which the server's indicators and the phones
    /// (at their next sync) derive outcomes with.
    OutcomeSettings {
        /// Consecutive visits finding the child out of work and in school or training before
        /// the child counts as exited (1 to 6).
        #[arg(long)]
        exit_visits: Option<u32>,
        /// Days at least between the first and the last of those visits (0 to 365).
        #[arg(long)]
        exit_days: Option<u32>,
        /// The age at which monitoring ends (12 to 25).
        #[arg(long)]
        age_limit: Option<u32>,
        /// The admin publishing them (a user of this server), written in the audit log.
        #[arg(long)]
        by: Option<String>,
    },
    /// The officer's indicators as CSV on stdout (the console's download): outcomes, closures,
    /// referrals and visits, grouped by province, commune, sector, month, sex, age, agent or
    /// team, over the scope of `--as` (an officer or an admin: the whole project).
    Indicators {
        /// The officer or admin reading them, written in the audit log.
        #[arg(long = "as")]
        reader: String,
        #[arg(long, default_value = "commune")]
        by: String,
        /// First month of identification (YYYY-MM).
        #[arg(long, default_value = "")]
        from: String,
        /// Last month of identification (YYYY-MM).
        #[arg(long, default_value = "")]
        to: String,
        /// fr, en or ar.
        #[arg(long, default_value = "fr")]
        lang: String,
    },
    /// The database at rest.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Move a server from its SQLite store to an empty PostgreSQL database, every table and
    /// position kept, so devices notice nothing; compared table by table before it says done.
    /// Stop the server first. The key file stays the same: give it to every new instance.
    MigrateStore {
        /// The SQLite store: `sqlite:<data directory>` (its key file: --key-file, or beside it).
        #[arg(long)]
        from: String,
        /// The PostgreSQL database: postgres://user:password@host:port/database.
        #[arg(long)]
        to: String,
    },
    /// Check the stored history against what a database editor cannot rewrite: every change's
    /// hash and author, the feed's and the audit log's hash chains, and the checkpoints the
    /// server journalled beside the data directory (`<data>.checkpoints`). Exit 1 if anything
    /// does not check, each finding on its own line.
    Verify {
        /// The checkpoint journal (default: beside the data directory).
        #[arg(long)]
        journal: Option<PathBuf>,
    },
    /// Journal where the feed and the audit log stand now (the serving server does it every
    /// minute they moved, and when it stops).
    Checkpoint {
        /// The checkpoint journal (default: beside the data directory).
        #[arg(long)]
        journal: Option<PathBuf>,
    },
    /// Start the server and drive it with two agents and a supervisor, offline edits included.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

#[derive(Subcommand)]
enum FormCommand {
    /// Publish a form version from a JSON definition or an XLSForm workbook (.xlsx). A
    /// published version never changes, and a field keeps its type in every version.
    Publish {
        file: PathBuf,
        /// The admin publishing it (a user of this server), written in the audit log.
        #[arg(long)]
        by: String,
    },
    /// Every published version, newest last, with who published it and whether it is retired.
    List,
    /// Retire a version: devices stop offering it for new records; its records stay valid.
    Retire {
        form: String,
        version: u32,
        /// The admin retiring it (a user of this server), written in the audit log.
        #[arg(long)]
        by: String,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Encrypt a plaintext database (from an older suivi-server) in place, losing nothing.
    /// Stop the server first.
    Encrypt,
}

#[derive(Subcommand)]
enum UserCommand {
    Add {
        user: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        team: String,
        /// Name of an environment variable holding the user's password (kept with argon2).
        #[arg(long)]
        password_env: Option<String>,
    },
    /// Sets or resets the console password of a supervisor, officer or admin (agents work on
    /// their phones and have none), and ends the user's console sessions. The password is read
    /// from the environment variable --password-env names, or from standard input.
    Password {
        user: String,
        #[arg(long)]
        password_env: Option<String>,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// A one-time code that enrolls one device for this user (valid 72 hours).
    Code {
        user: String,
    },
    List,
    /// Revoke a device: it gets 401 and is told to wipe its case data.
    Revoke {
        device: String,
    },
    /// Show a device's daily quotas and today's use; with options, override them (an import of
    /// a large spreadsheet, say) or go back to the defaults.
    Quota {
        device: String,
        /// New cases the device may create per UTC day.
        #[arg(long)]
        new_cases_per_day: Option<u64>,
        /// Bytes of changes the device may store per UTC day.
        #[arg(long)]
        bytes_per_day: Option<u64>,
        /// Drop the override: the defaults apply again.
        #[arg(long, conflicts_with_all = ["new_cases_per_day", "bytes_per_day"])]
        default: bool,
    },
}

#[derive(Subcommand)]
enum CaseCommand {
    /// Let a user read a case too (its owner keeps it).
    Assign { case: String, user: String },
    /// Move cases to another agent of their team: the new agent's phones receive them, the
    /// former owner's push what they recorded (for 30 days) and then remove them.
    Reassign {
        #[arg(required = true)]
        cases: Vec<String>,
        #[arg(long)]
        to: String,
    },
    /// Merge two records of the same child, as a supervisor or admin would in the console:
    /// MERGED becomes read-only and leads to SURVIVOR, which shows its referrals and visits.
    /// Written under BY's console actor, so history shows who merged.
    Merge {
        survivor: String,
        merged: String,
        /// The supervisor or admin the merge is made by (a user of this server).
        #[arg(long)]
        by: String,
    },
    /// Undo a merge made by mistake, within 30 days of it: MERGED is a record of its own again
    /// (editable on every phone from its next sync) and its survivor no longer shows it.
    Unmerge {
        merged: String,
        /// The supervisor or admin the undo is made by (a user of this server).
        #[arg(long)]
        by: String,
    },
    /// List the cases whose stored changes fail validation (exit 1 if any).
    Check,
    /// Set a case aside: no longer served to devices, pushes to it refused.
    Quarantine {
        case: String,
        #[arg(long, default_value = "fails validation")]
        reason: String,
    },
    /// The cases set aside.
    Quarantined,
    /// Record that a phone's forgery report (`verify`: "reported change … as one it never
    /// wrote") was reviewed: `verify` then lists it as a note. The case stays set aside.
    ForgeryReviewed {
        case: String,
        hash: String,
        /// The officer or admin who reviewed it.
        #[arg(long)]
        by: String,
    },
    /// Erase a case everywhere (consent withdrawn, a data-protection request): every change,
    /// feed row and assignment on the server, and the case on every device at its next sync.
    /// Only the id remains. Journalled beside the data directory, so a restore keeps it erased.
    Erase { case: String },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let keys = KeySource::from_env_or(
        cli.key_file
            .clone()
            .unwrap_or_else(|| at_rest::default_key_file(&cli.data)),
    );
    let database = suivi_server::Database::parse(cli.database.as_deref())?;
    if let Command::MigrateStore { from, to } = &cli.command {
        let data = PathBuf::from(
            from.strip_prefix("sqlite:")
                .ok_or("--from is sqlite:<data directory>")?,
        );
        let suivi_server::Database::Postgres(url) = suivi_server::Database::parse(Some(to))? else {
            return Err("--to is a postgres:// URL".into());
        };
        let keys = KeySource::from_env_or(
            cli.key_file
                .clone()
                .unwrap_or_else(|| at_rest::default_key_file(&data)),
        );
        let report = at_rest::migrate_to_postgres(&data, &keys, &url).map_err(|e| e.to_string())?;
        for (table, rows) in &report.tables {
            say!("{table}: {rows} rows");
        }
        say!(
            "moved to {}: {} rows, feed end {}, every table compared. Serve with --database and              {} on every instance; the SQLite file is left as it was.",
            at_rest::redact_url(&url),
            report.rows(),
            report.feed_end,
            keys.describe()
        );
        return Ok(());
    }
    if let Command::Store(StoreCommand::Encrypt) = cli.command {
        if database != suivi_server::Database::Sqlite {
            return Err("`store encrypt` encrypts the embedded SQLite database; on PostgreSQL change payloads are sealed from the start".into());
        }
        let done = at_rest::encrypt_in_place(&cli.data, &keys).map_err(|e| e.to_string())?;
        if let Some(key_file) = &done.key_file_created {
            say!(
                "generated the key file {}: back it up apart from the data directory",
                key_file.display()
            );
        }
        say!(
            "{} encrypted in place: {} tables, {} rows, all checked. Copies and backups of the \
             old plaintext file are still readable: delete them.",
            done.db.display(),
            done.tables,
            done.rows
        );
        return Ok(());
    }
    let opened = open_store(&cli.data, &keys, &database).map_err(|e| e.to_string())?;
    let (store, codes) = (opened.store.clone(), opened.codes.clone());
    let runtime = || tokio::runtime::Runtime::new().map_err(|e| e.to_string());
    match cli.command {
        Command::Serve {
            listen,
            time_zone,
            tls_cert,
            tls_key,
            enroll_burst,
            connections_per_ip,
            checkpoint_journal,
            health_listen,
        } => runtime()?.block_on(async move {
            let limits = suivi_server::conn::Limits {
                per_ip_max: connections_per_ip,
                ..Default::default()
            };
            let mut state = state(store.clone(), codes);
            state.zone = suivi_core::words::Zone::parse(&time_zone).map_err(|e| e.to_string())?;
            state.revocation_journal = Some(admin::revocation_journal(&cli.data));
            let checkpointer = std::sync::Arc::new(
                evidence::Checkpointer::open(
                    &checkpoint_journal.unwrap_or_else(|| evidence::journal_path(&cli.data)),
                )
                    .map_err(|e| e.to_string())?,
            );
            state.checkpoints = Some(checkpointer.clone());
            tokio::spawn(evidence::checkpoint_every(
                store.clone(),
                checkpointer.clone(),
                evidence::CHECKPOINT_EVERY,
            ));
            // Cases stored before the console existed (or a refresh cut short) get their
            // projections in the background: devices are served meanwhile.
            let service = state.service.clone();
            tokio::task::spawn_blocking(move || match service.refresh_all_summaries() {
                Ok(0) => {}
                Ok(n) => tracing::info!(cases = n, "console projections built"),
                Err(e) => tracing::error!(error = %e, "console projections"),
            });
            state.enroll_limiter = std::sync::Arc::new(suivi_server::RateLimiter::new(
                enroll_burst,
                suivi_server::api::ENROLL_PER_IP_PER_SEC,
            ));
            let server = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => {
                    suivi_server::spawn_tls_with_limits(
                        state,
                        listen,
                        &suivi_server::TlsFiles { cert, key },
                        limits,
                    )
                    .await?
                }
                _ => suivi_server::spawn_with_limits(state, listen, limits).await?,
            };
            tracing::info!(addr = %server.addr, database = %database.describe(), data = %cli.data.display(), key = %keys.describe(), "serving, encrypted at rest");
            let _health = match health_listen {
                Some(addr) => {
                    let health = suivi_server::spawn_health(addr).await?;
                    tracing::info!(addr = %health.addr, "health checks");
                    Some(health)
                }
                None => None,
            };
            // Ctrl-C, and SIGTERM: what `kill`, systemd and container stops send. Both end with
            // the stop checkpoint below, so the last minute's audit rows are journalled too.
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
            let stopped = tokio::select! {
                _ = tokio::signal::ctrl_c() => Ok(()),
                _ = terminate.recv() => {
                    tracing::info!("SIGTERM: stopping");
                    Ok(())
                }
                r = server.handle => r.map_err(|e| e.to_string()),
            };
            // The last minute's history gets its checkpoint too.
            let last = tokio::task::spawn_blocking(move || {
                checkpointer.checkpoint(store.as_ref(), admin::now())
            })
            .await
            .map_err(|e| e.to_string())?;
            if let Err(e) = last {
                tracing::error!(error = %e, "last checkpoint");
            }
            stopped
        }),
        Command::Verify { journal } => {
            let journal = journal.unwrap_or_else(|| evidence::journal_path(&cli.data));
            let erasures = suivi_server::erasure::journal_path(&cli.data);
            let report = evidence::verify_with_erasures(store.as_ref(), &journal, Some(&erasures))
                .map_err(|e| e.to_string())?;
            say!(
                "{} feed rows ({} of erased cases), {} changes, {} audit rows",
                report.feed_rows + report.erased_rows,
                report.erased_rows,
                report.changes,
                report.audit_rows
            );
            match &report.last_checkpoint {
                Some(c) => say!(
                    "{} checkpoints in {}; the last at {}: feed row {}, audit row {}",
                    report.checkpoints,
                    journal.display(),
                    c.at,
                    c.heads.feed_seq,
                    c.heads.audit_id
                ),
                None => say!(
                    "no checkpoint in {}: only the hash chains' links are checked",
                    journal.display()
                ),
            }
            for problem in &report.problems {
                say!("NOT VERIFIED: {problem}");
            }
            for line in &report.unreadable_journal_lines {
                say!("NOTE: line {line} of the checkpoint journal is not a checkpoint (torn by a crash?): skipped");
            }
            if report.legacy_erased_rows > 0 {
                say!(
                    "NOTE: {} feed rows were erased before erasures kept what their marks cover: the chain is taken on trust across them",
                    report.legacy_erased_rows
                );
            }
            if report.legacy_bindings > 0 {
                say!(
                    "NOTE: {} devices were enrolled before enrollments named their actor: their user is checked, their actor taken on trust",
                    report.legacy_bindings
                );
            }
            for finding in &report.reviewed_forgeries {
                say!("NOTE (reviewed): {finding}");
            }
            for case_id in &report.erasures_outside_journal {
                say!(
                    "NOTE: case {case_id} is held as erased, but not in this host's erasure journal ({}): erased from another host sharing the database, or added by hand",
                    erasures.display()
                );
            }
            for (row, device, seq, at) in &report.device_witnesses {
                say!(
                    "NOTE: at {at}, device {device} had read another history than the feed's up to row {seq} (audit row {row}): a restore from a backup, or a history rewritten"
                );
            }
            if report.intact() {
                say!("verified: the stored history is the one the server accepted");
                Ok(())
            } else {
                Err(format!(
                    "{} finding(s): the stored history was changed outside the server",
                    report.problems.len()
                ))
            }
        }
        Command::Checkpoint { journal } => {
            let journal = journal.unwrap_or_else(|| evidence::journal_path(&cli.data));
            let checkpointer =
                evidence::Checkpointer::open(&journal).map_err(|e| e.to_string())?;
            match checkpointer
                .checkpoint(store.as_ref(), admin::now())
                .map_err(|e| e.to_string())?
            {
                Some(c) => say!(
                    "checkpoint: feed row {}, audit row {}",
                    c.heads.feed_seq,
                    c.heads.audit_id
                ),
                None => say!("nothing moved since the last checkpoint"),
            }
            Ok(())
        }
        Command::Demo { listen } => {
            say!(
                "The server database is encrypted at rest under {}: back it up apart from {}.",
                keys.describe(),
                cli.data.display()
            );
            runtime()?.block_on(demo::run(store, codes, cli.data.clone(), listen))
        }
        Command::Store(StoreCommand::Encrypt) | Command::MigrateStore { .. } => {
            unreachable!("handled before the store opens")
        }
        Command::User(UserCommand::Add {
            user,
            role,
            team,
            password_env,
        }) => {
            let role = Role::parse(&role).ok_or("role is agent, supervisor, officer or admin")?;
            let password = match password_env {
                Some(var) => Some(std::env::var(&var).map_err(|_| format!("{var} is not set"))?),
                None => None,
            };
            admin::add_user(store.as_ref(), &user, role, &team, password.as_deref())?;
            say!("user {user} added ({}, team {team})", role.as_str());
            Ok(())
        }
        Command::User(UserCommand::Password { user, password_env }) => {
            let password = match password_env {
                Some(var) => std::env::var(&var).map_err(|_| format!("{var} is not set"))?,
                None => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .map_err(|e| format!("reading the password: {e}"))?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            admin::set_password(store.as_ref(), &user, &password)?;
            say!("password set for {user}; their console sessions were ended");
            Ok(())
        }
        Command::Device(DeviceCommand::Code { user }) => {
            say!("{}", admin::enrollment_code(store.as_ref(), &codes, &user)?);
            Ok(())
        }
        Command::Device(DeviceCommand::List) => {
            for d in store.devices().map_err(|e| e.to_string())? {
                let status = if d.wiped {
                    "revoked, wiped"
                } else if d.revoked {
                    "revoked"
                } else {
                    "active"
                };
                say!("{}  {}  {}  {}", d.device_id, d.user_id, d.name, status);
            }
            Ok(())
        }
        Command::Device(DeviceCommand::Revoke { device }) => {
            let journal = admin::revocation_journal(&cli.data);
            if admin::revoke(store.as_ref(), Some(&journal), &device)? {
                say!("device {device} revoked");
                Ok(())
            } else {
                Err(format!("no active device {device}"))
            }
        }
        Command::Device(DeviceCommand::Quota {
            device,
            new_cases_per_day,
            bytes_per_day,
            default,
        }) => {
            let now = chrono::Utc::now().timestamp();
            let current = admin::quota(store.as_ref(), &device)?;
            if default {
                store
                    .set_device_quota(&device, None, now)
                    .map_err(|e| e.to_string())?;
            } else if new_cases_per_day.is_some() || bytes_per_day.is_some() {
                let quota = suivi_server::storage::Quota {
                    new_cases_per_day: new_cases_per_day.unwrap_or(current.new_cases_per_day),
                    bytes_per_day: bytes_per_day.unwrap_or(current.bytes_per_day),
                };
                store
                    .set_device_quota(&device, Some(quota), now)
                    .map_err(|e| e.to_string())?;
            }
            let quota = admin::quota(store.as_ref(), &device)?;
            let used = store
                .device_usage(&device, now.div_euclid(86_400))
                .map_err(|e| e.to_string())?;
            say!(
                "{device}: {} of {} new cases and {} of {} bytes used today (UTC){}",
                used.new_cases,
                quota.new_cases_per_day,
                used.bytes,
                quota.bytes_per_day,
                if store.device_quota(&device).map_err(|e| e.to_string())?.is_some() {
                    ", override"
                } else {
                    ", defaults"
                }
            );
            Ok(())
        }
        Command::Case(CaseCommand::Assign { case, user }) => {
            admin::assign(store.as_ref(), &case, &user)?;
            say!("case {case} assigned to {user}");
            Ok(())
        }
        Command::Case(CaseCommand::Reassign { cases, to }) => {
            let service = suivi_server::SyncService::new(store.clone(), codes.clone());
            let admin_user = suivi_server::storage::User {
                user_id: "admin".into(),
                role: Role::Admin,
                team: String::new(),
                password_hash: None,
            };
            let moved = service
                .reassign(&admin_user, &cases, &to, admin::now())
                .map_err(|e| e.to_string())?;
            say!("{} of {} cases reassigned to {to}", moved.len(), cases.len());
            Ok(())
        }
        Command::Case(CaseCommand::Merge {
            survivor,
            merged,
            by,
        }) => {
            let user = store
                .user(&by)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user {by}"))?;
            suivi_server::SyncService::new(store, codes)
                .merge_cases(&user, &survivor, &merged, admin::now())
                .map_err(|e| e.to_string())?;
            say!("case {merged} merged into {survivor} by {by}");
            Ok(())
        }
        Command::Case(CaseCommand::Unmerge { merged, by }) => {
            let user = store
                .user(&by)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user {by}"))?;
            let survivor = suivi_server::SyncService::new(store, codes)
                .unmerge_case(&user, &merged, admin::now())
                .map_err(|e| e.to_string())?;
            say!("case {merged} separated from {survivor} by {by}");
            Ok(())
        }
        Command::Form(FormCommand::Publish { file, by }) => {
            let form = forms::read_form_file(&file).map_err(|e| e.to_string())?;
            let done = forms::publish(store.as_ref(), &form, &by, admin::now())
                .map_err(|e| e.to_string())?;
            if done.new {
                say!(
                    "published {} version {} ({} fields): devices receive it at their next sync",
                    form.id,
                    form.version,
                    form.fields.len()
                );
            } else {
                say!(
                    "{} version {} was already published with this definition: nothing changed",
                    form.id,
                    form.version
                );
            }
            Ok(())
        }
        Command::Indicators {
            reader,
            by,
            from,
            to,
            lang,
        } => {
            let user = store
                .user(&reader)
                .map_err(|e| e.to_string())?
                .filter(|u| {
                    matches!(
                        u.role,
                        suivi_server::storage::Role::Officer | suivi_server::storage::Role::Admin
                    )
                })
                .ok_or_else(|| format!("{reader} is not an officer or admin of this server"))?;
            let forms = suivi_server::SyncService::new(store.clone(), codes).refresh_forms();
            let csv = suivi_server::console::indicators_table(
                store.as_ref(),
                &forms,
                &user,
                (&by, &from, &to),
                suivi_core::Lang::from_tag(&lang),
            )
            .map_err(|e| e.to_string())?;
            use std::io::Write;
            std::io::stdout()
                .write_all(&csv)
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        Command::OutcomeSettings {
            exit_visits,
            exit_days,
            age_limit,
            by,
        } => {
            let service = suivi_server::SyncService::new(store, codes);
            let held = service.outcome_settings();
            let show = |s: &suivi_core::outcome::OutcomeSettings| {
                format!(
                    "version {}: exited after {} visits at least {} days apart; monitoring ends at {}",
                    s.version, s.exit_visits, s.exit_days_apart, s.age_limit
                )
            };
            if exit_visits.is_none() && exit_days.is_none() && age_limit.is_none() {
                say!("{}", show(&held));
                return Ok(());
            }
            let by = by.ok_or("--by: the admin publishing them")?;
            let admin = service
                .store()
                .user(&by)
                .map_err(|e| e.to_string())?
                .filter(|u| u.role == suivi_server::storage::Role::Admin)
                .ok_or_else(|| format!("{by} is not an admin of this server"))?;
            let wanted = suivi_core::outcome::OutcomeSettings {
                exit_visits: exit_visits.unwrap_or(held.exit_visits),
                exit_days_apart: exit_days.unwrap_or(held.exit_days_apart),
                age_limit: age_limit.unwrap_or(held.age_limit),
                ..held
            };
            let published = service
                .publish_outcome_settings(&wanted, &admin.user_id, admin::now())
                .map_err(|e| e.to_string())?;
            say!(
                "published {}: indicators rebuilt; phones derive outcomes with them after their next sync",
                show(&published)
            );
            Ok(())
        }
        Command::Form(FormCommand::List) => {
            for f in store.forms().map_err(|e| e.to_string())? {
                let published = chrono::DateTime::from_timestamp(f.published_at, 0)
                    .map_or_else(|| f.published_at.to_string(), |t| t.to_rfc3339());
                say!(
                    "{}\tv{}\t{}\tpublished {} by {}",
                    f.form_id,
                    f.version,
                    if f.retired_at.is_some() { "retired" } else { "active" },
                    published,
                    f.published_by
                );
            }
            Ok(())
        }
        Command::Form(FormCommand::Retire { form, version, by }) => {
            forms::retire(store.as_ref(), &form, version, &by, admin::now())
                .map_err(|e| e.to_string())?;
            say!("{form} version {version} retired: devices stop offering it for new records at their next sync");
            Ok(())
        }
        Command::Case(CaseCommand::Check) => {
            let failing = suivi_server::SyncService::new(store, codes)
                .check_stored_cases()
                .map_err(|e| e.to_string())?;
            for (case, why) in &failing {
                say!("{case}  {why}");
            }
            if failing.is_empty() {
                say!("every stored case passes validation");
                Ok(())
            } else {
                Err(format!(
                    "{} case(s) fail validation: `suivi-server case quarantine <case>` sets one aside",
                    failing.len()
                ))
            }
        }
        Command::Case(CaseCommand::Quarantine { case, reason }) => {
            let now = chrono::Utc::now().timestamp();
            if store
                .quarantine_case(&case, &reason, now)
                .map_err(|e| e.to_string())?
            {
                say!("case {case} set aside");
            } else {
                say!("case {case} was already set aside");
            }
            Ok(())
        }
        Command::Case(CaseCommand::ForgeryReviewed { case, hash, by }) => {
            admin::review_forgery(store.as_ref(), &case, &hash, &by)?;
            say!("the forgery report on change {hash} of case {case} is recorded as reviewed by {by}");
            Ok(())
        }
        Command::Case(CaseCommand::Erase { case }) => {
            let now = chrono::Utc::now().timestamp();
            let journal = suivi_server::erasure::journal_path(&cli.data);
            if suivi_server::erasure::erase(store.as_ref(), &journal, &case, now)
                .map_err(|e| e.to_string())?
            {
                say!("case {case} erased; devices delete it at their next sync");
            } else {
                say!("case {case} was already erased");
            }
            Ok(())
        }
        Command::Case(CaseCommand::Quarantined) => {
            for q in store.quarantined_cases().map_err(|e| e.to_string())? {
                say!("{}  {}", q.case_id, q.reason);
            }
            Ok(())
        }
    }
}
