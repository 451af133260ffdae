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
            })
            .collect(),
    }
}
