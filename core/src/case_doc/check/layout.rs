//! The case document's layout: every key, value and nesting the case format allows.

use super::*;

/// The structure `CaseDoc` reads, and every value (conflicting ones included) valid for its
/// field in the record's form version.
pub(super) fn check_layout(
    doc: &AutoCommit,
    case_id: &str,
    forms: &FormRegistry,
) -> Result<(), ChangeRefusal> {
    let bad = |at: &str| ChangeRefusal::Invalid(at.to_string());
    let root_keys = [
        K_CASE_ID,
        K_CREATED_AT,
        K_CREATED_BY,
        K_IDENTIFICATION_FORM,
        K_IDENTIFICATION,
        K_REFERRALS,
        K_FOLLOWUPS,
        K_AUDIT_NOTES,
        K_MERGED_INTO,
        K_MERGED_CASES,
        K_ASSIGNED_TO,
        K_CLOSURE_STATUS,
        K_CLOSURE_REASON,
        K_CLOSURE_STEPS,
    ];
    for key in doc.keys(ROOT) {
        if !root_keys.contains(&key.as_str()) {
            return Err(bad(&key));
        }
    }
    if one_str(doc, &ROOT, K_CASE_ID)?.as_deref() != Some(case_id) {
        return Err(bad(K_CASE_ID));
    }
    for key in [K_CREATED_AT, K_CREATED_BY] {
        one_str(doc, &ROOT, key)?.ok_or_else(|| bad(key))?;
    }
    // Two devices moving the record to a newer version at once leave two values: each must
    // be a version the server published, and the record follows the newer.
    let mut version = None;
    for (value, _) in doc
        .get_all(ROOT, K_IDENTIFICATION_FORM)
        .map_err(|_| bad(K_IDENTIFICATION_FORM))?
    {
        let v = match value {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Int(v) => u32::try_from(*v).ok(),
                _ => None,
            },
            Value::Object(_) => None,
        }
        .ok_or_else(|| bad(K_IDENTIFICATION_FORM))?;
        forms
            .get(IDENTIFICATION, v)
            .map_err(|_| bad(K_IDENTIFICATION_FORM))?;
        version = version.max(Some(v));
    }
    let version = version.ok_or_else(|| bad(K_IDENTIFICATION_FORM))?;
    let form = forms
        .get(IDENTIFICATION, version)
        .map_err(|_| bad(K_IDENTIFICATION_FORM))?;
    // Fields an earlier version had stay in a record that moved on, read-only.
    let earlier: Vec<&FormDefinition> = forms
        .versions(IDENTIFICATION)
        .rev()
        .filter(|f| f.version < version)
        .collect();
    let ident = one_map(doc, &ROOT, K_IDENTIFICATION)?;
    check_fields(doc, &ident, form, &earlier, K_IDENTIFICATION, &[])?;

    let referrals = one_map(doc, &ROOT, K_REFERRALS)?;
    for key in doc.keys(&referrals) {
        let at = format!("{K_REFERRALS}.{key}");
        let obj = one_map(doc, &referrals, &key)?;
        let form = forms
            .get(REFERRAL, one_version(doc, &obj, K_FORM_VERSION)?)
            .map_err(|_| bad(&at))?;
        let statuses = doc.get_all(&obj, K_STATUS).map_err(|_| bad(&at))?;
        // Two legal transitions from one status are a dispute to show, not a refusal.
        if statuses.is_empty() {
            return Err(bad(&format!("{at}.{K_STATUS}")));
        }
        for (v, _) in statuses {
            let ok = matches!(&v, Value::Scalar(s) if matches!(s.as_ref(), ScalarValue::Str(t) if ReferralStatus::parse(t).is_ok()));
            if !ok {
                return Err(bad(&format!("{at}.{K_STATUS}")));
            }
        }
        for key in [K_CREATED_AT, K_CREATED_BY] {
            one_str(doc, &obj, key)?.ok_or_else(|| bad(&format!("{at}.{key}")))?;
        }
        for key in [K_PREVIOUS, K_NEXT] {
            one_str(doc, &obj, key)?;
        }
        let log = one_map(doc, &obj, K_TRANSITIONS)?;
        for entry in doc.keys(&log) {
            let e = one_map(doc, &log, &entry)?;
            check_string_map(
                doc,
                &e,
                &["transition", "from", "to", "actor", "at", "note"],
                &format!("{at}.{K_TRANSITIONS}.{entry}"),
            )?;
        }
        let fixed = [
            K_FORM_VERSION,
            K_STATUS,
            K_CREATED_AT,
            K_CREATED_BY,
            K_PREVIOUS,
            K_NEXT,
            K_TRANSITIONS,
        ];
        check_fields(doc, &obj, form, &[], &at, &fixed)?;
    }

    let followups = one_map(doc, &ROOT, K_FOLLOWUPS)?;
    for key in doc.keys(&followups) {
        let at = format!("{K_FOLLOWUPS}.{key}");
        let obj = one_map(doc, &followups, &key)?;
        let form = forms
            .get(FOLLOWUP, one_version(doc, &obj, K_FORM_VERSION)?)
            .map_err(|_| bad(&at))?;
        for key in [K_CREATED_AT, K_CREATED_BY] {
            one_str(doc, &obj, key)?.ok_or_else(|| bad(&format!("{at}.{key}")))?;
        }
        check_fields(
            doc,
            &obj,
            form,
            &[],
            &at,
            &[K_FORM_VERSION, K_CREATED_AT, K_CREATED_BY],
        )?;
    }

    // Two reassignments made at once are a conflict to show, not a refusal.
    for (value, _) in doc
        .get_all(ROOT, K_ASSIGNED_TO)
        .map_err(|_| bad(K_ASSIGNED_TO))?
    {
        let named = matches!(&value, Value::Scalar(s) if matches!(s.as_ref(), ScalarValue::Str(u) if super::super::valid_user_id(u)));
        if !named {
            return Err(bad(K_ASSIGNED_TO));
        }
    }
    // Merge links name other cases, never this one.
    let other_case = |id: &str| super::super::is_case_id(id) && id != case_id;
    if let Some(into) = one_str(doc, &ROOT, K_MERGED_INTO)? {
        if !other_case(&into) {
            return Err(bad(K_MERGED_INTO));
        }
    }
    if doc.get(ROOT, K_MERGED_CASES).ok().flatten().is_some() {
        let merged = one_map(doc, &ROOT, K_MERGED_CASES)?;
        for key in doc.keys(&merged) {
            let at = format!("{K_MERGED_CASES}.{key}");
            if !other_case(&key) || one_str(doc, &merged, &key)?.is_none() {
                return Err(bad(&at));
            }
        }
    }

    super::closure::check_closure_layout(doc)?;

    let notes = one_map(doc, &ROOT, K_AUDIT_NOTES)?;
    for key in doc.keys(&notes) {
        let note = one_map(doc, &notes, &key)?;
        check_string_map(
            doc,
            &note,
            &["text", "author", "at"],
            &format!("{K_AUDIT_NOTES}.{key}"),
        )?;
    }
    Ok(())
}

/// The one value a key holds (no conflict is possible there in honest use): `None` if absent,
/// `Invalid` if it holds several.
pub(super) fn one_value(
    doc: &AutoCommit,
    obj: &ObjId,
    key: &str,
) -> Result<Option<(Value<'static>, ObjId)>, ChangeRefusal> {
    let mut all = doc
        .get_all(obj, key)
        .map_err(|_| ChangeRefusal::Invalid(key.into()))?;
    match all.len() {
        0 => Ok(None),
        1 => Ok(all.pop().map(|(v, id)| (v.into_owned(), id))),
        _ => Err(ChangeRefusal::Invalid(key.into())),
    }
}

/// A key's one value, a string if present.
pub(super) fn one_str(
    doc: &AutoCommit,
    obj: &ObjId,
    key: &str,
) -> Result<Option<String>, ChangeRefusal> {
    match one_value(doc, obj, key)? {
        None => Ok(None),
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(t) => Ok(Some(t.to_string())),
            _ => Err(ChangeRefusal::Invalid(key.into())),
        },
        Some(_) => Err(ChangeRefusal::Invalid(key.into())),
    }
}

pub(super) fn one_version(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<u32, ChangeRefusal> {
    match one_value(doc, obj, key)? {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Int(v) => {
                u32::try_from(*v).map_err(|_| ChangeRefusal::Invalid(key.into()))
            }
            _ => Err(ChangeRefusal::Invalid(key.into())),
        },
        _ => Err(ChangeRefusal::Invalid(key.into())),
    }
}

pub(super) fn one_map(doc: &AutoCommit, obj: &ObjId, key: &str) -> Result<ObjId, ChangeRefusal> {
    match one_value(doc, obj, key)? {
        Some((Value::Object(ObjType::Map), id)) => Ok(id),
        _ => Err(ChangeRefusal::Invalid(key.into())),
    }
}

/// A map of short strings with known keys (a transition, an audit note).
pub(super) fn check_string_map(
    doc: &AutoCommit,
    obj: &ObjId,
    allowed: &[&str],
    at: &str,
) -> Result<(), ChangeRefusal> {
    for key in doc.keys(obj) {
        if !allowed.contains(&key.as_str()) {
            return Err(ChangeRefusal::Invalid(format!("{at}.{key}")));
        }
        one_str(doc, obj, &key).map_err(|_| ChangeRefusal::Invalid(format!("{at}.{key}")))?;
    }
    Ok(())
}

/// Every key of a record map is a field of its form (or one of `fixed`, checked by the caller),
/// and every value held there, conflicting ones included, is valid for the field.
pub(super) fn check_fields(
    doc: &AutoCommit,
    obj: &ObjId,
    form: &FormDefinition,
    earlier: &[&FormDefinition],
    at: &str,
    fixed: &[&str],
) -> Result<(), ChangeRefusal> {
    for key in doc.keys(obj) {
        if fixed.contains(&key.as_str()) {
            continue;
        }
        let here = format!("{at}.{key}");
        let field = form
            .field(&key)
            .or_else(|| earlier.iter().find_map(|f| f.field(&key)))
            .ok_or_else(|| ChangeRefusal::Invalid(here.clone()))?;
        let values = doc
            .get_all(obj, key.as_str())
            .map_err(|_| ChangeRefusal::Invalid(here.clone()))?;
        for (value, id) in values {
            let json = match value {
                Value::Object(ObjType::Text)
                    if field.multiline && field.field_type == FieldType::Text =>
                {
                    doc.text(&id).ok().map(Json::String)
                }
                Value::Object(_) => None,
                Value::Scalar(s) => scalar_to_field_json(field, &s),
            };
            let json = json.ok_or_else(|| ChangeRefusal::Invalid(here.clone()))?;
            crate::forms::check_field_value(field, &json)
                .map_err(|key| ChangeRefusal::Invalid(format!("{here}: {key}")))?;
        }
    }
    Ok(())
}
