//! The officer's pages: the access log, indicators, referral views.

use super::*;

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
    by: crate::console::indicators::Dimension,
    (from, to): (&str, &str),
    rows: &[crate::console::indicators::Row],
    total: &crate::console::indicators::Row,
) -> Markup {
    use crate::console::indicators::{chart, columns, Dimension};
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
            (chart(rows, by, lang))
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

/// The stuck referrals' filters, as given in the query string.
#[derive(Debug, Clone, Default)]
pub struct StuckFilter {
    pub days: i64,
    pub agent: String,
    pub service: String,
    pub page: u64,
}

impl StuckFilter {
    pub fn query_string(&self, page: u64) -> String {
        let mut parts = vec![format!("days={}", self.days)];
        if !self.agent.is_empty() {
            parts.push(format!("agent={}", urlencode(&self.agent)));
        }
        if !self.service.is_empty() {
            parts.push(format!("service={}", urlencode(&self.service)));
        }
        if page > 0 {
            parts.push(format!("page={page}"));
        }
        parts.join("&")
    }
}

/// A page of stuck referrals and what names them.
pub struct Stuck<'a> {
    pub filter: &'a StuckFilter,
    pub list: &'a crate::storage::StuckList,
    /// Each listed case's child, by case id.
    pub children: &'a std::collections::HashMap<String, String>,
    /// The agents of the reader's cases, to choose from.
    pub agents: &'a [String],
    pub page_size: u64,
}

pub fn referrals(
    frame: &Frame<'_>,
    forms: &FormRegistry,
    groups: &[crate::storage::ReferralGroup],
    stuck: &Stuck<'_>,
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
            @let f = stuck.filter;
            form.filters method="get" action="/console/referrals#stuck" {
                label { (t(lang, T::StuckFor)) " " input type="number" name="days" min="1" max="3650" value=(f.days); " " (t(lang, T::Days)) }
                label { (t(lang, T::Agent))
                    select name="agent" {
                        option value="" { (t(lang, T::Any)) }
                        @for a in stuck.agents { option value=(a) selected[f.agent.eq_ignore_ascii_case(a)] { (a) } }
                    }
                }
                label { (t(lang, T::Service))
                    select name="service" {
                        option value="" { (t(lang, T::Any)) }
                        @if let Some(field) = form.and_then(|f| f.field("service_type")) {
                            @for c in &field.choices { option value=(c.id) selected[f.service == c.id] { (c.label.get(lang)) } }
                        }
                    }
                }
                button type="submit" { (t(lang, T::Filter)) }
            }
            @let rows = &stuck.list.referrals;
            p.count { (super::caseload::range_of(lang, f.page * stuck.page_size, rows.len() as u64, stuck.list.total, t(lang, T::Referrals))) }
            @if rows.is_empty() {
                p { (t(lang, T::NoRows)) }
            } @else {
                table.stuck {
                    thead { tr {
                        th { (t(lang, T::Child)) } th { (t(lang, T::Agent)) } th { (t(lang, T::Service)) }
                        th { (t(lang, T::Provider)) } th { (t(lang, T::Urgency)) } th { (t(lang, T::Status)) } th { (t(lang, T::Days)) }
                    } }
                    tbody {
                        @for r in rows {
                            tr {
                                td { a href={ "/console/cases/" (r.case_id) "#chain" } {
                                    @match stuck.children.get(&r.case_id) {
                                        Some(name) => bdi { (name) },
                                        None => code { (r.case_id.get(..8).unwrap_or(&r.case_id)) },
                                    }
                                } }
                                td { (r.agent) }
                                td { (service(&r.service_type)) }
                                td { bdi { (r.provider.as_deref().unwrap_or_default()) } }
                                td { (r.urgency.as_deref().map(|u| choice_label(lang, form, "urgency", u)).unwrap_or_default()) }
                                td { span class={ "status status-" (css_word(&r.status)) } { (status_label(lang, &r.status)) } }
                                td.num { ((now - r.status_since) / 86_400) }
                            }
                        }
                    }
                }
            }
            (super::caseload::pager(lang, f.page, stuck.page_size, stuck.list.total, &|page| {
                format!("/console/referrals?{}#stuck", f.query_string(page))
            }))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{StuckList, StuckReferral};

    /// A stuck referral reads as who and what: the child's name (never the case id), the
    /// agent, the service and urgency in words, how long, and where it stands in the list.
    #[test]
    fn stuck_referrals_name_the_child_the_agent_and_the_urgency() {
        let case_id = "27c471c8aa1645fe915bbc778e800bd9".to_string();
        let list = StuckList {
            referrals: vec![StuckReferral {
                case_id: case_id.clone(),
                referral_id: "r1".into(),
                service_type: Some("health".into()),
                provider: Some("CSCOM Misséni".into()),
                urgency: Some("priority".into()),
                status: "sent".into(),
                status_since: 1_000_000 - 40 * 86_400,
                agent: "amina".into(),
            }],
            total: 120,
        };
        let filter = StuckFilter {
            days: 30,
            page: 1,
            ..Default::default()
        };
        let children = [(case_id.clone(), "Awa Coulibaly".to_string())].into();
        let frame = Frame {
            lang: Lang::Fr,
            zone: Zone::default(),
            user: None,
            csrf: "",
            here: "/console/referrals",
        };
        let page = referrals(
            &frame,
            &FormRegistry::builtin(),
            &[],
            &Stuck {
                filter: &filter,
                list: &list,
                children: &children,
                agents: &["amina".into()],
                page_size: 50,
            },
            1_000_000,
        )
        .into_string();
        for words in [
            "Awa Coulibaly",
            "amina",
            "Santé",
            "Prioritaire",
            "envoyée",
            ">40<",
        ] {
            assert!(page.contains(words), "{words}: {page}");
        }
        assert!(page.contains("51–51 sur 120 Orientations"), "{page}");
        assert!(
            !page.contains(&format!(">{case_id}<")),
            "the case id is the link, not the words"
        );
        assert!(page.contains("days=30&amp;page=2#stuck"), "the next page");
    }
}
