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
    pub sort: CaseSort,
    pub page: u64,
}

/// The agents and villages of the reader's cases, each once, to choose from: an agent by its
/// id, a village under its most used spelling.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub agents: Vec<String>,
    pub villages: Vec<String>,
}

impl Choices {
    pub fn of(spellings: &[crate::storage::PlaceSpelling]) -> Choices {
        let pick = |kind: &str| -> Vec<String> {
            let mut best: std::collections::BTreeMap<&str, (&str, u64)> = Default::default();
            for s in spellings.iter().filter(|s| s.kind == kind) {
                let entry = best.entry(&s.key).or_insert((&s.spelling, 0));
                if s.cases > entry.1 {
                    *entry = (&s.spelling, s.cases);
                }
            }
            let mut out: Vec<String> = best.into_values().map(|(s, _)| s.to_string()).collect();
            out.sort_by_key(|s| suivi_core::names::fold(s));
            out
        };
        Choices {
            agents: pick("agent"),
            villages: pick("village"),
        }
    }
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
        if self.sort != CaseSort::Updated {
            out.push(("sort", self.sort.as_str().into()));
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
        if self.sort != CaseSort::Updated {
            parts.push(format!("sort={}", self.sort.as_str()));
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
    pub choices: &'a Choices,
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
        choices,
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
            (export_links(lang, &filters.query_string(0)))
            form.filters method="get" action="/console/cases" role="search" {
                label.wide { (t(lang, T::Search)) input type="search" name="q" value=(filters.q) placeholder=(t(lang, T::SearchHint)); }
                label { (t(lang, T::Village))
                    input name="village" value=(filters.village) list="villages" autocomplete="off";
                    datalist #villages { @for v in &choices.villages { option value=(v) {} } }
                }
                label { (t(lang, T::Agent))
                    select name="agent" {
                        option value="" { (t(lang, T::Any)) }
                        @for a in &choices.agents {
                            option value=(a) selected[filters.agent.eq_ignore_ascii_case(a)] { (a) }
                        }
                        // An agent asked for in the address but not among the choices stays chosen.
                        @if !filters.agent.is_empty() && !choices.agents.iter().any(|a| a.eq_ignore_ascii_case(&filters.agent)) {
                            option value=(filters.agent) selected { (filters.agent) }
                        }
                    }
                }
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
                label { (t(lang, T::SortBy))
                    select name="sort" {
                        @for sort in CaseSort::ALL {
                            option value=(sort.as_str()) selected[filters.sort == sort] { (sort_label(lang, sort)) }
                        }
                    }
                }
                button type="submit" { (t(lang, T::Filter)) }
            }
            p.count { (range_text(lang, first, list.cases.len() as u64, list.total)) }
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
                            (case_row(frame, case, today, risk_field.map(|f| &f.choices[..]).unwrap_or(&[])))
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
            (page_links(lang, filters, page_size, list.total))
        },
    )
}

/// "51–100 sur 1 304 dossiers": where this page stands in the list.
pub fn range_text(lang: Lang, first: u64, shown: u64, total: u64) -> String {
    range_of(lang, first, shown, total, t(lang, T::Cases))
}

/// "51–100 sur 1 304 <what>".
pub fn range_of(lang: Lang, first: u64, shown: u64, total: u64, what: &str) -> String {
    let cases = what;
    // The whole list on one page, or a page past its end: the count alone.
    if shown == 0 || (first == 0 && shown == total) {
        return format!("{} {cases}", number(lang, total));
    }
    let (from, to) = (number(lang, first + 1), number(lang, first + shown));
    let total = number(lang, total);
    match lang {
        Lang::Fr | Lang::Other(_) => format!("{from}–{to} sur {total} {cases}"),
        Lang::En => format!("{from}–{to} of {total} {cases}"),
        Lang::Ar => format!("\u{2066}{from}–{to}\u{2069} من {total} {cases}"),
    }
}

/// A count as the reader groups its digits: 1 304 (French), 1,304 (English), 1,304 (Arabic,
/// with Western digits as the console writes them).
pub fn number(lang: Lang, n: u64) -> String {
    let digits = n.to_string();
    let separator = match lang {
        Lang::Fr | Lang::Other(_) => '\u{202f}',
        Lang::En | Lang::Ar => ',',
    };
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(separator);
        }
        out.push(c);
    }
    out
}

fn sort_label(lang: Lang, sort: CaseSort) -> &'static str {
    t(
        lang,
        match sort {
            CaseSort::Updated => T::SortUpdated,
            CaseSort::Due => T::SortDue,
            CaseSort::Risk => T::SortRisk,
        },
    )
}

/// The caseload's pages.
fn page_links(lang: Lang, filters: &Filters, page_size: u64, total: u64) -> Markup {
    pager(lang, filters.page, page_size, total, &|page| {
        format!("/console/cases?{}", filters.query_string(page))
    })
}

/// First, previous, the pages around this one, next and last (up to `PAGES_MAX`), each
/// linking where `href` says.
pub fn pager(
    lang: Lang,
    asked: u64,
    page_size: u64,
    total: u64,
    href: &dyn Fn(u64) -> String,
) -> Markup {
    let pages = total
        .div_ceil(page_size)
        .clamp(1, crate::console::PAGES_MAX + 1);
    let last = pages - 1;
    if asked > last {
        // Past the list's end (an old link, a list that shrank): the way back to its end.
        return html! {
            nav.pages aria-label=(t(lang, T::Pages)) {
                a rel="prev" href=(href(last)) { (t(lang, T::Last)) }
            }
        };
    }
    let here = asked;
    let around: Vec<u64> = (here.saturating_sub(2)..=(here + 2).min(last)).collect();
    html! {
        @if pages > 1 {
            nav.pages aria-label=(t(lang, T::Pages)) {
                @if here > 0 {
                    a href=(href(0)) { "« " (t(lang, T::First)) }
                    a rel="prev" href=(href(here - 1)) { (t(lang, T::Previous)) }
                }
                @for page in &around {
                    @if *page == here {
                        span.current aria-current="page" { (page + 1) }
                    } @else {
                        a href=(href(*page)) { (page + 1) }
                    }
                }
                @if here < last {
                    a rel="next" href=(href(here + 1)) { (t(lang, T::Next)) }
                    a href=(href(last)) { (t(lang, T::Last)) " »" }
                }
            }
        }
    }
}

pub(super) fn case_row(
    frame: &Frame<'_>,
    case: &ListedCase,
    today: &str,
    risks: &[suivi_core::forms::Choice],
) -> Markup {
    let lang = frame.lang;
    let s = &case.summary;
    let overdue = s.next_followup_due.as_deref().is_some_and(|d| d < today);
    let place: Vec<&str> = [s.village.as_deref(), s.commune.as_deref()]
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .collect();
    // Each cell says what it is: below 600 px a row is a card, and the label shows beside it.
    html! {
        tr {
            td.name data-label=(t(lang, T::Name)) {
                a.case href={ "/console/cases/" (s.case_id) } { bdi { (s.first_name) " " (s.last_name) } }
                @if let Some(into) = &s.merged_into {
                    " " a.merged href={ "/console/cases/" (into) } { (t(lang, T::MergedCase)) }
                }
            }
            td data-label=(t(lang, T::Place)) { bdi { (place.join(", ")) } }
            td data-label=(t(lang, T::Agent)) { (case.created_by) }
            td data-label=(t(lang, T::Risk)) { @if let Some(r) = &s.risk_level {
                span class={ "risk risk-" (css_word(r)) } { (risks.iter().find(|c| &c.id == r).map(|c| c.label.get(lang)).unwrap_or(r)) }
            } }
            td data-label=(t(lang, T::Referrals)) { @for st in &s.referral_statuses { span class={ "status status-" (css_word(st)) } { (status_label(lang, st)) } " " } }
            td data-label=(t(lang, T::NextVisit)) { @if let Some(d) = &s.next_followup_due { (suivi_core::words::date_text(lang, d)) @if overdue { " " span.overdue { (t(lang, T::Overdue)) } } } }
            td data-label=(t(lang, T::Conflicts)) { @if s.conflict_count > 0 { span.conflicts { (s.conflict_count) } } }
            td data-label=(t(lang, T::Updated)) { (frame.zone.day(lang, utc(case.updated_at))) }
        }
    }
}
