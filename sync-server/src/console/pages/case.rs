//! One case's page: its records, referrals, follow-ups, conflicts and evidence.

use super::*;

/// A case's page: identification, referral chain, visits, notes, conflicts, verified history.
pub struct CasePage<'a> {
    pub listed: &'a ListedCase,
    pub identification: &'a Record,
    /// Fields an earlier version of the form asked, kept read-only in a record that moved on.
    pub former_fields: &'a Record,
    pub identification_form: &'a FormDefinition,
    /// Each referral and visit is shown with the form version it was written with.
    pub forms: &'a FormRegistry,
    /// What the last action did (a conflict settled).
    pub notice: Option<&'a str>,
    /// Agents the reader may reassign this case to (empty: it may not).
    pub agents: &'a [String],
    pub referrals: &'a [Referral],
    pub followups: &'a [FollowUp],
    pub notes: &'a [suivi_core::case_doc::AuditNote],
    pub conflicts: &'a [Conflict],
    pub history: &'a [HistoryEntry],
    pub origins: &'a [ChangeOrigin],
    /// Device id → its phone's name, for every device the page names.
    pub phones: &'a std::collections::HashMap<String, String>,
    /// The child of each other case the history names, where the reader may read it.
    pub case_names: &'a suivi_core::case_doc::CaseNames,
    /// Set on a case merged away: the survivor's id.
    pub merged_into: Option<&'a str>,
    /// Until when the reader may undo the merge of this merged-away case (unix seconds).
    pub undo_until: Option<i64>,
    /// On a survivor: the cases merged into it.
    pub merged: &'a [MergedView],
    /// The history checked against the checkpoint journal; `None`: the server keeps none.
    pub evidence: Option<&'a CaseEvidence>,
    /// The outcome the rules derive and the closure, with what the reader may decide.
    pub closure: Option<ClosureView<'a>>,
}

/// A case merged into the one shown, as the reader may see it.
pub struct MergedView {
    pub case_id: String,
    /// False when the reader may not read it (then nothing of it is shown).
    pub readable: bool,
    pub referrals: Vec<Referral>,
    pub followups: Vec<FollowUp>,
    /// Recorded on it without knowledge of the merge: for review.
    pub edits_after_merge: Vec<HistoryEntry>,
    pub origins: Vec<ChangeOrigin>,
}

pub fn case_page(frame: &Frame<'_>, p: &CasePage<'_>) -> Markup {
    let lang = frame.lang;
    let prov = |origins| provenance(frame, p, origins);
    let s = &p.listed.summary;
    let title = format!("{} {}", s.first_name, s.last_name);
    page(
        frame,
        &title,
        html! {
            h1 { bdi { (title) } }
            @if let Some(notice) = p.notice { p.notice role="status" { (notice) } }
            @if let Some(into) = p.merged_into {
                p.notice.merged-into role="note" { (t(lang, T::MergedInto)) " " a href={ "/console/cases/" (into) } { code { (into) } } }
                @if let Some(until) = p.undo_until {
                    form.unmerge method="post" action={ "/console/cases/" (s.case_id) "/unmerge" } {
                        input type="hidden" name="csrf" value=(frame.csrf);
                        button type="submit" { (t(lang, T::Unmerge)) }
                        " " span.meta { "(" (t(lang, T::UnmergeUntil)) " " (frame.zone.day(lang, utc(until))) ")" }
                    }
                }
            }
            p.meta { (t(lang, T::Agent)) " " (p.listed.created_by) " · " (t(lang, T::Team)) " " (p.listed.team) " · " code { (s.case_id) } }
            @if !p.agents.is_empty() && p.merged_into.is_none() {
                form.reassign method="post" action={ "/console/cases/" (s.case_id) "/reassign" } {
                    input type="hidden" name="csrf" value=(frame.csrf);
                    label.check { (t(lang, T::ReassignTo)) " "
                        select name="to" required {
                            option value="" { "—" }
                            @for a in p.agents.iter().filter(|a| **a != p.listed.created_by) { option value=(a) { (a) } }
                        }
                    }
                    button type="submit" { (t(lang, T::Reassign)) }
                }
            }
            @if !p.conflicts.is_empty() {
                section.conflict-box id="conflicts" {
                    h2 { (t(lang, T::Conflicts)) }
                    p { (t(lang, T::ConcurrentValues)) }
                    @for c in p.conflicts { (conflict_form(frame, p, c)) }
                }
            }
            section {
                h2 { (t(lang, T::Identification)) }
                p.form-version { (t(lang, T::FormVersion)) " " (p.identification_form.version) }
                (record_table(lang, p.identification_form, p.identification))
                @if !p.former_fields.is_empty() {
                    h3 { (t(lang, T::FormerFields)) }
                    dl.record {
                        @for (id, value) in p.former_fields {
                            @let earlier = p.forms.versions(IDENTIFICATION).rev().find_map(|f| f.field(id));
                            @if let Some(field) = earlier {
                                dt { (field.label.get(lang)) }
                                dd { (shown_markup(lang, field, value)) }
                            }
                        }
                    }
                }
            }
            @if let Some(closure) = &p.closure { (closure_section(frame, closure)) }
            (referral_section(frame, p.forms, p.referrals))
            (followup_section(frame, p.forms, p.followups))
            @for m in p.merged {
                section.merged id={ "merged-" (m.case_id) } {
                    h2 { (t(lang, T::MergedCase)) " " a href={ "/console/cases/" (m.case_id) } { code { (m.case_id) } } }
                    @if m.readable {
                        (referral_section(frame, p.forms, &m.referrals))
                        (followup_section(frame, p.forms, &m.followups))
                        @if !m.edits_after_merge.is_empty() {
                            section.review {
                                h3 { (t(lang, T::EditsAfterMerge)) }
                                (history_list(&Provenance { origins: &m.origins, ..prov(p.origins) }, p.forms, &m.edits_after_merge))
                            }
                        }
                    } @else {
                        p.meta { (t(lang, T::NotHeld)) }
                    }
                }
            }
            @if !p.notes.is_empty() || writes_notes(frame) {
                section.notes id="notes" {
                    h2 { (t(lang, T::AuditNotes)) }
                    ul { @for n in p.notes { li { (n.author) " · " (n.at) " : " bdi { (n.text) } } } }
                    @if writes_notes(frame) && p.merged_into.is_none() {
                        form.note method="post" action={ "/console/cases/" (s.case_id) "/notes" } {
                            input type="hidden" name="csrf" value=(frame.csrf);
                            label { (t(lang, T::AddNote)) textarea name="text" required maxlength="2000" rows="3" {} }
                            button type="submit" { (t(lang, T::AddNote)) }
                        }
                    }
                }
            }
            (chain_section(&prov(p.origins), p.forms, p))
            section.history {
                h2 { (t(lang, T::History)) }
                (evidence_box(lang, p.evidence))
                (history_list(&prov(p.origins), p.forms, p.history))
            }
        },
    )
}

/// Officers and admins write audit notes from a case's page (an officer nothing else).
pub(super) fn writes_notes(frame: &Frame<'_>) -> bool {
    frame
        .user
        .is_some_and(|u| matches!(u.role, Role::Officer | Role::Admin))
}

/// Downloads of what the list shows (the reader's scope, narrowed by the list's filters when
/// `filters` is not empty): cases, referrals, follow-ups, as Excel, CSV (labels or codes) or
/// JSON.
pub(super) fn export_links(lang: Lang, filters: &str) -> Markup {
    let with = |codes: bool| match (filters.is_empty(), codes) {
        (true, false) => String::new(),
        (true, true) => "?values=codes".to_string(),
        (false, false) => format!("?{filters}"),
        (false, true) => format!("?{filters}&values=codes"),
    };
    html! {
        nav.exports aria-label=(t(lang, T::Export)) {
            (t(lang, T::Export)) " "
            @for (kind, label) in [("cases", T::Cases), ("referrals", T::Referrals), ("followups", T::FollowUps)] {
                span.export { (t(lang, label)) " "
                    a download href={ "/console/export/" (kind) ".xlsx" (with(false)) } { "Excel" } " · "
                    a download href={ "/console/export/" (kind) ".csv" (with(false)) } { "CSV" } " · "
                    a download href={ "/console/export/" (kind) ".csv" (with(true)) } { (t(lang, T::WithCodes)) } " · "
                    a download href={ "/console/export/" (kind) ".json" (with(false)) } { "JSON" }
                }
            }
            @if !filters.is_empty() { " " span.meta { (t(lang, T::ExportFiltered)) } }
        }
    }
}

/// Whether the case's stored history is the one the server accepted, and why not.
pub(super) fn evidence_box(lang: Lang, evidence: Option<&CaseEvidence>) -> Markup {
    html! {
        @match evidence {
            Some(CaseEvidence::Verified { checkpoint_at, .. }) => {
                p.evidence.evidence-verified role="status" { "✔ " (t(lang, T::EvidenceVerified)) " " (when(*checkpoint_at)) "." }
            }
            Some(CaseEvidence::NotYetCheckpointed { .. }) => {
                p.evidence.evidence-pending role="status" { "✔ " (t(lang, T::EvidencePending)) }
            }
            Some(CaseEvidence::NotVerified { problems }) => {
                div.evidence.evidence-failed role="alert" {
                    p { strong { "✘ " (t(lang, T::EvidenceFailed)) } }
                    ul { @for problem in problems { li { (problem.to_string()) } } }
                }
            }
            None => { p.evidence.evidence-failed { (t(lang, T::EvidenceNoJournal)) } }
        }
    }
}

/// A time a phone recorded (RFC 3339), in the project's zone and the reader's words, to the
/// minute; anything else as it is.
pub(super) fn recorded_at(frame: &Frame<'_>, text: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => frame.zone.date_time(frame.lang, t.to_utc()),
        Err(_) => text.to_string(),
    }
}

pub(super) fn referral_section(
    frame: &Frame<'_>,
    forms: &FormRegistry,
    referrals: &[Referral],
) -> Markup {
    let lang = frame.lang;
    let arrow = suivi_core::words::arrow(lang);
    html! {
        section {
            h2 { (t(lang, T::Referrals)) " (" (referrals.len()) ")" }
            @for r in referrals {
                article.referral {
                    h3 { span class={ "status status-" (css_word(&r.status)) } { (status_label(lang, &r.status)) } " · " (r.created_by) " · " (recorded_at(frame, &r.created_at)) }
                    @if let Ok(form) = forms.get(REFERRAL, r.form_version) { (record_table(lang, form, &r.fields)) }
                    @if !r.transitions.is_empty() {
                        h4 { (t(lang, T::Transitions)) }
                        ol { @for tr in &r.transitions {
                            li { (status_label(lang, &tr.from)) " " (arrow) " " (status_label(lang, &tr.to)) " · " (tr.actor) " · " (recorded_at(frame, &tr.at))
                                @if let Some(note) = &tr.note { " · " q { (note) } } }
                        } }
                    }
                }
            }
        }
    }
}

pub(super) fn followup_section(
    frame: &Frame<'_>,
    forms: &FormRegistry,
    followups: &[FollowUp],
) -> Markup {
    let lang = frame.lang;
    html! {
        section {
            h2 { (t(lang, T::FollowUps)) " (" (followups.len()) ")" }
            @for f in followups {
                article.followup {
                    h3 { (f.created_by) " · " (recorded_at(frame, &f.created_at)) }
                    @if let Ok(form) = forms.get(FOLLOWUP, f.form_version) { (record_table(lang, form, &f.fields)) }
                }
            }
        }
    }
}

/// One conflict: each value with who wrote it (verified by the server when it can say), and a
/// form to keep one or, for an identification field, enter another.
/// How this page tells who made a change and when.
fn provenance<'a>(
    frame: &Frame<'_>,
    p: &CasePage<'a>,
    origins: &'a [ChangeOrigin],
) -> Provenance<'a> {
    Provenance {
        lang: frame.lang,
        zone: frame.zone,
        origins,
        phones: p.phones,
        cases: p.case_names,
    }
}

pub(super) fn conflict_form(frame: &Frame<'_>, p: &CasePage<'_>, c: &Conflict) -> Markup {
    let prov = |origins| provenance(frame, p, origins);
    let lang = frame.lang;
    let field = c
        .path
        .strip_prefix("identification.")
        .and_then(|id| p.identification_form.field(id));
    let reassignments = c.path == "assigned_to";
    // An officer reads conflicts; settling one is a supervisor's (or an admin's) change.
    let settles = !frame.user.is_some_and(|u| u.role == Role::Officer);
    let closure = suivi_core::outcome::closure_conflict_words(lang, &c.path, "");
    let label = match (field, &closure) {
        (Some(f), _) => f.label.get(lang).to_string(),
        (None, Some((label, _))) => format!("{label} ({})", t(lang, T::Disputed)),
        (None, None) if reassignments => t(lang, T::ConcurrentReassignments).to_string(),
        (None, None) => format!("{} ({})", t(lang, T::ReferralStatus), t(lang, T::Disputed)),
    };
    let shown = |v: &Json| match field {
        Some(f) => shown_value(lang, f, v),
        None if reassignments => plain(v),
        None if closure.is_some() => {
            suivi_core::outcome::closure_conflict_words(lang, &c.path, &plain(v))
                .map_or_else(|| plain(v), |(_, words)| words)
        }
        None => v
            .as_str()
            .map(|s| status_label(lang, s))
            .unwrap_or_else(|| plain(v)),
    };
    html! {
        form.resolve method="post" action={ "/console/cases/" (p.listed.summary.case_id) "/resolve" } {
            input type="hidden" name="csrf" value=(frame.csrf);
            input type="hidden" name="path" value=(c.path);
            fieldset {
                legend { (label) }
                @for (i, v) in c.values.iter().enumerate() {
                    label.choice {
                        @if settles { input type="radio" name="choice" value=(i) required; }
                        strong { bdi { (shown(v)) } }
                        @if let Some(src) = c.sources.get(i) {
                            " · "
                            @match p.origins.iter().find(|o| o.hash == src.change) {
                                Some(o) => {
                                    span.verified { "✔ " (t(lang, T::Verified)) ": " (o.user_id) }
                                    " · " (t(lang, T::Device)) " " (prov(p.origins).phone(&o.device_id))
                                    " · " (t(lang, T::ReceivedAt)) " " (prov(p.origins).when(utc(o.received_at)))
                                }
                                None => { span.unverified { (t(lang, T::NotVerified)) } " · " (src.user.as_deref().unwrap_or("?")) }
                            }
                            " · " (t(lang, T::DeviceTime)) " " (prov(p.origins).when(src.at))
                        }
                    }
                }
                @if field.is_some() && settles {
                    label.choice {
                        input type="radio" name="choice" value="other";
                        (t(lang, T::AnotherValue)) " "
                        input type="text" name="other" maxlength="500";
                    }
                }
                @if settles { button type="submit" { (t(lang, T::Settle)) } }
            }
        }
    }
}

/// A choice's label in a form's field, or the id as given.
pub(super) fn choice_label(
    lang: Lang,
    form: Option<&FormDefinition>,
    field: &str,
    id: &str,
) -> String {
    form.and_then(|f| f.field(field))
        .and_then(|f| f.choice(id))
        .map(|c| c.label.get(lang).to_string())
        .unwrap_or_else(|| id.to_string())
}

pub(super) fn record_table(lang: Lang, form: &FormDefinition, record: &Record) -> Markup {
    html! {
        dl.record {
            @for field in &form.fields {
                @if let Some(value) = record.get(&field.id) {
                    dt { (field.label.get(lang)) }
                    dd { (shown_markup(lang, field, value)) }
                }
            }
        }
    }
}

/// A value as `shown_value` says it, numbers, phone numbers and places on a map kept left to
/// right inside Arabic text ("+223 76 12 34 56", never "76 12 34 56 223+").
pub(super) fn shown_markup(lang: Lang, field: &suivi_core::forms::Field, value: &Json) -> Markup {
    let text = shown_value(lang, field, value);
    match field.field_type {
        FieldType::Phone | FieldType::Integer | FieldType::Decimal | FieldType::Geopoint => {
            html! { bdi dir="ltr" { (text) } }
        }
        _ => html! { (text) },
    }
}

pub(super) fn shown_value(lang: Lang, field: &suivi_core::forms::Field, value: &Json) -> String {
    match (field.field_type, value) {
        (FieldType::SelectOne, Json::String(id)) => field
            .choice(id)
            .map(|c| c.label.get(lang).to_string())
            .unwrap_or_else(|| id.clone()),
        (FieldType::SelectMultiple, Json::Array(ids)) => ids
            .iter()
            .map(|id| {
                id.as_str()
                    .and_then(|id| field.choice(id))
                    .map(|c| c.label.get(lang).to_string())
                    .unwrap_or_else(|| plain(id))
            })
            .collect::<Vec<_>>()
            .join(", "),
        (FieldType::Boolean, Json::Bool(b)) => suivi_core::words::yes_no(lang, *b).to_string(),
        (FieldType::Date, Json::String(day)) => suivi_core::words::date_text(lang, day),
        _ => plain(value),
    }
}
