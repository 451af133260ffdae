//! Projections: the rows that lists and search read, computed from a case document by a pure
//! function and written in the same transaction as the document, so they never disagree.

use rusqlite::{params, Transaction};
use serde::Serialize;
use serde_json::Value as Json;

use crate::case_doc::{CaseDoc, ClosureStatus, Conflict};
use crate::error::Result;
use crate::forms::{FormRegistry, Record};
use crate::outcome::OutcomeSettings;

pub use crate::names::fold;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CaseRow {
    pub case_id: String,
    pub first_name: String,
    pub last_name: String,
    pub sex: Option<String>,
    pub province: Option<String>,
    pub commune: Option<String>,
    pub village: Option<String>,
    pub work_sector: Option<String>,
    pub risk_level: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub next_followup_due: Option<String>,
    pub referral_count: i64,
    pub followup_count: i64,
    pub conflict_count: i64,
    /// Listed from the server's row while the case's history arrives (a first sync): read-only.
    pub arriving: bool,
    /// The child's stage (`outcome::Stage`, snake case); `None` for a row listed ahead.
    pub stage: Option<String>,
    /// `withdrawn` or `prevented` once the rules count the child so.
    pub classification: Option<String>,
    /// A visit this phone has not had acknowledged counted in the stage.
    pub outcome_provisional: bool,
    /// The closure's status when the case is not simply open (`proposed`, `returned`, `closed`,
    /// or `disputed` when two were written at once). A closed case has no visit due.
    pub closure: Option<String>,
    /// The day the child reaches the age that ends monitoring (YYYY-MM-DD), when known.
    pub age_limit_on: Option<String>,
}

impl CaseRow {
    /// The row's outcome codes, for `outcome::row_in_words`.
    pub fn outcome(&self) -> crate::outcome::RowOutcome<'_> {
        crate::outcome::RowOutcome {
            stage: self.stage.as_deref(),
            classification: self.classification.as_deref(),
            provisional: self.outcome_provisional,
            closure: self.closure.as_deref(),
            age_limit_on: self.age_limit_on.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferralRow {
    pub referral_id: String,
    pub case_id: String,
    pub service_type: Option<String>,
    pub provider: Option<String>,
    pub urgency: Option<String>,
    pub status: String,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub previous_referral: Option<String>,
    pub next_referral: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowupRow {
    pub followup_id: String,
    pub case_id: String,
    pub visit_date: Option<String>,
    pub visit_type: Option<String>,
    pub risk_level_now: Option<String>,
    pub next_visit_due: Option<String>,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseProjection {
    pub case: CaseRow,
    pub referrals: Vec<ReferralRow>,
    pub followups: Vec<FollowupRow>,
}

fn text(record: &Record, key: &str) -> Option<String> {
    record.get(key).and_then(Json::as_str).map(str::to_string)
}

pub fn project(doc: &mut CaseDoc, forms: &FormRegistry) -> Result<CaseProjection> {
    Ok(project_with_sources(doc, forms, &OutcomeSettings::default())?.projection)
}

/// A phone's projection: the visits of a case with changes the server has not acknowledged
/// (`unacknowledged`) count as provisional in its outcome.
pub fn project_on_phone(
    doc: &mut CaseDoc,
    forms: &FormRegistry,
    settings: &OutcomeSettings,
    unacknowledged: bool,
) -> Result<CaseProjection> {
    Ok(project_outcome(doc, forms, settings, unacknowledged)?.projection)
}

/// A case's projection, with the identification record and the conflicts it was read from:
/// what another projection of the same document needs too (the server's console summary), so
/// that it does not read them again.
pub struct Projected {
    pub projection: CaseProjection,
    pub identification: Record,
    pub conflicts: Vec<Conflict>,
}

pub fn project_with_sources(
    doc: &mut CaseDoc,
    forms: &FormRegistry,
    settings: &OutcomeSettings,
) -> Result<Projected> {
    project_outcome(doc, forms, settings, false)
}

fn project_outcome(
    doc: &mut CaseDoc,
    forms: &FormRegistry,
    settings: &OutcomeSettings,
    unacknowledged: bool,
) -> Result<Projected> {
    let case_id = doc.case_id()?;
    let ident = doc.identification(forms)?;
    let referrals = doc.referrals(forms)?;
    let followups = doc.followups(forms)?;
    let conflicts = doc.conflicts(forms)?;
    let created_at = doc.created_at()?;
    let updated_at = doc
        .last_change_time()
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| created_at.clone());
    let latest_visit = followups.last();
    let closure = doc.closure()?;
    let facts = crate::outcome::facts_of(&ident, &referrals, &followups, &conflicts, &|_| {
        unacknowledged
    });
    let outcome = crate::outcome::derive(&facts, settings);
    let case = CaseRow {
        stage: Some(outcome.stage.as_str().to_string()),
        classification: outcome.classification.map(|(c, _)| c.as_str().to_string()),
        outcome_provisional: outcome.provisional,
        age_limit_on: crate::outcome::age_limit_on(&ident, &created_at, settings)
            .map(|d| d.format("%Y-%m-%d").to_string()),
        closure: Some(closure.code())
            .filter(|code| *code != ClosureStatus::Open.as_str())
            .map(str::to_string),
        arriving: false,
        case_id: case_id.clone(),
        first_name: text(&ident, "child_first_name").unwrap_or_default(),
        last_name: text(&ident, "child_last_name").unwrap_or_default(),
        sex: text(&ident, "sex"),
        province: text(&ident, "province"),
        commune: text(&ident, "commune"),
        village: text(&ident, "village"),
        work_sector: text(&ident, "work_sector"),
        // The risk seen at the latest visit is the one that matters now.
        risk_level: latest_visit
            .and_then(|f| text(&f.fields, "risk_level_now"))
            .or_else(|| text(&ident, "risk_level")),
        created_by: doc.created_by()?,
        created_at,
        updated_at,
        // A closed case leaves the due and overdue lists: no visit is due.
        next_followup_due: latest_visit
            .and_then(|f| text(&f.fields, "next_visit_due"))
            .filter(|_| !closure.is_closed()),
        referral_count: referrals.len() as i64,
        followup_count: followups.len() as i64,
        conflict_count: conflicts.len() as i64,
    };
    let referral_rows = referrals
        .into_iter()
        .map(|r| ReferralRow {
            case_id: case_id.clone(),
            service_type: text(&r.fields, "service_type"),
            provider: text(&r.fields, "provider"),
            urgency: text(&r.fields, "urgency"),
            status: r.status,
            updated_at: r
                .transitions
                .last()
                .map(|t| t.at.clone())
                .unwrap_or_else(|| r.created_at.clone()),
            created_at: r.created_at,
            created_by: r.created_by,
            previous_referral: r.previous_referral,
            next_referral: r.next_referral,
            referral_id: r.id,
        })
        .collect();
    let followup_rows = followups
        .into_iter()
        .map(|f| FollowupRow {
            case_id: case_id.clone(),
            visit_date: text(&f.fields, "visit_date"),
            visit_type: text(&f.fields, "visit_type"),
            risk_level_now: text(&f.fields, "risk_level_now"),
            next_visit_due: text(&f.fields, "next_visit_due"),
            created_by: f.created_by,
            followup_id: f.id,
        })
        .collect();
    Ok(Projected {
        projection: CaseProjection {
            case,
            referrals: referral_rows,
            followups: followup_rows,
        },
        identification: ident,
        conflicts,
    })
}

/// A case's name search terms as stored: every key and prefix (`names::search_terms`), each
/// between spaces so a query term matches a whole term (`LIKE '% term %'`).
pub(super) fn name_terms(first: &str, last: &str) -> String {
    format!(" {} ", crate::names::search_terms(&[first, last]).join(" "))
}

/// The keys a list row is searched and filtered by, from its names and village. The cases
/// held and the rows a first sync lists ahead (`arriving.rs`) are keyed by this one function,
/// so one search finds both alike.
pub(super) struct SearchKeys {
    pub(super) name_folded: String,
    pub(super) village_folded: Option<String>,
    pub(super) name_terms: String,
    pub(super) village_key: Option<String>,
}

impl SearchKeys {
    pub(super) fn of(first: &str, last: &str, village: Option<&str>) -> SearchKeys {
        SearchKeys {
            name_folded: fold(&format!("{first} {last}")),
            village_folded: village.map(fold),
            name_terms: name_terms(first, last),
            village_key: village.map(crate::names::place_key),
        }
    }
}

/// Fills the search keys of rows projected before they existed (schema 8), from the names and
/// village each row already holds; nothing to do once done.
pub(super) fn fill_search_keys(conn: &mut rusqlite::Connection) -> Result<()> {
    let rows: Vec<(String, String, String, Option<String>)> = {
        let mut stmt = conn.prepare(
            "SELECT case_id, first_name, last_name, village FROM cases WHERE name_terms = ''",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    if rows.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for (case_id, first, last, village) in rows {
        let keys = SearchKeys::of(&first, &last, village.as_deref());
        tx.execute(
            "UPDATE cases SET name_terms = ?2, village_key = ?3 WHERE case_id = ?1",
            params![case_id, keys.name_terms, keys.village_key],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Replaces a case's projection rows.
pub fn write(tx: &Transaction<'_>, p: &CaseProjection) -> Result<()> {
    let c = &p.case;
    let keys = SearchKeys::of(&c.first_name, &c.last_name, c.village.as_deref());
    tx.execute(
        "INSERT OR REPLACE INTO cases (case_id, first_name, last_name, name_folded, sex, province,
            commune, village, village_folded, work_sector, risk_level, created_at, created_by,
            updated_at, next_followup_due, referral_count, followup_count, conflict_count,
            name_terms, village_key, stage, classification, outcome_provisional, closure,
            age_limit_on)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
        params![
            c.case_id,
            c.first_name,
            c.last_name,
            keys.name_folded,
            c.sex,
            c.province,
            c.commune,
            c.village,
            keys.village_folded,
            c.work_sector,
            c.risk_level,
            c.created_at,
            c.created_by,
            c.updated_at,
            c.next_followup_due,
            c.referral_count,
            c.followup_count,
            c.conflict_count,
            keys.name_terms,
            keys.village_key,
            c.stage,
            c.classification,
            c.outcome_provisional,
            c.closure,
            c.age_limit_on
        ],
    )?;
    tx.execute("DELETE FROM referrals WHERE case_id = ?1", [&c.case_id])?;
    for r in &p.referrals {
        tx.execute(
            "INSERT INTO referrals (referral_id, case_id, service_type, provider, urgency, status,
                created_at, created_by, updated_at, previous_referral, next_referral)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                r.referral_id,
                r.case_id,
                r.service_type,
                r.provider,
                r.urgency,
                r.status,
                r.created_at,
                r.created_by,
                r.updated_at,
                r.previous_referral,
                r.next_referral
            ],
        )?;
    }
    tx.execute("DELETE FROM followups WHERE case_id = ?1", [&c.case_id])?;
    for f in &p.followups {
        tx.execute(
            "INSERT INTO followups (followup_id, case_id, visit_date, visit_type, risk_level_now,
                next_visit_due, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                f.followup_id,
                f.case_id,
                f.visit_date,
                f.visit_type,
                f.risk_level_now,
                f.next_visit_due,
                f.created_by
            ],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn folding_ignores_case_and_accents() {
        assert_eq!(fold("Fès"), "fes");
        assert_eq!(fold("TRAORÉ"), "traore");
        assert!(fold("Aïcha Traoré").contains("aicha"));
        // Arabic with a fatha and a shadda folds to the bare letters.
        assert_eq!(fold("مُحَمَّد"), "محمد");
    }
}
