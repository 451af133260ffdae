//! The agent overview a supervisor starts from: one row per agent (cases, overdue visits,
//! conflicts, referrals stuck in a status, last contact) with each of the agent's phones and
//! what it truthfully says of unsynced work: the count a phone reported, always with the time
//! it reported it, and "unknown since" once it has been silent too long (never a bare 0).

use std::collections::BTreeMap;

use crate::storage::{DeviceStatus, ListedCase, Role, StuckReferral};

/// Days without a sync after which a phone's last report is no longer taken as current.
pub const STALE_DAYS: i64 = 7;
/// Days in one status after which a referral counts as stuck here (the officer's referrals page
/// lets the reader choose).
pub const STUCK_DAYS: i64 = 30;

/// What can be said of the work waiting on a phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// It never synced: nothing is known.
    Never,
    /// It synced recently and reported this many cases waiting then (`None`: an app too old to
    /// say).
    Reported { count: Option<u64>, at: i64 },
    /// Silent for more than `STALE_DAYS`: what it holds now is unknown; it had `count` waiting
    /// at its last contact.
    UnknownSince { count: Option<u64>, at: i64 },
    /// Revoked (and maybe wiped): it holds nothing to wait for.
    Revoked,
}

impl Waiting {
    pub fn of(device: &DeviceStatus, now: i64) -> Waiting {
        if device.device.revoked {
            return Waiting::Revoked;
        }
        match device.last_sync_at {
            None => Waiting::Never,
            Some(at) if at < now - STALE_DAYS * 86_400 => Waiting::UnknownSince {
                count: device.waiting_cases,
                at,
            },
            Some(at) => Waiting::Reported {
                count: device.waiting_cases,
                at,
            },
        }
    }
}

/// One agent's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    pub agent: String,
    pub team: String,
    pub cases: u64,
    pub overdue: u64,
    pub conflicts: u64,
    pub stuck: u64,
    /// The agent's latest sync from any phone.
    pub last_contact: Option<i64>,
    /// Each of the agent's phones and what it says of its unsynced work.
    pub phones: Vec<(DeviceStatus, Waiting)>,
}

impl AgentRow {
    fn new(agent: &str, team: &str) -> AgentRow {
        AgentRow {
            agent: agent.to_string(),
            team: team.to_string(),
            cases: 0,
            overdue: 0,
            conflicts: 0,
            stuck: 0,
            last_contact: None,
            phones: Vec::new(),
        }
    }

    /// Whether no phone of the agent has been heard from for `STALE_DAYS`.
    pub fn silent(&self) -> bool {
        self.phones
            .iter()
            .any(|(_, w)| !matches!(w, Waiting::Revoked))
            && self
                .phones
                .iter()
                .all(|(_, w)| !matches!(w, Waiting::Reported { .. }))
    }
}

/// How the rows are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    Agent,
    Cases,
    Overdue,
    Conflicts,
    Stuck,
    /// The longest silent first.
    LastContact,
}

impl SortBy {
    pub const ALL: [(SortBy, &'static str); 6] = [
        (SortBy::Agent, "agent"),
        (SortBy::Cases, "cases"),
        (SortBy::Overdue, "overdue"),
        (SortBy::Conflicts, "conflicts"),
        (SortBy::Stuck, "stuck"),
        (SortBy::LastContact, "contact"),
    ];

    pub fn parse(text: &str) -> SortBy {
        SortBy::ALL
            .into_iter()
            .find(|(_, name)| *name == text)
            .map_or(SortBy::Agent, |(by, _)| by)
    }

    pub fn name(self) -> &'static str {
        SortBy::ALL
            .into_iter()
            .find(|(by, _)| *by == self)
            .map_or("agent", |(_, name)| name)
    }
}

/// The rows of the agents a reader sees: every agent owning a case of `cases` (merged-away
/// cases left out) or holding one of `devices`, with `stuck` counted to the case's owner;
/// `today` (YYYY-MM-DD) says which visits are overdue. The biggest number first for a count,
/// the longest silent first for contact, by name for the agent; ties by name.
pub fn agent_rows(
    cases: &[ListedCase],
    stuck: &[StuckReferral],
    devices: &[DeviceStatus],
    today: &str,
    now: i64,
    sort: SortBy,
) -> Vec<AgentRow> {
    let mut rows: BTreeMap<String, AgentRow> = BTreeMap::new();
    let mut owner_of: BTreeMap<&str, &str> = BTreeMap::new();
    for case in cases {
        if case.summary.merged_into.is_some() {
            continue;
        }
        owner_of.insert(&case.summary.case_id, &case.created_by);
        let row = rows
            .entry(case.created_by.clone())
            .or_insert_with(|| AgentRow::new(&case.created_by, &case.team));
        row.cases += 1;
        if case
            .summary
            .next_followup_due
            .as_deref()
            .is_some_and(|due| due < today)
        {
            row.overdue += 1;
        }
        if case.summary.conflict_count > 0 {
            row.conflicts += 1;
        }
    }
    for referral in stuck {
        if let Some(row) = owner_of
            .get(referral.case_id.as_str())
            .and_then(|owner| rows.get_mut(*owner))
        {
            row.stuck += 1;
        }
    }
    for device in devices.iter().filter(|d| d.role == Role::Agent) {
        let row = rows
            .entry(device.device.user_id.clone())
            .or_insert_with(|| AgentRow::new(&device.device.user_id, &device.team));
        row.last_contact = row.last_contact.max(device.last_sync_at);
        row.phones.push((device.clone(), Waiting::of(device, now)));
    }
    let mut rows: Vec<AgentRow> = rows.into_values().collect();
    let key = |r: &AgentRow| -> i64 {
        match sort {
            SortBy::Agent => 0,
            SortBy::Cases => -(r.cases as i64),
            SortBy::Overdue => -(r.overdue as i64),
            SortBy::Conflicts => -(r.conflicts as i64),
            SortBy::Stuck => -(r.stuck as i64),
            SortBy::LastContact => r.last_contact.unwrap_or(i64::MIN),
        }
    };
    rows.sort_by(|a, b| key(a).cmp(&key(b)).then_with(|| a.agent.cmp(&b.agent)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{CaseSummary, Device};

    const NOW: i64 = 1_800_000_000;

    fn case(id: &str, owner: &str, due: Option<&str>, conflicts: u32) -> ListedCase {
        ListedCase {
            summary: CaseSummary {
                case_id: id.into(),
                next_followup_due: due.map(str::to_string),
                conflict_count: conflicts,
                ..CaseSummary::default()
            },
            created_by: owner.into(),
            team: "sikasso".into(),
            updated_at: NOW,
        }
    }

    fn phone(id: &str, user: &str, last: Option<i64>, waiting: Option<u64>) -> DeviceStatus {
        DeviceStatus {
            device: Device {
                device_id: id.into(),
                user_id: user.into(),
                actor: String::new(),
                name: format!("{user}'s phone"),
                token_hash: String::new(),
                revoked: false,
                wiped: false,
            },
            role: Role::Agent,
            team: "sikasso".into(),
            last_sync_at: last,
            app_version: None,
            waiting_cases: waiting,
        }
    }

    /// A phone silent for twelve days that reported 0 is "unknown since" that day, with the 0
    /// it said then; a fresh report keeps its time; one never synced is never; a revoked one
    /// waits for nothing.
    #[test]
    fn a_silent_phone_is_unknown_since_its_last_report_never_zero() {
        let twelve_days_ago = NOW - 12 * 86_400;
        assert_eq!(
            Waiting::of(&phone("d", "karim", Some(twelve_days_ago), Some(0)), NOW),
            Waiting::UnknownSince {
                count: Some(0),
                at: twelve_days_ago
            }
        );
        assert_eq!(
            Waiting::of(&phone("d", "karim", Some(NOW - 60), Some(5)), NOW),
            Waiting::Reported {
                count: Some(5),
                at: NOW - 60
            }
        );
        assert_eq!(
            Waiting::of(&phone("d", "karim", None, None), NOW),
            Waiting::Never
        );
        let mut revoked = phone("d", "karim", Some(NOW), Some(3));
        revoked.device.revoked = true;
        assert_eq!(Waiting::of(&revoked, NOW), Waiting::Revoked);
    }

    /// Counts per agent from the cases they own, stuck referrals to their case's owner, an
    /// agent with a phone and no case listed too, a merged-away case left out; each order.
    #[test]
    fn one_row_per_agent_counted_and_sorted() {
        let cases = [
            case("a1", "amina", Some("2026-01-01"), 1),
            case("a2", "amina", Some("2026-12-31"), 0),
            case("k1", "karim", Some("2026-02-01"), 0),
            {
                let mut merged = case("k2", "karim", Some("2026-01-01"), 2);
                merged.summary.merged_into = Some("k1".into());
                merged
            },
        ];
        let stuck = [StuckReferral {
            case_id: "k1".into(),
            referral_id: "r".into(),
            service_type: None,
            provider: None,
            status: "sent".into(),
            status_since: NOW - 40 * 86_400,
            ..Default::default()
        }];
        let devices = [
            phone("d-a", "amina", Some(NOW - 60), Some(2)),
            phone("d-k", "karim", Some(NOW - 12 * 86_400), Some(0)),
            phone("d-m", "moussa", None, None),
        ];
        let rows = agent_rows(&cases, &stuck, &devices, "2026-06-01", NOW, SortBy::Agent);
        let summary: Vec<(&str, u64, u64, u64, u64)> = rows
            .iter()
            .map(|r| (r.agent.as_str(), r.cases, r.overdue, r.conflicts, r.stuck))
            .collect();
        assert_eq!(
            summary,
            [
                ("amina", 2, 1, 1, 0),
                ("karim", 1, 1, 0, 1),
                ("moussa", 0, 0, 0, 0)
            ]
        );
        assert!(!rows[0].silent());
        assert!(
            rows[1].silent(),
            "Karim's only phone has been silent 12 days"
        );
        assert_eq!(rows[1].last_contact, Some(NOW - 12 * 86_400));
        let order = |sort| -> Vec<String> {
            agent_rows(&cases, &stuck, &devices, "2026-06-01", NOW, sort)
                .into_iter()
                .map(|r| r.agent)
                .collect()
        };
        assert_eq!(order(SortBy::Cases), ["amina", "karim", "moussa"]);
        assert_eq!(order(SortBy::Stuck), ["karim", "amina", "moussa"]);
        assert_eq!(
            order(SortBy::LastContact),
            ["moussa", "karim", "amina"],
            "never heard from first, then the longest silent"
        );
        assert_eq!(SortBy::parse("contact"), SortBy::LastContact);
        assert_eq!(SortBy::parse("nonsense"), SortBy::Agent);
    }
}
