//! The server's projection of a case for the console, computed from the checked document by
//! the device's own projection (`suivi_core::store::projection`), so a phone's list and the
//! console's agree.

use automerge::AutoCommit;
use serde_json::Value as Json;
use suivi_core::forms::FormRegistry;
use suivi_core::names;
use suivi_core::store::projection::{self, fold};
use suivi_core::CaseDoc;

use crate::storage::{CaseSummary, SummaryWrite};

/// The status shown for a referral two devices moved at once, until a supervisor settles it.
pub const DISPUTED: &str = "disputed";

/// The summary of a checked case holding `change_count` changes. `None` if the document cannot
/// be read as a case (it passed the layout rules, so this is a bug worth a log line, not a
/// refused push).
pub fn summarize(doc: AutoCommit, change_count: u64, forms: &FormRegistry) -> Option<SummaryWrite> {
    let mut doc = CaseDoc::from_automerge(doc);
    let projection::Projected {
        projection: p,
        identification: ident,
        conflicts,
    } = match projection::project_with_sources(&mut doc, forms) {
        Ok(projected) => projected,
        Err(e) => {
            tracing::warn!(error = %e, "a checked case does not project");
            return None;
        }
    };
    let mut statuses: Vec<String> = p.referrals.iter().map(|r| r.status.clone()).collect();
    if conflicts
        .iter()
        .any(|c| c.path.starts_with("referrals.") && c.path.ends_with(".status"))
    {
        statuses.push(DISPUTED.to_string());
    }
    statuses.sort();
    statuses.dedup();
    // A merged-away case is the survivor's other record: never proposed as a duplicate again.
    let merged_into = doc.merged_into().ok().flatten();
    let c = p.case;
    let summary = CaseSummary {
        birth_year: birth_year(&ident, &c.created_at),
        case_id: c.case_id,
        province: c.province,
        commune: c.commune,
        sex: c.sex,
        work_sector: c.work_sector,
        risk_level: c.risk_level,
        referral_statuses: statuses,
        next_followup_due: c.next_followup_due,
        referral_count: u32::try_from(c.referral_count).unwrap_or(u32::MAX),
        followup_count: u32::try_from(c.followup_count).unwrap_or(u32::MAX),
        conflict_count: u32::try_from(c.conflict_count).unwrap_or(u32::MAX),
        village: c.village,
        first_name: c.first_name,
        last_name: c.last_name,
        merged_into,
    };
    Some(SummaryWrite {
        name_terms: names::search_terms(&[&summary.first_name, &summary.last_name]),
        village_key: summary.village.as_deref().map(place_key),
        dup_key: match summary.merged_into {
            Some(_) => None,
            None => duplicate_key(&summary.first_name, &summary.last_name),
        },
        commune_key: summary.commune.as_deref().map(place_key),
        summary,
        change_count,
    })
}

/// A child's name as duplicates are found by: its words' keys, sorted, so "Mohamed El-Idrissi"
/// and "Muhammad El Idrissi" (or the names given the other way round) are one.
pub fn duplicate_key(first_name: &str, last_name: &str) -> Option<String> {
    let mut keys = names::name_keys(&format!("{first_name} {last_name}"));
    keys.sort();
    (!keys.is_empty()).then(|| keys.join(" "))
}

/// A place name as filters match it: folded, words joined by single spaces ("Aït  Ourir" and
/// "ait-ourir" are one village).
pub fn place_key(place: &str) -> String {
    fold(place)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The year of birth given, or estimated from the age given when the case was created.
fn birth_year(ident: &suivi_core::Record, created_at: &str) -> Option<i32> {
    if let Some(dob) = ident.get("date_of_birth").and_then(Json::as_str) {
        return dob.get(..4).and_then(|y| y.parse().ok());
    }
    let age = ident.get("estimated_age").and_then(Json::as_i64)?;
    let year: i32 = created_at.get(..4)?.parse().ok()?;
    year.checked_sub(i32::try_from(age).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_however_spelled_or_ordered_has_one_duplicate_key() {
        let key = duplicate_key("Mohamed", "El-Idrissi");
        assert!(key.is_some());
        assert_eq!(key, duplicate_key("Muhammad", "El Idrissi"));
        assert_eq!(key, duplicate_key("El Idrissi", "Mohammed"));
        assert_ne!(key, duplicate_key("Mohamed", "Benali"));
        assert_eq!(duplicate_key("", " - "), None);
    }

    #[test]
    fn place_keys_ignore_case_accents_and_separators() {
        assert_eq!(place_key("Aït  Ourir"), "ait ourir");
        assert_eq!(place_key("ait-ourir"), "ait ourir");
        assert_ne!(place_key("Sikasso"), place_key("Kadiolo"));
    }

    #[test]
    fn birth_years_come_from_the_date_or_the_age() {
        let mut ident = suivi_core::Record::new();
        ident.insert("estimated_age".into(), Json::from(12));
        assert_eq!(birth_year(&ident, "2026-03-01T10:00:00+00:00"), Some(2014));
        ident.insert("date_of_birth".into(), Json::from("2013-07-02"));
        assert_eq!(birth_year(&ident, "2026-03-01T10:00:00+00:00"), Some(2013));
        assert_eq!(birth_year(&suivi_core::Record::new(), "2026"), None);
    }
}
