//! The programme report's page: built to be read on screen and printed (the stylesheet's print
//! rules hide the console's header and the form, and keep each table on one page).

use super::*;
use crate::console::indicators::{chart, month_label, on_schedule, Dimension, Row};
use crate::console::report::Report;

/// The outcome rules a report was counted with, in a sentence.
fn rules_sentence(lang: Lang, s: &suivi_core::outcome::OutcomeSettings) -> String {
    match lang {
        Lang::Fr | Lang::Other(_) => format!(
            "version {} : sorti du travail après {} visites consécutives à {} jours d'intervalle au moins ; suivi jusqu'à {} ans",
            s.version, s.exit_visits, s.exit_days_apart, s.age_limit
        ),
        Lang::En => format!(
            "version {}: exited after {} consecutive visits at least {} days apart; monitored until {}",
            s.version, s.exit_visits, s.exit_days_apart, s.age_limit
        ),
        Lang::Ar => format!(
            "الإصدار {}: خروج من العمل بعد {} زيارات متتالية يفصل بينها {} يوماً على الأقل؛ متابعة حتى سن {}",
            s.version, s.exit_visits, s.exit_days_apart, s.age_limit
        ),
    }
}

/// The months a report covers, in words.
fn period(lang: Lang, from: &str, to: &str) -> String {
    match (from.is_empty(), to.is_empty()) {
        (true, true) => t(lang, T::AllMonths).to_string(),
        (false, true) => format!("{} –", month_label(from, lang)),
        (true, false) => format!("– {}", month_label(to, lang)),
        (false, false) => format!("{} – {}", month_label(from, lang), month_label(to, lang)),
    }
}

/// A breakdown table's column: its header and a row's count.
type Count = (&'static str, fn(&Row) -> u64);

/// The outcome columns of a breakdown table.
fn outcome_columns(lang: Lang) -> [Count; 6] {
    [
        (t(lang, T::Identified), |r| r.identified),
        (t(lang, T::Withdrawn), |r| r.withdrawn),
        (t(lang, T::Prevented), |r| r.prevented),
        (t(lang, T::Exited), |r| r.exited),
        (t(lang, T::Relapsed), |r| r.relapsed),
        (t(lang, T::ClosedCases), |r| r.closed),
    ]
}

pub fn report(frame: &Frame<'_>, r: &Report) -> Markup {
    let lang = frame.lang;
    let total = &r.total;
    let key_figures: [(&str, String); 11] = [
        (t(lang, T::Identified), total.identified.to_string()),
        (t(lang, T::Referred), total.referred.to_string()),
        (t(lang, T::ReceivingService), total.service.to_string()),
        (t(lang, T::Withdrawn), total.withdrawn.to_string()),
        (t(lang, T::Prevented), total.prevented.to_string()),
        (t(lang, T::Exited), total.exited.to_string()),
        (t(lang, T::Relapsed), total.relapsed.to_string()),
        (t(lang, T::ClosedCases), total.closed.to_string()),
        (t(lang, T::Reopened), total.reopened.to_string()),
        (
            t(lang, T::MedianDaysToService),
            total.median_days.map(|d| d.to_string()).unwrap_or_default(),
        ),
        (
            t(lang, T::VisitsOnSchedule),
            on_schedule(total.visits_on_time, total.visits_scheduled),
        ),
    ];
    let scope = if r.team.is_empty() {
        t(lang, T::WholeScope).to_string()
    } else {
        format!("{} {}", t(lang, T::Team), r.team)
    };
    page(
        frame,
        t(lang, T::ProgrammeReport),
        html! {
            form.filters method="get" action="/console/report" {
                label { (t(lang, T::From)) " " input type="month" name="from" value=(r.from) dir="ltr"; }
                label { (t(lang, T::To)) " " input type="month" name="to" value=(r.to) dir="ltr"; }
                label { (t(lang, T::Scope)) " "
                    select name="team" {
                        option value="" selected[r.team.is_empty()] { (t(lang, T::WholeScope)) }
                        @for team in &r.teams { option value=(team) selected[*team == r.team] { (team) } }
                    }
                }
                button type="submit" { (t(lang, T::Show)) }
                p.meta { (t(lang, T::Print)) }
            }
            article.report {
                h1 { (t(lang, T::ProgrammeReport)) }
                dl.report-meta {
                    dt { (t(lang, T::Period)) } dd { (period(lang, &r.from, &r.to)) }
                    dt { (t(lang, T::Scope)) } dd { bdi { (scope) } }
                    dt { (t(lang, T::GeneratedOn)) } dd { (suivi_core::words::date(lang, r.prepared)) }
                    dt { (t(lang, T::OutcomeRules)) } dd { (rules_sentence(lang, &r.settings)) }
                }
                section.report-part {
                    h2 { (t(lang, T::KeyFigures)) }
                    table.key-figures {
                        tbody {
                            @for (label, value) in &key_figures {
                                tr { th scope="row" { (label) } td.num { (value) } }
                            }
                        }
                    }
                }
                @for (by, rows) in &r.breakdowns {
                    section.report-part {
                        h2 { (by.label(lang)) }
                        table.breakdown {
                            thead { tr {
                                th { (by.label(lang)) }
                                @for (h, _) in outcome_columns(lang) { th { (h) } }
                            } }
                            tbody {
                                @for row in rows {
                                    tr {
                                        td { bdi { (row.label) } }
                                        @for (_, value) in outcome_columns(lang) { td.num { (value(row)) } }
                                    }
                                }
                            }
                        }
                    }
                }
                section.report-part {
                    (closed_by_reason(lang, &r.closed_by_reason))
                }
                section.report-part {
                    h2 { (Dimension::Month.label(lang)) }
                    (chart(&r.months, Dimension::Month, lang))
                }
            }
        },
    )
}
