//! Drafts: a form's answers saved as the agent types, so a half-filled form survives the
//! process being killed (Android does it to a backgrounded app without warning). One draft per
//! form and case; restored when the form opens again, discarded when the record is saved or the
//! agent throws it away. A draft holds a child's name like the case does, so it lives in the
//! encrypted store and goes with the case: erasure, a removal, a revocation's wipe, a reset.

use std::collections::BTreeMap;

use super::*;

/// The most answers a draft keeps, and the longest answer: a form has a few dozen fields.
pub const DRAFT_INPUTS_MAX: usize = 500;
pub const DRAFT_INPUT_CHARS_MAX: usize = 20_000;

/// A form's answers as typed, not yet a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Draft {
    pub form_id: String,
    /// The case it adds to or edits; `None` for a new case.
    pub case_id: Option<String>,
    pub inputs: BTreeMap<String, String>,
    pub updated_at: String,
}

fn case_key(case_id: Option<&str>) -> &str {
    case_id.unwrap_or("")
}

impl Store {
    /// Keeps `inputs` as the draft of `form_id` for `case_id`, replacing the one before.
    pub fn save_draft(
        &self,
        form_id: &str,
        case_id: Option<&str>,
        inputs: &BTreeMap<String, String>,
    ) -> Result<()> {
        if form_id.is_empty()
            || inputs.len() > DRAFT_INPUTS_MAX
            || inputs
                .values()
                .any(|v| v.chars().count() > DRAFT_INPUT_CHARS_MAX)
        {
            return Err(Error::InvalidInput("a draft too large to keep".into()));
        }
        let text = serde_json::to_string(inputs)
            .map_err(|e| Error::InvalidInput(format!("draft: {e}")))?;
        self.conn.execute(
            "INSERT INTO drafts (form_id, case_id, inputs, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (form_id, case_id) DO UPDATE SET inputs = ?3, updated_at = ?4",
            params![
                form_id,
                case_key(case_id),
                text,
                chrono::Utc::now().to_rfc3339()
            ],
        )?;
        Ok(())
    }

    /// The draft of `form_id` for `case_id`, if one was kept.
    pub fn draft(&self, form_id: &str, case_id: Option<&str>) -> Result<Option<Draft>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT form_id, case_id, inputs, updated_at FROM drafts
             WHERE form_id = ?1 AND case_id = ?2",
        )?;
        let row = stmt
            .query_row(params![form_id, case_key(case_id)], row_to_draft)
            .optional()?;
        row.transpose()
    }

    /// Every draft kept, the latest first (the main screen offers to finish them).
    pub fn drafts(&self) -> Result<Vec<Draft>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT form_id, case_id, inputs, updated_at FROM drafts ORDER BY updated_at DESC",
        )?;
        let rows = stmt.query_map([], row_to_draft)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .collect()
    }

    /// Throws a draft away; whether there was one.
    pub fn discard_draft(&self, form_id: &str, case_id: Option<&str>) -> Result<bool> {
        Ok(self.conn.execute(
            "DELETE FROM drafts WHERE form_id = ?1 AND case_id = ?2",
            params![form_id, case_key(case_id)],
        )? > 0)
    }
}

fn row_to_draft(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Draft>> {
    let case_id: String = r.get(1)?;
    let text: String = r.get(2)?;
    Ok(serde_json::from_str(&text)
        .map_err(|e| Error::Storage(format!("a stored draft does not read: {e}")))
        .and_then(|inputs| {
            Ok(Draft {
                form_id: r.get(0).map_err(Error::from)?,
                case_id: (!case_id.is_empty()).then_some(case_id),
                inputs,
                updated_at: r.get(3).map_err(Error::from)?,
            })
        }))
}
