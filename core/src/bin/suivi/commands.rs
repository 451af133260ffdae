//! The commands, one function each: the store opened with its key, the command carried out,
//! and what it shows (its JSON for scripts, its text for people, built in `render`).

use super::*;

pub(super) fn key() -> Result<String, Error> {
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

/// What a command shows: JSON with `--json`, else the text.
pub(super) struct Shown {
    pub json: Json,
    pub text: String,
}

impl Shown {
    fn new(json: Json, text: impl Into<String>) -> Self {
        Shown {
            json,
            text: text.into(),
        }
    }

    fn of(value: &impl serde::Serialize, text: impl Into<String>) -> Self {
        Shown::new(serde_json::to_value(value).unwrap_or_default(), text)
    }
}

pub(super) fn run(cli: &Cli, lang: Lang) -> Result<(), Error> {
    let shown = match &cli.command {
        Command::Init { user, device } => init(cli, lang, user, device)?,
        Command::Form { id, version } => form(cli, lang, id, *version)?,
        Command::Forms => forms(&open(cli)?, lang)?,
        Command::Case(CaseCommand::New { values }) => new_case(&mut open(cli)?, lang, values)?,
        Command::Case(CaseCommand::Edit { case, values }) => {
            edit_case(&mut open(cli)?, lang, case, values)?
        }
        Command::Case(CaseCommand::MoveForm { case, values }) => {
            move_form(&mut open(cli)?, case, values)?
        }
        Command::Case(CaseCommand::Show { case }) => show(&open(cli)?, lang, case)?,
        Command::Case(CaseCommand::Reassign { case, to }) => {
            reassign(&mut open(cli)?, lang, case, to)?
        }
        Command::Case(CaseCommand::Close { case, reason, note }) => {
            closure_step(&mut open(cli)?, lang, case, |store, id| {
                store.propose_closure(id, reason, note.as_deref())
            })?
        }
        Command::Case(CaseCommand::Decide {
            case,
            decision,
            note,
        }) => {
            let approve = match decision.as_str() {
                "approve" | "approuver" => true,
                "return" | "renvoyer" => false,
                other => {
                    return Err(Error::InvalidInput(format!(
                        "decision {other}: approve or return"
                    )))
                }
            };
            closure_step(&mut open(cli)?, lang, case, |store, id| {
                store.decide_closure(id, approve, note.as_deref())
            })?
        }
        Command::Case(CaseCommand::Reopen { case, note }) => {
            closure_step(&mut open(cli)?, lang, case, |store, id| {
                store.reopen_case(id, note.as_deref())
            })?
        }
        Command::Case(CaseCommand::List { filter }) => {
            list(&open(cli)?, lang, filter.to_filter(None))?
        }
        Command::Case(CaseCommand::Search { query, filter }) => {
            list(&open(cli)?, lang, filter.to_filter(Some(query)))?
        }
        Command::Refer { case, values } => refer(&mut open(cli)?, lang, case, values)?,
        Command::Referral {
            referral,
            transition,
            note,
            provider,
        } => move_referral(
            &mut open(cli)?,
            lang,
            referral,
            transition,
            note.as_deref(),
            provider.as_deref(),
        )?,
        Command::Followup { case, values } => followup(&mut open(cli)?, lang, case, values)?,
        Command::History { case } => history(&open(cli)?, lang, case)?,
        Command::Import { file } => import(&mut open(cli)?, lang, file)?,
        Command::Enroll {
            server,
            code,
            ca_cert,
        } => enroll(&mut open(cli)?, lang, server, code, ca_cert.as_deref())?,
        Command::Sync => sync(&mut open(cli)?, lang, cli.json)?,
        Command::Conflicts => conflicts(&open(cli)?)?,
        Command::Resolve { case, path, value } => {
            resolve(&mut open(cli)?, lang, case, path, value)?
        }
        Command::Problems => problems(&open(cli)?, lang)?,
        Command::Export { out } => return export(&open(cli)?, out.as_deref()),
    };
    print_line(&if cli.json {
        serde_json::to_string_pretty(&shown.json).unwrap_or_default()
    } else {
        shown.text
    });
    Ok(())
}

/// The time zone times are shown in: `SUIVI_TIME_ZONE` (an IANA name), else UTC.
fn zone() -> Result<Zone, Error> {
    match std::env::var("SUIVI_TIME_ZONE") {
        Ok(name) => Zone::parse(&name),
        Err(_) => Ok(Zone::default()),
    }
}

fn open(cli: &Cli) -> Result<Store, Error> {
    Store::open(&cli.db, &key()?)
}

fn init(cli: &Cli, lang: Lang, user: &str, device: &str) -> Result<Shown, Error> {
    let store = Store::create(&cli.db, &key()?, user, device)?;
    Ok(Shown::of(
        store.identity(),
        format!("{} {}", t(lang, "initialised"), cli.db.display()),
    ))
}

/// Without a store, the forms this build ships; with one, what it received too.
fn form(cli: &Cli, lang: Lang, id: &str, version: Option<u32>) -> Result<Shown, Error> {
    let forms = if cli.db.exists() {
        Store::open(&cli.db, &key()?)?.forms()?
    } else {
        std::sync::Arc::new(suivi_core::FormRegistry::builtin())
    };
    let form = match version {
        Some(v) => forms.get(id, v)?,
        None => forms.latest(id)?,
    };
    Ok(Shown::of(form, describe_form(form, lang)))
}

fn forms(store: &Store, lang: Lang) -> Result<Shown, Error> {
    let forms = store.forms()?;
    let listed: Vec<Json> = forms
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
    let text = forms_text(&listed);
    Ok(Shown::new(Json::Array(listed), text))
}

fn new_case(store: &mut Store, lang: Lang, values: &Values) -> Result<Shown, Error> {
    let record = values.record(store.forms()?.latest(IDENTIFICATION)?)?;
    let id = store.create_case(&record)?;
    Ok(Shown::new(
        serde_json::json!({"case_id": id}),
        format!("{} {}", t(lang, "case_created"), short(&id)),
    ))
}

fn edit_case(store: &mut Store, lang: Lang, case: &str, values: &Values) -> Result<Shown, Error> {
    let id = store.resolve_case_id(case)?;
    let version = store.case(&id)?.identification_form;
    let record = values.record(store.forms()?.get(IDENTIFICATION, version)?)?;
    let changed = store.edit_case(&id, &record)?;
    Ok(Shown::new(
        serde_json::json!({"case_id": id, "changed": changed}),
        format!(
            "{} {}: {}",
            t(lang, "case_edited"),
            short(&id),
            changed.join(", ")
        ),
    ))
}

fn move_form(store: &mut Store, case: &str, values: &Values) -> Result<Shown, Error> {
    let id = store.resolve_case_id(case)?;
    let record = values.record(store.forms()?.latest(IDENTIFICATION)?)?;
    let changed = store.move_case_form(&id, &record)?;
    let version = store.case(&id)?.identification_form;
    Ok(Shown::new(
        serde_json::json!({"case_id": id, "changed": changed, "identification_form": version}),
        format!("{} v{version}: {}", short(&id), changed.join(", ")),
    ))
}

fn show(store: &Store, lang: Lang, case: &str) -> Result<Shown, Error> {
    let detail = store.case(&store.resolve_case_id(case)?)?;
    let text = show_case(store, &detail, lang, zone()?);
    Ok(Shown::of(&detail, text))
}

fn reassign(store: &mut Store, lang: Lang, case: &str, to: &str) -> Result<Shown, Error> {
    let case_id = store.resolve_case_id(case)?;
    let written = store.reassign_case(&case_id, to)?;
    Ok(Shown::new(
        serde_json::json!({"case_id": case_id, "assigned_to": to, "written": written}),
        format!("{} {} → {to}", t(lang, "reassigned"), short(&case_id)),
    ))
}

/// A step of a case's closure, then where the closure stands, in words.
fn closure_step(
    store: &mut Store,
    lang: Lang,
    case: &str,
    step: impl FnOnce(&mut Store, &str) -> Result<(), Error>,
) -> Result<Shown, Error> {
    let case_id = store.resolve_case_id(case)?;
    step(store, &case_id)?;
    let closure = store.closure(&case_id)?;
    let text = format!("{}  {}", short(&case_id), closure_text(lang, &closure));
    Ok(Shown::new(
        serde_json::json!({"case_id": case_id, "closure": closure}),
        text,
    ))
}

fn list(store: &Store, lang: Lang, filter: CaseFilter) -> Result<Shown, Error> {
    let rows = store.list_cases(&filter)?;
    let forms = store.forms()?;
    let text = list_text(&rows, forms.latest(IDENTIFICATION).ok(), lang);
    Ok(Shown::of(&rows, text))
}

fn refer(store: &mut Store, lang: Lang, case: &str, values: &Values) -> Result<Shown, Error> {
    let id = store.resolve_case_id(case)?;
    let record = values.record(store.forms()?.latest(REFERRAL)?)?;
    let referral = store.refer(&id, &record)?;
    Ok(Shown::new(
        serde_json::json!({"case_id": id, "referral_id": referral}),
        format!("{} {}", t(lang, "referral_created"), short(&referral)),
    ))
}

fn move_referral(
    store: &mut Store,
    lang: Lang,
    referral: &str,
    transition: &str,
    note: Option<&str>,
    provider: Option<&str>,
) -> Result<Shown, Error> {
    let transition = Transition::parse(transition)?;
    let (referral_id, _) = store.resolve_referral(referral)?;
    let next = store.transition_referral(&referral_id, transition, note, provider)?;
    let text = referral_moved_text(lang, &referral_id, transition, next.as_deref());
    Ok(Shown::new(
        serde_json::json!({"referral_id": referral_id, "next_referral_id": next}),
        text,
    ))
}

fn followup(store: &mut Store, lang: Lang, case: &str, values: &Values) -> Result<Shown, Error> {
    let id = store.resolve_case_id(case)?;
    let record = values.record(store.forms()?.latest(FOLLOWUP)?)?;
    let visit = store.add_followup(&id, &record)?;
    Ok(Shown::new(
        serde_json::json!({"case_id": id, "followup_id": visit}),
        format!("{} {}", t(lang, "followup_created"), short(&visit)),
    ))
}

fn history(store: &Store, lang: Lang, case: &str) -> Result<Shown, Error> {
    let history = store.history(&store.resolve_case_id(case)?)?;
    let names = store.case_names(&suivi_core::case_doc::cases_named(&history));
    let text = show_history(&history, &*store.forms()?, lang, zone()?, &names);
    Ok(Shown::of(&history, text))
}

fn import(store: &mut Store, lang: Lang, file: &Path) -> Result<Shown, Error> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::InvalidInput(format!("{}: {e}", file.display())))?;
    let data: Json =
        serde_json::from_str(&text).map_err(|e| Error::InvalidInput(format!("JSON: {e}")))?;
    let ids = store.import(&data)?;
    Ok(Shown::new(
        serde_json::json!({"imported": ids}),
        format!("{} {}", ids.len(), t(lang, "imported")),
    ))
}

fn enroll(
    store: &mut Store,
    lang: Lang,
    server: &str,
    code: &str,
    ca_cert: Option<&Path>,
) -> Result<Shown, Error> {
    let ca = ca_cert
        .map(|path| {
            std::fs::read_to_string(path)
                .map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))
        })
        .transpose()?;
    let transport = suivi_core::sync::HttpTransport::with_root_certificate(
        server,
        ca.as_deref().map(str::as_bytes),
    )?;
    if let Some(pem) = &ca {
        store.set_server_ca(pem)?;
    }
    let enrolled = store.enroll(&transport, server, code)?;
    let text = format!(
        "{} {} ({}, {})",
        t(lang, "enrolled"),
        enrolled.server,
        enrolled.device_id,
        enrolled.role.as_str()
    );
    Ok(Shown::of(&enrolled, text))
}

/// Syncs with a spinner on a terminal (none for scripts or a pipe).
fn sync(store: &mut Store, lang: Lang, json: bool) -> Result<Shown, Error> {
    store.set_app_version(&format!("suivi-cli {}", env!("CARGO_PKG_VERSION")))?;
    let transport = store.transport()?;
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    let result = store.sync(&transport, &mut |p| {
        if let Some(bar) = &bar {
            bar.set_message(progress_text(lang, p));
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result?;
    Ok(Shown::of(&report, sync_report_text(lang, &report)))
}

fn conflicts(store: &Store) -> Result<Shown, Error> {
    let mut found = Vec::new();
    for row in store.list_cases(&CaseFilter::default())? {
        if row.conflict_count > 0 {
            let detail = store.case(&row.case_id)?;
            found.push((row, detail.conflicts));
        }
    }
    let json = serde_json::json!(found
        .iter()
        .map(|(row, conflicts)| serde_json::json!({
            "case_id": row.case_id,
            "name": format!("{} {}", row.first_name, row.last_name),
            "conflicts": conflicts,
        }))
        .collect::<Vec<_>>());
    Ok(Shown::new(json, conflicts_text(&found)))
}

fn resolve(
    store: &mut Store,
    lang: Lang,
    case: &str,
    path: &str,
    value: &str,
) -> Result<Shown, Error> {
    let case_id = store.resolve_case_id(case)?;
    store.resolve_conflict(&case_id, path, value)?;
    Ok(Shown::new(
        serde_json::json!({"case_id": case_id, "resolved": path}),
        format!("{} {}", t(lang, "resolved"), path),
    ))
}

fn problems(store: &Store, lang: Lang) -> Result<Shown, Error> {
    let quarantined = store.quarantined_cases()?;
    let refused = store.refused_cases()?;
    let text = problems_text(lang, &quarantined, &refused);
    Ok(Shown::new(
        serde_json::json!({"quarantined": quarantined, "refused": refused}),
        text,
    ))
}

/// The store as JSON, to a file or standard output (never the text form).
fn export(store: &Store, out: Option<&Path>) -> Result<(), Error> {
    let data = store.export()?;
    let text =
        serde_json::to_string_pretty(&data).map_err(|e| Error::InvalidInput(e.to_string()))?;
    match out {
        Some(path) => std::fs::write(path, text).map_err(|e| Error::Storage(e.to_string())),
        None => {
            print_line(&text);
            Ok(())
        }
    }
}
