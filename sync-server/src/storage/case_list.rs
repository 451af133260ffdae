//! The console's case list as SQL both stores run: the reader's scope split into arms that
//! each walk one index in list order (a team's or an owner's cases by time, then the few cases
//! assigned from elsewhere), so a page of a 100,000-case team reads a page of index entries,
//! not the team. Each arm returns (time, id) pairs up to the page's end; the store merges them
//! and reads only the page's rows.

use suivi_core::policy::ReadScope;

use super::{CaseQuery, CaseSort, User, NO_DUE, RISK_ORDER};

/// How a store spells what differs between SQL dialects.
pub(super) struct Dialect {
    /// The n-th (1-based) parameter.
    pub param: fn(usize) -> String,
    /// `position(needle, haystack) > 0`.
    pub contains: fn(&str, &str) -> String,
}

/// One arm of a list query: a WHERE clause and its parameters (all text).
pub(super) struct Arm {
    pub filter: String,
    pub args: Vec<String>,
}

/// The arms of `query` for `reader`, every criterion applied in each. `blind` is how the store
/// keeps search keys (identity on SQLite, a keyed hash on PostgreSQL).
pub(super) fn arms(
    reader: &User,
    query: &CaseQuery,
    dialect: &Dialect,
    blind: &dyn Fn(&str) -> String,
) -> Vec<Arm> {
    let scopes: Vec<(String, Vec<String>)> = match ReadScope::of(reader.role) {
        ReadScope::All => vec![(String::new(), vec![])],
        // Assigned cases outside the team (or not owned) are a second arm, so the first stays
        // on its index.
        ReadScope::Team => vec![
            ("s.team = {}".into(), vec![reader.team.clone()]),
            (
                "s.team <> {} AND s.case_id IN (SELECT case_id FROM assignments WHERE user_id = {})"
                    .into(),
                vec![reader.team.clone(), reader.user_id.clone()],
            ),
        ],
        ReadScope::Own => vec![
            ("s.owner = {}".into(), vec![reader.user_id.clone()]),
            (
                "s.owner <> {} AND s.case_id IN (SELECT case_id FROM assignments WHERE user_id = {})"
                    .into(),
                vec![reader.user_id.clone(), reader.user_id.clone()],
            ),
        ],
    };
    scopes
        .into_iter()
        .map(|(scope, scope_args)| {
            let mut clauses = Vec::new();
            let mut args = Vec::new();
            let next = |value: String, args: &mut Vec<String>| {
                args.push(value);
                (dialect.param)(args.len())
            };
            if !scope.is_empty() {
                let mut text = String::new();
                let mut parts = scope.split("{}");
                text.push_str(parts.next().unwrap_or_default());
                for (part, value) in parts.zip(scope_args) {
                    text.push_str(&next(value, &mut args));
                    text.push_str(part);
                }
                clauses.push(text);
            }
            for term in &query.name_terms {
                let p = next(blind(term), &mut args);
                clauses.push(format!(
                    "s.case_id IN (SELECT case_id FROM case_search_terms WHERE term = {p})"
                ));
            }
            if let Some(v) = &query.village_key {
                let p = next(blind(&super::village_term(v)), &mut args);
                clauses.push(format!(
                    "s.case_id IN (SELECT case_id FROM case_search_terms WHERE term = {p})"
                ));
            }
            if let Some(v) = &query.agent {
                let p = next(v.to_lowercase(), &mut args);
                clauses.push(format!("lower(s.owner) = {p}"));
            }
            if let Some(v) = &query.risk_level {
                let p = next(v.clone(), &mut args);
                clauses.push(format!("s.risk_level = {p}"));
            }
            if let Some(v) = &query.referral_status {
                let p = next(format!(" {v} "), &mut args);
                clauses.push((dialect.contains)(&p, "s.referral_statuses"));
            }
            if let Some(v) = &query.due_before {
                let p = next(v.clone(), &mut args);
                clauses.push(format!("s.next_followup_due < {p}"));
            }
            if query.conflicts_only {
                clauses.push("s.conflict_count > 0".into());
            }
            Arm {
                filter: if clauses.is_empty() {
                    String::new()
                } else {
                    format!("WHERE {}", clauses.join(" AND "))
                },
                args,
            }
        })
        .collect()
}

/// The sort key columns of `sort` (an integer, a text), and the ORDER BY that sorts by them
/// then by case id: what `CaseSort::key` computes of a listed case. Last changed first walks
/// the arms' indexes in their order.
pub(super) fn sort_key(sort: CaseSort) -> (String, &'static str) {
    let due = format!("coalesce(s.next_followup_due, '{NO_DUE}')");
    match sort {
        CaseSort::Updated => ("-s.updated_at, ''".into(), "s.updated_at DESC, s.case_id"),
        CaseSort::Due => (format!("CAST(0 AS BIGINT), {due}"), "1, 2, s.case_id"),
        CaseSort::Risk => {
            let ranks: String = RISK_ORDER
                .iter()
                .enumerate()
                .map(|(i, r)| format!("WHEN '{r}' THEN {i} "))
                .collect();
            (
                format!(
                    "CAST(CASE s.risk_level {ranks}ELSE {} END AS BIGINT), {due}",
                    RISK_ORDER.len()
                ),
                "1, 2, s.case_id",
            )
        }
    }
}

/// The (sort key, id) rows of every arm, in the list's order: the page `query` asks for.
pub(super) fn page_of(mut rows: Vec<((i64, String), String)>, query: &CaseQuery) -> Vec<String> {
    rows.sort();
    rows.dedup_by(|a, b| a.1 == b.1);
    rows.into_iter()
        .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(query.limit).unwrap_or(usize::MAX))
        .map(|(_, id)| id)
        .collect()
}

/// The rows one arm must return for the page: every row up to its end.
pub(super) fn arm_limit(query: &CaseQuery) -> i64 {
    i64::try_from(query.offset.saturating_add(query.limit)).unwrap_or(i64::MAX)
}

/// An arm's filter with one more condition.
pub(super) fn and(filter: &str, condition: &str) -> String {
    if filter.is_empty() {
        format!("WHERE {condition}")
    } else {
        format!("{filter} AND {condition}")
    }
}

/// The first `limit` ids of every arm's rows, merged in id order.
pub(super) fn merged_ids(mut ids: Vec<String>, limit: usize) -> Vec<String> {
    ids.sort();
    ids.dedup();
    ids.truncate(limit);
    ids
}
