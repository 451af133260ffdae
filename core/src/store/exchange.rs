//! A caseload exported as JSON and imported back, all or nothing.

use super::*;

impl Store {
    /// Every case in full, for reports and backups (`suivi export`).
    pub fn export(&self) -> Result<Json> {
        let mut ids: Vec<String> = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT case_id FROM cases ORDER BY created_at, case_id")?;
            for id in stmt.query_map([], |r| r.get(0))? {
                ids.push(id?);
            }
        }
        let mut cases = Vec::with_capacity(ids.len());
        for id in ids {
            let detail = self.case(&id)?;
            cases.push(serde_json::json!({
                "case_id": id,
                "identification_form": detail.identification_form,
                "identification": detail.identification,
                "referrals": detail.referrals,
                "followups": detail.followups,
            }));
        }
        Ok(serde_json::json!({"format": "suivi-export", "version": 1, "cases": cases}))
    }

    /// Imports cases, all or nothing: either a spreadsheet turned into a JSON array of rows
    /// (one object per child, keys are identification field ids, values may be text), or a
    /// `suivi export`. Every problem in every row is reported with its row number.
    pub fn import(&mut self, data: &Json) -> Result<Vec<String>> {
        let forms = self.forms()?;
        let rows: Vec<ImportRow> = parse_import(data)?;
        let form = forms.latest(IDENTIFICATION)?.clone();
        let referral_form = forms.latest(crate::forms::REFERRAL)?.clone();
        let followup_form = forms.latest(crate::forms::FOLLOWUP)?.clone();
        let mut errors = Vec::new();
        let mut prepared = Vec::new();
        for (i, row) in rows.into_iter().enumerate() {
            let mut row_errors = Vec::new();
            let ident = coerce_record(&form, row.identification, &mut row_errors);
            if let Err(Error::Validation(e)) = form.validate(&ident) {
                row_errors.extend(e);
            }
            let mut referrals = Vec::new();
            for r in row.referrals {
                let r = coerce_record(&referral_form, r, &mut row_errors);
                if let Err(Error::Validation(e)) = referral_form.validate(&r) {
                    row_errors.extend(e);
                }
                referrals.push(r);
            }
            let mut followups = Vec::new();
            for f in row.followups {
                let f = coerce_record(&followup_form, f, &mut row_errors);
                if let Err(Error::Validation(e)) = followup_form.validate(&f) {
                    row_errors.extend(e);
                }
                followups.push(f);
            }
            for mut e in row_errors {
                e.field = format!("row{}.{}", i + 1, e.field);
                errors.push(e);
            }
            prepared.push((ident, referrals, followups));
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        let actor = self.actor()?;
        let ctx = ChangeContext::now(self.identity.user.clone());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut ids = Vec::new();
        for (ident, referrals, followups) in prepared {
            let case_id = crate::clock::new_id();
            let mut doc = CaseDoc::create(&case_id, actor.clone(), &form, &ident, &ctx)?;
            for r in &referrals {
                doc.add_referral(&forms, r, &ctx)?;
            }
            for f in &followups {
                doc.add_followup(&forms, f, &ctx)?;
            }
            Store::save_doc(&tx, &forms, &case_id, &mut doc, true)?;
            ids.push(case_id);
        }
        tx.commit()?;
        Ok(ids)
    }
}

pub(super) struct ImportRow {
    pub(super) identification: serde_json::Map<String, Json>,
    pub(super) referrals: Vec<serde_json::Map<String, Json>>,
    pub(super) followups: Vec<serde_json::Map<String, Json>>,
}

pub(super) fn parse_import(data: &Json) -> Result<Vec<ImportRow>> {
    let bad = |what: &str| Error::InvalidInput(format!("import: {what}"));
    let as_object = |v: &Json| {
        v.as_object()
            .cloned()
            .ok_or_else(|| bad("expected an object"))
    };
    let list = |v: Option<&Json>| -> Result<Vec<serde_json::Map<String, Json>>> {
        match v {
            None | Some(Json::Null) => Ok(Vec::new()),
            Some(Json::Array(items)) => items
                .iter()
                .map(|item| {
                    // An export carries each record's fields beside its metadata.
                    let fields = item.get("fields").unwrap_or(item);
                    as_object(fields)
                })
                .collect(),
            Some(_) => Err(bad("expected a list")),
        }
    };
    match data {
        Json::Array(rows) => rows
            .iter()
            .map(|row| {
                Ok(ImportRow {
                    identification: as_object(row)?,
                    referrals: Vec::new(),
                    followups: Vec::new(),
                })
            })
            .collect(),
        Json::Object(obj) => obj
            .get("cases")
            .and_then(Json::as_array)
            .ok_or_else(|| bad("expected an array of rows or an export with \"cases\""))?
            .iter()
            .map(|case| {
                Ok(ImportRow {
                    identification: as_object(
                        case.get("identification")
                            .ok_or_else(|| bad("case without identification"))?,
                    )?,
                    referrals: list(case.get("referrals"))?,
                    followups: list(case.get("followups"))?,
                })
            })
            .collect(),
        _ => Err(bad("expected JSON array or object")),
    }
}

/// Spreadsheet cells arrive as text: convert them by field type; empty cells are absent.
pub(super) fn coerce_record(
    form: &crate::forms::FormDefinition,
    raw: serde_json::Map<String, Json>,
    errors: &mut Vec<crate::error::FieldError>,
) -> Record {
    let mut record = Record::new();
    for (key, value) in raw {
        let value = match value {
            Json::String(s) if form.field(&key).is_some() => match form.parse_input(&key, &s) {
                Ok(v) => v,
                Err(Error::Validation(e)) => {
                    errors.extend(e);
                    continue;
                }
                Err(_) => continue,
            },
            other => other,
        };
        if !value.is_null() {
            record.insert(key, value);
        }
    }
    record
}
