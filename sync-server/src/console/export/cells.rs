//! One export cell, typed: what a value recorded on a phone becomes in a file, as labels or as
//! codes, and how each format writes it. Dates and times stay dates and times, so a
//! spreadsheet sorts and filters them; times are on the project's clock, to the second in
//! JSON and to the minute in CSV.

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde_json::Value as Json;
use suivi_core::forms::{FieldType, FormDefinition};
use suivi_core::words::{self, Zone};
use suivi_core::Lang;

use super::neutralised;

/// Labels (what a person reads: "Fille", "Oui", "envoyée") or codes (what an analysis joins
/// on: `female`, `true`, `sent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    Labels,
    Codes,
}

impl Values {
    pub fn parse(text: &str) -> Option<Values> {
        match text {
            "labels" => Some(Values::Labels),
            "codes" => Some(Values::Codes),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Int(i64),
    Number(f64),
    /// A boolean as a code (with labels it is the text "Oui"/"Non").
    Bool(bool),
    Day(NaiveDate),
    Moment(DateTime<FixedOffset>),
    /// The items of a multiple choice (or a case's referral statuses).
    List(Vec<String>),
}

impl Cell {
    pub fn text(value: &str) -> Cell {
        Cell::Text(value.to_string())
    }

    pub fn maybe(value: Option<&str>) -> Cell {
        value.map_or(Cell::Empty, Cell::text)
    }

    /// The cell as one CSV field: neutralised, lists joined by `; ` (labels) or `;` (codes).
    pub fn csv(&self, values: Values) -> String {
        let plain = match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Number(n) => n.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::Day(d) => d.format("%Y-%m-%d").to_string(),
            Cell::Moment(t) => t.format("%Y-%m-%d %H:%M").to_string(),
            Cell::List(items) => items.join(match values {
                Values::Labels => "; ",
                Values::Codes => ";",
            }),
        };
        neutralised(&plain).into_owned()
    }

    /// The cell as a JSON value: lists as arrays, dates as ISO 8601 (times with their offset).
    pub fn json(&self) -> Json {
        match self {
            Cell::Empty => Json::Null,
            Cell::Text(s) => Json::String(s.clone()),
            Cell::Int(n) => Json::from(*n),
            Cell::Number(n) => Json::from(*n),
            Cell::Bool(b) => Json::Bool(*b),
            Cell::Day(d) => Json::String(d.format("%Y-%m-%d").to_string()),
            Cell::Moment(t) => Json::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)),
            Cell::List(items) => Json::Array(items.iter().cloned().map(Json::String).collect()),
        }
    }
}

/// How recorded values are read into cells: the reader's language, labels or codes, the
/// project's time zone.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub lang: Lang,
    pub values: Values,
    pub zone: Zone,
}

impl Reading {
    /// A value of `field` as its form version defines it: a choice's label, a boolean's word, a
    /// date as a date. A value the form does not know (a field of a newer version, a choice
    /// removed since) is written as recorded.
    pub fn value(&self, form: Option<&FormDefinition>, field: &str, value: Option<&Json>) -> Cell {
        let field = form.and_then(|f| f.field(field));
        let label = |code: &str| -> String {
            match (self.values, field.and_then(|f| f.choice(code))) {
                (Values::Labels, Some(choice)) => choice.label.get(self.lang).to_string(),
                _ => code.to_string(),
            }
        };
        match value {
            None | Some(Json::Null) => Cell::Empty,
            Some(Json::Bool(b)) => self.yes_no(*b),
            Some(Json::Number(n)) => match n.as_i64() {
                Some(i) => Cell::Int(i),
                None => n.as_f64().map_or(Cell::Empty, Cell::Number),
            },
            Some(Json::String(s)) => {
                let is_date = field.is_some_and(|f| f.field_type == FieldType::Date);
                match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                    Ok(day) if is_date => Cell::Day(day),
                    _ => Cell::Text(label(s)),
                }
            }
            Some(Json::Array(items)) => Cell::List(
                items
                    .iter()
                    .map(|i| match i {
                        Json::String(s) => label(s),
                        other => other.to_string(),
                    })
                    .collect(),
            ),
            Some(other) => Cell::Text(other.to_string()),
        }
    }

    pub fn yes_no(&self, value: bool) -> Cell {
        match self.values {
            // A cell of its own: "Oui", as a column of answers reads.
            Values::Labels => {
                let word = words::yes_no(self.lang, value);
                let mut chars = word.chars();
                Cell::Text(chars.next().map_or(String::new(), |first| {
                    first.to_uppercase().chain(chars).collect()
                }))
            }
            Values::Codes => Cell::Bool(value),
        }
    }

    /// A referral status, as the reader says it or as stored.
    pub fn status(&self, code: &str) -> String {
        match self.values {
            Values::Labels => words::status_label(self.lang, code),
            Values::Codes => code.to_string(),
        }
    }

    /// A time a phone recorded (RFC 3339), on the project's clock; anything else as it is.
    pub fn moment(&self, text: &str) -> Cell {
        match DateTime::parse_from_rfc3339(text) {
            Ok(t) => Cell::Moment(self.zone.local(t.to_utc())),
            Err(_) if text.is_empty() => Cell::Empty,
            Err(_) => Cell::text(text),
        }
    }

    /// A time the server recorded (unix seconds), on the project's clock.
    pub fn unix(&self, secs: i64) -> Cell {
        DateTime::from_timestamp(secs, 0).map_or(Cell::Empty, |t| Cell::Moment(self.zone.local(t)))
    }

    /// A stored day (YYYY-MM-DD) as a date.
    pub fn day(&self, text: Option<&str>) -> Cell {
        match text.map(|t| (t, NaiveDate::parse_from_str(t, "%Y-%m-%d"))) {
            None => Cell::Empty,
            Some((_, Ok(day))) => Cell::Day(day),
            Some((t, Err(_))) => Cell::text(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use suivi_core::forms::{FormRegistry, IDENTIFICATION};

    #[test]
    fn values_read_as_labels_or_codes_and_dates_stay_dates() {
        let forms = FormRegistry::builtin();
        let form = forms.latest(IDENTIFICATION).ok();
        let zone = Zone::parse("Africa/Bamako").unwrap();
        let labels = Reading {
            lang: Lang::Fr,
            values: Values::Labels,
            zone,
        };
        let codes = Reading {
            values: Values::Codes,
            ..labels
        };
        let female = Json::from("female");
        assert_eq!(
            labels.value(form, "sex", Some(&female)),
            Cell::text("Fille")
        );
        assert_eq!(
            codes.value(form, "sex", Some(&female)),
            Cell::text("female")
        );
        assert_eq!(
            labels.value(form, "works", Some(&Json::Bool(true))),
            Cell::text("Oui")
        );
        assert_eq!(
            codes.value(form, "works", Some(&Json::Bool(true))),
            Cell::Bool(true)
        );
        // A choice the form does not know is written as recorded.
        assert_eq!(
            labels.value(form, "sex", Some(&Json::from("other"))),
            Cell::text("other")
        );
        let t = labels.moment("2026-03-02T14:05:09.123456789Z");
        assert_eq!(t.csv(Values::Labels), "2026-03-02 14:05");
        assert_eq!(t.json(), Json::from("2026-03-02T14:05:09+00:00"));
        assert_eq!(
            labels.day(Some("2026-04-01")).json(),
            Json::from("2026-04-01")
        );
        let list = Cell::List(vec!["=cmd".into(), "b".into()]);
        assert_eq!(list.csv(Values::Codes), "'=cmd;b");
        assert_eq!(list.csv(Values::Labels), "'=cmd; b");
        assert_eq!(Cell::Empty.csv(Values::Labels), "");
        assert_eq!(labels.status("declined"), "refusée");
        assert_eq!(codes.status("declined"), "declined");
    }
}
