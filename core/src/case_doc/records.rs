//! A case's records (identification, and the fields of referrals and follow-ups) read and written as the form defines them.

use super::*;

impl CaseDoc {
    /// Identification fields the record holds that its version no longer asks: written under
    /// an earlier version before the record moved, shown read-only, each read with the newest
    /// earlier version that has it (a field keeps its type across versions).
    pub fn former_identification_fields(&self, forms: &FormRegistry) -> Result<Record> {
        let version = self.identification_form_version()?;
        let form = forms.get(IDENTIFICATION, version)?;
        let ident = self.map(&ROOT, K_IDENTIFICATION)?;
        let mut former = Record::new();
        for key in self.doc.keys(&ident) {
            if form.field(&key).is_some() {
                continue;
            }
            let earlier = forms
                .versions(IDENTIFICATION)
                .rev()
                .filter(|f| f.version < version)
                .find_map(|f| f.field(&key));
            if let (Some(field), Some((value, id))) = (earlier, self.doc.get(&ident, key.as_str())?)
            {
                if let Some(json) = self.value_to_json(field, value, &id)? {
                    former.insert(key, json);
                }
            }
        }
        Ok(former)
    }

    /// Moves the record to the newest active identification version, as the user edits it in
    /// that form: the patch must give what the new version requires, and the whole record is
    /// checked against it. Fields the new version no longer has stay in the record, read-only
    /// (`former_identification_fields`). Returns the fields written.
    pub fn move_identification(
        &mut self,
        forms: &FormRegistry,
        patch: &Record,
        ctx: &ChangeContext,
    ) -> Result<Vec<String>> {
        let current = self.identification_form_version()?;
        let target = forms.latest(IDENTIFICATION)?;
        if target.version <= current {
            return Err(Error::InvalidInput(format!(
                "the record already follows identification version {current}, the newest in use"
            )));
        }
        let old = self.identification(forms)?;
        let mut new: Record = old
            .iter()
            .filter(|(k, _)| target.field(k).is_some())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in patch {
            if v.is_null() {
                new.remove(k);
            } else {
                new.insert(k.clone(), v.clone());
            }
        }
        clear_hidden(target, &mut new, patch);
        target.validate(&new)?;
        let ident = self.map(&ROOT, K_IDENTIFICATION)?;
        let before: Record = old
            .into_iter()
            .filter(|(k, _)| target.field(k).is_some())
            .collect();
        self.doc
            .put(ROOT, K_IDENTIFICATION_FORM, i64::from(target.version))?;
        let mut changed = self.write_fields(&ident, target, &before, &new)?;
        changed.insert(0, K_IDENTIFICATION_FORM.to_string());
        self.commit(ctx, "case.form_move");
        Ok(changed)
    }

    /// Reads a form's fields from a map, converting Automerge values back to JSON by field type.
    pub(super) fn read_fields(&self, obj: &ObjId, form: &FormDefinition) -> Result<Record> {
        let mut record = Record::new();
        for field in &form.fields {
            if let Some((value, id)) = self.doc.get(obj, field.id.as_str())? {
                if let Some(json) = self.value_to_json(field, value, &id)? {
                    record.insert(field.id.clone(), json);
                }
            }
        }
        Ok(record)
    }

    pub(super) fn value_to_json(
        &self,
        field: &Field,
        value: Value<'_>,
        id: &ObjId,
    ) -> Result<Option<Json>> {
        Ok(match value {
            Value::Object(ObjType::Text) => Some(Json::String(self.doc.text(id)?)),
            Value::Object(_) => None,
            Value::Scalar(s) => scalar_to_field_json(field, &s),
        })
    }

    /// Writes the differences between `old` and `new` into a map. Multiline text goes through
    /// `update_text` so concurrent edits of a narrative merge instead of overwriting each other.
    pub(super) fn write_fields(
        &mut self,
        obj: &ObjId,
        form: &FormDefinition,
        old: &Record,
        new: &Record,
    ) -> Result<Vec<String>> {
        let mut changed = Vec::new();
        for field in &form.fields {
            let before = old.get(&field.id);
            let after = new.get(&field.id).filter(|v| !v.is_null());
            if before == after {
                continue;
            }
            changed.push(field.id.clone());
            match after {
                None => self.doc.delete(obj, field.id.as_str())?,
                Some(Json::String(text)) if field.multiline => {
                    let text_obj = match self.doc.get(obj, field.id.as_str())? {
                        Some((Value::Object(ObjType::Text), id)) => id,
                        _ => self.doc.put_object(obj, field.id.as_str(), ObjType::Text)?,
                    };
                    self.doc.update_text(&text_obj, text)?;
                }
                Some(json) => {
                    let scalar = field_json_to_scalar(field, json)
                        .ok_or_else(|| Error::InvalidInput(format!("value for {}", field.id)))?;
                    self.doc.put(obj, field.id.as_str(), scalar)?;
                }
            }
        }
        Ok(changed)
    }

    pub fn identification(&self, forms: &FormRegistry) -> Result<Record> {
        let form = forms.get(IDENTIFICATION, self.identification_form_version()?)?;
        let ident = self.map(&ROOT, K_IDENTIFICATION)?;
        self.read_fields(&ident, form)
    }

    /// Applies a partial edit (a `null` clears a field). Fields that the edit makes irrelevant
    /// (a child who no longer works has no work sector) are cleared too, and the history says so.
    /// Returns the ids of the fields that changed; nothing is written if validation fails.
    pub fn edit_identification(
        &mut self,
        forms: &FormRegistry,
        patch: &Record,
        ctx: &ChangeContext,
    ) -> Result<Vec<String>> {
        let form = forms.get(IDENTIFICATION, self.identification_form_version()?)?;
        let old = self.identification(forms)?;
        let mut new = old.clone();
        for (k, v) in patch {
            if v.is_null() {
                new.remove(k);
            } else {
                new.insert(k.clone(), v.clone());
            }
        }
        clear_hidden(form, &mut new, patch);
        form.validate(&new)?;
        let ident = self.map(&ROOT, K_IDENTIFICATION)?;
        // Setting a conflicted field settles the conflict, even to the value shown now: mark it
        // as different so it is written.
        let mut before = old.clone();
        for key in patch.keys() {
            if self.doc.get_all(&ident, key.as_str())?.len() > 1 {
                before.insert(key.clone(), Json::String("\u{0}conflicted".into()));
            }
        }
        let changed = self.write_fields(&ident, form, &before, &new)?;
        if !changed.is_empty() {
            self.commit(ctx, "case.edit");
        }
        Ok(changed)
    }
}

/// The change that made operation `op`: the change of its actor whose counters span it.
/// Clears the fields of `record` an edit made irrelevant (a child who no longer works has no
/// work sector), until none is left, keeping what the edit itself sets.
pub(super) fn clear_hidden(form: &FormDefinition, record: &mut Record, patch: &Record) {
    loop {
        let hidden: Vec<String> = form
            .fields
            .iter()
            .filter(|f| {
                record.contains_key(&f.id)
                    && !patch.contains_key(&f.id)
                    && !form.is_relevant(f, record)
            })
            .map(|f| f.id.clone())
            .collect();
        if hidden.is_empty() {
            break;
        }
        for id in hidden {
            record.remove(&id);
        }
    }
}

pub(super) fn prop_text(prop: &Prop) -> String {
    match prop {
        Prop::Map(k) => k.to_string(),
        Prop::Seq(i) => i.to_string(),
    }
}

pub(super) fn value_to_plain_json(value: &Value<'_>) -> Json {
    match value {
        Value::Object(_) => Json::Null,
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => Json::String(s.to_string()),
            ScalarValue::Int(i) => Json::from(*i),
            ScalarValue::Uint(u) => Json::from(*u),
            ScalarValue::F64(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            ScalarValue::Boolean(b) => Json::Bool(*b),
            ScalarValue::Timestamp(t) => Json::from(*t),
            _ => Json::Null,
        },
    }
}

pub(super) fn field_json_to_scalar(field: &Field, json: &Json) -> Option<ScalarValue> {
    Some(match field.field_type {
        FieldType::Integer => ScalarValue::Int(json.as_i64()?),
        FieldType::Decimal => ScalarValue::F64(json.as_f64()?),
        FieldType::Boolean => ScalarValue::Boolean(json.as_bool()?),
        // Kept as one atomic value, so concurrent edits show as a conflict rather than a blend.
        FieldType::SelectMultiple => ScalarValue::Str(
            json.as_array()?
                .iter()
                .map(|v| v.as_str())
                .collect::<Option<Vec<_>>>()?
                .join(" ")
                .into(),
        ),
        FieldType::Geopoint => ScalarValue::Str(
            format!(
                "{},{}",
                json.get("lat")?.as_f64()?,
                json.get("lon")?.as_f64()?
            )
            .into(),
        ),
        FieldType::Text | FieldType::Phone | FieldType::Date | FieldType::SelectOne => {
            ScalarValue::Str(json.as_str()?.into())
        }
    })
}

pub(super) fn scalar_to_field_json(field: &Field, scalar: &ScalarValue) -> Option<Json> {
    Some(match (field.field_type, scalar) {
        (FieldType::Integer, ScalarValue::Int(i)) => Json::from(*i),
        (FieldType::Decimal, ScalarValue::F64(f)) => {
            Json::Number(serde_json::Number::from_f64(*f)?)
        }
        (FieldType::Boolean, ScalarValue::Boolean(b)) => Json::Bool(*b),
        (FieldType::SelectMultiple, ScalarValue::Str(s)) => Json::Array(
            s.split(' ')
                .filter(|p| !p.is_empty())
                .map(|p| Json::String(p.to_string()))
                .collect(),
        ),
        (FieldType::Geopoint, ScalarValue::Str(s)) => {
            let (lat, lon) = crate::forms::parse_geopoint(s)?;
            serde_json::json!({"lat": lat, "lon": lon})
        }
        (_, ScalarValue::Str(s)) => Json::String(s.to_string()),
        _ => return None,
    })
}
