//! One run of a command: the store opened with its key, the command carried out, its result printed.

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

pub(super) fn run(cli: &Cli, lang: Lang) -> Result<(), Error> {
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
                        enrolled.role.as_str()
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
