//! The officer's indicators, from the projections (`ServerStore::indicator_cells`): grouped
//! here by province, commune, work sector, month of identification, sex, age band, agent or
//! team, with the median days to
//! a first service from the cells' histograms; drawn as an SVG chart on the server and offered
//! as CSV. Definitions: README, "Indicators".

use std::collections::BTreeMap;

use maud::{html, Markup};
use suivi_core::forms::FormDefinition;
use suivi_core::Lang;

use super::export::neutralised;
use super::text::{t, T};
use crate::storage::{IndicatorCell, PlaceSpelling};

/// What the rows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Province,
    Commune,
    Sector,
    Month,
    Sex,
    AgeBand,
    Agent,
    Team,
    /// A closed case's reason; the open ones together.
    ClosedReason,
}

impl Dimension {
    pub const ALL: [Dimension; 9] = [
        Dimension::Province,
        Dimension::Commune,
        Dimension::Sector,
        Dimension::Month,
        Dimension::Sex,
        Dimension::AgeBand,
        Dimension::Agent,
        Dimension::Team,
        Dimension::ClosedReason,
    ];

    pub fn parse(text: &str) -> Dimension {
        Dimension::ALL
            .into_iter()
            .find(|d| d.as_str() == text)
            .unwrap_or(Dimension::Commune)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Province => "province",
            Dimension::Commune => "commune",
            Dimension::Sector => "sector",
            Dimension::Month => "month",
            Dimension::Sex => "sex",
            Dimension::AgeBand => "age",
            Dimension::Agent => "agent",
            Dimension::Team => "team",
            Dimension::ClosedReason => "closure",
        }
    }

    pub fn label(self, lang: Lang) -> &'static str {
        t(
            lang,
            match self {
                Dimension::Province => T::Province,
                Dimension::Commune => T::Commune,
                Dimension::Sector => T::Sector,
                Dimension::Month => T::Month,
                Dimension::Sex => T::Sex,
                Dimension::AgeBand => T::AgeBand,
                Dimension::Agent => T::Agent,
                Dimension::Team => T::Team,
                Dimension::ClosedReason => T::ClosureReason,
            },
        )
    }
}

/// One row of the table: a province, commune, sector or month, and its indicators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    /// The grouping key (a folded place, a sector id, a month); empty for "not given".
    pub key: String,
    /// What is shown: the most used spelling, the sector's label, the month.
    pub label: String,
    /// For a place: every spelling grouped under it, with its cases.
    pub spellings: Vec<(String, u64)>,
    pub identified: u64,
    pub referred: u64,
    pub service: u64,
    pub stopped_working: u64,
    pub overdue: u64,
    pub median_days: Option<i64>,
    pub withdrawn: u64,
    pub prevented: u64,
    pub exited: u64,
    pub relapsed: u64,
    pub closed: u64,
    pub reopened: u64,
    pub proposed: u64,
    pub visits_scheduled: u64,
    pub visits_on_time: u64,
}

/// The age bands child labour is reported in (ILO: 5-11, 12-14, 15-17), with the ages a
/// programme may also meet on either side. Keys sort in age order.
pub const AGE_BANDS: [(i64, i64, &str); 5] = [
    (0, 4, "a0-4"),
    (5, 11, "b5-11"),
    (12, 14, "c12-14"),
    (15, 17, "d15-17"),
    (18, i64::MAX, "e18+"),
];

/// The band of an age at identification (`None`: no age known, or one no child has).
pub fn age_band(age: Option<i64>) -> Option<&'static str> {
    let age = age.filter(|a| (0..=25).contains(a))?;
    AGE_BANDS
        .iter()
        .find(|(from, to, _)| (*from..=*to).contains(&age))
        .map(|(_, _, key)| *key)
}

/// A band's key as the reader says it: "12-14 ans", "18 ans et plus".
pub fn age_band_label(key: &str, lang: Lang) -> String {
    let Some((from, to, _)) = AGE_BANDS.iter().find(|(_, _, k)| *k == key) else {
        return key.to_string();
    };
    match (lang, *to) {
        (Lang::Fr | Lang::Other(_), i64::MAX) => format!("{from} ans et plus"),
        (Lang::En, i64::MAX) => format!("{from} and over"),
        (Lang::Ar, i64::MAX) => format!("{from} سنة فأكثر"),
        (Lang::Fr | Lang::Other(_), to) => format!("{from}-{to} ans"),
        (Lang::En, to) => format!("{from}-{to} years"),
        (Lang::Ar, to) => format!("{from}-{to} سنة"),
    }
}

/// The median of a histogram of days (the lower middle value for an even count).
pub fn median(histogram: &BTreeMap<i64, u64>) -> Option<i64> {
    let total: u64 = histogram.values().sum();
    if total == 0 {
        return None;
    }
    let middle = total.div_ceil(2);
    let mut seen = 0;
    for (days, n) in histogram {
        seen += n;
        if seen >= middle {
            return Some(*days);
        }
    }
    None
}

/// Groups the cells by `by`, months from `from` to `to` (YYYY-MM, inclusive) only; rows in
/// key order, and the totals.
pub fn rows(
    cells: &[IndicatorCell],
    spellings: &[PlaceSpelling],
    by: Dimension,
    (from, to): (&str, &str),
    identification: Option<&FormDefinition>,
    lang: Lang,
) -> (Vec<Row>, Row) {
    let mut grouped: BTreeMap<String, (Row, BTreeMap<i64, u64>)> = BTreeMap::new();
    let mut total = (Row::default(), BTreeMap::new());
    for c in cells {
        if (!from.is_empty() && c.month.as_str() < from)
            || (!to.is_empty() && c.month.as_str() > to)
        {
            continue;
        }
        let key = match by {
            Dimension::Province => c.province_key.clone(),
            Dimension::Commune => c.commune_key.clone(),
            Dimension::Sector => c.sector.clone(),
            Dimension::Month => Some(c.month.clone()),
            Dimension::Sex => c.sex.clone(),
            Dimension::AgeBand => age_band(c.age).map(str::to_string),
            Dimension::Agent => Some(c.agent.clone()),
            Dimension::Team => Some(c.team.clone()),
            Dimension::ClosedReason => c.closed_reason.clone(),
        }
        .filter(|k| !k.is_empty())
        .unwrap_or_default();
        for (row, histogram) in [grouped.entry(key.clone()).or_default(), &mut total] {
            row.identified += c.cases;
            row.referred += c.referred;
            row.service += c.service;
            row.stopped_working += c.stopped_working;
            row.overdue += c.overdue;
            row.withdrawn += c.withdrawn;
            row.prevented += c.prevented;
            row.exited += c.exited;
            row.relapsed += c.relapsed;
            row.closed += if c.closed_reason.is_some() {
                c.cases
            } else {
                0
            };
            row.reopened += c.reopened;
            row.proposed += c.proposed;
            row.visits_scheduled += c.visits_scheduled;
            row.visits_on_time += c.visits_on_time;
            if let Some(days) = c.days_to_service {
                *histogram.entry(days).or_default() += c.cases;
            }
        }
    }
    let kind = match by {
        Dimension::Province => Some("province"),
        Dimension::Commune => Some("commune"),
        _ => None,
    };
    let rows = grouped
        .into_iter()
        .map(|(key, (mut row, histogram))| {
            row.median_days = median(&histogram);
            if let Some(kind) = kind {
                row.spellings = spellings
                    .iter()
                    .filter(|s| s.kind == kind && s.key == key)
                    .map(|s| (s.spelling.clone(), s.cases))
                    .collect();
                row.spellings
                    .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            }
            let choice = |field: &str| {
                identification
                    .and_then(|f| f.field(field))
                    .and_then(|f| f.choice(&key))
                    .map(|c| c.label.get(lang).to_string())
                    .unwrap_or_else(|| key.clone())
            };
            row.label = match (by, row.spellings.first()) {
                (Dimension::ClosedReason, _) if key.is_empty() => t(lang, T::NotClosed).to_string(),
                (Dimension::ClosedReason, _) => {
                    suivi_core::outcome::closure_reason_label(lang, &key)
                }
                _ if key.is_empty() => t(lang, T::NotGiven).to_string(),
                (Dimension::Sector, _) => choice("work_sector"),
                (Dimension::Sex, _) => choice("sex"),
                (Dimension::AgeBand, _) => age_band_label(&key, lang),
                (Dimension::Month, _) => month_label(&key, lang),
                (_, Some((spelling, _))) => spelling.clone(),
                _ => key.clone(),
            };
            row.key = key;
            row
        })
        .collect();
    let (mut total, histogram) = total;
    total.median_days = median(&histogram);
    total.label = t(lang, T::Total).to_string();
    (rows, total)
}

/// The indicators' columns: header, and the value of a row.
/// A column of the table: its header and how a row's value is written.
pub type Column = (&'static str, fn(&Row) -> String);

pub fn columns(lang: Lang) -> [Column; 14] {
    [
        (t(lang, T::Identified), |r| r.identified.to_string()),
        (t(lang, T::Referred), |r| r.referred.to_string()),
        (t(lang, T::ReceivingService), |r| r.service.to_string()),
        (t(lang, T::NoLongerWorking), |r| {
            r.stopped_working.to_string()
        }),
        (t(lang, T::FollowUpsOverdue), |r| r.overdue.to_string()),
        (t(lang, T::MedianDaysToService), |r| {
            r.median_days.map(|d| d.to_string()).unwrap_or_default()
        }),
        (t(lang, T::Withdrawn), |r| r.withdrawn.to_string()),
        (t(lang, T::Prevented), |r| r.prevented.to_string()),
        (t(lang, T::Exited), |r| r.exited.to_string()),
        (t(lang, T::Relapsed), |r| r.relapsed.to_string()),
        (t(lang, T::ClosedCases), |r| r.closed.to_string()),
        (t(lang, T::Reopened), |r| r.reopened.to_string()),
        (t(lang, T::ClosuresToDecide), |r| r.proposed.to_string()),
        (t(lang, T::VisitsOnSchedule), |r| {
            on_schedule(r.visits_on_time, r.visits_scheduled)
        }),
    ]
}

/// Visits on schedule as a share and its counts: "80 % (12/15)"; empty with none scheduled.
pub fn on_schedule(on_time: u64, scheduled: u64) -> String {
    if scheduled == 0 {
        return String::new();
    }
    format!("{} % ({on_time}/{scheduled})", on_time * 100 / scheduled)
}

/// Cases closed in the months from `from` to `to`'s cohorts, by reason, most first: (reason
/// code, cases).
pub fn closed_by_reason(cells: &[IndicatorCell], (from, to): (&str, &str)) -> Vec<(String, u64)> {
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for c in cells {
        if (!from.is_empty() && c.month.as_str() < from)
            || (!to.is_empty() && c.month.as_str() > to)
        {
            continue;
        }
        if let Some(reason) = &c.closed_reason {
            *by.entry(reason.clone()).or_default() += c.cases;
        }
    }
    let mut out: Vec<(String, u64)> = by.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// The table as CSV: UTF-8 with a byte-order mark, headers in `lang`, cells neutralised.
pub fn csv(rows: &[Row], total: &Row, by: Dimension, lang: Lang) -> Vec<u8> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut w = ::csv::Writer::from_writer(&mut out);
        let columns = columns(lang);
        let mut header = vec![by.label(lang).to_string()];
        header.extend(columns.iter().map(|(h, _)| h.to_string()));
        header.push(t(lang, T::SpellingsGrouped).to_string());
        // Writing to memory cannot fail.
        let _ = w.write_record(&header);
        for row in rows.iter().chain(std::iter::once(total)) {
            let mut record = vec![neutralised(&row.label).into_owned()];
            record.extend(columns.iter().map(|(_, value)| value(row)));
            let spellings: Vec<String> = row
                .spellings
                .iter()
                .map(|(s, n)| format!("{s} ({n})"))
                .collect();
            record.push(neutralised(&spellings.join("; ")).into_owned());
            let _ = w.write_record(&record);
        }
        let _ = w.flush();
    }
    out
}

/// A month (YYYY-MM) as the reader says it: "mars 2026".
pub fn month_label(key: &str, lang: Lang) -> String {
    match chrono::NaiveDate::parse_from_str(&format!("{key}-01"), "%Y-%m-%d") {
        Ok(day) => {
            let words = suivi_core::words::date(lang, day);
            // "1 mars 2026" less its day.
            words
                .split_once(' ')
                .map_or(words.clone(), |(_, m)| m.to_string())
        }
        Err(_) => key.to_string(),
    }
}

/// A bar chart drawn on the server: for each row, children identified, referred and receiving
/// a service, as horizontal bars. Months and age bands keep their order (the latest
/// `CHART_ROWS` months); other groupings show the largest `CHART_ROWS` first.
pub fn chart(rows: &[Row], by: Dimension, lang: Lang) -> Markup {
    const CHART_ROWS: usize = 20;
    const BAR: f64 = 7.0;
    const ROW_HEIGHT: f64 = 3.0 * BAR + 8.0;
    const LABEL_WIDTH: f64 = 170.0;
    const PLOT_WIDTH: f64 = 420.0;
    let mut shown: Vec<&Row> = rows.iter().collect();
    match by {
        // Rows come in key order: dates and ages in theirs, the latest months kept.
        Dimension::Month | Dimension::AgeBand => {
            let skip = shown.len().saturating_sub(CHART_ROWS);
            shown.drain(..skip);
        }
        _ => {
            shown.sort_by(|a, b| {
                b.identified
                    .cmp(&a.identified)
                    .then_with(|| a.key.cmp(&b.key))
            });
            shown.truncate(CHART_ROWS);
        }
    }
    let max = shown.iter().map(|r| r.identified).max().unwrap_or(0).max(1) as f64;
    let height = ROW_HEIGHT * shown.len() as f64 + 30.0;
    type Series = (T, &'static str, fn(&Row) -> u64);
    let series: [Series; 3] = [
        (T::Identified, "bar-identified", |r| r.identified),
        (T::Referred, "bar-referred", |r| r.referred),
        (T::ReceivingService, "bar-service", |r| r.service),
    ];
    let width = LABEL_WIDTH + PLOT_WIDTH + 50.0;
    // Right to left in Arabic: labels on the right, bars growing leftwards. Positions are
    // computed left to right and mirrored; the SVG itself stays `direction: ltr`, so an
    // anchor means the same side whatever the page's direction.
    let rtl = lang == Lang::Ar;
    let x = |at: f64| if rtl { width - at } else { at };
    let span = |at: f64, w: f64| if rtl { width - at - w } else { at };
    let anchor = |ltr: &'static str| match (rtl, ltr) {
        (false, a) => a,
        (true, "end") => "start",
        (true, _) => "end",
    };
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img" direction="ltr"
            viewBox={ "0 0 " (width) " " (height) } width=(width) height=(height)
            aria-label=(t(lang, T::Chart)) {
            title { (t(lang, T::Chart)) }
            @for (i, row) in shown.iter().enumerate() {
                @let y = ROW_HEIGHT * i as f64;
                text x=(x(LABEL_WIDTH - 6.0)) y=(y + 1.5 * BAR + 4.0) text-anchor=(anchor("end")) { (row.label) }
                @for (j, (label, class, value)) in series.iter().enumerate() {
                    @let v = value(row);
                    @let w = PLOT_WIDTH * v as f64 / max;
                    rect class=(class) x=(format!("{:.1}", span(LABEL_WIDTH, w))) y=(y + BAR * j as f64) width=(format!("{w:.1}")) height=(BAR - 1.0) {
                        title { (t(lang, *label)) ": " (v) }
                    }
                    text.value x=(x(LABEL_WIDTH + w + 3.0)) y=(y + BAR * j as f64 + BAR - 1.5) text-anchor=(anchor("start")) { (v) }
                }
            }
            @for (j, (label, class, _)) in series.iter().enumerate() {
                @let at = LABEL_WIDTH + 140.0 * j as f64;
                rect class=(class) x=(span(at, 10.0)) y=(height - 16.0) width="10" height="10" {}
                text x=(x(at + 14.0)) y=(height - 7.0) text-anchor=(anchor("start")) { (t(lang, *label)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(month: &str, commune: &str, days: Option<i64>, cases: u64) -> IndicatorCell {
        IndicatorCell {
            month: month.into(),
            commune_key: (!commune.is_empty()).then(|| commune.to_string()),
            sector: Some("cotton".into()),
            days_to_service: days,
            cases,
            referred: cases,
            service: u64::from(days.is_some()) * cases,
            ..IndicatorCell::default()
        }
    }

    #[test]
    fn medians_come_from_the_histogram() {
        let h = |pairs: &[(i64, u64)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
        assert_eq!(median(&h(&[])), None);
        assert_eq!(median(&h(&[(5, 1)])), Some(5));
        assert_eq!(median(&h(&[(1, 1), (9, 1)])), Some(1));
        assert_eq!(median(&h(&[(1, 2), (3, 1), (40, 2)])), Some(3));
    }

    #[test]
    fn rows_group_by_the_dimension_and_show_the_spellings_grouped() {
        let cells = [
            cell("2026-01", "kadiolo", Some(4), 2),
            cell("2026-02", "kadiolo", Some(10), 1),
            cell("2026-02", "kadiolo", None, 3),
            cell("2026-03", "", None, 1),
        ];
        let spellings = [
            PlaceSpelling {
                kind: "commune".into(),
                key: "kadiolo".into(),
                spelling: "Kadiolo".into(),
                cases: 5,
            },
            PlaceSpelling {
                kind: "commune".into(),
                key: "kadiolo".into(),
                spelling: "KADIOLO".into(),
                cases: 1,
            },
        ];
        let (rows, total) = rows(
            &cells,
            &spellings,
            Dimension::Commune,
            ("", ""),
            None,
            Lang::Fr,
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].label, "Non renseigné");
        assert_eq!(rows[1].label, "Kadiolo");
        assert_eq!(rows[1].identified, 6);
        assert_eq!(rows[1].median_days, Some(4), "4, 4, 10");
        assert_eq!(
            rows[1].spellings,
            [("Kadiolo".to_string(), 5), ("KADIOLO".into(), 1)]
        );
        assert_eq!(total.identified, 7);
        let (by_month, _) = rows_of_months(&cells);
        assert_eq!(
            by_month
                .iter()
                .map(|r| (r.key.as_str(), r.identified))
                .collect::<Vec<_>>(),
            [("2026-02", 4)]
        );
        let text = String::from_utf8(csv(&rows, &total, Dimension::Commune, Lang::En)).unwrap();
        assert!(
            text.starts_with("\u{feff}Commune,Children identified,"),
            "{text}"
        );
        assert!(
            text.contains("Kadiolo,6,6,3,0,0,4,0,0,0,0,0,0,0,,Kadiolo (5); KADIOLO (1)"),
            "{text}"
        );
        let svg = chart(&rows, Dimension::Commune, Lang::Fr).into_string();
        assert_eq!(
            svg.matches("<rect class=\"bar-identified\"").count(),
            3,
            "two rows and the legend"
        );
    }

    #[test]
    fn ages_fall_in_the_reported_bands_and_months_chart_in_date_order() {
        assert_eq!(age_band(Some(4)), Some("a0-4"));
        assert_eq!(age_band(Some(5)), Some("b5-11"));
        assert_eq!(age_band(Some(14)), Some("c12-14"));
        assert_eq!(age_band(Some(17)), Some("d15-17"));
        assert_eq!(age_band(Some(18)), Some("e18+"));
        assert_eq!(age_band(None), None);
        assert_eq!(
            age_band(Some(-3)),
            None,
            "a birth year after identification"
        );
        assert_eq!(age_band_label("c12-14", Lang::Fr), "12-14 ans");
        assert_eq!(age_band_label("e18+", Lang::En), "18 and over");
        assert_eq!(month_label("2026-03", Lang::Fr), "mars 2026");
        // March has the most cases; the chart still reads January, February, March.
        let cells = [
            cell("2026-03", "a", None, 9),
            cell("2026-01", "a", None, 1),
            cell("2026-02", "a", None, 5),
        ];
        let (rows, _) = rows(&cells, &[], Dimension::Month, ("", ""), None, Lang::Fr);
        let svg = chart(&rows, Dimension::Month, Lang::Fr).into_string();
        let at = |label: &str| svg.find(label).unwrap();
        assert!(at("janvier 2026") < at("février 2026") && at("février 2026") < at("mars 2026"));
        // In Arabic the labels stand right of the bars, which grow leftwards.
        let label_x = |svg: &str| -> f64 {
            let at = svg.find("<text x=\"").unwrap() + 9;
            svg[at..].split('"').next().unwrap().parse().unwrap()
        };
        let arabic = chart(&rows, Dimension::Month, Lang::Ar).into_string();
        assert!(
            label_x(&svg) < 200.0 && label_x(&arabic) > 440.0,
            "{arabic}"
        );
        assert!(arabic.contains("direction=\"ltr\""));
    }

    /// Outcomes add up per group; a closed case counts under its reason; visits on schedule
    /// read as a share with its counts.
    #[test]
    fn outcomes_and_closures_add_up_and_read_as_people_say_them() {
        let outcome =
            |month: &str, reason: Option<&str>, withdrawn: u64, cases: u64| IndicatorCell {
                month: month.into(),
                sex: Some("female".into()),
                closed_reason: reason.map(str::to_string),
                cases,
                withdrawn,
                exited: withdrawn,
                prevented: cases - withdrawn,
                visits_scheduled: 4 * cases,
                visits_on_time: 3 * cases,
                proposed: u64::from(reason.is_none()),
                ..IndicatorCell::default()
            };
        let cells = [
            outcome("2026-01", Some("moved_away"), 1, 2),
            outcome("2026-02", Some("exited_stable"), 3, 3),
            outcome("2026-02", Some("moved_away"), 0, 1),
            outcome("2026-03", None, 2, 4),
        ];
        let (rows, total) = rows(&cells, &[], Dimension::Sex, ("", ""), None, Lang::Fr);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (
                total.identified,
                total.withdrawn,
                total.prevented,
                total.exited
            ),
            (10, 6, 4, 6)
        );
        assert_eq!((total.closed, total.proposed), (6, 1));
        assert_eq!(
            on_schedule(total.visits_on_time, total.visits_scheduled),
            "75 % (30/40)"
        );
        assert_eq!(on_schedule(0, 0), "", "none scheduled: no share");
        assert_eq!(
            closed_by_reason(&cells, ("", "")),
            [
                ("exited_stable".to_string(), 3),
                ("moved_away".to_string(), 3)
            ],
            "most first, a tie by code"
        );
        assert_eq!(
            closed_by_reason(&cells, ("2026-02", "2026-02")),
            [
                ("exited_stable".to_string(), 3),
                ("moved_away".to_string(), 1)
            ],
            "the months asked only"
        );
        let text = String::from_utf8(csv(&rows, &total, Dimension::Sex, Lang::En)).unwrap();
        assert!(
            text.contains(",Withdrawn,Prevented,Exited (two visits),Relapsed,"),
            "{text}"
        );
        assert!(
            text.contains("Total,10,0,0,0,0,,6,4,6,0,6,0,1,75 % (30/40),"),
            "{text}"
        );
    }

    fn rows_of_months(cells: &[IndicatorCell]) -> (Vec<Row>, Row) {
        rows(
            cells,
            &[],
            Dimension::Month,
            ("2026-02", "2026-02"),
            None,
            Lang::Fr,
        )
    }
}
