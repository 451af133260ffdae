//! The console's pages, rendered on the server with maud: every value typed on a phone goes
//! through maud's escaping (`(value)`), never `PreEscaped`, so a name holding HTML shows as text.

use chrono::{TimeZone, Utc};
use maud::{html, Markup, DOCTYPE};
use serde_json::Value as Json;
use suivi_core::case_doc::{Conflict, FollowUp, HistoryEntry, Referral};
use suivi_core::forms::{
    FieldType, FormDefinition, FormRegistry, FOLLOWUP, IDENTIFICATION, REFERRAL,
};
use suivi_core::{Lang, Record};

use super::text::{dir, t, tag, T};
use crate::evidence::CaseEvidence;
use crate::storage::{AuditRow, CaseList, ChangeOrigin, ListedCase, Role, User};

/// What every signed-in page shows in its header.
pub struct Frame<'a> {
    pub lang: Lang,
    pub user: Option<&'a User>,
    pub csrf: &'a str,
    /// This page's path and query, for the language links to come back to.
    pub here: &'a str,
}

pub fn page(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
    let lang = frame.lang;
    html! {
        (DOCTYPE)
        html lang=(tag(lang)) dir=(dir(lang)) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (t(lang, T::Title)) }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                header {
                    a.brand href="/console/cases" { "Suivi" }
                    @if frame.user.is_some() {
                        a href="/console/cases?conflicts=1" { (t(lang, T::Conflicts)) }
                        a href="/console/duplicates" { (t(lang, T::Duplicates)) }
                        a href="/console/agents" { (t(lang, T::Agents)) }
                    }
                    @if frame.user.is_some() {
                        a href="/console/referrals" { (t(lang, T::ReferralViews)) }
                        a href="/console/indicators" { (t(lang, T::Indicators)) }
                    }
                    @if frame.user.is_some_and(|u| matches!(u.role, Role::Officer | Role::Admin)) {
                        a href="/console/access-log" { (t(lang, T::AccessLog)) }
                    }
                    nav.langs aria-label=(t(lang, T::Language)) {
                        @for (l, name) in [(Lang::Fr, "Français"), (Lang::En, "English"), (Lang::Ar, "العربية")] {
                            @if l == lang {
                                span.current lang=(tag(l)) { (name) }
                            } @else {
                                a lang=(tag(l)) href={ "/console/lang/" (tag(l)) "?back=" (urlencode(frame.here)) } { (name) }
                            }
                        }
                    }
                    @if let Some(user) = frame.user {
                        span.who { (user.user_id) " · " (user.role.as_str()) " · " (t(lang, T::Team)) " " (user.team) }
                        form.logout method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(frame.csrf);
                            button type="submit" { (t(lang, T::SignOut)) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn login(frame: &Frame<'_>, message: Option<&str>, user: &str) -> Markup {
    let lang = frame.lang;
    page(
        frame,
        t(lang, T::SignIn),
        html! {
            h1 { (t(lang, T::SignIn)) }
            @if let Some(message) = message {
                p.error role="alert" { (message) }
            }
            form.login method="post" action="/console/login" {
                input type="hidden" name="csrf" value=(frame.csrf);
                label { (t(lang, T::User)) input name="user" autocomplete="username" required value=(user); }
                label { (t(lang, T::Password)) input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { (t(lang, T::SignIn)) }
            }
        },
    )
}

pub fn message(frame: &Frame<'_>, title: &str, text: &str) -> Markup {
    page(
        frame,
        title,
        html! { h1 { (title) } p.error role="alert" { (text) } },
    )
}

/// The caseload's filters, as given in the query string.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub q: String,
    pub village: String,
    pub agent: String,
    pub risk: String,
    pub status: String,
    pub overdue: bool,
    pub conflicts: bool,
    pub page: u64,
}

impl Filters {
    /// The filters as form fields (a bulk action over the list they select).
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("q", self.q.clone()),
            ("village", self.village.clone()),
            ("agent", self.agent.clone()),
            ("risk", self.risk.clone()),
            ("status", self.status.clone()),
        ];
        if self.overdue {
            out.push(("overdue", "1".into()));
        }
        if self.conflicts {
            out.push(("conflicts", "1".into()));
        }
        out
    }

    pub fn query_string(&self, page: u64) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("q", &self.q),
            ("village", &self.village),
            ("agent", &self.agent),
            ("risk", &self.risk),
            ("status", &self.status),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", urlencode(v)));
            }
        }
        if self.overdue {
            parts.push("overdue=1".into());
        }
        if self.conflicts {
            parts.push("conflicts=1".into());
        }
        if page > 0 {
            parts.push(format!("page={page}"));
        }
        parts.join("&")
    }
}

pub const STATUSES: [&str; 9] = [
    "draft",
    "sent",
    "accepted",
    "declined",
    "in_service",
    "completed",
    "closed",
    "transferred",
    crate::summary::DISPUTED,
];

/// What the caseload page shows.
pub struct Caseload<'a> {
    pub filters: &'a Filters,
    pub list: &'a CaseList,
    pub page_size: u64,
    pub today: &'a str,
    pub identification: &'a FormDefinition,
    /// Agents the reader may reassign the list to (empty: it may not).
    pub agents: &'a [String],
    pub notice: Option<String>,
}

pub fn caseload(frame: &Frame<'_>, view: &Caseload<'_>) -> Markup {
    let Caseload {
        filters,
        list,
        page_size,
        today,
        identification,
        agents,
        notice,
    } = view;
    let (page_size, today, agents, list) = (*page_size, *today, *agents, *list);
    let lang = frame.lang;
    let risk_field = identification.field("risk_level");
    let first = filters.page * page_size;
    page(
        frame,
        t(lang, T::Caseload),
        html! {
            h1 { (t(lang, T::Caseload)) }
            @if let Some(notice) = &notice { p.notice role="status" { (notice) } }
            (export_links(lang))
            form.filters method="get" action="/console/cases" role="search" {
                label.wide { (t(lang, T::Search)) input type="search" name="q" value=(filters.q) placeholder=(t(lang, T::SearchHint)); }
                label { (t(lang, T::Village)) input name="village" value=(filters.village); }
                label { (t(lang, T::Agent)) input name="agent" value=(filters.agent); }
                label { (t(lang, T::Risk))
                    select name="risk" {
                        option value="" { (t(lang, T::Any)) }
                        @if let Some(field) = risk_field {
                            @for c in &field.choices {
                                option value=(c.id) selected[filters.risk == c.id] { (c.label.get(lang)) }
                            }
                        }
                    }
                }
                label { (t(lang, T::ReferralStatus))
                    select name="status" {
                        option value="" { (t(lang, T::Any)) }
                        @for s in STATUSES {
                            option value=(s) selected[filters.status == s] { (status_label(lang, s)) }
                        }
                    }
                }
                label.check { input type="checkbox" name="overdue" value="1" checked[filters.overdue]; (t(lang, T::OverdueOnly)) }
                label.check { input type="checkbox" name="conflicts" value="1" checked[filters.conflicts]; (t(lang, T::ConflictsOnly)) }
                button type="submit" { (t(lang, T::Filter)) }
            }
            p.count { (list.total) " " (t(lang, T::Cases)) }
            @if list.cases.is_empty() {
                p { (t(lang, T::NoCases)) }
            } @else {
                table.cases {
                    thead { tr {
                        th { (t(lang, T::Name)) } th { (t(lang, T::Place)) } th { (t(lang, T::Agent)) }
                        th { (t(lang, T::Risk)) } th { (t(lang, T::Referrals)) } th { (t(lang, T::NextVisit)) }
                        th { (t(lang, T::Conflicts)) } th { (t(lang, T::Updated)) }
                    } }
                    tbody {
                        @for case in &list.cases {
                            (case_row(lang, case, today, risk_field.map(|f| &f.choices[..]).unwrap_or(&[])))
                        }
                    }
                }
            }
            @if !agents.is_empty() && list.total > 0 {
                form.reassign method="post" action="/console/reassign" {
                    input type="hidden" name="csrf" value=(frame.csrf);
                    @for (k, v) in filters.fields() { input type="hidden" name=(k) value=(v); }
                    label.check { (t(lang, T::ReassignAll)) " (" (list.total) ")"
                        select name="to" required {
                            option value="" { "—" }
                            @for a in agents { option value=(a) { (a) } }
                        }
                    }
                    button type="submit" { (t(lang, T::Reassign)) }
                }
            }
            nav.pages {
                @if filters.page > 0 {
                    a rel="prev" href={ "/console/cases?" (filters.query_string(filters.page - 1)) } { (t(lang, T::Previous)) }
                }
                @if first + (list.cases.len() as u64) < list.total {
                    a rel="next" href={ "/console/cases?" (filters.query_string(filters.page + 1)) } { (t(lang, T::Next)) }
                }
            }
        },
    )
}

fn case_row(
    lang: Lang,
    case: &ListedCase,
    today: &str,
    risks: &[suivi_core::forms::Choice],
) -> Markup {
    let s = &case.summary;
    let overdue = s.next_followup_due.as_deref().is_some_and(|d| d < today);
    let place: Vec<&str> = [s.village.as_deref(), s.commune.as_deref()]
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .collect();
    html! {
        tr {
            td {
                a.case href={ "/console/cases/" (s.case_id) } { bdi { (s.first_name) " " (s.last_name) } }
                @if let Some(into) = &s.merged_into {
                    " " a.merged href={ "/console/cases/" (into) } { (t(lang, T::MergedCase)) }
                }
            }
            td { bdi { (place.join(", ")) } }
            td { (case.created_by) }
            td { @if let Some(r) = &s.risk_level {
                span class={ "risk risk-" (css_word(r)) } { (risks.iter().find(|c| &c.id == r).map(|c| c.label.get(lang)).unwrap_or(r)) }
            } }
            td { @for st in &s.referral_statuses { span class={ "status status-" (css_word(st)) } { (status_label(lang, st)) } " " } }
            td { @if let Some(d) = &s.next_followup_due { span dir="ltr" { (d) } @if overdue { " " span.overdue { (t(lang, T::Overdue)) } } } }
            td { @if s.conflict_count > 0 { span.conflicts { (s.conflict_count) } } }
            td { (when(case.updated_at)) }
        }
    }
}

/// Pairs of cases that may be one child registered twice, side by side, each with a form to
/// say they are two children.
pub fn duplicates(
    frame: &Frame<'_>,
    pairs: &[(ListedCase, ListedCase)],
    notice: Option<&str>,
) -> Markup {
    let lang = frame.lang;
    let side = |c: &ListedCase| {
        let s = &c.summary;
        html! {
            td {
                a.case href={ "/console/cases/" (s.case_id) } { bdi { (s.first_name) " " (s.last_name) } }
                br;
                bdi { (s.village.as_deref().unwrap_or_default()) ", " (s.commune.as_deref().unwrap_or_default()) }
                @if let Some(y) = s.birth_year { " · " (t(lang, T::BirthYear)) " " (y) }
                br;
                (t(lang, T::Agent)) " " (c.created_by) " · " (when(c.updated_at))
            }
        }
    };
    page(
        frame,
        t(lang, T::Duplicates),
        html! {
            h1 { (t(lang, T::Duplicates)) }
            p.meta { (t(lang, T::DuplicatesHint)) }
            @if let Some(notice) = notice { p.notice role="status" { (notice) } }
            @if pairs.is_empty() {
                p { (t(lang, T::NoDuplicates)) }
            } @else {
                table.cases.duplicates {
                    tbody {
                        @for (a, b) in pairs {
                            tr {
                                (side(a)) (side(b))
                                td {
                                    @for (keep, away) in [(a, b), (b, a)] {
                                        form.merge method="post" action="/console/duplicates/merge" {
                                            input type="hidden" name="csrf" value=(frame.csrf);
                                            input type="hidden" name="survivor" value=(keep.summary.case_id);
                                            input type="hidden" name="merged" value=(away.summary.case_id);
                                            button type="submit" { (t(lang, T::MergeKeep)) " : " bdi { (keep.summary.first_name) " " (keep.summary.last_name) } " (" (keep.created_by) ")" }
                                        }
                                    }
                                    form.distinct method="post" action="/console/duplicates/distinct" {
                                        input type="hidden" name="csrf" value=(frame.csrf);
                                        input type="hidden" name="a" value=(a.summary.case_id);
                                        input type="hidden" name="b" value=(b.summary.case_id);
                                        button type="submit" { (t(lang, T::NotSameChild)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// Days without a sync after which a device is flagged.
pub const STALE_DAYS: i64 = 7;

/// The agents and devices of the reader's scope: last sync, app version, cases waiting on the
/// device, flagged after `STALE_DAYS` without a sync; a revoke button where the reader may.
pub fn agents(
    frame: &Frame<'_>,
    devices: &[crate::storage::DeviceStatus],
    may_revoke: bool,
    now: i64,
    notice: Option<&str>,
) -> Markup {
    let lang = frame.lang;
    page(
        frame,
        t(lang, T::Agents),
        html! {
            h1 { (t(lang, T::Agents)) }
            @if let Some(notice) = notice { p.notice role="status" { (notice) } }
            table.cases.devices {
                thead { tr {
                    th { (t(lang, T::Agent)) } th { (t(lang, T::Team)) } th { (t(lang, T::Devices)) }
                    th { (t(lang, T::LastSync)) } th { (t(lang, T::AppVersion)) } th { (t(lang, T::Waiting)) } th {}
                } }
                tbody {
                    @for d in devices {
                        @let stale = d.last_sync_at.is_none_or(|at| at < now - STALE_DAYS * 86_400);
                        tr class=[(stale && !d.device.revoked).then_some("stale")] {
                            td { (d.device.user_id) " · " (d.role.as_str()) }
                            td { (d.team) }
                            td { bdi { (d.device.name) } " " code { (d.device.device_id) } }
                            td {
                                @match d.last_sync_at { Some(at) => (when(at)), None => (t(lang, T::Never)) }
                                @if stale && !d.device.revoked { " " span.overdue { (t(lang, T::Stale)) } }
                            }
                            td { @match (&d.app_version, d.last_sync_at) {
                                (Some(v), _) => bdi { (v) },
                                (None, Some(_)) => (t(lang, T::OldApp)),
                                (None, None) => "—",
                            } }
                            td { @if let Some(w) = d.waiting_cases { (w) } }
                            td {
                                @if d.device.wiped { (t(lang, T::Wiped)) }
                                @else if d.device.revoked { (t(lang, T::Revoked)) }
                                @else if may_revoke {
                                    form.revoke method="post" action={ "/console/devices/" (d.device.device_id) "/revoke" } {
                                        input type="hidden" name="csrf" value=(frame.csrf);
                                        button type="submit" { (t(lang, T::Revoke)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

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
    /// Set on a case merged away: the survivor's id.
    pub merged_into: Option<&'a str>,
    /// On a survivor: the cases merged into it.
    pub merged: &'a [MergedView],
    /// The history checked against the checkpoint journal; `None`: the server keeps none.
    pub evidence: Option<&'a CaseEvidence>,
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
                                dd { (shown_value(lang, field, value)) }
                            }
                        }
                    }
                }
            }
            (referral_section(lang, p.forms, p.referrals))
            (followup_section(lang, p.forms, p.followups))
            @for m in p.merged {
                section.merged id={ "merged-" (m.case_id) } {
                    h2 { (t(lang, T::MergedCase)) " " a href={ "/console/cases/" (m.case_id) } { code { (m.case_id) } } }
                    @if m.readable {
                        (referral_section(lang, p.forms, &m.referrals))
                        (followup_section(lang, p.forms, &m.followups))
                        @if !m.edits_after_merge.is_empty() {
                            section.review {
                                h3 { (t(lang, T::EditsAfterMerge)) }
                                ol { @for e in &m.edits_after_merge { (history_entry(lang, e, &m.origins)) } }
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
            (chain_section(lang, p.forms, p))
            section.history {
                h2 { (t(lang, T::History)) }
                (evidence_box(lang, p.evidence))
                ol { @for e in p.history { (history_entry(lang, e, p.origins)) } }
            }
        },
    )
}

/// Officers and admins write audit notes from a case's page (an officer nothing else).
fn writes_notes(frame: &Frame<'_>) -> bool {
    frame
        .user
        .is_some_and(|u| matches!(u.role, Role::Officer | Role::Admin))
}

/// Downloads of everything the reader reads: cases, referrals, follow-ups, as CSV or JSON.
fn export_links(lang: Lang) -> Markup {
    html! {
        nav.exports aria-label=(t(lang, T::Export)) {
            (t(lang, T::Export)) " "
            @for (kind, label) in [("cases", T::Cases), ("referrals", T::Referrals), ("followups", T::FollowUps)] {
                span.export { (t(lang, label)) " "
                    a download href={ "/console/export/" (kind) ".csv" } { "CSV" } " · "
                    a download href={ "/console/export/" (kind) ".json" } { "JSON" }
                }
            }
        }
    }
}

/// Whether the case's stored history is the one the server accepted, and why not.
fn evidence_box(lang: Lang, evidence: Option<&CaseEvidence>) -> Markup {
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

fn referral_section(lang: Lang, forms: &FormRegistry, referrals: &[Referral]) -> Markup {
    html! {
        section {
            h2 { (t(lang, T::Referrals)) " (" (referrals.len()) ")" }
            @for r in referrals {
                article.referral {
                    h3 { span class={ "status status-" (css_word(&r.status)) } { (status_label(lang, &r.status)) } " · " (r.created_by) " · " (r.created_at) }
                    @if let Ok(form) = forms.get(REFERRAL, r.form_version) { (record_table(lang, form, &r.fields)) }
                    @if !r.transitions.is_empty() {
                        h4 { (t(lang, T::Transitions)) }
                        ol { @for tr in &r.transitions {
                            li { (status_label(lang, &tr.from)) " → " (status_label(lang, &tr.to)) " · " (tr.actor) " · " (tr.at)
                                @if let Some(note) = &tr.note { " · " q { (note) } } }
                        } }
                    }
                }
            }
        }
    }
}

fn followup_section(lang: Lang, forms: &FormRegistry, followups: &[FollowUp]) -> Markup {
    html! {
        section {
            h2 { (t(lang, T::FollowUps)) " (" (followups.len()) ")" }
            @for f in followups {
                article.followup {
                    h3 { (f.created_by) " · " (f.created_at) }
                    @if let Ok(form) = forms.get(FOLLOWUP, f.form_version) { (record_table(lang, form, &f.fields)) }
                }
            }
        }
    }
}

/// One conflict: each value with who wrote it (verified by the server when it can say), and a
/// form to keep one or, for an identification field, enter another.
fn conflict_form(frame: &Frame<'_>, p: &CasePage<'_>, c: &Conflict) -> Markup {
    let lang = frame.lang;
    let field = c
        .path
        .strip_prefix("identification.")
        .and_then(|id| p.identification_form.field(id));
    let reassignments = c.path == "assigned_to";
    // An officer reads conflicts; settling one is a supervisor's (or an admin's) change.
    let settles = !frame.user.is_some_and(|u| u.role == Role::Officer);
    let label = match field {
        Some(f) => f.label.get(lang).to_string(),
        None if reassignments => t(lang, T::ConcurrentReassignments).to_string(),
        None => format!("{} ({})", t(lang, T::ReferralStatus), t(lang, T::Disputed)),
    };
    let shown = |v: &Json| match field {
        Some(f) => shown_value(lang, f, v),
        None if reassignments => plain(v),
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
                                    " · " (t(lang, T::Device)) " " code { (o.device_id) }
                                    " · " (t(lang, T::ReceivedAt)) " " (when(o.received_at))
                                }
                                None => { span.unverified { (t(lang, T::NotVerified)) } " · " (src.user.as_deref().unwrap_or("?")) }
                            }
                            " · " (t(lang, T::DeviceTime)) " " span dir="ltr" { (src.at.format("%Y-%m-%d %H:%M UTC")) }
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

/// One step of a case's referral chain, read from what a change wrote (never from the label
/// a phone gave it).
enum Step {
    Identified,
    Referred {
        service: String,
        provider: String,
        transferred: bool,
    },
    Moved {
        from: String,
        to: String,
    },
    Visited {
        date: String,
        services: Vec<String>,
    },
}

/// The chain's steps a history entry holds: identification, each referral (or transfer to the
/// next provider), each status move, each visit with the services it records.
fn steps_of(e: &HistoryEntry) -> Vec<Step> {
    let mut steps = Vec::new();
    let value = |path: &str| {
        e.changes
            .iter()
            .find(|c| c.path == path)
            .and_then(|c| c.new.as_ref())
            .map(plain)
            .unwrap_or_default()
    };
    if e.changes
        .iter()
        .any(|c| c.path == "case_id" && c.old.is_none())
    {
        steps.push(Step::Identified);
    }
    for c in &e.changes {
        let parts: Vec<&str> = c.path.split('.').collect();
        match parts[..] {
            ["referrals", id, "status"] => match (&c.old, &c.new) {
                (None, Some(_)) => steps.push(Step::Referred {
                    service: value(&format!("referrals.{id}.service_type")),
                    provider: value(&format!("referrals.{id}.provider")),
                    transferred: e
                        .changes
                        .iter()
                        .any(|c| c.path == format!("referrals.{id}.previous_referral")),
                }),
                (Some(from), Some(to)) => steps.push(Step::Moved {
                    from: plain(from),
                    to: plain(to),
                }),
                _ => {}
            },
            ["followups", id, "visit_date"] if c.old.is_none() => {
                let services = e
                    .changes
                    .iter()
                    .find(|c| c.path == format!("followups.{id}.services_received"))
                    .and_then(|c| c.new.as_ref())
                    .map(|v| match v {
                        Json::Array(items) => items
                            .iter()
                            .filter_map(Json::as_str)
                            .map(str::to_string)
                            .collect(),
                        // A multiple choice reads, in history, as its ids between spaces.
                        other => plain(other)
                            .split_whitespace()
                            .map(str::to_string)
                            .collect(),
                    })
                    .unwrap_or_default();
                steps.push(Step::Visited {
                    date: plain(c.new.as_ref().unwrap_or(&Json::Null)),
                    services,
                });
            }
            _ => {}
        }
    }
    steps
}

/// A choice's label in a form's field, or the id as given.
fn choice_label(lang: Lang, form: Option<&FormDefinition>, field: &str, id: &str) -> String {
    form.and_then(|f| f.field(field))
        .and_then(|f| f.choice(id))
        .map(|c| c.label.get(lang).to_string())
        .unwrap_or_else(|| id.to_string())
}

/// The referral chain, end to end: each step with who the server verified made it, on which
/// device, the phone's time and the server's.
fn chain_section(lang: Lang, forms: &FormRegistry, p: &CasePage<'_>) -> Markup {
    let referral_form = forms.latest(REFERRAL).ok();
    let followup_form = forms.latest(FOLLOWUP).ok();
    let steps: Vec<(Step, &HistoryEntry)> = p
        .history
        .iter()
        .flat_map(|e| steps_of(e).into_iter().map(move |s| (s, e)))
        .collect();
    html! {
        section.chain id="chain" {
            h2 { (t(lang, T::Chain)) }
            ol.steps {
                @for (step, e) in &steps {
                    li.step {
                        strong {
                            @match step {
                                Step::Identified => { (t(lang, T::Identification)) }
                                Step::Referred { service, provider, transferred } => {
                                    @if *transferred { (t(lang, T::TransferredTo)) } @else { (t(lang, T::ReferredTo)) }
                                    " " bdi { (provider) } " (" (choice_label(lang, referral_form, "service_type", service)) ")"
                                }
                                Step::Moved { from, to } => { (status_label(lang, from)) " → " (status_label(lang, to)) }
                                Step::Visited { date, services } => {
                                    (t(lang, T::Visit)) " " span dir="ltr" { (date) }
                                    @if !services.is_empty() {
                                        " · " (t(lang, T::ServicesReceived)) " : "
                                        (services.iter().map(|s| choice_label(lang, followup_form, "services_received", s)).collect::<Vec<_>>().join(", "))
                                    }
                                }
                            }
                        }
                        " · " (origin_line(lang, e, p.origins))
                    }
                }
            }
        }
    }
}

/// Who the server verified made a change (user, device or console, when received), and the
/// phone's own time for it.
fn origin_line(lang: Lang, e: &HistoryEntry, origins: &[ChangeOrigin]) -> Markup {
    let origin = origins.iter().find(|o| o.hash == e.hash);
    html! {
        @match origin {
            Some(o) => {
                span.verified title=(t(lang, T::Verified)) { "✔ " (t(lang, T::Verified)) ": " (o.user_id) } " · "
                @if o.device_id == crate::storage::console_device_id(&o.user_id) {
                    strong.console { (t(lang, T::InTheConsole)) } " · "
                } @else {
                    (t(lang, T::Device)) " " code { (o.device_id) } " · "
                }
                (t(lang, T::ReceivedAt)) " " (when(o.received_at)) " · "
            }
            None => { span.unverified { (t(lang, T::NotVerified)) } " · " (e.user.as_deref().unwrap_or("?")) " · " }
        }
        (t(lang, T::DeviceTime)) " " span dir="ltr" { (e.at.format("%Y-%m-%d %H:%M UTC")) }
    }
}

fn history_entry(lang: Lang, e: &HistoryEntry, origins: &[ChangeOrigin]) -> Markup {
    html! {
        li {
            p {
                strong { (e.action.as_deref().unwrap_or("?")) } " · "
                (origin_line(lang, e, origins))
            }
            @if !e.changes.is_empty() {
                ul.fields { @for c in &e.changes {
                    li { code { (c.path) } ": " (c.old.as_ref().map(plain).unwrap_or_default()) " → " (c.new.as_ref().map(plain).unwrap_or_default()) }
                } }
            }
        }
    }
}

fn record_table(lang: Lang, form: &FormDefinition, record: &Record) -> Markup {
    html! {
        dl.record {
            @for field in &form.fields {
                @if let Some(value) = record.get(&field.id) {
                    dt { (field.label.get(lang)) }
                    dd { (shown_value(lang, field, value)) }
                }
            }
        }
    }
}

fn shown_value(lang: Lang, field: &suivi_core::forms::Field, value: &Json) -> String {
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
        (FieldType::Boolean, Json::Bool(b)) => match (lang, b) {
            (Lang::Fr, true) => "oui".into(),
            (Lang::Fr, false) => "non".into(),
            (Lang::En, true) => "yes".into(),
            (Lang::En, false) => "no".into(),
            (Lang::Ar, true) => "نعم".into(),
            (Lang::Ar, false) => "لا".into(),
        },
        _ => plain(value),
    }
}

/// A JSON value as text (strings without quotes).
pub fn plain(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn status_label(lang: Lang, status: &str) -> String {
    let words: Option<(&str, &str, &str)> = match status {
        "draft" => Some(("brouillon", "draft", "مسودة")),
        "sent" => Some(("envoyée", "sent", "مُرسلة")),
        "accepted" => Some(("acceptée", "accepted", "مقبولة")),
        "declined" => Some(("refusée", "declined", "مرفوضة")),
        "in_service" => Some(("en cours de service", "in service", "قيد الخدمة")),
        "completed" => Some(("terminée", "completed", "مكتملة")),
        "closed" => Some(("clôturée", "closed", "مغلقة")),
        "transferred" => Some(("transférée", "transferred", "مُحوَّلة")),
        crate::summary::DISPUTED => Some((
            t(Lang::Fr, T::Disputed),
            t(Lang::En, T::Disputed),
            t(Lang::Ar, T::Disputed),
        )),
        _ => None,
    };
    match (words, lang) {
        (Some((fr, _, _)), Lang::Fr) => fr.into(),
        (Some((_, en, _)), Lang::En) => en.into(),
        (Some((_, _, ar)), Lang::Ar) => ar.into(),
        (None, _) => status.into(),
    }
}

/// A class name from a known word: anything else becomes `other`, so phone data never shapes
/// the markup beyond text.
fn css_word(word: &str) -> &str {
    if !word.is_empty()
        && word.len() <= 24
        && word.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    {
        word
    } else {
        "other"
    }
}

/// A server time, left to right in an Arabic page too.
fn when(unix: i64) -> Markup {
    let text = Utc
        .timestamp_opt(unix, 0)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    html! { span dir="ltr" { (text) } }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The stylesheet, embedded in the binary (no CDN: district offices are offline often).
pub const STYLESHEET: &str = include_str!("console.css");

/// The access log's filters, as typed.
pub struct AccessLogFilter {
    pub user: String,
    pub case: String,
}

impl AccessLogFilter {
    pub fn query_string(&self, before: Option<u64>) -> String {
        let mut parts = vec![
            format!("user={}", urlencode(&self.user)),
            format!("case={}", urlencode(&self.case)),
        ];
        if let Some(before) = before {
            parts.push(format!("before={before}"));
        }
        parts.join("&")
    }
}

pub fn access_log(
    frame: &Frame<'_>,
    filter: &AccessLogFilter,
    rows: &[AuditRow],
    older: Option<u64>,
) -> Markup {
    let lang = frame.lang;
    page(
        frame,
        t(lang, T::AccessLog),
        html! {
            h1 { (t(lang, T::AccessLog)) }
            p.meta { (t(lang, T::AccessLogHint)) }
            form.filters method="get" action="/console/access-log" {
                label { (t(lang, T::User)) " " input type="text" name="user" value=(filter.user) maxlength="100"; }
                label { (t(lang, T::Case)) " " input type="text" name="case" value=(filter.case) maxlength="100" dir="ltr"; }
                button type="submit" { (t(lang, T::Filter)) }
            }
            @if rows.is_empty() {
                p { (t(lang, T::NoRows)) }
            } @else {
                table.access-log {
                    thead { tr { th { "#" } th { (t(lang, T::When)) } th { (t(lang, T::Who)) } th { (t(lang, T::Action)) } th { (t(lang, T::Subject)) } } }
                    tbody {
                        @for r in rows {
                            tr {
                                td { (r.id) }
                                td { (when(r.at)) }
                                td { (r.actor) }
                                td { code { (r.action) } }
                                td.subject dir="ltr" {
                                    // Case ids link to the case; anything else is shown as text.
                                    @for (i, word) in r.subject.split(' ').enumerate() {
                                        @if i > 0 { " " }
                                        @if crate::storage::valid_case_id(word) {
                                            a href={ "/console/cases/" (word) } { code { (word) } }
                                        } @else {
                                            (word)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(before) = older {
                p { a rel="next" href={ "/console/access-log?" (filter.query_string(Some(before))) } { (t(lang, T::Older)) " →" } }
            }
        },
    )
}

pub fn indicators(
    frame: &Frame<'_>,
    by: super::indicators::Dimension,
    (from, to): (&str, &str),
    rows: &[super::indicators::Row],
    total: &super::indicators::Row,
) -> Markup {
    use super::indicators::{chart, columns, Dimension};
    let lang = frame.lang;
    let query = format!(
        "by={}&from={}&to={}",
        by.as_str(),
        urlencode(from),
        urlencode(to)
    );
    let columns = columns(lang);
    page(
        frame,
        t(lang, T::Indicators),
        html! {
            h1 { (t(lang, T::Indicators)) }
            form.filters method="get" action="/console/indicators" {
                label { (t(lang, T::GroupBy)) " "
                    select name="by" {
                        @for d in Dimension::ALL { option value=(d.as_str()) selected[d == by] { (d.label(lang)) } }
                    }
                }
                label { (t(lang, T::From)) " " input type="month" name="from" value=(from) dir="ltr"; }
                label { (t(lang, T::To)) " " input type="month" name="to" value=(to) dir="ltr"; }
                button type="submit" { (t(lang, T::Filter)) }
            }
            p { a download href={ "/console/indicators.csv?" (query) } { (t(lang, T::Download)) } }
            (chart(rows, lang))
            table.indicators {
                thead { tr {
                    th { (by.label(lang)) }
                    @for (h, _) in &columns { th { (h) } }
                } }
                tbody {
                    @for row in rows {
                        tr {
                            td {
                                bdi { (row.label) }
                                @if row.spellings.len() > 1 {
                                    br; small.spellings { (t(lang, T::SpellingsGrouped)) " : "
                                        (row.spellings.iter().map(|(s, n)| format!("{s} ({n})")).collect::<Vec<_>>().join(" · ")) }
                                }
                            }
                            @for (_, value) in &columns { td.num { (value(row)) } }
                        }
                    }
                }
                tfoot { tr {
                    th { (total.label) }
                    @for (_, value) in &columns { td.num { (value(total)) } }
                } }
            }
        },
    )
}

pub fn referrals(
    frame: &Frame<'_>,
    forms: &FormRegistry,
    groups: &[crate::storage::ReferralGroup],
    stuck: &[crate::storage::StuckReferral],
    days: i64,
    now: i64,
) -> Markup {
    use crate::storage::TIMED_STATUSES;
    let lang = frame.lang;
    let form = forms.latest(REFERRAL).ok();
    let service = |s: &Option<String>| {
        s.as_deref()
            .map(|id| choice_label(lang, form, "service_type", id))
            .unwrap_or_default()
    };
    let average = |(secs, n): (i64, u64)| {
        if n == 0 {
            String::new()
        } else {
            format!("{:.1}", secs as f64 / n as f64 / 86_400.0)
        }
    };
    page(
        frame,
        t(lang, T::ReferralViews),
        html! {
            h1 { (t(lang, T::ReferralViews)) }
            table.referral-groups {
                thead { tr {
                    th { (t(lang, T::Service)) } th { (t(lang, T::Provider)) } th { (t(lang, T::Status)) } th { (t(lang, T::Referrals)) }
                    @for (status, _) in TIMED_STATUSES { th { (t(lang, T::DaysIn)) " " (status_label(lang, status)) } }
                } }
                tbody {
                    @for g in groups {
                        tr {
                            td { (service(&g.service_type)) }
                            td { bdi { (g.provider.as_deref().unwrap_or_default()) } }
                            td { span class={ "status status-" (css_word(&g.status)) } { (status_label(lang, &g.status)) } }
                            td.num { (g.referrals) }
                            @for slot in g.time_in { td.num { (average(slot)) } }
                        }
                    }
                }
            }
            h2 id="stuck" { (t(lang, T::Stuck)) }
            form.filters method="get" action="/console/referrals" {
                label { (t(lang, T::StuckFor)) " " input type="number" name="days" min="1" max="3650" value=(days); " " (t(lang, T::Days)) }
                button type="submit" { (t(lang, T::Filter)) }
            }
            @if stuck.is_empty() {
                p { (t(lang, T::NoRows)) }
            } @else {
                table.stuck {
                    thead { tr { th { (t(lang, T::Case)) } th { (t(lang, T::Service)) } th { (t(lang, T::Provider)) } th { (t(lang, T::Status)) } th { (t(lang, T::Days)) } } }
                    tbody {
                        @for r in stuck {
                            tr {
                                td { a href={ "/console/cases/" (r.case_id) "#chain" } { code { (r.case_id.get(..8).unwrap_or(&r.case_id)) } } }
                                td { (service(&r.service_type)) }
                                td { bdi { (r.provider.as_deref().unwrap_or_default()) } }
                                td { span class={ "status status-" (css_word(&r.status)) } { (status_label(lang, &r.status)) } }
                                td.num { ((now - r.status_since) / 86_400) }
                            }
                        }
                    }
                }
            }
        },
    )
}
