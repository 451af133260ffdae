//! Forms as versioned data: definitions shipped as JSON files (id + version), never one Rust
//! struct per form, so a new form version needs no code change and no app release.

mod label;
pub(crate) mod validate;
#[cfg(feature = "xlsform")]
pub mod xlsform;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::{Error, Result};

pub(crate) use label::check_label;
pub use label::{Label, Lang, LangTag, LABEL_LANGUAGES_MAX};
pub(crate) use validate::parse_geopoint_text as parse_geopoint;
pub use validate::{check_field_value, Record};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Integer,
    Decimal,
    Date,
    Boolean,
    SelectOne,
    SelectMultiple,
    Geopoint,
    Phone,
}

impl FieldType {
    /// The type's name as definitions spell it (`select_one`, `phone`...).
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Integer => "integer",
            FieldType::Decimal => "decimal",
            FieldType::Date => "date",
            FieldType::Boolean => "boolean",
            FieldType::SelectOne => "select_one",
            FieldType::SelectMultiple => "select_multiple",
            FieldType::Geopoint => "geopoint",
            FieldType::Phone => "phone",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub id: String,
    pub label: Label,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    #[serde(default)]
    pub min: Option<Json>,
    #[serde(default)]
    pub max: Option<Json>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    #[serde(default)]
    pub range: Option<Bounds>,
    #[serde(default)]
    pub length: Option<Bounds>,
    #[serde(default)]
    pub pattern: Option<String>,
}

/// A field is shown (and may hold a value) only when another field has a given value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relevance {
    pub field: String,
    #[serde(default)]
    pub equals: Option<Json>,
    #[serde(default)]
    pub any_of: Option<Vec<Json>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub id: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub label: Label,
    #[serde(default)]
    pub required: bool,
    /// Narrative text, kept as Automerge text so concurrent edits merge character by character.
    #[serde(default)]
    pub multiline: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub constraints: Constraints,
    #[serde(default)]
    pub relevant: Option<Relevance>,
}

impl Field {
    pub fn choice(&self, id: &str) -> Option<&Choice> {
        self.choices.iter().find(|c| c.id == id)
    }

    /// The choice a person means by `text`: its code, or its label in any language, case and
    /// accents aside ("Élevé", "eleve" and "high" are one choice).
    pub fn choice_meant(&self, text: &str) -> Option<&Choice> {
        let text = text.trim();
        if let Some(choice) = self.choice(text) {
            return Some(choice);
        }
        let wanted = crate::names::fold(text);
        self.choices.iter().find(|c| {
            c.label
                .texts()
                .any(|label| crate::names::fold(label.trim()) == wanted)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormDefinition {
    pub id: String,
    pub version: u32,
    pub title: Label,
    pub fields: Vec<Field>,
}

impl FormDefinition {
    /// The definition as compact JSON in the struct's field order: the text a published version
    /// is stored and sent as, so two publications of one definition compare equal.
    pub fn canonical_json(&self) -> String {
        // A struct of strings, numbers, booleans and JSON values always serialises.
        #[allow(clippy::expect_used)]
        serde_json::to_string(self).expect("a form definition serialises")
    }

    /// Parses and checks a definition: unique ids, choices where needed, valid patterns,
    /// relevance pointing at an earlier field.
    pub fn from_json(text: &str) -> Result<FormDefinition> {
        let form: FormDefinition =
            serde_json::from_str(text).map_err(|e| Error::InvalidFormDefinition {
                id: "?".into(),
                reason: e.to_string(),
            })?;
        form.check()?;
        Ok(form)
    }

    pub(crate) fn check(&self) -> Result<()> {
        let bad = |reason: String| Error::InvalidFormDefinition {
            id: self.id.clone(),
            reason,
        };
        // A definition may come from a server: bounded before anything is compiled or indexed.
        if self.fields.len() > FORM_FIELDS_MAX {
            return Err(bad(format!("more than {FORM_FIELDS_MAX} fields")));
        }
        check_label(&self.title).map_err(|e| bad(format!("title: {e}")))?;
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for field in &self.fields {
            check_label(&field.label).map_err(|e| bad(format!("field {}: {e}", field.id)))?;
            for choice in &field.choices {
                check_label(&choice.label)
                    .map_err(|e| bad(format!("field {}, choice {}: {e}", field.id, choice.id)))?;
            }
            if field.choices.len() > FIELD_CHOICES_MAX {
                return Err(bad(format!(
                    "field {}: more than {FIELD_CHOICES_MAX} choices",
                    field.id
                )));
            }
            if field
                .constraints
                .pattern
                .as_ref()
                .is_some_and(|p| p.len() > PATTERN_BYTES_MAX)
            {
                return Err(bad(format!(
                    "field {}: a pattern longer than {PATTERN_BYTES_MAX} bytes",
                    field.id
                )));
            }
            if seen.contains(field.id.as_str()) {
                return Err(bad(format!("duplicate field {}", field.id)));
            }
            let is_select = matches!(
                field.field_type,
                FieldType::SelectOne | FieldType::SelectMultiple
            );
            if is_select == field.choices.is_empty() {
                return Err(bad(format!("field {}: choices mismatch", field.id)));
            }
            if field.multiline && field.field_type != FieldType::Text {
                return Err(bad(format!("field {}: multiline on non-text", field.id)));
            }
            if let Some(pattern) = &field.constraints.pattern {
                regex::Regex::new(pattern)
                    .map_err(|e| bad(format!("field {}: pattern: {e}", field.id)))?;
            }
            if let Some(rel) = &field.relevant {
                if !seen.contains(rel.field.as_str()) {
                    return Err(bad(format!(
                        "field {}: relevance on unknown or later field {}",
                        field.id, rel.field
                    )));
                }
                if rel.equals.is_none() == rel.any_of.is_none() {
                    return Err(bad(format!(
                        "field {}: relevance needs equals or any_of",
                        field.id
                    )));
                }
            }
            seen.insert(&field.id);
        }
        Ok(())
    }

    /// The definition as an app that reads only French, English and Arabic keeps it: every
    /// further language dropped.
    pub fn in_app_languages(&self) -> FormDefinition {
        let mut form = self.clone();
        form.title.more.clear();
        for field in &mut form.fields {
            field.label.more.clear();
            for choice in &mut field.choices {
                choice.label.more.clear();
            }
        }
        form
    }

    pub fn field(&self, id: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.id == id)
    }

    /// Turns text typed on a command line or imported from a spreadsheet cell into the JSON value
    /// the field expects; the result is then validated like any other input.
    pub fn parse_input(&self, field_id: &str, text: &str) -> Result<Json> {
        let field = self.field(field_id).ok_or_else(|| {
            Error::Validation(vec![crate::error::FieldError::new(
                field_id,
                "unknown_field",
            )])
        })?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(Json::Null);
        }
        let invalid =
            |key: &str| Error::Validation(vec![crate::error::FieldError::new(field_id, key)]);
        Ok(match field.field_type {
            FieldType::Integer => {
                Json::from(text.parse::<i64>().map_err(|_| invalid("type.integer"))?)
            }
            FieldType::Decimal => serde_json::Number::from_f64(
                text.replace(',', ".")
                    .parse::<f64>()
                    .map_err(|_| invalid("type.decimal"))?,
            )
            .map(Json::Number)
            .ok_or_else(|| invalid("type.decimal"))?,
            FieldType::Boolean => match text.to_lowercase().as_str() {
                "true" | "yes" | "oui" | "1" | "y" | "o" | "نعم" => Json::Bool(true),
                "false" | "no" | "non" | "0" | "n" | "لا" => Json::Bool(false),
                _ => return Err(invalid("type.boolean")),
            },
            // A code or a label: what a person types; an unknown one goes on as typed, for the
            // form's validation to refuse by name.
            FieldType::SelectOne => Json::String(
                field
                    .choice_meant(text)
                    .map_or_else(|| text.to_string(), |c| c.id.clone()),
            ),
            // Pieces between commas or semicolons, each a code or a label; a piece that is
            // neither is read as codes between spaces (how a list was once typed).
            FieldType::SelectMultiple => Json::Array(
                text.split([',', ';'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .flat_map(|piece| match field.choice_meant(piece) {
                        Some(choice) => vec![choice.id.clone()],
                        None => piece.split_whitespace().map(str::to_string).collect(),
                    })
                    .map(Json::String)
                    .collect(),
            ),
            FieldType::Geopoint => {
                let point =
                    validate::parse_geopoint_text(text).ok_or_else(|| invalid("type.geopoint"))?;
                serde_json::json!({"lat": point.0, "lon": point.1})
            }
            _ => Json::String(text.to_string()),
        })
    }
}

/// A record's values as the text a form screen shows and takes back (`record_from_inputs`
/// reads each one back as the same value): text as it is, a choice list comma-separated, a
/// point as "lat lon", an empty value as "", a number or a boolean as written.
pub fn record_as_text(record: &Record) -> std::collections::HashMap<String, String> {
    record
        .iter()
        .map(|(k, v)| (k.clone(), value_as_text(v)))
        .collect()
}

pub(crate) fn value_as_text(value: &Json) -> String {
    match value {
        Json::String(text) => text.clone(),
        Json::Null => String::new(),
        Json::Array(items) => items
            .iter()
            .map(value_as_text)
            .collect::<Vec<_>>()
            .join(","),
        Json::Object(point) => match (point.get("lat"), point.get("lon")) {
            (Some(lat), Some(lon)) => format!("{lat} {lon}"),
            _ => value.to_string(),
        },
        other => other.to_string(),
    }
}

impl FormDefinition {
    /// Builds a record from text inputs (a form screen's fields, a command line's `--set`
    /// pairs), converting each by its field type; every problem is reported at once. Empty text
    /// becomes `null`, which clears a field in an edit.
    pub fn record_from_inputs<K: AsRef<str>, V: AsRef<str>>(
        &self,
        inputs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Record> {
        let mut record = Record::new();
        let mut errors = Vec::new();
        for (field, text) in inputs {
            match self.parse_input(field.as_ref(), text.as_ref()) {
                Ok(value) => {
                    record.insert(field.as_ref().to_string(), value);
                }
                Err(Error::Validation(e)) => errors.extend(e),
                Err(e) => return Err(e),
            }
        }
        if errors.is_empty() {
            Ok(record)
        } else {
            Err(Error::Validation(errors))
        }
    }

    /// The fields a form screen shows given the text typed so far: half-typed values hide
    /// nothing, only what parses counts.
    pub fn visible_fields_from_inputs<K: AsRef<str>, V: AsRef<str>>(
        &self,
        inputs: impl IntoIterator<Item = (K, V)>,
    ) -> Vec<String> {
        let record = inputs
            .into_iter()
            .filter_map(|(k, v)| {
                self.parse_input(k.as_ref(), v.as_ref())
                    .ok()
                    .map(|j| (k.as_ref().to_string(), j))
            })
            .collect();
        self.visible_fields(&record)
    }

    /// The ids of the fields a form screen shows, given the values entered so far.
    pub fn visible_fields(&self, record: &Record) -> Vec<String> {
        self.fields
            .iter()
            .filter(|f| self.is_relevant(f, record))
            .map(|f| f.id.clone())
            .collect()
    }
}

/// Fields in one form version.
pub const FORM_FIELDS_MAX: usize = 2_000;
/// Choices of one select field.
pub const FIELD_CHOICES_MAX: usize = 1_000;
/// Bytes of one pattern constraint (a regular expression, compiled with `regex`'s own size
/// limits too).
pub const PATTERN_BYTES_MAX: usize = 1_024;

/// A field whose kind differs between two versions of one form: the values written under one
/// would not read under the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindChange {
    pub field: String,
    /// The kind in the version held (`text`, `text (multiline)`, `integer`...).
    pub was: String,
    pub in_version: u32,
    pub now: String,
}

impl Field {
    /// What a value of this field is stored as: its type, and for text whether it is a
    /// collaborative text (multiline) or a plain string.
    pub fn kind(&self) -> String {
        let name = self.field_type.name();
        if self.multiline {
            format!("{name} (multiline)")
        } else {
            name.to_string()
        }
    }
}

/// The forms this build knows, by id and version, and which versions are retired (they still
/// read and validate their records, and take no new ones).
#[derive(Debug, Clone)]
pub struct FormRegistry {
    forms: BTreeMap<(String, u32), FormDefinition>,
    retired: std::collections::BTreeSet<(String, u32)>,
}

/// Form ids the case document uses.
pub const IDENTIFICATION: &str = "identification";
pub const REFERRAL: &str = "referral";
pub const FOLLOWUP: &str = "followup";
/// Every form a case holds records of.
pub const FORM_IDS: [&str; 3] = [IDENTIFICATION, REFERRAL, FOLLOWUP];

const BUILTIN_FORMS: [&str; 3] = [
    include_str!("../../forms/identification.v1.json"),
    include_str!("../../forms/referral.v1.json"),
    include_str!("../../forms/followup.v1.json"),
];

impl FormRegistry {
    /// The forms shipped in core. They are checked by a unit test, so loading cannot fail.
    pub fn builtin() -> FormRegistry {
        let mut registry = FormRegistry {
            forms: BTreeMap::new(),
            retired: std::collections::BTreeSet::new(),
        };
        for text in BUILTIN_FORMS {
            // A shipped definition is checked by `builtin_forms_parse`; failing here is a build bug.
            #[allow(clippy::expect_used)]
            let form = FormDefinition::from_json(text).expect("shipped form definitions are valid");
            registry.add(form);
        }
        registry
    }

    pub fn add(&mut self, form: FormDefinition) {
        self.forms.insert((form.id.clone(), form.version), form);
    }

    pub fn get(&self, id: &str, version: u32) -> Result<&FormDefinition> {
        self.forms
            .get(&(id.to_string(), version))
            .ok_or_else(|| Error::UnknownForm {
                id: id.to_string(),
                version,
            })
    }

    /// The newest version of a form that is not retired: what new records are written with.
    pub fn latest(&self, id: &str) -> Result<&FormDefinition> {
        self.forms
            .range((id.to_string(), 0)..=(id.to_string(), u32::MAX))
            .rev()
            .find(|(key, _)| !self.retired.contains(*key))
            .map(|(_, f)| f)
            .ok_or_else(|| Error::UnknownForm {
                id: id.to_string(),
                version: 0,
            })
    }

    /// Every version held of a form, oldest first (a range of the registry, whatever the
    /// version numbers: dated versions like 2026120301 cost nothing more).
    pub fn versions<'a>(
        &'a self,
        id: &str,
    ) -> impl DoubleEndedIterator<Item = &'a FormDefinition> + 'a {
        self.forms
            .range((id.to_string(), 0)..=(id.to_string(), u32::MAX))
            .map(|(_, f)| f)
    }

    /// The first field of `form` whose kind differs from the same field in a version of its
    /// form held here: one rule for the server publishing and for the phone receiving.
    pub fn kind_change(&self, form: &FormDefinition) -> Option<KindChange> {
        for held in self.versions(&form.id) {
            if held.version == form.version {
                continue;
            }
            for field in &form.fields {
                if let Some(before) = held.field(&field.id) {
                    if before.kind() != field.kind() {
                        return Some(KindChange {
                            field: field.id.clone(),
                            was: before.kind(),
                            in_version: held.version,
                            now: field.kind(),
                        });
                    }
                }
            }
        }
        None
    }

    /// Marks a version as taking no new records; its records still read and validate with it.
    pub fn retire(&mut self, id: &str, version: u32) {
        self.retired.insert((id.to_string(), version));
    }

    pub fn is_retired(&self, id: &str, version: u32) -> bool {
        self.retired.contains(&(id.to_string(), version))
    }

    pub fn all(&self) -> impl Iterator<Item = &FormDefinition> {
        self.forms.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_forms_parse() {
        for text in BUILTIN_FORMS {
            let form = FormDefinition::from_json(text).expect("valid");
            assert!(!form.fields.is_empty());
        }
        let registry = FormRegistry::builtin();
        assert_eq!(registry.latest(IDENTIFICATION).unwrap().version, 1);
        assert!(registry.get(REFERRAL, 1).is_ok());
        assert!(registry.get(FOLLOWUP, 1).is_ok());
    }

    /// A shipped version is a published version: phones and servers everywhere hold it, and
    /// a server refuses to start with another definition under its number. Change a form by
    /// adding a version, never by editing one (these are the SHA-256 of the canonical JSON).
    #[test]
    fn shipped_form_versions_never_change() {
        use sha2::{Digest, Sha256};
        let digests: Vec<(String, u32, String)> = FormRegistry::builtin()
            .all()
            .map(|f| {
                (
                    f.id.clone(),
                    f.version,
                    hex::encode(Sha256::digest(f.canonical_json().as_bytes())),
                )
            })
            .collect();
        let frozen = [
            (
                "followup",
                1,
                "58723f87e9669c79445c3e1ba520a031c5e72ca0b0d9ed59e82cebcd2c2ed3d4",
            ),
            (
                "identification",
                1,
                "cf6f42c68165c0c071ee137f75fdcdc9a1201fd514b18f57a6a58b4c5b8fcf17",
            ),
            (
                "referral",
                1,
                "80c153535b7c926611cc538a7c1d92c8f167747837142abedfda80d8aabc2fab",
            ),
        ];
        for ((id, version, digest), (f_id, f_version, f_digest)) in digests.iter().zip(frozen) {
            assert_eq!((id.as_str(), *version), (f_id, f_version));
            assert_eq!(digest, f_digest, "{id} v{version} was edited");
        }
    }

    #[test]
    fn type_names_are_the_ones_definitions_spell() {
        for t in [
            FieldType::Text,
            FieldType::Integer,
            FieldType::Decimal,
            FieldType::Date,
            FieldType::Boolean,
            FieldType::SelectOne,
            FieldType::SelectMultiple,
            FieldType::Geopoint,
            FieldType::Phone,
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), Json::from(t.name()));
        }
    }

    #[test]
    fn kinds_are_kept_across_versions_and_dated_versions_cost_nothing() {
        let mut registry = FormRegistry::builtin();
        let mut v2 = registry.get(REFERRAL, 1).unwrap().clone();
        v2.version = 2_026_120_301;
        assert_eq!(registry.kind_change(&v2), None);
        let reason = v2.fields.iter_mut().find(|f| f.id == "reason").unwrap();
        reason.multiline = false;
        let change = registry.kind_change(&v2).unwrap();
        assert_eq!(
            (
                change.field.as_str(),
                change.was.as_str(),
                change.now.as_str()
            ),
            ("reason", "text (multiline)", "text")
        );
        v2.fields
            .iter_mut()
            .find(|f| f.id == "reason")
            .unwrap()
            .multiline = true;
        registry.add(v2);
        let versions: Vec<u32> = registry.versions(REFERRAL).map(|f| f.version).collect();
        assert_eq!(versions, [1, 2_026_120_301]);
        assert!(registry
            .versions(IDENTIFICATION)
            .all(|f| f.id == IDENTIFICATION));
    }

    #[test]
    fn a_definition_is_bounded_before_it_is_compiled() {
        let mut form = FormRegistry::builtin().get(REFERRAL, 1).unwrap().clone();
        let template = form.fields[1].clone();
        form.fields = (0..=FORM_FIELDS_MAX)
            .map(|i| Field {
                id: format!("f{i}"),
                ..template.clone()
            })
            .collect();
        assert!(matches!(
            form.check(),
            Err(Error::InvalidFormDefinition { .. })
        ));
        let mut form = FormRegistry::builtin().get(REFERRAL, 1).unwrap().clone();
        form.fields[1].constraints.pattern = Some("a".repeat(PATTERN_BYTES_MAX + 1));
        assert!(matches!(
            form.check(),
            Err(Error::InvalidFormDefinition { .. })
        ));
    }

    #[test]
    fn unknown_form_version_is_typed() {
        let registry = FormRegistry::builtin();
        match registry.get(IDENTIFICATION, 99) {
            Err(Error::UnknownForm { id, version }) => {
                assert_eq!(id, IDENTIFICATION);
                assert_eq!(version, 99);
            }
            other => panic!("expected UnknownForm, got {other:?}"),
        }
    }

    #[test]
    fn definition_with_relevance_on_later_field_is_rejected() {
        let text = r#"{"id":"t","version":1,"title":{"fr":"t","en":"t","ar":"t"},"fields":[
            {"id":"a","type":"text","label":{"fr":"a","en":"a","ar":"a"},"relevant":{"field":"b","equals":true}},
            {"id":"b","type":"boolean","label":{"fr":"b","en":"b","ar":"b"}}]}"#;
        assert!(matches!(
            FormDefinition::from_json(text),
            Err(Error::InvalidFormDefinition { .. })
        ));
    }

    #[test]
    fn every_label_has_three_languages() {
        for form in FormRegistry::builtin().all() {
            for field in &form.fields {
                for label in
                    std::iter::once(&field.label).chain(field.choices.iter().map(|c| &c.label))
                {
                    assert!(
                        !label.fr.is_empty() && !label.en.is_empty() && !label.ar.is_empty(),
                        "{}",
                        field.id
                    );
                }
            }
        }
    }

    #[test]
    fn parse_input_by_type() {
        let registry = FormRegistry::builtin();
        let form = registry.latest(IDENTIFICATION).unwrap();
        assert_eq!(
            form.parse_input("estimated_age", "12").unwrap(),
            Json::from(12)
        );
        assert_eq!(form.parse_input("works", "oui").unwrap(), Json::Bool(true));
        assert_eq!(
            form.parse_input("hazardous_conditions", "mercury,night_work")
                .unwrap(),
            serde_json::json!(["mercury", "night_work"])
        );
        assert!(matches!(
            form.parse_input("estimated_age", "douze"),
            Err(Error::Validation(_))
        ));
        // A choice by its code or its label in any language, case and accents aside: what a
        // supervisor types to settle a conflict with "another value".
        for typed in ["high", "Élevé", "eleve", " HIGH ", "مرتفع"] {
            assert_eq!(
                form.parse_input("risk_level", typed).unwrap(),
                Json::from("high"),
                "{typed}"
            );
        }
        assert_eq!(
            form.parse_input("risk_level", "très haut").unwrap(),
            Json::from("très haut"),
            "unknown: left for validation to refuse by name"
        );
        assert_eq!(
            form.parse_input("hazardous_conditions", "Mercure; Port de charges lourdes")
                .unwrap(),
            serde_json::json!(["mercury", "heavy_loads"])
        );
        assert_eq!(
            form.parse_input("hazardous_conditions", "mercury night_work")
                .unwrap(),
            serde_json::json!(["mercury", "night_work"]),
            "codes between spaces, as a list was once typed"
        );
        assert_eq!(Lang::from_tag("en_GB.UTF-8"), Lang::En);
        assert_eq!(Lang::from_tag("C"), Lang::Fr);
    }
}
