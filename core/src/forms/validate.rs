//! Validation of a record against its form. Every problem is reported at once, each with the
//! field id and a message key, so the agent can fix the whole form in one pass.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::Value as Json;

use super::{Bounds, Field, FieldType, FormDefinition};
use crate::error::{Error, FieldError, Result};

/// The values of one form instance, by field id, in their JSON form.
pub type Record = BTreeMap<String, Json>;

pub(crate) fn parse_geopoint_text(text: &str) -> Option<(f64, f64)> {
    let mut parts = text.split([',', ' ']).filter(|s| !s.is_empty());
    let lat = parts.next()?.parse().ok()?;
    let lon = parts.next()?.parse().ok()?;
    Some((lat, lon))
}

pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

impl FormDefinition {
    /// Checks a whole record. `Ok` means it may be saved as is.
    pub fn validate(&self, record: &Record) -> Result<()> {
        let mut errors = Vec::new();
        for key in record.keys() {
            if self.field(key).is_none() {
                errors.push(FieldError::new(key.clone(), "unknown_field"));
            }
        }
        for field in &self.fields {
            let value = record.get(&field.id).filter(|v| !v.is_null());
            let relevant = self.is_relevant(field, record);
            match (value, relevant) {
                (Some(_), false) => errors.push(FieldError::new(&field.id, "not_relevant")),
                (None, true) if field.required => {
                    errors.push(FieldError::new(&field.id, "required"))
                }
                (Some(value), true) => {
                    if let Err(key) = check_value(field, value) {
                        errors.push(FieldError::new(&field.id, key));
                    }
                }
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(errors))
        }
    }

    /// Whether a field is shown given the other values; a field whose controlling field is
    /// itself hidden is hidden too.
    pub fn is_relevant(&self, field: &Field, record: &Record) -> bool {
        let Some(rel) = &field.relevant else {
            return true;
        };
        let Some(controller) = self.field(&rel.field) else {
            return false;
        };
        if !self.is_relevant(controller, record) {
            return false;
        }
        let Some(value) = record.get(&rel.field).filter(|v| !v.is_null()) else {
            return false;
        };
        if let Some(expected) = &rel.equals {
            return value == expected;
        }
        let wanted = rel.any_of.as_deref().unwrap_or_default();
        match value {
            Json::Array(items) => items.iter().any(|item| wanted.contains(item)),
            other => wanted.contains(other),
        }
    }
}

/// One value against its field's type and constraints (not required-ness or relevance): the
/// check a server applies to every value a change writes.
pub fn check_field_value(field: &Field, value: &Json) -> std::result::Result<(), &'static str> {
    check_value(field, value)
}

fn check_value(field: &Field, value: &Json) -> std::result::Result<(), &'static str> {
    let constraints = &field.constraints;
    match field.field_type {
        FieldType::Text | FieldType::Phone => {
            let text = value.as_str().ok_or("type.text")?;
            if let Some(bounds) = &constraints.length {
                check_number_bounds(
                    text.chars().count() as f64,
                    bounds,
                    "length.min",
                    "length.max",
                )?;
            }
            if let Some(pattern) = &constraints.pattern {
                // The pattern was compiled when the definition was loaded.
                let re = regex::Regex::new(pattern).map_err(|_| "pattern")?;
                if !re.is_match(text) {
                    return Err("pattern");
                }
            }
            if field.field_type == FieldType::Phone && constraints.pattern.is_none() {
                let digits = text.trim_start_matches('+');
                if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                    return Err("type.phone");
                }
            }
        }
        FieldType::Integer => {
            let n = value.as_i64().ok_or("type.integer")?;
            if let Some(bounds) = &constraints.range {
                check_number_bounds(n as f64, bounds, "range.min", "range.max")?;
            }
        }
        FieldType::Decimal => {
            let n = value.as_f64().ok_or("type.decimal")?;
            if let Some(bounds) = &constraints.range {
                check_number_bounds(n, bounds, "range.min", "range.max")?;
            }
        }
        FieldType::Date => {
            let date = value.as_str().and_then(parse_date).ok_or("type.date")?;
            if let Some(bounds) = &constraints.range {
                let bound =
                    |b: &Option<Json>| b.as_ref().and_then(|j| j.as_str()).and_then(parse_date);
                if bound(&bounds.min).is_some_and(|min| date < min) {
                    return Err("range.min");
                }
                if bound(&bounds.max).is_some_and(|max| date > max) {
                    return Err("range.max");
                }
            }
        }
        FieldType::Boolean => {
            value.as_bool().ok_or("type.boolean")?;
        }
        FieldType::SelectOne => {
            let id = value.as_str().ok_or("type.choice")?;
            field.choice(id).ok_or("choice.unknown")?;
        }
        FieldType::SelectMultiple => {
            let items = value.as_array().ok_or("type.choices")?;
            let mut seen = Vec::new();
            for item in items {
                let id = item.as_str().ok_or("type.choices")?;
                field.choice(id).ok_or("choice.unknown")?;
                if seen.contains(&id) {
                    return Err("choice.duplicate");
                }
                seen.push(id);
            }
        }
        FieldType::Geopoint => {
            let lat = value
                .get("lat")
                .and_then(Json::as_f64)
                .ok_or("type.geopoint")?;
            let lon = value
                .get("lon")
                .and_then(Json::as_f64)
                .ok_or("type.geopoint")?;
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return Err("range.geopoint");
            }
        }
    }
    Ok(())
}

fn check_number_bounds(
    n: f64,
    bounds: &Bounds,
    min_key: &'static str,
    max_key: &'static str,
) -> std::result::Result<(), &'static str> {
    if bounds
        .min
        .as_ref()
        .and_then(Json::as_f64)
        .is_some_and(|min| n < min)
    {
        return Err(min_key);
    }
    if bounds
        .max
        .as_ref()
        .and_then(Json::as_f64)
        .is_some_and(|max| n > max)
    {
        return Err(max_key);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use crate::forms::{FormRegistry, FOLLOWUP, IDENTIFICATION};

    pub(crate) fn valid_child() -> Record {
        serde_json::from_value(json!({
            "child_first_name": "Fatima", "child_last_name": "Traoré", "sex": "female",
            "dob_known": false, "estimated_age": 12, "province": "Sikasso", "commune": "Kignan",
            "village": "Fès", "school_status": "dropped_out", "school_level": "primary",
            "works": true, "work_sector": "artisanal_gold_mining",
            "hazardous_conditions": ["mercury", "underground_work"], "hours_per_week": 30,
            "risk_level": "high", "consent_to_share": true,
            "gps": {"lat": 11.3, "lon": -5.6}, "guardian_phone": "+22376000000"
        }))
        .unwrap()
    }

    fn keys(err: Error) -> Vec<(String, String)> {
        match err {
            Error::Validation(errors) => errors.into_iter().map(|e| (e.field, e.key)).collect(),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    /// A form with one field of each kind the checks below need, bounds included.
    fn bounded_form() -> FormDefinition {
        FormDefinition::from_json(
            r#"{"id":"t","version":1,"title":{"fr":"t","en":"t","ar":"t"},"fields":[
            {"id":"phone","type":"phone","label":{"fr":"p","en":"p","ar":"p"}},
            {"id":"day","type":"date","label":{"fr":"d","en":"d","ar":"d"},
             "constraints":{"range":{"min":"2020-01-01","max":"2020-12-31"}}},
            {"id":"age","type":"integer","label":{"fr":"a","en":"a","ar":"a"},
             "constraints":{"range":{"min":5,"max":17}}}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn geopoints_typed_as_text_parse_with_commas_or_spaces() {
        assert_eq!(parse_geopoint_text("11.3, -5.6"), Some((11.3, -5.6)));
        assert_eq!(parse_geopoint_text("11.3 -5.6"), Some((11.3, -5.6)));
        assert_eq!(parse_geopoint_text("-1.5,2"), Some((-1.5, 2.0)));
        assert_eq!(parse_geopoint_text("11.3"), None);
        assert_eq!(parse_geopoint_text("nord, sud"), None);
    }

    #[test]
    fn a_phone_without_a_pattern_is_digits_with_an_optional_plus() {
        let form = bounded_form();
        let phone = form.field("phone").unwrap();
        assert_eq!(check_field_value(phone, &json!("+22376000000")), Ok(()));
        assert_eq!(check_field_value(phone, &json!("76000000")), Ok(()));
        for bad in ["+", "", "76 00", "7600000a"] {
            assert_eq!(
                check_field_value(phone, &json!(bad)),
                Err("type.phone"),
                "{bad}"
            );
        }
        assert_eq!(check_field_value(phone, &json!(76)), Err("type.text"));
    }

    #[test]
    fn number_bounds_include_their_ends() {
        let form = bounded_form();
        let age = form.field("age").unwrap();
        for ok in [5, 10, 17] {
            assert_eq!(check_field_value(age, &json!(ok)), Ok(()), "{ok}");
        }
        assert_eq!(check_field_value(age, &json!(4)), Err("range.min"));
        assert_eq!(check_field_value(age, &json!(18)), Err("range.max"));
        assert_eq!(check_field_value(age, &json!("12")), Err("type.integer"));
    }

    #[test]
    fn date_bounds_include_their_ends() {
        let form = bounded_form();
        let day = form.field("day").unwrap();
        for ok in ["2020-01-01", "2020-06-15", "2020-12-31"] {
            assert_eq!(check_field_value(day, &json!(ok)), Ok(()), "{ok}");
        }
        assert_eq!(
            check_field_value(day, &json!("2019-12-31")),
            Err("range.min")
        );
        assert_eq!(
            check_field_value(day, &json!("2021-01-01")),
            Err("range.max")
        );
        assert_eq!(
            check_field_value(day, &json!("31/12/2020")),
            Err("type.date")
        );
    }

    #[test]
    fn a_valid_child_passes() {
        let registry = FormRegistry::builtin();
        registry
            .latest(IDENTIFICATION)
            .unwrap()
            .validate(&valid_child())
            .unwrap();
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let registry = FormRegistry::builtin();
        let form = registry.latest(IDENTIFICATION).unwrap();
        let mut child = valid_child();
        child.remove("child_first_name");
        child.insert("estimated_age".into(), json!(25));
        child.insert("guardian_phone".into(), json!("call me"));
        child.insert("work_sector".into(), json!("banking"));
        child.insert("date_of_birth".into(), json!("2015-01-01"));
        child.insert("colour".into(), json!("blue"));
        let found = keys(form.validate(&child).unwrap_err());
        for expected in [
            ("child_first_name", "required"),
            ("estimated_age", "range.max"),
            ("guardian_phone", "pattern"),
            ("work_sector", "choice.unknown"),
            ("date_of_birth", "not_relevant"),
            ("colour", "unknown_field"),
        ] {
            assert!(
                found.contains(&(expected.0.to_string(), expected.1.to_string())),
                "missing {expected:?} in {found:?}"
            );
        }
        assert_eq!(found.len(), 6, "{found:?}");
    }

    #[test]
    fn relevance_hides_work_fields_for_a_child_not_working() {
        let registry = FormRegistry::builtin();
        let form = registry.latest(IDENTIFICATION).unwrap();
        let mut child = valid_child();
        child.insert("works".into(), json!(false));
        let found = keys(form.validate(&child).unwrap_err());
        assert!(found.contains(&("work_sector".into(), "not_relevant".into())));
        for f in ["work_sector", "hazardous_conditions", "hours_per_week"] {
            child.remove(f);
        }
        form.validate(&child).unwrap();
        // And a working child must say where.
        child.insert("works".into(), json!(true));
        assert!(keys(form.validate(&child).unwrap_err())
            .contains(&("work_sector".into(), "required".into())));
    }

    #[test]
    fn dates_and_geopoints_are_checked() {
        let registry = FormRegistry::builtin();
        let form = registry.latest(FOLLOWUP).unwrap();
        let visit: Record = serde_json::from_value(json!({
            "visit_date": "2019-12-31", "visit_type": "home", "attends_school": "yes",
            "still_working": false, "risk_level_now": "low", "next_visit_due": "not a date"
        }))
        .unwrap();
        let found = keys(form.validate(&visit).unwrap_err());
        assert_eq!(
            found,
            vec![
                ("visit_date".to_string(), "range.min".to_string()),
                ("next_visit_due".to_string(), "type.date".to_string())
            ]
        );
        let id_form = registry.latest(IDENTIFICATION).unwrap();
        let mut child = valid_child();
        child.insert("gps".into(), json!({"lat": 200.0, "lon": 0.0}));
        assert_eq!(
            keys(id_form.validate(&child).unwrap_err()),
            vec![("gps".into(), "range.geopoint".into())]
        );
    }
}
