//! The rules of a case's closure (`case_doc::closure`): its keys and values, the steps that
//! follow one another, and who may decide. An agent's approval, however it is written, is
//! refused: only a supervisor of the case's team or an admin (`Author::supervises`) moves a
//! proposal to closed or returned, or logs such a step.

use super::*;

/// Every value of the closure's keys (conflicting ones included) is one the format knows.
pub(super) fn check_closure_layout(doc: &AutoCommit) -> Result<(), ChangeRefusal> {
    let bad = |at: &str| ChangeRefusal::Invalid(at.to_string());
    let text = |value: &Value<'_>| match value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(t) => Some(t.to_string()),
            _ => None,
        },
        Value::Object(_) => None,
    };
    for (value, _) in doc
        .get_all(ROOT, K_CLOSURE_STATUS)
        .map_err(|_| bad(K_CLOSURE_STATUS))?
    {
        if text(&value)
            .and_then(|t| ClosureStatus::parse(&t))
            .is_none()
        {
            return Err(bad(K_CLOSURE_STATUS));
        }
    }
    for (value, _) in doc
        .get_all(ROOT, K_CLOSURE_REASON)
        .map_err(|_| bad(K_CLOSURE_REASON))?
    {
        if !text(&value).is_some_and(|t| CLOSURE_REASONS.contains(&t.as_str())) {
            return Err(bad(K_CLOSURE_REASON));
        }
    }
    // Two phones that took a case's first step at once each made a log: both are read.
    for (value, log) in doc
        .get_all(ROOT, K_CLOSURE_STEPS)
        .map_err(|_| bad(K_CLOSURE_STEPS))?
    {
        if !matches!(value, Value::Object(ObjType::Map)) {
            return Err(bad(K_CLOSURE_STEPS));
        }
        for key in doc.keys(&log) {
            let at = format!("{K_CLOSURE_STEPS}.{key}");
            let entry = one_map(doc, &log, &key)?;
            check_string_map(doc, &entry, &CLOSURE_STEP_KEYS, &at)?;
            let step = one_str(doc, &entry, "step")?;
            if !step.is_some_and(|s| CLOSURE_STEPS.contains(&s.as_str())) {
                return Err(bad(&format!("{at}.step")));
            }
            if let Some(reason) = one_str(doc, &entry, "reason")? {
                if !CLOSURE_REASONS.contains(&reason.as_str()) {
                    return Err(bad(&format!("{at}.reason")));
                }
            }
            for key in ["actor", "at"] {
                one_str(doc, &entry, key)?.ok_or_else(|| bad(&format!("{at}.{key}")))?;
            }
        }
    }
    Ok(())
}

impl ChangeRules<'_> {
    /// A new closure status follows from one its dependencies hold by one step (or settles a
    /// dispute with one of the statuses they hold); a decision, and the settling of a dispute,
    /// are a supervisor's; a proposal carries its reason.
    pub(super) fn check_closure_move(&self) -> Result<(), ChangeRefusal> {
        // Most cases were never proposed for closure: nothing to read at older heads.
        if self
            .doc
            .get_all(ROOT, K_CLOSURE_STATUS)
            .map_or(true, |v| v.is_empty())
        {
            return Ok(());
        }
        let status_of = |v: &Value<'_>| match v {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Str(t) => ClosureStatus::parse(t),
                _ => None,
            },
            Value::Object(_) => None,
        };
        let held = |at: &[ChangeHash]| -> Vec<(Option<ClosureStatus>, ObjId)> {
            self.doc
                .get_all_at(ROOT, K_CLOSURE_STATUS, at)
                .unwrap_or_default()
                .into_iter()
                .map(|(v, id)| (status_of(&v), id))
                .collect()
        };
        let before = held(self.deps);
        let after = held(&[self.hash]);
        if before == after {
            return Ok(());
        }
        if after.is_empty() {
            return Err(ChangeRefusal::Invalid(format!(
                "{K_CLOSURE_STATUS}: deleted"
            )));
        }
        let mut was: Vec<ClosureStatus> = before.iter().filter_map(|(s, _)| *s).collect();
        was.sort_by_key(|s| s.as_str());
        was.dedup();
        if was.is_empty() {
            was.push(ClosureStatus::Open);
        }
        let disputed = was.len() > 1;
        for (to, id) in after {
            let to = to.ok_or_else(|| ChangeRefusal::Invalid(K_CLOSURE_STATUS.into()))?;
            let kept = before.iter().any(|(_, b)| *b == id);
            // Settling a dispute with the value Automerge showed writes no new value: it
            // deletes the others. Either way, keeping a decision is a supervisor's.
            let settles = disputed && was.contains(&to);
            if !kept && !settles && !was.iter().any(|from| from.moves_to(to)) {
                return Err(ChangeRefusal::IllegalTransition(K_CLOSURE_STATUS.into()));
            }
            // A dispute is a supervisor's to settle, whichever value stands.
            if !self.author.supervises && (disputed || (to.is_decision() && !kept)) {
                return Err(ChangeRefusal::NotAllowed(K_CLOSURE_STATUS.into()));
            }
            let reasoned = !self
                .doc
                .get_all_at(ROOT, K_CLOSURE_REASON, &[self.hash])
                .unwrap_or_default()
                .is_empty();
            if to == ClosureStatus::Proposed && !kept && !reasoned {
                return Err(ChangeRefusal::Invalid(K_CLOSURE_REASON.into()));
            }
        }
        Ok(())
    }

    /// The closure log only grows: a step this change adds names its author, and an approval
    /// or a return is a supervisor's; a step already logged is never rewritten.
    pub(super) fn check_closure_steps(&self) -> Result<(), ChangeRefusal> {
        // Most cases were never proposed for closure: nothing to read at older heads.
        if self
            .doc
            .get_all(ROOT, K_CLOSURE_STEPS)
            .map_or(true, |v| v.is_empty())
        {
            return Ok(());
        }
        let heads = [self.hash];
        let logs_before: HashSet<ObjId> = self
            .doc
            .get_all_at(ROOT, K_CLOSURE_STEPS, self.deps)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let text_at = |obj: &ObjId, key: &str, at: &[ChangeHash]| -> Vec<String> {
            self.doc
                .get_all_at(obj, key, at)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(v, _)| match v {
                    Value::Scalar(s) => match s.as_ref() {
                        ScalarValue::Str(t) => Some(t.to_string()),
                        _ => None,
                    },
                    Value::Object(_) => None,
                })
                .collect()
        };
        for (_, log) in self
            .doc
            .get_all_at(ROOT, K_CLOSURE_STEPS, &heads)
            .unwrap_or_default()
        {
            let old_log = logs_before.contains(&log);
            for key in self.doc.keys_at(&log, &heads) {
                let at = format!("{K_CLOSURE_STEPS}.{key}");
                let entry_before = if old_log {
                    self.doc
                        .get_all_at(&log, &key, self.deps)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(_, id)| id)
                        .collect::<Vec<_>>()
                } else {
                    Vec::new()
                };
                for (_, entry) in self.doc.get_all_at(&log, &key, &heads).unwrap_or_default() {
                    if entry_before.contains(&entry) {
                        for field in CLOSURE_STEP_KEYS {
                            if text_at(&entry, field, self.deps) != text_at(&entry, field, &heads) {
                                return Err(ChangeRefusal::NotAllowed(format!("{at}.{field}")));
                            }
                        }
                        continue;
                    }
                    if text_at(&entry, "actor", &heads) != [self.author.user] {
                        return Err(ChangeRefusal::WrongAuthor(format!("{at}.actor")));
                    }
                    let decision = text_at(&entry, "step", &heads)
                        .iter()
                        .any(|s| s == "approve" || s == "return");
                    if decision && !self.author.supervises {
                        return Err(ChangeRefusal::NotAllowed(format!("{at}.step")));
                    }
                }
            }
        }
        Ok(())
    }
}
