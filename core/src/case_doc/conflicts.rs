//! Concurrent edits of one field: found, told with their sources, resolved.

use super::*;

impl CaseDoc {
    /// Fields holding concurrent values: identification fields, the case's agent, its closure
    /// and referral statuses.
    pub fn conflicts(&self, forms: &FormRegistry) -> Result<Vec<Conflict>> {
        Ok(self
            .conflicts_and_ops(forms)?
            .into_iter()
            .map(|(c, _)| c)
            .collect())
    }

    /// Each conflict and the operation that wrote each of its values.
    pub(super) fn conflicts_and_ops(
        &self,
        forms: &FormRegistry,
    ) -> Result<Vec<(Conflict, Vec<ObjId>)>> {
        let mut out = Vec::new();
        let form = forms.get(IDENTIFICATION, self.identification_form_version()?)?;
        let ident = self.map(&ROOT, K_IDENTIFICATION)?;
        for field in &form.fields {
            let all = self.doc.get_all(&ident, field.id.as_str())?;
            if all.len() > 1 {
                let mut values = Vec::new();
                let mut ops = Vec::new();
                for (value, id) in all {
                    values.push(self.value_to_json(field, value, &id)?.unwrap_or(Json::Null));
                    ops.push(id);
                }
                let conflict = Conflict {
                    path: format!("{K_IDENTIFICATION}.{}", field.id),
                    values,
                    sources: Vec::new(),
                };
                out.push((conflict, ops));
            }
        }
        // Two devices moved the record to two different versions at once: it follows the
        // newer, and the supervisor sees that one device answered an older version's questions.
        let moves = self.doc.get_all(ROOT, K_IDENTIFICATION_FORM)?;
        let mut versions: Vec<Json> = moves.iter().map(|(v, _)| value_to_plain_json(v)).collect();
        versions.sort_by_key(|v| v.as_u64());
        versions.dedup();
        if versions.len() > 1 {
            let conflict = Conflict {
                path: K_IDENTIFICATION_FORM.to_string(),
                values: versions,
                sources: Vec::new(),
            };
            out.push((conflict, moves.iter().map(|(_, id)| id.clone()).collect()));
        }
        for key in [K_ASSIGNED_TO, K_CLOSURE_STATUS, K_CLOSURE_REASON] {
            let held = self.doc.get_all(ROOT, key)?;
            let mut distinct: Vec<Json> =
                held.iter().map(|(v, _)| value_to_plain_json(v)).collect();
            distinct.sort_by_key(|v| v.to_string());
            distinct.dedup();
            // The same closure step taken on two phones is no conflict (a reassignment to the
            // same agent twice is still shown, as it always was).
            if held.len() < 2 || (key != K_ASSIGNED_TO && distinct.len() < 2) {
                continue;
            }
            let ops = held.iter().map(|(_, id)| id.clone()).collect();
            let conflict = Conflict {
                path: key.to_string(),
                values: held
                    .into_iter()
                    .map(|(v, _)| value_to_plain_json(&v))
                    .collect(),
                sources: Vec::new(),
            };
            out.push((conflict, ops));
        }
        let referrals = self.map(&ROOT, K_REFERRALS)?;
        for item in self.doc.map_range(&referrals, ..) {
            let obj = item.id();
            let all = self.doc.get_all(&obj, K_STATUS)?;
            if all.len() > 1 {
                let ops = all.iter().map(|(_, id)| id.clone()).collect();
                let conflict = Conflict {
                    path: format!("{K_REFERRALS}.{}.{K_STATUS}", item.key),
                    values: all
                        .into_iter()
                        .map(|(v, _)| value_to_plain_json(&v))
                        .collect(),
                    sources: Vec::new(),
                };
                out.push((conflict, ops));
            }
        }
        Ok(out)
    }

    /// The conflicts, each value with the change that wrote it (for a supervisor to decide).
    pub fn conflicts_with_sources(&mut self, forms: &FormRegistry) -> Result<Vec<Conflict>> {
        let found = self.conflicts_and_ops(forms)?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let changes: Vec<Change> = self.doc.get_changes(&[]);
        let source_of = |op: &ObjId| -> Option<ValueSource> {
            let change = change_of(&changes, op)?;
            let meta: Option<CommitMeta> =
                change.message().and_then(|m| serde_json::from_str(m).ok());
            Some(ValueSource {
                change: change.hash().to_string(),
                user: meta.map(|m| m.user),
                at: Utc
                    .timestamp_opt(change.timestamp(), 0)
                    .single()
                    .unwrap_or_default(),
            })
        };
        Ok(found
            .into_iter()
            .map(|(mut conflict, ops)| {
                conflict.sources = ops
                    .iter()
                    .map(|op| {
                        source_of(op).unwrap_or(ValueSource {
                            change: String::new(),
                            user: None,
                            at: DateTime::<Utc>::default(),
                        })
                    })
                    .collect();
                conflict
            })
            .collect())
    }

    /// Settles a conflict: `value` replaces every concurrent value of the field at `path` (a
    /// path `conflicts` gives). An identification field takes any value valid for it; a
    /// disputed referral takes one of the statuses it holds (the status machine does not move:
    /// a supervisor says which move stands). Once devices sync, the conflict is gone everywhere.
    pub fn resolve_conflict(
        &mut self,
        forms: &FormRegistry,
        path: &str,
        value: &Json,
        ctx: &ChangeContext,
    ) -> Result<()> {
        let conflicts = self.conflicts(forms)?;
        let conflict =
            conflicts
                .iter()
                .find(|c| c.path == path)
                .ok_or_else(|| Error::NotFound {
                    kind: "conflict",
                    id: path.to_string(),
                })?;
        if let Some(field_id) = path
            .strip_prefix(K_IDENTIFICATION)
            .and_then(|p| p.strip_prefix('.'))
        {
            let form = forms.get(IDENTIFICATION, self.identification_form_version()?)?;
            let field = form
                .field(field_id)
                .ok_or_else(|| Error::InvalidInput(format!("no field {field_id}")))?;
            if value.is_null() {
                return Err(Error::Validation(vec![crate::error::FieldError::new(
                    field_id, "required",
                )]));
            }
            crate::forms::check_field_value(field, value).map_err(|why| {
                Error::Validation(vec![crate::error::FieldError::new(field_id, why)])
            })?;
            let ident = self.map(&ROOT, K_IDENTIFICATION)?;
            match value {
                Json::String(text) if field.multiline => {
                    // One new text object replaces the concurrent ones.
                    let text_obj = self
                        .doc
                        .put_object(&ident, field.id.as_str(), ObjType::Text)?;
                    self.doc.update_text(&text_obj, text)?;
                }
                json => {
                    let scalar = field_json_to_scalar(field, json)
                        .ok_or_else(|| Error::InvalidInput(format!("value for {field_id}")))?;
                    self.doc.put(&ident, field.id.as_str(), scalar)?;
                }
            }
        } else if path == K_IDENTIFICATION_FORM {
            // Only the newer settles it: the older version does not ask what the other device
            // answered under the newer, so those answers would not check under it.
            let newest = self.identification_form_version()?;
            let chosen = value
                .as_u64()
                .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()));
            if chosen != Some(u64::from(newest)) {
                return Err(Error::InvalidInput(format!(
                    "a record moved to two versions at once follows the newer: settle it with {newest}"
                )));
            }
            self.doc
                .put(ROOT, K_IDENTIFICATION_FORM, i64::from(newest))?;
        } else if path == K_CLOSURE_STATUS {
            // One of the steps taken at once stands; the server checks that a decision is a
            // supervisor's.
            let status = value
                .as_str()
                .and_then(ClosureStatus::parse)
                .filter(|_| conflict.values.contains(value))
                .ok_or_else(|| {
                    Error::InvalidInput(
                        "a disputed closure is settled with one of its statuses".into(),
                    )
                })?;
            self.doc.put(ROOT, K_CLOSURE_STATUS, status.as_str())?;
        } else if path == K_CLOSURE_REASON {
            let reason = value
                .as_str()
                .filter(|r| CLOSURE_REASONS.contains(r))
                .ok_or_else(|| Error::InvalidInput("closure reason".into()))?;
            self.doc.put(ROOT, K_CLOSURE_REASON, reason)?;
        } else if path == K_ASSIGNED_TO {
            let agent = value
                .as_str()
                .filter(|a| valid_user_id(a))
                .ok_or_else(|| Error::InvalidInput("agent".into()))?;
            self.doc.put(ROOT, K_ASSIGNED_TO, agent)?;
        } else {
            let referral_id = path
                .strip_prefix(K_REFERRALS)
                .and_then(|p| p.strip_prefix('.'))
                .and_then(|p| p.strip_suffix(K_STATUS))
                .and_then(|p| p.strip_suffix('.'))
                .ok_or_else(|| Error::InvalidInput(format!("conflict path {path}")))?;
            if !conflict.values.contains(value) {
                return Err(Error::InvalidInput(
                    "a disputed referral is settled with one of its statuses".into(),
                ));
            }
            let status = value
                .as_str()
                .and_then(|s| ReferralStatus::parse(s).ok())
                .ok_or_else(|| Error::InvalidInput("referral status".into()))?;
            let referrals = self.map(&ROOT, K_REFERRALS)?;
            let obj = self.map(&referrals, referral_id)?;
            self.doc.put(&obj, K_STATUS, status.as_str())?;
        }
        self.commit(ctx, "conflict.resolve");
        Ok(())
    }
}

pub(super) fn change_of<'c>(changes: &'c [Change], op: &ObjId) -> Option<&'c Change> {
    let ObjId::Id(counter, actor, _) = op else {
        return None;
    };
    changes
        .iter()
        .find(|c| c.actor_id() == actor && c.start_op().get() <= *counter && *counter <= c.max_op())
}
