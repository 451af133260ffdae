//! A case's outcome, derived from what agents recorded and never typed: the stage a child is
//! at (identified, receiving services, not working at one visit, exited, relapsed) and, for a
//! programme's report, whether the child counts as withdrawn from child labour or prevented
//! from entering it. Each rule is written once here, named (`Rule`), and listed with its source
//! in ARCHITECTURE.md ("Outcomes"); the server and the phone run the same code on the visits
//! each holds.
//!
//! The inputs are facts, not documents (`CaseFacts`, `VisitFacts`): `facts_of` reads them from
//! a case's identification, referrals and visits, so each rule is tested on hand-built
//! histories.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::case_doc::{Conflict, FollowUp, Referral};
use crate::forms::Record;

mod words;
pub use words::*;

/// A programme's thresholds. Versioned, so a past period's report can be computed again with
/// the settings it was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeSettings {
    pub version: u32,
    /// Consecutive visits finding the child out of work and in school or training before the
    /// child counts as exited (the remediation systems of cocoa and cotton use two).
    pub exit_visits: u32,
    /// Days at least between the first and the last of those visits.
    pub exit_days_apart: u32,
    /// The age at which monitoring ends.
    pub age_limit: u32,
}

impl OutcomeSettings {
    /// Settings a programme may set: anything else from a server is refused before it is
    /// kept (a device takes a server's words as untrusted input).
    pub fn check(&self) -> crate::Result<()> {
        let ok = self.version >= 1
            && (1..=6).contains(&self.exit_visits)
            && self.exit_days_apart <= 365
            && (12..=25).contains(&self.age_limit);
        if ok {
            Ok(())
        } else {
            Err(crate::Error::InvalidInput(format!(
                "outcome settings: {} visits (1 to 6), {} days apart (at most 365), age limit {} (12 to 25), version {}",
                self.exit_visits, self.exit_days_apart, self.age_limit, self.version
            )))
        }
    }
}

impl Default for OutcomeSettings {
    fn default() -> Self {
        OutcomeSettings {
            version: 1,
            exit_visits: 2,
            exit_days_apart: 30,
            age_limit: 18,
        }
    }
}

/// Where a child stands, from the least to the most advanced; `Relapsed` is a child found
/// working again after exiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Identified,
    ReceivingServices,
    NotWorkingAtOneVisit,
    Exited,
    Relapsed,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Identified,
        Stage::ReceivingServices,
        Stage::NotWorkingAtOneVisit,
        Stage::Exited,
        Stage::Relapsed,
    ];

    /// The stage's code, as stored in projections and sent in exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Identified => "identified",
            Stage::ReceivingServices => "receiving_services",
            Stage::NotWorkingAtOneVisit => "not_working_at_one_visit",
            Stage::Exited => "exited",
            Stage::Relapsed => "relapsed",
        }
    }

    pub fn parse(code: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == code)
    }
}

/// How a programme counts a child (ILO's terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// In child labour, then out of it and in school or training (exited, not relapsed).
    Withdrawn,
    /// At risk, never found working, and given a service.
    Prevented,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Withdrawn => "withdrawn",
            Classification::Prevented => "prevented",
        }
    }
}

/// The rule that decided a stage or a classification, to show why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// R1: the identification says whether the child works (in child labour) or not (at risk).
    Identified,
    /// R2: a referral accepted, in service or completed, or a visit that records a service.
    Services,
    /// R3: the latest known visit found the child not working.
    NotWorkingAtOneVisit,
    /// R4: `exit_visits` consecutive known visits, `exit_days_apart` days apart at least, found
    /// the child not working and in school or training.
    Exit,
    /// R5: a known visit after an exit found the child working.
    Relapse,
    /// R6: withdrawn: in child labour at identification or later, exited and not relapsed.
    Withdrawn,
    /// R7: prevented: at risk at identification, never found working, a service received.
    Prevented,
}

/// What one visit says, as the rules read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitFacts {
    pub id: String,
    pub date: NaiveDate,
    /// `None`: not answered, or in conflict (counts as unknown until settled).
    pub still_working: Option<bool>,
    /// Attending school, or in vocational training (`attends_school` yes, or a training
    /// service received at the visit). `None`: not answered or in conflict.
    pub in_education: Option<bool>,
    /// Recorded on this phone and not yet acknowledged by the server.
    pub provisional: bool,
}

/// What the rules read of a case.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaseFacts {
    /// `works` at identification: `Some(true)` in child labour, `Some(false)` at risk.
    pub works_at_identification: Option<bool>,
    /// A referral accepted, in service or completed, or a service recorded at a visit.
    pub services: bool,
    pub visits: Vec<VisitFacts>,
}

/// A case's derived outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub stage: Stage,
    pub stage_rule: Rule,
    pub classification: Option<(Classification, Rule)>,
    /// The last visit of the latest exit.
    pub exited_on: Option<NaiveDate>,
    /// Times the child was found working again after an exit.
    pub relapses: usize,
    /// Visits that count as unknown (not answered, or in conflict).
    pub unknown_visits: usize,
    /// A visit not yet acknowledged by the server counted: the outcome may change.
    pub provisional: bool,
    pub settings_version: u32,
}

/// Derives a case's outcome from its facts (R1 to R7, ARCHITECTURE.md "Outcomes").
pub fn derive(facts: &CaseFacts, settings: &OutcomeSettings) -> Outcome {
    let mut visits: Vec<&VisitFacts> = facts.visits.iter().collect();
    // In visit-date order, whoever recorded them and whenever they synced; the id breaks ties
    // so every device orders alike.
    visits.sort_by(|a, b| (a.date, &a.id).cmp(&(b.date, &b.id)));
    // Two visits of one day that disagree (two phones, offline) are one unknown visit.
    let mut known: Vec<VisitFacts> = Vec::new();
    let mut unknown_visits = 0;
    for v in visits {
        match known.last_mut() {
            Some(last) if last.date == v.date => {
                if last.still_working != v.still_working || last.in_education != v.in_education {
                    last.still_working = None;
                    last.in_education = None;
                }
                last.provisional |= v.provisional;
            }
            _ => known.push(v.clone()),
        }
    }
    let mut run: Vec<&VisitFacts> = Vec::new();
    let mut exited_on = None;
    let mut exited_now = false;
    let mut relapses = 0;
    let mut provisional = false;
    let mut ever_working = facts.works_at_identification == Some(true);
    let mut latest_known: Option<&VisitFacts> = None;
    for v in &known {
        let (Some(working), Some(in_education)) = (v.still_working, v.in_education) else {
            unknown_visits += 1;
            // An unknown visit breaks a run: consecutive means with nothing unknown between.
            run.clear();
            continue;
        };
        latest_known = Some(v);
        if working {
            ever_working = true;
            if exited_now {
                relapses += 1;
                exited_now = false;
                provisional |= v.provisional;
            }
            run.clear();
            continue;
        }
        if !in_education {
            run.clear();
            continue;
        }
        run.push(v);
        let needed = (settings.exit_visits as usize).max(1);
        if !exited_now && run.len() >= needed {
            let first = run[run.len() - needed];
            if (v.date - first.date).num_days() >= i64::from(settings.exit_days_apart) {
                exited_now = true;
                exited_on = Some(v.date);
                provisional |= run.iter().any(|r| r.provisional);
            }
        }
    }
    let (stage, stage_rule) = if exited_now {
        (Stage::Exited, Rule::Exit)
    } else if relapses > 0 {
        (Stage::Relapsed, Rule::Relapse)
    } else if latest_known.is_some_and(|v| v.still_working == Some(false)) {
        provisional |= latest_known.is_some_and(|v| v.provisional);
        (Stage::NotWorkingAtOneVisit, Rule::NotWorkingAtOneVisit)
    } else if facts.services {
        (Stage::ReceivingServices, Rule::Services)
    } else {
        (Stage::Identified, Rule::Identified)
    };
    let classification = if ever_working {
        exited_now.then_some((Classification::Withdrawn, Rule::Withdrawn))
    } else if facts.works_at_identification == Some(false) && facts.services {
        Some((Classification::Prevented, Rule::Prevented))
    } else {
        None
    };
    Outcome {
        stage,
        stage_rule,
        classification,
        exited_on,
        relapses,
        unknown_visits,
        provisional,
        settings_version: settings.version,
    }
}

/// Referral statuses that mean the child is being served.
const SERVED: [&str; 3] = ["accepted", "in_service", "completed"];
/// Services of a visit that are an education or training alternative (a bridging class, a
/// vocational training).
const EDUCATION_SERVICES: [&str; 2] = ["school_or_bridging_class", "vocational_training"];

/// The day a child reaches the age that ends monitoring (`settings.age_limit`): from the date
/// of birth when known, else from the age estimated when the case was created (`created_at`,
/// RFC 3339 or a date). `None` when neither is recorded. Stored with the list row: whether it
/// has passed is read against today wherever the row is shown, since it changes with time, not
/// with a change.
pub fn age_limit_on(
    identification: &Record,
    created_at: &str,
    settings: &OutcomeSettings,
) -> Option<NaiveDate> {
    let years = |from: NaiveDate, n: u32| from.checked_add_months(chrono::Months::new(n * 12));
    if let Some(born) = identification
        .get("date_of_birth")
        .and_then(|d| d.as_str())
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    {
        return years(born, settings.age_limit);
    }
    let age = identification.get("estimated_age")?.as_u64()?;
    let created = NaiveDate::parse_from_str(created_at.get(..10)?, "%Y-%m-%d").ok()?;
    let left = u32::try_from(u64::from(settings.age_limit).saturating_sub(age)).ok()?;
    years(created, left)
}

/// Reads a case's facts: its identification, referrals and visits as the document holds them,
/// its conflicts (a visit field in conflict is unknown), and which visits this phone has not
/// had acknowledged (`provisional`).
pub fn facts_of(
    identification: &Record,
    referrals: &[Referral],
    followups: &[FollowUp],
    conflicts: &[Conflict],
    provisional: &dyn Fn(&FollowUp) -> bool,
) -> CaseFacts {
    let in_conflict = |visit: &FollowUp, field: &str| {
        let path = format!("followups.{}.{field}", visit.id);
        conflicts.iter().any(|c| c.path == path)
    };
    let services_at = |visit: &FollowUp| -> Vec<String> {
        visit
            .fields
            .get("services_received")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let visits = followups
        .iter()
        .filter_map(|visit| {
            let date = visit
                .fields
                .get("visit_date")
                .and_then(|d| d.as_str())
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())?;
            let still_working = if in_conflict(visit, "still_working") {
                None
            } else {
                visit.fields.get("still_working").and_then(|v| v.as_bool())
            };
            let training = services_at(visit)
                .iter()
                .any(|s| EDUCATION_SERVICES.contains(&s.as_str()));
            let in_education = if in_conflict(visit, "attends_school") {
                None
            } else {
                match visit.fields.get("attends_school").and_then(|v| v.as_str()) {
                    Some("yes") => Some(true),
                    Some(_) => Some(training),
                    None if training => Some(true),
                    None => None,
                }
            };
            Some(VisitFacts {
                id: visit.id.clone(),
                date,
                still_working,
                in_education,
                provisional: provisional(visit),
            })
        })
        .collect();
    let services = referrals
        .iter()
        .any(|r| SERVED.contains(&r.status.as_str()))
        || followups
            .iter()
            .any(|v| services_at(v).iter().any(|s| s != "none" && !s.is_empty()));
    CaseFacts {
        works_at_identification: identification.get("works").and_then(|v| v.as_bool()),
        services,
        visits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str) -> NaiveDate {
        NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()
    }

    fn visit(id: &str, date: &str, working: Option<bool>, school: Option<bool>) -> VisitFacts {
        VisitFacts {
            id: id.into(),
            date: day(date),
            still_working: working,
            in_education: school,
            provisional: false,
        }
    }

    fn child(works: bool, services: bool, visits: Vec<VisitFacts>) -> CaseFacts {
        CaseFacts {
            works_at_identification: Some(works),
            services,
            visits,
        }
    }

    fn outcome(facts: &CaseFacts) -> Outcome {
        derive(facts, &OutcomeSettings::default())
    }

    /// The age limit falls on the birthday when the date of birth is known, else that many
    /// years after the estimate was made.
    #[test]
    fn the_age_limit_falls_on_the_birthday_or_from_the_estimate() {
        let settings = OutcomeSettings::default();
        let mut ident = Record::new();
        ident.insert("date_of_birth".into(), serde_json::json!("2008-06-01"));
        ident.insert("estimated_age".into(), serde_json::json!(3));
        assert_eq!(
            age_limit_on(&ident, "2026-01-10T09:00:00Z", &settings),
            Some(day("2026-06-01")),
            "the date of birth wins"
        );
        ident.remove("date_of_birth");
        assert_eq!(
            age_limit_on(&ident, "2026-01-10T09:00:00Z", &settings),
            Some(day("2041-01-10"))
        );
        let younger = OutcomeSettings {
            age_limit: 15,
            ..settings.clone()
        };
        assert_eq!(
            age_limit_on(&ident, "2026-01-10", &younger),
            Some(day("2038-01-10"))
        );
        ident.remove("estimated_age");
        assert_eq!(age_limit_on(&ident, "2026-01-10", &settings), None);
    }

    #[test]
    fn a_child_identified_working_with_no_visit_is_identified_and_not_counted() {
        let o = outcome(&child(true, false, vec![]));
        assert_eq!(
            (o.stage, o.stage_rule),
            (Stage::Identified, Rule::Identified)
        );
        assert_eq!(o.classification, None);
        let o = outcome(&child(true, true, vec![]));
        assert_eq!(
            (o.stage, o.stage_rule),
            (Stage::ReceivingServices, Rule::Services)
        );
    }

    #[test]
    fn one_visit_out_of_work_is_not_an_exit() {
        let o = outcome(&child(
            true,
            true,
            vec![visit("a", "2026-03-01", Some(false), Some(true))],
        ));
        assert_eq!(o.stage, Stage::NotWorkingAtOneVisit);
        assert_eq!(o.classification, None, "not withdrawn on one visit");
    }

    #[test]
    fn two_consecutive_visits_apart_enough_are_an_exit_and_a_withdrawal() {
        let o = outcome(&child(
            true,
            true,
            vec![
                visit("a", "2026-03-01", Some(false), Some(true)),
                visit("b", "2026-04-02", Some(false), Some(true)),
            ],
        ));
        assert_eq!((o.stage, o.stage_rule), (Stage::Exited, Rule::Exit));
        assert_eq!(
            o.classification,
            Some((Classification::Withdrawn, Rule::Withdrawn))
        );
        assert_eq!(o.exited_on, Some(day("2026-04-02")));
        // Too close together: not yet.
        let o = outcome(&child(
            true,
            true,
            vec![
                visit("a", "2026-03-01", Some(false), Some(true)),
                visit("b", "2026-03-20", Some(false), Some(true)),
            ],
        ));
        assert_eq!(o.stage, Stage::NotWorkingAtOneVisit);
        // Out of work but not in school or training: not an exit.
        let o = outcome(&child(
            true,
            true,
            vec![
                visit("a", "2026-03-01", Some(false), Some(false)),
                visit("b", "2026-05-01", Some(false), Some(false)),
            ],
        ));
        assert_eq!(o.stage, Stage::NotWorkingAtOneVisit);
        assert_eq!(o.classification, None);
    }

    #[test]
    fn visits_two_phones_recorded_offline_count_in_visit_date_order() {
        // Recorded (and listed) out of order: the later visit first.
        let o = outcome(&child(
            true,
            true,
            vec![
                visit("z", "2026-05-10", Some(false), Some(true)),
                visit("y", "2026-02-01", Some(true), Some(false)),
                visit("x", "2026-04-01", Some(false), Some(true)),
            ],
        ));
        assert_eq!(o.stage, Stage::Exited);
        assert_eq!(o.exited_on, Some(day("2026-05-10")));
        assert_eq!(o.relapses, 0, "working before the exit is no relapse");
    }

    #[test]
    fn working_again_after_an_exit_is_a_relapse_and_no_longer_withdrawn() {
        let history = vec![
            visit("a", "2026-03-01", Some(false), Some(true)),
            visit("b", "2026-04-02", Some(false), Some(true)),
            visit("c", "2026-06-01", Some(true), Some(false)),
        ];
        let o = outcome(&child(true, true, history.clone()));
        assert_eq!((o.stage, o.stage_rule), (Stage::Relapsed, Rule::Relapse));
        assert_eq!(o.relapses, 1);
        assert_eq!(o.classification, None);
        // Out again, twice, apart enough: exited again, the relapse counted.
        let mut again = history;
        again.push(visit("d", "2026-07-01", Some(false), Some(true)));
        again.push(visit("e", "2026-08-15", Some(false), Some(true)));
        let o = outcome(&child(true, true, again));
        assert_eq!(o.stage, Stage::Exited);
        assert_eq!(o.relapses, 1);
        assert_eq!(
            o.classification.map(|c| c.0),
            Some(Classification::Withdrawn)
        );
    }

    #[test]
    fn a_conflicting_answer_is_unknown_and_breaks_the_run() {
        // The middle visit's answer is in conflict: the two around it are not consecutive.
        let o = outcome(&child(
            true,
            true,
            vec![
                visit("a", "2026-03-01", Some(false), Some(true)),
                visit("b", "2026-04-01", None, Some(true)),
                visit("c", "2026-05-01", Some(false), Some(true)),
            ],
        ));
        assert_eq!(o.stage, Stage::NotWorkingAtOneVisit);
        assert_eq!(o.unknown_visits, 1);
        // Two phones visiting the same day and disagreeing: one unknown visit.
        let o = outcome(&child(
            true,
            true,
            vec![
                visit("a", "2026-03-01", Some(false), Some(true)),
                visit("b1", "2026-04-02", Some(false), Some(true)),
                visit("b2", "2026-04-02", Some(true), Some(true)),
            ],
        ));
        assert_eq!(o.unknown_visits, 1);
        assert_eq!(o.stage, Stage::NotWorkingAtOneVisit);
        // Settled (both say the same): an exit.
        let o = outcome(&child(
            true,
            true,
            vec![
                visit("a", "2026-03-01", Some(false), Some(true)),
                visit("b1", "2026-04-02", Some(false), Some(true)),
                visit("b2", "2026-04-02", Some(false), Some(true)),
            ],
        ));
        assert_eq!(o.stage, Stage::Exited);
    }

    #[test]
    fn a_child_at_risk_given_a_service_and_never_found_working_is_prevented() {
        let o = outcome(&child(
            false,
            true,
            vec![visit("a", "2026-03-01", Some(false), Some(true))],
        ));
        assert_eq!(
            o.classification,
            Some((Classification::Prevented, Rule::Prevented))
        );
        // No service: at risk, not counted as prevented.
        assert_eq!(outcome(&child(false, false, vec![])).classification, None);
        // Found working: no longer prevented; in child labour, withdrawn only on an exit.
        let o = outcome(&child(
            false,
            true,
            vec![visit("a", "2026-03-01", Some(true), Some(false))],
        ));
        assert_eq!(o.classification, None);
    }

    #[test]
    fn an_unacknowledged_visit_makes_the_outcome_provisional() {
        let mut second = visit("b", "2026-04-02", Some(false), Some(true));
        second.provisional = true;
        let o = outcome(&child(
            true,
            true,
            vec![visit("a", "2026-03-01", Some(false), Some(true)), second],
        ));
        assert_eq!(o.stage, Stage::Exited);
        assert!(o.provisional);
    }

    #[test]
    fn settings_change_the_thresholds_and_are_named_in_the_outcome() {
        let settings = OutcomeSettings {
            version: 2,
            exit_visits: 3,
            exit_days_apart: 60,
            age_limit: 18,
        };
        let facts = child(
            true,
            true,
            vec![
                visit("a", "2026-03-01", Some(false), Some(true)),
                visit("b", "2026-04-02", Some(false), Some(true)),
            ],
        );
        let o = derive(&facts, &settings);
        assert_eq!(o.stage, Stage::NotWorkingAtOneVisit);
        assert_eq!(o.settings_version, 2);
    }

    #[test]
    fn facts_are_read_from_the_records_with_conflicts_unknown() {
        use serde_json::json;
        let record = |v: serde_json::Value| -> Record { serde_json::from_value(v).unwrap() };
        let followup = |id: &str, fields: serde_json::Value| FollowUp {
            id: id.into(),
            form_version: 1,
            fields: record(fields),
            created_at: "2026-03-01T10:00:00Z".into(),
            created_by: "amina".into(),
        };
        let visits = vec![
            followup(
                "v1",
                json!({"visit_date": "2026-03-01", "still_working": false, "attends_school": "yes"}),
            ),
            followup(
                "v2",
                json!({"visit_date": "2026-04-10", "still_working": false, "attends_school": "no",
                       "services_received": ["vocational_training"]}),
            ),
            followup(
                "v3",
                json!({"visit_date": "2026-05-10", "still_working": true}),
            ),
        ];
        let conflicts = vec![Conflict {
            path: "followups.v3.still_working".into(),
            values: vec![json!(true), json!(false)],
            sources: vec![],
        }];
        let facts = facts_of(
            &record(json!({"works": true})),
            &[],
            &visits,
            &conflicts,
            &|v| v.id == "v2",
        );
        assert_eq!(facts.works_at_identification, Some(true));
        assert!(facts.services, "a training service recorded at a visit");
        assert_eq!(facts.visits[0].in_education, Some(true));
        assert_eq!(facts.visits[1].in_education, Some(true), "in training");
        assert!(facts.visits[1].provisional);
        assert_eq!(facts.visits[2].still_working, None, "in conflict: unknown");
        let o = outcome(&facts);
        assert_eq!(o.stage, Stage::Exited);
        assert_eq!(o.unknown_visits, 1);
    }
}
