//! The programme report an officer sends: a period (months of identification) and a scope
//! (every case the reader reads, or one team), the key figures, the outcomes by sex, age band,
//! sector and commune, the closures by reason, a chart by month, and the outcome rules it was
//! counted with; in fr, en or ar, printed to PDF from the browser (the stylesheet's print
//! rules). Read from the projections, as the indicators page is.

use super::indicators::{self, Dimension};
use super::*;

#[derive(Deserialize, Default)]
pub(super) struct ReportQuery {
    #[serde(default)]
    pub(super) from: String,
    #[serde(default)]
    pub(super) to: String,
    /// One team of the reader's scope; empty: all of it.
    #[serde(default)]
    pub(super) team: String,
}

/// What the report shows, computed from the indicator cells.
pub struct Report {
    pub from: String,
    pub to: String,
    pub team: String,
    /// The teams the cells name, for the scope picker.
    pub teams: Vec<String>,
    pub total: indicators::Row,
    /// By sex, age band, sector and commune, each with its rows.
    pub breakdowns: Vec<(Dimension, Vec<indicators::Row>)>,
    pub months: Vec<indicators::Row>,
    pub closed_by_reason: Vec<(String, u64)>,
    pub settings: suivi_core::outcome::OutcomeSettings,
    pub prepared: chrono::NaiveDate,
}

pub(super) async fn report_page(
    State(state): State<AppState>,
    signed: Signed,
    LangOf(lang): LangOf,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ConsoleError> {
    let (from, to) = (
        IndicatorsQuery::month(&query.from),
        IndicatorsQuery::month(&query.to),
    );
    let team = bounded(&query.team);
    let store = state.service.store().clone();
    let reader = signed.user.clone();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let subject = format!("{from}..{to} {team}");
    let service = state.service.clone();
    // Every read on the blocking pool: a PostgreSQL store's client blocks.
    let (cells, spellings, settings) = blocking(move || {
        let cells = store.indicator_cells(&reader, &today)?;
        let spellings = store.place_spellings(&reader, &["province", "commune"])?;
        store.audit(now(), &reader.user_id, "console.report_viewed", &subject)?;
        Ok((cells, spellings, service.outcome_settings()))
    })
    .await?;
    let mut teams: Vec<String> = cells.iter().map(|c| c.team.clone()).collect();
    teams.sort();
    teams.dedup();
    let cells: Vec<_> = cells
        .into_iter()
        .filter(|c| team.is_empty() || c.team == team)
        .collect();
    let forms = state.service.forms();
    let identification = forms.latest(IDENTIFICATION).ok();
    let rows = |by| indicators::rows(&cells, &spellings, by, (&from, &to), identification, lang);
    let (months, total) = rows(Dimension::Month);
    let breakdowns = [
        Dimension::Sex,
        Dimension::AgeBand,
        Dimension::Sector,
        Dimension::Commune,
    ]
    .into_iter()
    .map(|by| (by, rows(by).0))
    .collect();
    let report = Report {
        closed_by_reason: indicators::closed_by_reason(&cells, (&from, &to)),
        from,
        to,
        team,
        teams,
        total,
        breakdowns,
        months,
        settings,
        prepared: state.zone.day_of(chrono::Utc::now()),
    };
    let here = format!(
        "/console/report?from={}&to={}&team={}",
        report.from,
        report.to,
        pages::urlencode(&report.team)
    );
    let frame = signed.frame(lang, &here);
    Ok(html(StatusCode::OK, pages::report(&frame, &report)))
}
