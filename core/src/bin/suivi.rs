//! `suivi`: the device command. Everything an agent's phone does, from a terminal: record
//! children, refer them, move referrals, record visits, read history, search, import, export
//! and sync. Human output by default (French, English or Arabic labels), `--json` for scripts.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::Value as Json;
use suivi_core::case_doc::HistoryEntry;
use suivi_core::forms::{FieldType, FormDefinition, FOLLOWUP, IDENTIFICATION, REFERRAL};
use suivi_core::store::{CaseDetail, CaseRow};
use suivi_core::{CaseFilter, Error, Lang, Record, Store, Transition};

#[derive(Parser)]
#[command(
    name = "suivi",
    version,
    about = "Suivi device command: child protection case records, offline first"
)]
struct Cli {
    /// The encrypted case database.
    #[arg(long, env = "SUIVI_DB", default_value = "suivi.db", global = true)]
    db: PathBuf,
    /// Print JSON instead of text, for scripts.
    #[arg(long, global = true)]
    json: bool,
    /// Language of labels and messages: fr (default), en or ar. Defaults to the locale.
    #[arg(long, global = true)]
    lang: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the encrypted database for a user on this device. The key comes from SUIVI_KEY
    /// or is asked for.
    Init {
        #[arg(long)]
        user: String,
        #[arg(long)]
        device: String,
    },
    /// Children's cases.
    #[command(subcommand)]
    Case(CaseCommand),
    /// Refer a child to a service: `suivi refer <case> --set service_type=health ...`.
    Refer {
        case: String,
        #[command(flatten)]
        values: Values,
    },
    /// Move a referral: send, accept, decline, start, complete, close, transfer.
    Referral {
        referral: String,
        transition: String,
        #[arg(long)]
        note: Option<String>,
        /// For `transfer`: the next provider.
        #[arg(long)]
        provider: Option<String>,
    },
    /// Record a follow-up visit: `suivi followup <case> --set visit_date=2026-11-02 ...`.
    Followup {
        case: String,
        #[command(flatten)]
        values: Values,
    },
    /// Who changed what in a case, and when.
    History { case: String },
    /// Import cases from JSON: a spreadsheet's rows (one object per child) or a `suivi export`.
    Import { file: PathBuf },
    /// Export every case as JSON.
    Export {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show a form's fields and choices: identification, referral or followup. The newest
    /// active version this device holds (received from the server at sync), or --version.
    Form {
        id: String,
        #[arg(long)]
        version: Option<u32>,
    },
    /// The form versions this device holds: built in, and received from the server.
    Forms,
    /// Enroll this device with a sync server, with a one-time code from an admin.
    Enroll {
        #[arg(long)]
        server: String,
        #[arg(long)]
        code: String,
        /// The project's CA certificate (PEM), when the server's certificate is not public.
        #[arg(long)]
        ca_cert: Option<PathBuf>,
    },
    /// Push what was recorded offline and pull the caseload's changes.
    Sync,
    /// Cases the last syncs set aside (quarantined) or the server refused, with why.
    Problems,
    /// Fields two devices set at once: each value, who wrote it and when.
    Conflicts,
    /// Settle a conflict: `suivi resolve <case> identification.village Kaniko`, or a disputed
    /// referral's `referrals.<id>.status` with one of its statuses.
    Resolve {
        case: String,
        path: String,
        value: String,
    },
}

#[derive(Subcommand)]
enum CaseCommand {
    /// Record a new child: `--set field=value` for each field, or `--file case.json`.
    New {
        #[command(flatten)]
        values: Values,
    },
    /// Change identification fields; `--set field=` clears one.
    Edit {
        case: String,
        #[command(flatten)]
        values: Values,
    },
    /// Move a case to the newest identification form version, giving its new questions
    /// answers with `--set`; fields that version no longer asks stay, read-only.
    MoveForm {
        case: String,
        #[command(flatten)]
        values: Values,
    },
    Show {
        case: String,
    },
    /// Give a case to another agent of the team (supervisors; works offline: the server moves
    /// it at the next sync).
    Reassign {
        case: String,
        #[arg(long)]
        to: String,
    },
    List {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Search children by name; case and accents do not matter.
    Search {
        query: String,
        #[command(flatten)]
        filter: FilterArgs,
    },
}

#[derive(Args)]
struct Values {
    /// field=value, repeated. Choice ids, yes/no (oui/non), dates as YYYY-MM-DD, lists as a,b.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    set: Vec<String>,
    /// A JSON object of field values.
    #[arg(long)]
    file: Option<PathBuf>,
}

#[derive(Args)]
struct FilterArgs {
    #[arg(long)]
    village: Option<String>,
    #[arg(long)]
    risk: Option<String>,
    /// Cases with a referral in this status.
    #[arg(long)]
    status: Option<String>,
    /// Cases whose next follow-up visit is overdue today.
    #[arg(long)]
    overdue: bool,
    #[arg(long)]
    limit: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let lang = cli
        .lang
        .clone()
        .or_else(|| std::env::var("LC_ALL").ok())
        .or_else(|| std::env::var("LANG").ok())
        .map(|t| Lang::from_tag(&t))
        .unwrap_or_default();
    match run(&cli, lang) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report_error(&err, lang, cli.json);
            ExitCode::from(exit_code(&err))
        }
    }
}

fn exit_code(err: &Error) -> u8 {
    match err {
        Error::Validation(_)
        | Error::InvalidInput(_)
        | Error::IllegalTransition { .. }
        | Error::CaseMerged { .. } => 2,
        Error::NotFound { .. } => 3,
        Error::WrongKeyOrCorrupt | Error::PlaintextDatabase | Error::ForeignDatabase => 4,
        Error::Offline(_) => 5,
        Error::Forbidden(_) | Error::DeviceRevoked => 6,
        Error::UpgradeRequired => 7,
        _ => 1,
    }
}

fn key() -> Result<String, Error> {
    if let Ok(key) = std::env::var("SUIVI_KEY") {
        return Ok(key);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::InvalidInput(
            "no key: set SUIVI_KEY or run from a terminal".into(),
        ));
    }
    rpassword::prompt_password("Clé de la base / database key: ")
        .map_err(|e| Error::InvalidInput(e.to_string()))
}

fn run(cli: &Cli, lang: Lang) -> Result<(), Error> {
    if let Command::Init { user, device } = &cli.command {
        let store = Store::create(&cli.db, &key()?, user, device)?;
        return print(
            cli,
            lang,
            &serde_json::to_value(store.identity()).unwrap_or_default(),
            |_| format!("{} {}", t(lang, "initialised"), cli.db.display()),
        );
    }
    if let Command::Form { id, version } = &cli.command {
        // Without a store, the forms this build ships; with one, what it received too.
        let forms = if cli.db.exists() {
            Store::open(&cli.db, &key()?)?.forms()?
        } else {
            std::sync::Arc::new(suivi_core::FormRegistry::builtin())
        };
        let form = match version {
            Some(v) => forms.get(id, *v)?,
            None => forms.latest(id)?,
        };
        return print(
            cli,
            lang,
            &serde_json::to_value(form).unwrap_or_default(),
            |_| describe_form(form, lang),
        );
    }
    let mut store = Store::open(&cli.db, &key()?)?;
    match &cli.command {
        Command::Init { .. } | Command::Form { .. } => Ok(()),
        Command::Forms => {
            let forms = store.forms()?;
            let listed: Vec<serde_json::Value> = forms
                .all()
                .map(|f| {
                    serde_json::json!({
                        "id": f.id,
                        "version": f.version,
                        "retired": forms.is_retired(&f.id, f.version),
                        "fields": f.fields.len(),
                        "title": f.title.get(lang),
                    })
                })
                .collect();
            print(cli, lang, &serde_json::Value::Array(listed.clone()), |_| {
                listed
                    .iter()
                    .map(|f| {
                        format!(
                            "{} v{}  {}  {} ({})",
                            f["id"].as_str().unwrap_or_default(),
                            f["version"],
                            if f["retired"] == true {
                                "retired"
                            } else {
                                "active"
                            },
                            f["title"].as_str().unwrap_or_default(),
                            f["fields"]
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Case(CaseCommand::New { values }) => {
            let record = values.record(store.forms()?.latest(IDENTIFICATION)?)?;
            let id = store.create_case(&record)?;
            print(cli, lang, &serde_json::json!({"case_id": id}), |_| {
                format!("{} {}", t(lang, "case_created"), short(&id))
            })
        }
        Command::Case(CaseCommand::Edit { case, values }) => {
            let id = store.resolve_case_id(case)?;
            let version = store.case(&id)?.identification_form;
            let record = values.record(store.forms()?.get(IDENTIFICATION, version)?)?;
            let changed = store.edit_case(&id, &record)?;
            print(
                cli,
                lang,
                &serde_json::json!({"case_id": id, "changed": changed}),
                |_| {
                    format!(
                        "{} {}: {}",
                        t(lang, "case_edited"),
                        short(&id),
                        changed.join(", ")
                    )
                },
            )
        }
        Command::Case(CaseCommand::MoveForm { case, values }) => {
            let id = store.resolve_case_id(case)?;
            let record = values.record(store.forms()?.latest(IDENTIFICATION)?)?;
            let changed = store.move_case_form(&id, &record)?;
            let version = store.case(&id)?.identification_form;
            print(
                cli,
                lang,
                &serde_json::json!({"case_id": id, "changed": changed, "identification_form": version}),
                |_| format!("{} v{version}: {}", short(&id), changed.join(", ")),
            )
        }
        Command::Case(CaseCommand::Show { case }) => {
            let detail = store.case(&store.resolve_case_id(case)?)?;
            print(
                cli,
                lang,
                &serde_json::to_value(&detail).unwrap_or_default(),
                |_| show_case(&store, &detail, lang),
            )
        }
        Command::Case(CaseCommand::Reassign { case, to }) => {
            let case_id = store.resolve_case_id(case)?;
            let written = store.reassign_case(&case_id, to)?;
            print(
                cli,
                lang,
                &serde_json::json!({"case_id": case_id, "assigned_to": to, "written": written}),
                |_| format!("{} {} → {to}", t(lang, "reassigned"), short(&case_id)),
            )
        }
        Command::Case(CaseCommand::List { filter }) => {
            list(cli, lang, &store, filter.to_filter(None))
        }
        Command::Case(CaseCommand::Search { query, filter }) => {
            list(cli, lang, &store, filter.to_filter(Some(query)))
        }
        Command::Refer { case, values } => {
            let id = store.resolve_case_id(case)?;
            let record = values.record(store.forms()?.latest(REFERRAL)?)?;
            let referral = store.refer(&id, &record)?;
            print(
                cli,
                lang,
                &serde_json::json!({"case_id": id, "referral_id": referral}),
                |_| format!("{} {}", t(lang, "referral_created"), short(&referral)),
            )
        }
        Command::Referral {
            referral,
            transition,
            note,
            provider,
        } => {
            let transition = Transition::parse(transition)?;
            let (referral_id, _) = store.resolve_referral(referral)?;
            let next = store.transition_referral(
                &referral_id,
                transition,
                note.as_deref(),
                provider.as_deref(),
            )?;
            print(
                cli,
                lang,
                &serde_json::json!({"referral_id": referral_id, "next_referral_id": next}),
                |_| {
                    let mut text = format!(
                        "{} {}: {}",
                        t(lang, "referral_moved"),
                        short(&referral_id),
                        transition.as_str()
                    );
                    if let Some(next) = &next {
                        text.push_str(&format!(
                            "\n{} {}",
                            t(lang, "referral_created"),
                            short(next)
                        ));
                    }
                    text
                },
            )
        }
        Command::Followup { case, values } => {
            let id = store.resolve_case_id(case)?;
            let record = values.record(store.forms()?.latest(FOLLOWUP)?)?;
            let visit = store.add_followup(&id, &record)?;
            print(
                cli,
                lang,
                &serde_json::json!({"case_id": id, "followup_id": visit}),
                |_| format!("{} {}", t(lang, "followup_created"), short(&visit)),
            )
        }
        Command::History { case } => {
            let history = store.history(&store.resolve_case_id(case)?)?;
            print(
                cli,
                lang,
                &serde_json::to_value(&history).unwrap_or_default(),
                |_| show_history(&history),
            )
        }
        Command::Import { file } => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Error::InvalidInput(format!("{}: {e}", file.display())))?;
            let data: Json = serde_json::from_str(&text)
                .map_err(|e| Error::InvalidInput(format!("JSON: {e}")))?;
            let ids = store.import(&data)?;
            print(cli, lang, &serde_json::json!({"imported": ids}), |_| {
                format!("{} {}", ids.len(), t(lang, "imported"))
            })
        }
        Command::Enroll {
            server,
            code,
            ca_cert,
        } => {
            let ca = match ca_cert {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))?,
                ),
                None => None,
            };
            let transport = suivi_core::sync::HttpTransport::with_root_certificate(
                server,
                ca.as_deref().map(str::as_bytes),
            )?;
            if let Some(pem) = &ca {
                store.set_server_ca(pem)?;
            }
            let enrolled = store.enroll(&transport, server, code)?;
            print(
                cli,
                lang,
                &serde_json::to_value(&enrolled).unwrap_or_default(),
                |_| {
                    format!(
                        "{} {} ({}, {})",
                        t(lang, "enrolled"),
                        enrolled.server,
                        enrolled.device_id,
                        enrolled.role
                    )
                },
            )
        }
        Command::Sync => {
            store.set_app_version(&format!("suivi-cli {}", env!("CARGO_PKG_VERSION")))?;
            let transport = store.transport()?;
            let bar = (!cli.json && std::io::stderr().is_terminal()).then(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar
            });
            let result = store.sync(&transport, &mut |p| {
                if let Some(bar) = &bar {
                    bar.set_message(format!(
                        "{} {} · {} KB · {} round trip(s)",
                        p.cases_down,
                        t(lang, "cases"),
                        p.bytes_down / 1024,
                        p.round_trips
                    ));
                }
            });
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let report = result?;
            print(
                cli,
                lang,
                &serde_json::to_value(&report).unwrap_or_default(),
                |_| {
                    let mut text = format!(
                        "{}: ↑ {} {} ({} B)  ↓ {} {} ({} B)  {} round trip(s), {} ms",
                        t(lang, "synced"),
                        report.cases_up,
                        t(lang, "cases"),
                        report.bytes_up,
                        report.cases_down,
                        t(lang, "cases"),
                        report.bytes_down,
                        report.round_trips,
                        report.duration_ms
                    );
                    if report.conflicts > 0 {
                        text.push_str(&format!("\n{} {}", report.conflicts, t(lang, "conflicts")));
                    }
                    for refusal in &report.refused {
                        text.push_str(&format!(
                            "\n{} {}: {} {}",
                            t(lang, "refused"),
                            short(&refusal.case_id),
                            refusal.reason.as_str(),
                            refusal.detail
                        ));
                    }
                    for q in &report.quarantined {
                        text.push_str(&format!("\nquarantine {}: {}", short(&q.case_id), q.reason));
                    }
                    if report.server_reset {
                        text.push_str("\nserver reset: every case pushed again");
                    }
                    text
                },
            )
        }
        Command::Conflicts => {
            let mut found = Vec::new();
            for row in store.list_cases(&suivi_core::CaseFilter::default())? {
                if row.conflict_count > 0 {
                    let detail = store.case(&row.case_id)?;
                    found.push((row, detail.conflicts));
                }
            }
            print(
                cli,
                lang,
                &serde_json::json!(found
                    .iter()
                    .map(|(row, conflicts)| serde_json::json!({
                        "case_id": row.case_id,
                        "name": format!("{} {}", row.first_name, row.last_name),
                        "conflicts": conflicts,
                    }))
                    .collect::<Vec<_>>()),
                |_| {
                    let mut text = String::new();
                    for (row, conflicts) in &found {
                        text.push_str(&format!(
                            "{}  {} {}\n",
                            short(&row.case_id),
                            row.first_name,
                            row.last_name
                        ));
                        for c in conflicts {
                            let values: Vec<String> = c
                                .values
                                .iter()
                                .zip(c.sources.iter().map(Some).chain(std::iter::repeat(None)))
                                .map(|(v, src)| match src {
                                    Some(src) => format!(
                                        "{} ({}, {})",
                                        v,
                                        src.user.as_deref().unwrap_or("?"),
                                        src.at.format("%Y-%m-%d %H:%M")
                                    ),
                                    None => v.to_string(),
                                })
                                .collect();
                            text.push_str(&format!("  {}: {}\n", c.path, values.join(" | ")));
                        }
                    }
                    if text.is_empty() {
                        text.push('-');
                    }
                    text.trim_end().to_string()
                },
            )
        }
        Command::Resolve { case, path, value } => {
            let case_id = store.resolve_case_id(case)?;
            store.resolve_conflict(&case_id, path, value)?;
            print(
                cli,
                lang,
                &serde_json::json!({"case_id": case_id, "resolved": path}),
                |_| format!("{} {}", t(lang, "resolved"), path),
            )
        }
        Command::Problems => {
            let quarantined = store.quarantined_cases()?;
            let refused = store.refused_cases()?;
            print(
                cli,
                lang,
                &serde_json::json!({"quarantined": quarantined, "refused": refused}),
                |_| {
                    let mut text = String::new();
                    for q in &quarantined {
                        text.push_str(&format!("quarantine {}  {}\n", q.case_id, q.reason));
                    }
                    for r in &refused {
                        text.push_str(&format!(
                            "{} {}  {}\n",
                            t(lang, "refused"),
                            r.case_id,
                            r.reason
                        ));
                    }
                    if text.is_empty() {
                        text.push('-');
                    }
                    text.trim_end().to_string()
                },
            )
        }
        Command::Export { out } => {
            let data = store.export()?;
            let text = serde_json::to_string_pretty(&data)
                .map_err(|e| Error::InvalidInput(e.to_string()))?;
            match out {
                Some(path) => std::fs::write(path, text).map_err(|e| Error::Storage(e.to_string())),
                None => {
                    print_line(&text);
                    Ok(())
                }
            }
        }
    }
}

impl Values {
    /// Collects `--set` pairs and `--file` into a record, converting text by field type.
    fn record(&self, form: &FormDefinition) -> Result<Record, Error> {
        let mut record = Record::new();
        if let Some(path) = &self.file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))?;
            record = serde_json::from_str(&text)
                .map_err(|e| Error::InvalidInput(format!("JSON: {e}")))?;
        }
        let mut pairs = Vec::new();
        for pair in &self.set {
            let (field, value) = pair
                .split_once('=')
                .ok_or_else(|| Error::InvalidInput(format!("expected FIELD=VALUE, got {pair}")))?;
            pairs.push((field, value));
        }
        record.extend(form.record_from_inputs(pairs)?);
        Ok(record)
    }
}

impl FilterArgs {
    fn to_filter(&self, query: Option<&String>) -> CaseFilter {
        CaseFilter {
            query: query.cloned(),
            village: self.village.clone(),
            risk_level: self.risk.clone(),
            referral_status: self.status.clone(),
            overdue_on: self.overdue.then(|| chrono::Local::now().date_naive()),
            limit: self.limit,
        }
    }
}

fn list(cli: &Cli, lang: Lang, store: &Store, filter: CaseFilter) -> Result<(), Error> {
    let rows = store.list_cases(&filter)?;
    let forms = store.forms()?;
    print(
        cli,
        lang,
        &serde_json::to_value(&rows).unwrap_or_default(),
        |_| {
            let form = forms.latest(IDENTIFICATION).ok();
            let mut out = String::new();
            for row in &rows {
                out.push_str(&summary_line(row, form, lang));
                out.push('\n');
            }
            out.push_str(&format!("{} {}", rows.len(), t(lang, "cases")));
            out
        },
    )
}

fn print(
    cli: &Cli,
    _lang: Lang,
    json: &Json,
    human: impl FnOnce(&Json) -> String,
) -> Result<(), Error> {
    if cli.json {
        print_line(&serde_json::to_string_pretty(json).unwrap_or_default());
    } else {
        print_line(&human(json));
    }
    Ok(())
}

/// Writes a line to standard output. A reader that stopped early (`suivi case list | head`)
/// closes the pipe: that ends the command quietly, as it does for other Unix tools, instead of
/// the panic `println!` gives.
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

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

fn summary_line(row: &CaseRow, form: Option<&FormDefinition>, lang: Lang) -> String {
    let risk = row
        .risk_level
        .as_deref()
        .map(|r| choice_label(form, "risk_level", r, lang))
        .unwrap_or_default();
    let mut line = format!(
        "{}  {} {}  {}  {}",
        short(&row.case_id),
        row.first_name,
        row.last_name,
        row.village.as_deref().unwrap_or("-"),
        risk
    );
    if row.conflict_count > 0 {
        line.push_str(&format!(
            "  [{} {}]",
            row.conflict_count,
            t(lang, "conflicts")
        ));
    }
    line
}

fn choice_label(form: Option<&FormDefinition>, field: &str, id: &str, lang: Lang) -> String {
    form.and_then(|f| f.field(field))
        .and_then(|f| f.choice(id))
        .map(|c| c.label.get(lang).to_string())
        .unwrap_or_else(|| id.to_string())
}

fn display_value(form: &FormDefinition, field_id: &str, value: &Json, lang: Lang) -> String {
    let Some(field) = form.field(field_id) else {
        return value.to_string();
    };
    match (field.field_type, value) {
        (FieldType::SelectOne, Json::String(id)) => choice_label(Some(form), field_id, id, lang),
        (FieldType::SelectMultiple, Json::Array(ids)) => ids
            .iter()
            .filter_map(Json::as_str)
            .map(|id| choice_label(Some(form), field_id, id, lang))
            .collect::<Vec<_>>()
            .join(", "),
        (FieldType::Boolean, Json::Bool(b)) => t(lang, if *b { "yes" } else { "no" }).to_string(),
        (FieldType::Geopoint, v) => format!("{}, {}", v["lat"], v["lon"]),
        (_, Json::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

fn show_record(out: &mut String, form: &FormDefinition, record: &Record, lang: Lang, indent: &str) {
    for field in &form.fields {
        if let Some(value) = record.get(&field.id) {
            out.push_str(&format!(
                "{indent}{}: {}\n",
                field.label.get(lang),
                display_value(form, &field.id, value, lang)
            ));
        }
    }
}

fn show_case(store: &Store, detail: &CaseDetail, lang: Lang) -> String {
    // The case was read with these forms a moment ago: they load again.
    let forms = store
        .forms()
        .unwrap_or_else(|_| std::sync::Arc::new(suivi_core::FormRegistry::builtin()));
    let s = &detail.summary;
    let mut out = format!(
        "{} {}  {} {}\n{}: {}  ({} {})\n",
        t(lang, "case"),
        short(&s.case_id),
        s.first_name,
        s.last_name,
        t(lang, "created"),
        s.created_at,
        t(lang, "by"),
        s.created_by
    );
    if let Ok(form) = forms.get(IDENTIFICATION, detail.identification_form) {
        out.push_str(&format!(
            "\n{} (v{})\n",
            form.title.get(lang),
            detail.identification_form
        ));
        show_record(&mut out, form, &detail.identification, lang, "  ");
    }
    // Asked by an earlier version only: shown as they were, read-only.
    for (field, value) in &detail.former_fields {
        out.push_str(&format!("  ({field}) {value}\n"));
    }
    if let Some(into) = &detail.merged_into {
        out.push_str(&format!("\n{} {}\n", t(lang, "merged_into"), into));
    }
    show_records(
        &mut out,
        store,
        &detail.referrals,
        &detail.followups,
        lang,
        "",
    );
    for merged in &detail.merged {
        out.push_str(&format!(
            "\n{} {}{}\n",
            t(lang, "merged_case"),
            merged.case_id,
            if merged.held {
                ""
            } else {
                t(lang, "not_received")
            }
        ));
        show_records(
            &mut out,
            store,
            &merged.referrals,
            &merged.followups,
            lang,
            "  ",
        );
        if !merged.edits_after_merge.is_empty() {
            out.push_str(&format!("\n  {}\n", t(lang, "edits_after_merge")));
            for line in show_history(&merged.edits_after_merge).lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    if !detail.conflicts.is_empty() {
        out.push_str(&format!("\n{}\n", t(lang, "conflicts")));
        for c in &detail.conflicts {
            let values: Vec<String> = c.values.iter().map(Json::to_string).collect();
            out.push_str(&format!("  {}: {}\n", c.path, values.join(" | ")));
        }
    }
    out.trim_end().to_string()
}

/// A case's referral chains and visits (a survivor shows its merged cases' with an indent).
fn show_records(
    out: &mut String,
    store: &Store,
    referrals: &[suivi_core::case_doc::Referral],
    followups: &[suivi_core::case_doc::FollowUp],
    lang: Lang,
    indent: &str,
) {
    let forms = store
        .forms()
        .unwrap_or_else(|_| std::sync::Arc::new(suivi_core::FormRegistry::builtin()));
    if !referrals.is_empty() {
        out.push_str(&format!("\n{indent}{}\n", t(lang, "referrals")));
        for r in referrals {
            let form = forms.get(REFERRAL, r.form_version).ok();
            let service = r
                .fields
                .get("service_type")
                .and_then(Json::as_str)
                .unwrap_or("");
            out.push_str(&format!(
                "{indent}  [{}] {} → {}  ({})\n",
                short(&r.id),
                choice_label(form, "service_type", service, lang),
                r.fields
                    .get("provider")
                    .and_then(Json::as_str)
                    .unwrap_or(""),
                r.status
            ));
            if let Some(prev) = &r.previous_referral {
                out.push_str(&format!(
                    "{indent}      {} {}\n",
                    t(lang, "continues"),
                    short(prev)
                ));
            }
            for tr in &r.transitions {
                out.push_str(&format!(
                    "{indent}      {}  {} {} → {}  {}{}\n",
                    tr.at,
                    tr.transition,
                    tr.from,
                    tr.to,
                    tr.actor,
                    tr.note
                        .as_deref()
                        .map(|n| format!("  « {n} »"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    if !followups.is_empty() {
        out.push_str(&format!("\n{indent}{}\n", t(lang, "followups")));
        for f in followups {
            out.push_str(&format!("{indent}  [{}]\n", short(&f.id)));
            if let Ok(form) = forms.get(FOLLOWUP, f.form_version) {
                show_record(out, form, &f.fields, lang, &format!("{indent}      "));
            }
        }
    }
}

fn show_history(history: &[HistoryEntry]) -> String {
    let mut out = String::new();
    for h in history {
        // The device's clock and the user it names, then what the server verified.
        let verified = match &h.verified {
            Some(v) => match v.received_at {
                Some(at) => format!(
                    "✓ {} ({}) {}",
                    v.user,
                    v.device,
                    at.format("%Y-%m-%d %H:%M:%S")
                ),
                None => format!("✓ {} ({})", v.user, v.device),
            },
            None => "unverified".to_string(),
        };
        out.push_str(&format!(
            "{}  {}  {}  [{}]\n",
            h.at.format("%Y-%m-%d %H:%M:%S"),
            h.user.as_deref().unwrap_or("?"),
            h.action.as_deref().unwrap_or("?"),
            verified
        ));
        for c in &h.changes {
            let show = |v: &Option<Json>| {
                v.as_ref()
                    .map(Json::to_string)
                    .unwrap_or_else(|| "∅".into())
            };
            out.push_str(&format!(
                "    {}: {} → {}\n",
                c.path,
                show(&c.old),
                show(&c.new)
            ));
        }
    }
    out.trim_end().to_string()
}

fn describe_form(form: &FormDefinition, lang: Lang) -> String {
    let mut out = format!("{} ({} v{})\n", form.title.get(lang), form.id, form.version);
    for f in &form.fields {
        out.push_str(&format!(
            "  {}{}  [{}]  {}\n",
            f.id,
            if f.required { "*" } else { "" },
            f.field_type.name(),
            f.label.get(lang)
        ));
        for c in &f.choices {
            out.push_str(&format!("      {} — {}\n", c.id, c.label.get(lang)));
        }
    }
    out.trim_end().to_string()
}

fn report_error(err: &Error, lang: Lang, json: bool) {
    if json {
        let body = match err {
            Error::Validation(errors) => {
                serde_json::json!({"error": "validation", "fields": errors})
            }
            other => serde_json::json!({"error": other.to_string()}),
        };
        eprintln!("{body}");
        return;
    }
    match err {
        Error::Validation(errors) => {
            eprintln!("{}", t(lang, "invalid"));
            for e in errors {
                eprintln!("  - {}: {}", e.field, message(lang, &e.key));
            }
        }
        other => eprintln!("{}: {other}", t(lang, "error")),
    }
}

/// The few words the command itself says; form labels come from the form definitions.
fn t(lang: Lang, key: &str) -> &'static str {
    let (fr, en, ar) = match key {
        "initialised" => (
            "Base chiffrée créée :",
            "Encrypted database created:",
            "تم إنشاء قاعدة البيانات المشفرة:",
        ),
        "case_created" => ("Cas créé", "Case created", "تم إنشاء الحالة"),
        "case_edited" => ("Cas modifié", "Case edited", "تم تعديل الحالة"),
        "referral_created" => ("Orientation créée", "Referral created", "تم إنشاء الإحالة"),
        "referral_moved" => ("Orientation", "Referral", "الإحالة"),
        "followup_created" => (
            "Visite de suivi enregistrée",
            "Follow-up visit recorded",
            "تم تسجيل زيارة المتابعة",
        ),
        "imported" => ("cas importés", "cases imported", "حالات مستوردة"),
        "cases" => ("cas", "cases", "حالات"),
        "case" => ("Cas", "Case", "حالة"),
        "created" => ("Créé le", "Created", "أنشئت في"),
        "by" => ("par", "by", "بواسطة"),
        "referrals" => ("Orientations", "Referrals", "الإحالات"),
        "followups" => ("Visites de suivi", "Follow-up visits", "زيارات المتابعة"),
        "conflicts" => ("conflits", "conflicts", "تعارضات"),
        "resolved" => ("Conflit réglé :", "Conflict settled:", "تمت تسوية التعارض:"),
        "continues" => ("suite de", "continues", "استمرار لـ"),
        "merged_into" => (
            "Fusionné (même enfant), lecture seule ; suite du dossier :",
            "Merged (same child), read-only; the record goes on in case",
            "مدمجة (نفس الطفل)، للقراءة فقط؛ يستمر الملف في الحالة",
        ),
        "merged_case" => ("Cas fusionné", "Merged case", "حالة مدمجة"),
        "reassigned" => (
            "Réassigné (appliqué à la prochaine synchronisation) :",
            "Reassigned (applied at the next sync):",
            "أعيد الإسناد (يُطبَّق عند المزامنة القادمة):",
        ),
        "not_received" => (
            " (pas encore reçu sur cet appareil)",
            " (not yet received on this device)",
            " (لم تصل بعد إلى هذا الجهاز)",
        ),
        "edits_after_merge" => (
            "Saisies faites après la fusion, à revoir :",
            "Recorded after the merge, to review:",
            "ما سُجّل بعد الدمج، للمراجعة:",
        ),
        "yes" => ("oui", "yes", "نعم"),
        "no" => ("non", "no", "لا"),
        "invalid" => (
            "Données invalides, rien n'a été enregistré :",
            "Invalid data, nothing was saved:",
            "بيانات غير صالحة، لم يتم حفظ أي شيء:",
        ),
        "error" => ("Erreur", "Error", "خطأ"),
        "enrolled" => (
            "Appareil inscrit auprès de",
            "Device enrolled with",
            "تم تسجيل الجهاز لدى",
        ),
        "synced" => ("Synchronisé", "Synced", "تمت المزامنة"),
        "refused" => (
            "Refusé par le serveur :",
            "Refused by the server:",
            "رفضه الخادم:",
        ),
        _ => ("?", "?", "?"),
    };
    match lang {
        Lang::Fr => fr,
        Lang::En => en,
        Lang::Ar => ar,
    }
}

fn message(lang: Lang, key: &str) -> String {
    let text = match (lang, key) {
        (Lang::En, "required") => "required",
        (Lang::En, "unknown_field") => "unknown field",
        (Lang::En, "not_relevant") => "does not apply given the other answers",
        (Lang::En, "choice.unknown") => "not one of the choices",
        (Lang::En, "range.min") => "too small",
        (Lang::En, "range.max") => "too large",
        (Lang::En, "length.min") => "too short",
        (Lang::En, "length.max") => "too long",
        (Lang::En, "pattern") => "wrong format",
        (Lang::Fr, "required") => "obligatoire",
        (Lang::Fr, "unknown_field") => "champ inconnu",
        (Lang::Fr, "not_relevant") => "ne s'applique pas vu les autres réponses",
        (Lang::Fr, "choice.unknown") => "choix inconnu",
        (Lang::Fr, "range.min") => "trop petit",
        (Lang::Fr, "range.max") => "trop grand",
        (Lang::Fr, "length.min") => "trop court",
        (Lang::Fr, "length.max") => "trop long",
        (Lang::Fr, "pattern") => "format incorrect",
        _ => return key.to_string(),
    };
    format!("{text} ({key})")
}
