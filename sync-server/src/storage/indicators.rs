//! The officer's indicators and referral views as SQL both stores run, over the projections
//! (`case_indicators`, `referral_summaries`) joined to the case summaries for the reader's
//! scope: one query per scope arm, merged by the store. Sums are cast to BIGINT (PostgreSQL
//! sums integers as numeric).

use std::collections::BTreeMap;

use super::case_list::{and, arms, Arm, Dialect};
use super::{
    CaseQuery, IndicatorCell, PlaceSpelling, ReferralGroup, StuckQuery, StuckReferral, User,
    TIMED_STATUSES,
};

/// The reader's scope, as arms over `s` (the case summaries).
pub(super) fn scope(reader: &User, dialect: &Dialect, blind: &dyn Fn(&str) -> String) -> Vec<Arm> {
    arms(reader, &CaseQuery::default(), dialect, blind)
}

/// Indicator cells of one arm; one more parameter after the arm's: today (YYYY-MM-DD).
pub(super) fn cells_sql(arm: &Arm, dialect: &Dialect) -> String {
    let today = (dialect.param)(arm.args.len() + 1);
    format!(
        "SELECT substr(i.identified_on, 1, 7), i.province_key, i.commune_key, i.sector,
                i.days_to_service, count(*), CAST(sum(i.referred) AS BIGINT),
                CAST(sum(i.service) AS BIGINT),
                CAST(sum(CASE WHEN i.stopped_working = 1 THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(CASE WHEN i.next_followup_due < {today} THEN 1 ELSE 0 END) AS BIGINT),
                i.sex, CAST(CAST(substr(i.identified_on, 1, 4) AS INTEGER) - s.birth_year AS BIGINT),
                s.owner, s.team, i.closed_reason,
                CAST(sum(CASE WHEN i.classification = 'withdrawn' THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(CASE WHEN i.classification = 'prevented' THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(CASE WHEN i.stage = 'exited' THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(CASE WHEN i.stage = 'relapsed' THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(CASE WHEN i.closure = 'proposed' THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(CASE WHEN i.reopenings > 0 THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(i.visits_scheduled) AS BIGINT), CAST(sum(i.visits_on_time) AS BIGINT)
         FROM case_indicators i JOIN case_summaries s ON s.case_id = i.case_id {}
         GROUP BY 1, 2, 3, 4, 5, 11, 12, 13, 14, 15",
        and(&arm.filter, "i.counted = 1")
    )
}

/// Adds the cells of one arm to those of the others (the arms are disjoint).
pub(super) fn merge_cells(cells: Vec<IndicatorCell>) -> Vec<IndicatorCell> {
    type Key = (
        String,
        [Option<String>; 5],
        Option<i64>,
        Option<i64>,
        (String, String),
    );
    let mut merged: BTreeMap<Key, IndicatorCell> = BTreeMap::new();
    for c in cells {
        let key = (
            c.month.clone(),
            [
                c.province_key.clone(),
                c.commune_key.clone(),
                c.sector.clone(),
                c.sex.clone(),
                c.closed_reason.clone(),
            ],
            c.days_to_service,
            c.age,
            (c.agent.clone(), c.team.clone()),
        );
        let into = merged.entry(key).or_insert_with(|| IndicatorCell {
            cases: 0,
            referred: 0,
            service: 0,
            stopped_working: 0,
            overdue: 0,
            withdrawn: 0,
            prevented: 0,
            exited: 0,
            relapsed: 0,
            proposed: 0,
            reopened: 0,
            visits_scheduled: 0,
            visits_on_time: 0,
            ..c.clone()
        });
        into.cases += c.cases;
        into.referred += c.referred;
        into.service += c.service;
        into.stopped_working += c.stopped_working;
        into.overdue += c.overdue;
        into.withdrawn += c.withdrawn;
        into.prevented += c.prevented;
        into.exited += c.exited;
        into.relapsed += c.relapsed;
        into.proposed += c.proposed;
        into.reopened += c.reopened;
        into.visits_scheduled += c.visits_scheduled;
        into.visits_on_time += c.visits_on_time;
    }
    merged.into_values().collect()
}

/// What `ServerStore::place_spellings` lists: places as typed, and the cases' agents.
pub(super) const SPELLING_KINDS: [&str; 4] = ["province", "commune", "village", "agent"];

/// Spellings of one of `SPELLING_KINDS` in one arm (the caller keeps to them).
pub(super) fn spellings_sql(arm: &Arm, kind: &str) -> String {
    let (key, spelling) = match kind {
        "agent" => ("lower(s.owner)".to_string(), "s.owner".to_string()),
        place => (format!("i.{place}_key"), format!("i.{place}")),
    };
    format!(
        "SELECT {key}, {spelling}, count(*)
         FROM case_indicators i JOIN case_summaries s ON s.case_id = i.case_id {}
         GROUP BY 1, 2",
        and(&arm.filter, &format!("i.counted = 1 AND {key} IS NOT NULL"))
    )
}

pub(super) fn merge_spellings(spellings: Vec<PlaceSpelling>) -> Vec<PlaceSpelling> {
    let mut merged: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for s in spellings {
        *merged.entry((s.kind, s.key, s.spelling)).or_default() += s.cases;
    }
    merged
        .into_iter()
        .map(|((kind, key, spelling), cases)| PlaceSpelling {
            kind,
            key,
            spelling,
            cases,
        })
        .collect()
}

/// Referral groups of one arm; one more parameter after the arm's: now (unix time).
pub(super) fn groups_sql(arm: &Arm, dialect: &Dialect) -> String {
    let now = (dialect.param)(arm.args.len() + 1);
    let times: Vec<String> = TIMED_STATUSES
        .iter()
        .map(|(status, column)| {
            format!(
                "CAST(sum(coalesce(r.{column}, 0) + CASE WHEN r.status = '{status}'
                       AND r.status_since IS NOT NULL AND r.status_since < {now}
                       THEN {now} - r.status_since ELSE 0 END) AS BIGINT),
                 CAST(sum(CASE WHEN r.{column} IS NOT NULL OR r.status = '{status}'
                       THEN 1 ELSE 0 END) AS BIGINT)"
            )
        })
        .collect();
    format!(
        "SELECT r.service_type, r.provider_key, min(r.provider), r.status, count(*), {}
         FROM referral_summaries r JOIN case_summaries s ON s.case_id = r.case_id {}
         GROUP BY r.service_type, r.provider_key, r.status",
        times.join(", "),
        arm.filter
    )
}

pub(super) fn merge_groups(groups: Vec<ReferralGroup>) -> Vec<ReferralGroup> {
    let mut merged: BTreeMap<(Option<String>, Option<String>, String), ReferralGroup> =
        BTreeMap::new();
    for g in groups {
        let key = (
            g.service_type.clone(),
            g.provider_key.clone(),
            g.status.clone(),
        );
        match merged.get_mut(&key) {
            None => {
                merged.insert(key, g);
            }
            Some(into) => {
                into.referrals += g.referrals;
                into.provider = match (into.provider.take(), g.provider) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                for (a, b) in into.time_in.iter_mut().zip(g.time_in) {
                    a.0 += b.0;
                    a.1 += b.1;
                }
            }
        }
    }
    merged.into_values().collect()
}

/// Referrals stuck in one arm, the page's rows (`count` false: ordered, up to a limit) or how
/// many (`count` true). Parameters after the arm's: before (unix time), the agent (lowercase)
/// or NULL, the service or NULL, then for rows the limit.
pub(super) fn stuck_sql(arm: &Arm, dialect: &Dialect, count: bool) -> String {
    let n = arm.args.len();
    let p = |k: usize| (dialect.param)(n + k);
    let statuses: Vec<String> = TIMED_STATUSES
        .iter()
        .map(|(status, _)| format!("'{status}'"))
        .collect();
    let filter = and(
        &arm.filter,
        &format!(
            "r.status IN ({}) AND r.status_since < {}
             AND (CAST({agent} AS TEXT) IS NULL OR lower(s.owner) = {agent})
             AND (CAST({service} AS TEXT) IS NULL OR r.service_type = {service})",
            statuses.join(", "),
            p(1),
            agent = p(2),
            service = p(3),
        ),
    );
    if count {
        return format!(
            "SELECT count(*) FROM referral_summaries r JOIN case_summaries s
             ON s.case_id = r.case_id {filter}"
        );
    }
    format!(
        "SELECT r.case_id, r.referral_id, r.service_type, r.provider, r.status, r.status_since,
                r.urgency, s.owner
         FROM referral_summaries r JOIN case_summaries s ON s.case_id = r.case_id {filter}
         ORDER BY r.status_since, r.case_id, r.referral_id LIMIT {}",
        p(4)
    )
}

/// The rows an arm returns for a page: every row up to its end.
pub(super) fn stuck_arm_limit(query: &StuckQuery) -> i64 {
    i64::try_from(query.offset.saturating_add(query.limit)).unwrap_or(i64::MAX)
}

/// The page of the arms' rows (the arms are disjoint), oldest first.
pub(super) fn merge_stuck(mut stuck: Vec<StuckReferral>, query: &StuckQuery) -> Vec<StuckReferral> {
    stuck.sort_by(|a, b| {
        (a.status_since, &a.case_id, &a.referral_id).cmp(&(
            b.status_since,
            &b.case_id,
            &b.referral_id,
        ))
    });
    stuck
        .into_iter()
        .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(query.limit).unwrap_or(usize::MAX))
        .collect()
}
