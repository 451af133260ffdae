//! The server's projection of a case for the console, computed from the checked document by
//! the device's own projection (`suivi_core::store::projection`), so a phone's list and the
//! console's agree.

use automerge::AutoCommit;
use serde_json::Value as Json;
use suivi_core::forms::FormRegistry;
use suivi_core::names;
use suivi_core::store::projection;
use suivi_core::CaseDoc;

use suivi_core::case_doc::{FollowUp, Referral};

use crate::storage::{
    CaseIndicators, CaseRecords, CaseSummary, ReferralSummary, SummaryWrite, TIMED_STATUSES,
};

/// The status shown for a referral two devices moved at once, until a supervisor settles it.
pub const DISPUTED: &str = "disputed";

/// The summary of a checked case holding `change_count` changes. `None` if the document cannot
/// be read as a case (it passed the layout rules, so this is a bug worth a log line, not a
/// refused push).
pub fn summarize(
    doc: AutoCommit,
    change_count: u64,
    forms: &FormRegistry,
    settings: &suivi_core::outcome::OutcomeSettings,
) -> Option<SummaryWrite> {
    let mut doc = CaseDoc::from_automerge(doc);
    let projection::Projected {
        projection: p,
        identification: ident,
        conflicts,
    } = match projection::project_with_sources(&mut doc, forms, settings) {
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
    let referrals = doc.referrals(forms).unwrap_or_default();
    let followups = doc.followups(forms).unwrap_or_default();
    let c = p.case;
    let mut indicators = indicators(
        &c,
        merged_into.is_none(),
        &referrals,
        &followups,
        chrono::Utc::now().timestamp(),
    );
    match doc.closure() {
        Ok(closure) => outcome_indicators(&mut indicators, &c, &closure, &followups),
        Err(e) => tracing::warn!(error = %e, "a checked case's closure does not read"),
    }
    let referral_rows = referrals.iter().map(referral_summary).collect();
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
        name_terms: search_terms(&summary),
        village_key: summary.village.as_deref().map(place_key),
        dup_key: match summary.merged_into {
            Some(_) => None,
            None => duplicate_key(&summary.first_name, &summary.last_name),
        },
        commune_key: summary.commune.as_deref().map(place_key),
        summary,
        change_count,
        indicators,
        referrals: referral_rows,
        records: CaseRecords {
            referrals,
            followups,
        },
    })
}

/// A device's time as unix seconds: RFC 3339, or a date (its midnight, UTC).
fn unix(text: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp());
    }
    chrono::NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
}

/// 2000-01-01: an identification before it is a phone's clock gone wrong.
const EARLIEST_PLAUSIBLE: i64 = 946_684_800;

/// A text field as typed, trimmed; `None` when blank.
fn typed(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A follow-up's services received, "none" left out.
fn services_received(f: &FollowUp) -> bool {
    f.fields
        .get("services_received")
        .and_then(Json::as_array)
        .is_some_and(|items| items.iter().any(|i| i.as_str() != Some("none")))
}

/// What the officer's indicators count of a case (README, "Indicators").
pub fn indicators(
    c: &projection::CaseRow,
    counted: bool,
    referrals: &[Referral],
    followups: &[FollowUp],
    now: i64,
) -> CaseIndicators {
    // The identification as the agent recorded it, unless the phone's clock is implausible
    // (then the store falls back to when the server first received the case).
    let identified =
        unix(&c.created_at).filter(|t| (EARLIEST_PLAUSIBLE..=now + 2 * 86_400).contains(t));
    let identified_on = identified
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.format("%Y-%m-%d").to_string());
    // Ever reached: a referral taken into service and transferred or closed since still
    // counted, as its day counts toward the median.
    let reached = |r: &Referral, status: &str| {
        r.status == status || r.transitions.iter().any(|t| t.to == status)
    };
    let referral_service = referrals
        .iter()
        .any(|r| reached(r, "in_service") || reached(r, "completed"));
    let referred = referrals.iter().any(|r| {
        [
            "sent",
            "accepted",
            "declined",
            "in_service",
            "completed",
            "transferred",
        ]
        .iter()
        .any(|s| reached(r, s))
    });
    let first_service = referrals
        .iter()
        .flat_map(|r| r.transitions.iter())
        .filter(|t| t.to == "in_service")
        .filter_map(|t| unix(&t.at))
        .chain(
            followups
                .iter()
                .filter(|f| services_received(f))
                .filter_map(|f| {
                    f.fields
                        .get("visit_date")
                        .and_then(Json::as_str)
                        .and_then(unix)
                        .or_else(|| unix(&f.created_at))
                }),
        )
        .min();
    // The latest visit by its date (then by when it was recorded) says whether the child
    // still works.
    let latest = followups.iter().max_by(|a, b| {
        let date = |f: &FollowUp| {
            f.fields
                .get("visit_date")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string()
        };
        (date(a), &a.created_at).cmp(&(date(b), &b.created_at))
    });
    let province = typed(&c.province);
    let commune = typed(&c.commune);
    CaseIndicators {
        counted,
        identified_on,
        province_key: province.as_deref().map(place_key),
        province,
        commune_key: commune.as_deref().map(place_key),
        commune,
        sector: typed(&c.work_sector),
        sex: typed(&c.sex),
        village_key: typed(&c.village).as_deref().map(place_key),
        village: typed(&c.village),
        referred,
        service: referral_service || followups.iter().any(services_received),
        stopped_working: latest
            .and_then(|f| f.fields.get("still_working"))
            .and_then(Json::as_bool)
            .map(|working| !working),
        days_to_service: match (identified, first_service) {
            // Calendar days (UTC), as a person counts them.
            (Some(from), Some(to)) => {
                Some((to.div_euclid(86_400) - from.div_euclid(86_400)).max(0))
            }
            _ => None,
        },
        stage: "identified".to_string(),
        ..CaseIndicators::default()
    }
}

/// What a programme's report counts of a case's outcome and closure (README, "Outcomes"):
/// the stage and classification its projection derived, the closure, and its visits on
/// schedule: each visit, in visit-date order, that followed one setting a next visit due was
/// scheduled, and on time if made no later than that day.
pub fn outcome_indicators(
    i: &mut CaseIndicators,
    c: &projection::CaseRow,
    closure: &suivi_core::case_doc::Closure,
    followups: &[FollowUp],
) {
    i.stage = c.stage.clone().unwrap_or_else(|| "identified".to_string());
    i.classification = c.classification.clone();
    i.closure = c.closure.clone();
    i.closed_reason = closure
        .is_closed()
        .then(|| closure.reason.clone())
        .flatten();
    i.reopenings = i64::try_from(closure.reopenings()).unwrap_or(i64::MAX);
    let field = |f: &FollowUp, key: &str| {
        f.fields
            .get(key)
            .and_then(Json::as_str)
            .and_then(|d| chrono::NaiveDate::parse_from_str(d.get(..10)?, "%Y-%m-%d").ok())
    };
    let mut visits: Vec<(chrono::NaiveDate, Option<chrono::NaiveDate>, &str)> = followups
        .iter()
        .filter_map(|f| {
            Some((
                field(f, "visit_date")?,
                field(f, "next_visit_due"),
                f.id.as_str(),
            ))
        })
        .collect();
    visits.sort();
    let (mut scheduled, mut on_time) = (0, 0);
    for pair in visits.windows(2) {
        if let (Some(due), (made, _, _)) = (pair[0].1, pair[1]) {
            scheduled += 1;
            on_time += i64::from(made <= due);
        }
    }
    i.visits_scheduled = scheduled;
    i.visits_on_time = on_time;
}

/// A referral as the project-wide referral views read it: where it stands, since when, and
/// the seconds it spent in each status it has left, from its transitions' times (device
/// clocks: a transition dated before the one it follows counts as no time).
pub fn referral_summary(r: &Referral) -> ReferralSummary {
    let mut transitions: Vec<(Option<i64>, &str, &str)> = r
        .transitions
        .iter()
        .map(|t| (unix(&t.at), t.from.as_str(), t.to.as_str()))
        .collect();
    transitions.sort_by_key(|(at, _, _)| *at);
    let created_at = unix(&r.created_at);
    let mut status = transitions
        .first()
        .map_or(r.status.as_str(), |(_, from, _)| *from);
    let mut since = created_at;
    let mut secs_in = [None; 5];
    for (at, _, to) in &transitions {
        if let (Some(from), Some(to_at)) = (since, at) {
            if let Some(slot) = TIMED_STATUSES.iter().position(|(s, _)| *s == status) {
                let spent = (to_at - from).max(0);
                secs_in[slot] = Some(secs_in[slot].unwrap_or(0) + spent);
            }
        }
        status = to;
        since = *at;
    }
    let field = |id: &str| {
        r.fields
            .get(id)
            .and_then(Json::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let provider = field("provider");
    ReferralSummary {
        referral_id: r.id.clone(),
        service_type: field("service_type"),
        urgency: field("urgency"),
        provider_key: provider.as_deref().map(place_key),
        provider,
        status: r.status.clone(),
        created_at,
        status_since: since,
        secs_in,
    }
}

/// A child's name as duplicates are found by: its words' keys, sorted, so "Mohamed El-Idrissi"
/// and "Muhammad El Idrissi" (or the names given the other way round) are one.
pub fn duplicate_key(first_name: &str, last_name: &str) -> Option<String> {
    let mut keys = names::name_keys(&format!("{first_name} {last_name}"));
    keys.sort();
    (!keys.is_empty()).then(|| keys.join(" "))
}

pub use suivi_core::names::place_key;

/// What a case is found by in the console's lists: its name keys and their beginnings, and its
/// village's key and beginnings (tagged, `storage::village_term`).
pub fn search_terms(summary: &CaseSummary) -> Vec<String> {
    let mut terms = names::search_terms(&[&summary.first_name, &summary.last_name]);
    if let Some(village) = &summary.village {
        terms.extend(
            names::place_prefixes(village)
                .iter()
                .map(|p| crate::storage::village_term(p)),
        );
    }
    terms
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

    fn transition(from: &str, to: &str, at: &str) -> suivi_core::case_doc::TransitionRecord {
        suivi_core::case_doc::TransitionRecord {
            transition: String::new(),
            from: from.into(),
            to: to.into(),
            actor: "amina".into(),
            at: at.into(),
            note: None,
        }
    }

    fn referral(
        status: &str,
        transitions: Vec<suivi_core::case_doc::TransitionRecord>,
    ) -> Referral {
        let mut fields = suivi_core::Record::new();
        fields.insert("service_type".into(), Json::from("health"));
        fields.insert("provider".into(), Json::from(" CSCOM Misséni "));
        Referral {
            id: "r1".into(),
            status: status.into(),
            form_version: 1,
            fields,
            created_at: "2026-03-01T08:00:00+00:00".into(),
            created_by: "amina".into(),
            previous_referral: None,
            next_referral: None,
            transitions,
        }
    }

    fn visit(date: &str, still_working: Option<bool>, services: &[&str]) -> FollowUp {
        let mut fields = suivi_core::Record::new();
        fields.insert("visit_date".into(), Json::from(date));
        if let Some(w) = still_working {
            fields.insert("still_working".into(), Json::from(w));
        }
        fields.insert("services_received".into(), Json::from(services.to_vec()));
        FollowUp {
            id: date.into(),
            form_version: 1,
            fields,
            created_at: format!("{date}T10:00:00+00:00"),
            created_by: "amina".into(),
        }
    }

    fn case_row(created_at: &str) -> projection::CaseRow {
        projection::CaseRow {
            arriving: false,
            created_at: created_at.into(),
            province: Some(" Sikasso ".into()),
            commune: Some("".into()),
            work_sector: Some("cotton".into()),
            ..Default::default()
        }
    }

    const NOW: i64 = 1_796_000_000; // 2026-11

    /// A visit counts as scheduled when the one before it (by visit date, whatever order they
    /// were recorded in) set a next visit due, and on time when made by that day; a closed
    /// case's reason is kept, a proposal's is not.
    #[test]
    fn visits_on_schedule_and_the_closure_are_counted_from_the_records() {
        let due = |mut v: FollowUp, next: &str| {
            v.fields.insert("next_visit_due".into(), Json::from(next));
            v
        };
        let visits = [
            due(visit("2026-10-11", Some(false), &[]), "2026-11-20"),
            visit("2026-11-15", Some(false), &[]),
            due(visit("2026-09-01", Some(true), &[]), "2026-10-10"),
        ];
        let mut i = indicators(&case_row("2026-08-01"), true, &[], &visits, NOW);
        let mut closure = suivi_core::case_doc::Closure {
            status: suivi_core::case_doc::ClosureStatus::Proposed,
            disputed: false,
            reason: Some("moved_away".into()),
            steps: Vec::new(),
        };
        let row = projection::CaseRow {
            stage: Some("not_working_at_one_visit".into()),
            closure: Some("proposed".into()),
            ..case_row("2026-08-01")
        };
        outcome_indicators(&mut i, &row, &closure, &visits);
        assert_eq!(
            (i.visits_scheduled, i.visits_on_time),
            (2, 1),
            "10-11 late, 11-15 on time"
        );
        assert_eq!(i.stage, "not_working_at_one_visit");
        assert_eq!(
            (i.closure.as_deref(), i.closed_reason.as_deref()),
            (Some("proposed"), None)
        );
        closure.status = suivi_core::case_doc::ClosureStatus::Closed;
        outcome_indicators(&mut i, &row, &closure, &visits);
        assert_eq!(i.closed_reason.as_deref(), Some("moved_away"));
    }

    #[test]
    fn a_referrals_time_in_each_status_comes_from_its_transitions() {
        let r = referral_summary(&referral(
            "in_service",
            vec![
                // Out of order as a map gives them: sorted by time.
                transition("accepted", "in_service", "2026-03-06T08:00:00+00:00"),
                transition("draft", "sent", "2026-03-01T08:00:00+00:00"),
                transition("sent", "accepted", "2026-03-04T08:00:00+00:00"),
            ],
        ));
        assert_eq!(r.provider.as_deref(), Some("CSCOM Misséni"));
        assert_eq!(r.provider_key.as_deref(), Some("cscom misseni"));
        assert_eq!(
            r.secs_in,
            [Some(0), Some(3 * 86_400), Some(2 * 86_400), None, None]
        );
        assert_eq!(r.status_since, unix("2026-03-06T08:00:00+00:00"));
        let untouched = referral_summary(&referral("draft", vec![]));
        assert_eq!(untouched.secs_in, [None; 5]);
        assert_eq!(untouched.status_since, untouched.created_at);
    }

    #[test]
    fn indicators_follow_their_definitions() {
        let sent = referral(
            "sent",
            vec![transition("draft", "sent", "2026-03-01T09:00:00+00:00")],
        );
        let served = referral(
            "in_service",
            vec![transition(
                "accepted",
                "in_service",
                "2026-03-11T09:00:00+00:00",
            )],
        );
        let visits = [
            visit("2026-03-20", Some(true), &["none"]),
            visit("2026-04-02", Some(false), &["health"]),
        ];
        let i = indicators(
            &case_row("2026-03-01T08:00:00+00:00"),
            true,
            std::slice::from_ref(&sent),
            &visits,
            NOW,
        );
        assert_eq!(i.identified_on.as_deref(), Some("2026-03-01"));
        assert_eq!(
            (i.province.as_deref(), i.province_key.as_deref()),
            (Some("Sikasso"), Some("sikasso"))
        );
        assert_eq!(i.commune, None, "blank is no commune");
        assert!(i.referred && i.service, "a visit listing a service counts");
        assert_eq!(i.stopped_working, Some(true), "at the latest visit");
        assert_eq!(i.days_to_service, Some(32));
        let i = indicators(
            &case_row("2026-03-01T08:00:00+00:00"),
            true,
            &[served],
            &visits[..1],
            NOW,
        );
        assert!(i.service);
        assert_eq!(
            i.days_to_service,
            Some(10),
            "the first of the referral and the visits"
        );
        assert_eq!(i.stopped_working, Some(false));
        let draft = referral("draft", vec![]);
        let i = indicators(
            &case_row("1970-01-01T00:00:00+00:00"),
            false,
            &[draft],
            &[],
            NOW,
        );
        assert!(!i.referred && !i.service && !i.counted);
        assert_eq!(
            i.identified_on, None,
            "a clock gone wrong: the server's time is used"
        );
        assert_eq!((i.stopped_working, i.days_to_service), (None, None));
        let never_sent = referral(
            "closed",
            vec![transition("draft", "closed", "2026-03-02T09:00:00+00:00")],
        );
        let i = indicators(
            &case_row("2026-03-01T08:00:00+00:00"),
            true,
            &[never_sent],
            &[],
            NOW,
        );
        assert!(
            !i.referred,
            "a draft closed without being sent was never a referral"
        );
        let moved_on = referral(
            "transferred",
            vec![
                transition("accepted", "in_service", "2026-03-05T09:00:00+00:00"),
                transition("in_service", "transferred", "2026-03-09T09:00:00+00:00"),
            ],
        );
        let i = indicators(
            &case_row("2026-03-01T08:00:00+00:00"),
            true,
            &[moved_on],
            &[],
            NOW,
        );
        assert!(
            i.referred && i.service,
            "it was in service, then transferred"
        );
        assert_eq!(i.days_to_service, Some(4));
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
