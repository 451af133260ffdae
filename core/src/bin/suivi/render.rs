//! What the commands show people: a case, its records, its history, a list, a form, a sync report; text in the reader's language.

use super::*;

pub(super) fn list_text(rows: &[CaseRow], form: Option<&FormDefinition>, lang: Lang) -> String {
    let mut out = String::new();
    for row in rows {
        out.push_str(&summary_line(row, form, lang));
        out.push('\n');
    }
    out.push_str(&format!("{} {}", rows.len(), t(lang, "cases")));
    out
}

pub(super) fn forms_text(listed: &[Json]) -> String {
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
}

pub(super) fn referral_moved_text(
    lang: Lang,
    referral_id: &str,
    transition: Transition,
    next: Option<&str>,
) -> String {
    let mut text = format!(
        "{} {}: {}",
        t(lang, "referral_moved"),
        short(referral_id),
        transition.as_str()
    );
    if let Some(next) = next {
        text.push_str(&format!(
            "\n{} {}",
            t(lang, "referral_created"),
            short(next)
        ));
    }
    text
}

pub(super) fn progress_text(lang: Lang, p: &SyncProgress) -> String {
    // A first sync announced its caseload: how far against it.
    if p.caseload > 0 {
        return format!(
            "{} {} {} {} · {} KB",
            p.cases_down.min(p.caseload),
            t(lang, "cases"),
            t(lang, "arrived_of"),
            p.caseload,
            p.bytes_down / 1024
        );
    }
    format!(
        "{} {} · {} KB · {} round trip(s)",
        p.cases_down,
        t(lang, "cases"),
        p.bytes_down / 1024,
        p.round_trips
    )
}

pub(super) fn sync_report_text(lang: Lang, report: &SyncReport) -> String {
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
}

pub(super) fn conflicts_text(found: &[(CaseRow, Vec<Conflict>)]) -> String {
    let mut text = String::new();
    for (row, conflicts) in found {
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
}

pub(super) fn problems_text(
    lang: Lang,
    quarantined: &[QuarantinedCase],
    refused: &[RefusedCase],
) -> String {
    let mut text = String::new();
    for q in quarantined {
        text.push_str(&format!("quarantine {}  {}\n", q.case_id, q.reason));
    }
    for r in refused {
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
}

/// Writes a line to standard output. A reader that stopped early (`suivi case list | head`)
/// closes the pipe: that ends the command quietly, as it does for other Unix tools, instead of
/// the panic `println!` gives.
pub(super) fn print_line(text: &str) {
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

pub(super) fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

pub(super) fn summary_line(row: &CaseRow, form: Option<&FormDefinition>, lang: Lang) -> String {
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
    // Where the child stands, and the closure when the case is not simply open.
    if let Some(stage) = &row.stage {
        line.push_str(&format!("  {}", outcome::stage_label(lang, stage)));
        if let Some(c) = &row.classification {
            line.push_str(&format!(" · {}", outcome::classification_label(lang, c)));
        }
    }
    if let Some(closure) = &row.closure {
        line.push_str(&format!("  [{}]", outcome::closure_label(lang, closure)));
    }
    // A row a first sync sent ahead: the case itself is on its way (read-only until then).
    if row.arriving {
        line.push_str(&format!("  ({})", t(lang, "arriving")));
    }
    line
}

pub(super) fn choice_label(
    form: Option<&FormDefinition>,
    field: &str,
    id: &str,
    lang: Lang,
) -> String {
    form.and_then(|f| f.field(field))
        .and_then(|f| f.choice(id))
        .map(|c| c.label.get(lang).to_string())
        .unwrap_or_else(|| id.to_string())
}

pub(super) fn display_value(
    form: &FormDefinition,
    field_id: &str,
    value: &Json,
    lang: Lang,
) -> String {
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

pub(super) fn show_record(
    out: &mut String,
    form: &FormDefinition,
    record: &Record,
    lang: Lang,
    indent: &str,
) {
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

pub(super) fn show_case(store: &Store, detail: &CaseDetail, lang: Lang, zone: Zone) -> String {
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
    out.push_str(&outcome_text(lang, s, &detail.closure, zone));
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
        if let (false, Ok(forms)) = (merged.edits_after_merge.is_empty(), store.forms()) {
            out.push_str(&format!("\n  {}\n", t(lang, "edits_after_merge")));
            let names = Default::default();
            for line in show_history(&merged.edits_after_merge, &forms, lang, zone, &names).lines()
            {
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
pub(super) fn show_records(
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

/// A case's history as the reader reads it: when (in `zone`, to the minute), who, what happened
/// and the values it wrote by their labels; `--json` gives the document paths.
pub(super) fn show_history(
    history: &[HistoryEntry],
    forms: &suivi_core::FormRegistry,
    lang: Lang,
    zone: Zone,
    names: &suivi_core::case_doc::CaseNames,
) -> String {
    let mut out = String::new();
    let told = suivi_core::case_doc::tell_history(history, forms, lang, names);
    for (h, told) in history.iter().zip(&told) {
        // The device's clock and the user it names, then what the server verified.
        let verified = match &h.verified {
            Some(v) => match v.received_at {
                Some(at) => format!("✓ {} ({}) {}", v.user, v.device, zone.date_time(lang, at)),
                None => format!("✓ {} ({})", v.user, v.device),
            },
            None => t(lang, "unverified").to_string(),
        };
        out.push_str(&format!(
            "{}  {}  {}  [{}]\n",
            zone.date_time(lang, h.at),
            h.user.as_deref().unwrap_or("?"),
            told.headline,
            verified
        ));
        for detail in &told.details {
            out.push_str(&format!("    {detail}\n"));
        }
    }
    out.trim_end().to_string()
}

pub(super) fn describe_form(form: &FormDefinition, lang: Lang) -> String {
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

/// A case's stage, its next step, and its closure with each step's author, for `case show`.
pub(super) fn outcome_text(lang: Lang, row: &CaseRow, closure: &Closure, zone: Zone) -> String {
    let mut out = String::from("\n");
    if let Some(stage) = row.stage.as_deref().and_then(outcome::Stage::parse) {
        out.push_str(&format!("{}: {}", t(lang, "stage"), stage.label(lang)));
        if let Some(c) = &row.classification {
            out.push_str(&format!(" · {}", outcome::classification_label(lang, c)));
        }
        if row.outcome_provisional {
            out.push_str(&format!(" ({})", t(lang, "provisional")));
        }
        out.push('\n');
        // The closure as this case's document holds it, and the age limit against today.
        let held = outcome::RowOutcome {
            closure: Some(closure.code()),
            ..row.outcome()
        };
        if let Some(next) = outcome::row_in_words_today(held, lang).and_then(|w| w.next_step) {
            out.push_str(&format!("{}: {next}\n", t(lang, "next_step")));
        }
    }
    out.push_str(&format!("{}\n", closure_text(lang, closure)));
    for step in &closure.steps {
        out.push_str(&format!(
            "  {}  {}  {}",
            zone.time_text(lang, &step.at),
            outcome::closure_step_label(lang, &step.step),
            step.actor
        ));
        if let Some(reason) = &step.reason {
            out.push_str(&format!(
                "  {}",
                outcome::closure_reason_label(lang, reason)
            ));
        }
        if let Some(note) = &step.note {
            out.push_str(&format!(" : {note}"));
        }
        out.push('\n');
    }
    out
}

/// Where a closure stands: "Clôture : clôture proposée — parti de la zone".
pub(super) fn closure_text(lang: Lang, closure: &Closure) -> String {
    let status = outcome::closure_label(lang, closure.code());
    match (&closure.reason, closure.status) {
        (Some(reason), s) if s != ClosureStatus::Open => format!(
            "{}: {status} — {}",
            t(lang, "closure"),
            outcome::closure_reason_label(lang, reason)
        ),
        _ => format!("{}: {status}", t(lang, "closure")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_sync_says_how_far_it_is_and_an_arriving_row_says_so() {
        let p = SyncProgress {
            cases_down: 312,
            caseload: 1000,
            listed: 1000,
            bytes_down: 40 * 1024,
            ..SyncProgress::default()
        };
        assert_eq!(
            progress_text(Lang::Fr, &p),
            "312 cas arrivés sur 1000 · 40 KB"
        );
        assert_eq!(
            progress_text(Lang::En, &p),
            "312 cases arrived of 1000 · 40 KB"
        );
        let quiet = SyncProgress {
            cases_down: 2,
            round_trips: 1,
            ..SyncProgress::default()
        };
        assert_eq!(
            progress_text(Lang::En, &quiet),
            "2 cases · 0 KB · 1 round trip(s)"
        );
        let row = CaseRow {
            case_id: "0123456789abcdef0123456789abcdef".into(),
            first_name: "Awa".into(),
            last_name: "Traoré".into(),
            village: Some("Kignan".into()),
            arriving: true,
            ..CaseRow::default()
        };
        assert!(summary_line(&row, None, Lang::Fr).ends_with("(en cours d'arrivée)"));
        let held = CaseRow {
            arriving: false,
            ..row
        };
        assert!(!summary_line(&held, None, Lang::En).contains("arriving"));
    }

    #[test]
    fn a_row_and_a_case_say_the_stage_the_next_step_and_the_closure_in_words() {
        let row = CaseRow {
            case_id: "0123456789abcdef0123456789abcdef".into(),
            first_name: "Awa".into(),
            last_name: "Traoré".into(),
            stage: Some("exited".into()),
            classification: Some("withdrawn".into()),
            closure: Some("proposed".into()),
            outcome_provisional: true,
            ..CaseRow::default()
        };
        let line = summary_line(&row, None, Lang::Fr);
        assert!(
            line.ends_with("sorti du travail · retiré du travail  [clôture proposée]"),
            "{line}"
        );
        let mut closure = Closure {
            status: ClosureStatus::Proposed,
            disputed: false,
            reason: Some("moved_away".into()),
            steps: vec![suivi_core::case_doc::ClosureStep {
                id: "1".into(),
                step: "propose".into(),
                reason: Some("moved_away".into()),
                note: Some("parti à Bamako".into()),
                actor: "amina".into(),
                at: "2026-12-07T09:30:00+00:00".into(),
            }],
        };
        let text = outcome_text(Lang::Fr, &row, &closure, Zone::default());
        assert!(
            text.contains("Étape: sorti du travail · retiré du travail (provisoire"),
            "{text}"
        );
        assert!(
            !text.contains("Prochaine étape"),
            "a proposal waits on the supervisor"
        );
        assert!(
            text.contains("Clôture: clôture proposée — parti de la zone"),
            "{text}"
        );
        assert!(
            text.contains("7 décembre 2026 à 09:30  clôture proposée  amina  parti de la zone : parti à Bamako"),
            "{text}"
        );
        closure.status = ClosureStatus::Open;
        closure.steps.clear();
        let text = outcome_text(Lang::En, &row, &closure, Zone::default());
        assert!(text.contains("Next step: Propose closure"), "{text}");
        assert!(
            text.contains("Closure: open") && !text.contains("moved"),
            "{text}"
        );
    }
}
