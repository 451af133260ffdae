//! The caseload page: filters, the list of cases.

use super::*;

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

pub(super) fn case_row(
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
