//! What an app's screens hand the store: text inputs read as a record with the right form
//! version, a date typed in a filter, and the counts and reasons its badges show. Here so
//! that every front end (the Android bindings, the CLI) decides them the same way.

use std::collections::HashMap;

use super::*;

/// A date typed in `field` (YYYY-MM-DD); anything else is a validation error on that field.
pub fn date_input(field: &str, text: &str) -> Result<Date> {
    parse_date(text).ok_or_else(|| {
        Error::Validation(vec![crate::error::FieldError {
            field: field.to_string(),
            key: "type.date".to_string(),
        }])
    })
}

impl Store {
    /// A new record typed on a screen of `form_id`, read with the version new records are
    /// written with (the newest not retired).
    pub fn new_record(&self, form_id: &str, inputs: &HashMap<String, String>) -> Result<Record> {
        self.forms()?.latest(form_id)?.record_from_inputs(inputs)
    }

    /// Identification inputs for an existing case, read with the form version its record
    /// follows, not the newest.
    pub fn case_record(&self, case_id: &str, inputs: &HashMap<String, String>) -> Result<Record> {
        self.case_form(case_id)?.record_from_inputs(inputs)
    }

    /// How many cases hold a conflict, from the projection (no document loaded, no list cap).
    pub fn conflicted_case_count(&self) -> Result<u64> {
        let n: i64 = self.connection_ref().query_row(
            "SELECT count(*) FROM cases WHERE conflict_count > 0",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Why a case was set aside, if it was.
    pub fn quarantine_reason(&self, case_id: &str) -> Result<Option<String>> {
        Ok(self
            .connection_ref()
            .query_row(
                "SELECT reason FROM quarantine WHERE case_id = ?1",
                [case_id],
                |r| r.get(0),
            )
            .optional()?)
    }
}
