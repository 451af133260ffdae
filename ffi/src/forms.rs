//! Forms as the app renders them, labelled in the reader's language.

use super::*;

/// A choice of a select field, labelled in the requested language.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ChoiceInfo {
    pub id: String,
    pub label: String,
}

/// A field of a form, labelled in the requested language: enough to render it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FieldInfo {
    pub id: String,
    /// text, integer, decimal, date, boolean, select_one, select_multiple, geopoint, phone
    pub field_type: String,
    pub label: String,
    pub required: bool,
    pub multiline: bool,
    pub choices: Vec<ChoiceInfo>,
    /// The bounds the field's value must keep, as text (a number, or a date YYYY-MM-DD), for
    /// a message that says them ("Trop grand : 17 au plus").
    pub range_min: Option<String>,
    pub range_max: Option<String>,
    /// A text's length bounds, in characters.
    pub length_min: Option<String>,
    pub length_max: Option<String>,
}

/// Every message key a validation problem can carry (`ValidationProblem.key`): the app keeps a
/// text for each in every language it speaks.
#[uniffi::export]
pub fn field_error_keys() -> Vec<String> {
    suivi_core::FIELD_ERROR_KEYS
        .iter()
        .map(|k| k.to_string())
        .collect()
}

/// A bound as a screen says it: a number as written, a date as stored.
fn bound_text(bound: Option<&suivi_core::forms::Bounds>, min: bool) -> Option<String> {
    let b = bound?;
    let value = if min { b.min.as_ref() } else { b.max.as_ref() }?;
    Some(match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// A form definition, as data: a new version needs no app release.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FormInfo {
    pub id: String,
    pub version: u32,
    pub title: String,
    pub right_to_left: bool,
    pub fields: Vec<FieldInfo>,
}

/// A form version this phone holds (built in, or received from the server at sync).
#[derive(Debug, Clone, uniffi::Record)]
pub struct FormVersionInfo {
    pub id: String,
    pub version: u32,
    pub title: String,
    /// Takes no new records; its records still open and check with it.
    pub retired: bool,
}

/// A form version as the app renders it, labelled in `lang`.
pub(super) fn form_info(form: &suivi_core::forms::FormDefinition, lang: Lang) -> FormInfo {
    FormInfo {
        id: form.id.clone(),
        version: form.version,
        title: form.title.get(lang).to_string(),
        right_to_left: lang == Lang::Ar,
        fields: form
            .fields
            .iter()
            .map(|f| FieldInfo {
                id: f.id.clone(),
                field_type: f.field_type.name().to_string(),
                label: f.label.get(lang).to_string(),
                required: f.required,
                multiline: f.multiline,
                choices: f
                    .choices
                    .iter()
                    .map(|c| ChoiceInfo {
                        id: c.id.clone(),
                        label: c.label.get(lang).to_string(),
                    })
                    .collect(),
                range_min: bound_text(f.constraints.range.as_ref(), true),
                range_max: bound_text(f.constraints.range.as_ref(), false),
                length_min: bound_text(f.constraints.length.as_ref(), true),
                length_max: bound_text(f.constraints.length.as_ref(), false),
            })
            .collect(),
    }
}
