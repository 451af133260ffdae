//! What the console asks the stores for: a caseload query (its filters, its order, and the same
//! rule in Rust for an export walking the reader's scope), and the stuck referrals' query.

use super::{ListedCase, StuckReferral};

/// A console query over the caseload a user reads: every given criterion must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseQuery {
    /// Name keys (`suivi_core::names::query_terms`): a case matches when it has every one.
    pub name_terms: Vec<String>,
    /// A village's key (`suivi_core::names::place_key`) or its beginning, from
    /// `suivi_core::names::PREFIX_MIN` letters.
    pub village_key: Option<String>,
    /// The agent who created the case, in any case ("Karim" is karim).
    pub agent: Option<String>,
    pub risk_level: Option<String>,
    pub referral_status: Option<String>,
    /// Cases whose next follow-up is due before this date (YYYY-MM-DD): overdue on it.
    pub due_before: Option<String>,
    pub conflicts_only: bool,
    pub sort: CaseSort,
    pub offset: u64,
    pub limit: u64,
}

/// The order a list comes in; each ends with the case id, so pages never overlap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CaseSort {
    /// Last changed first.
    #[default]
    Updated,
    /// The next visit due soonest first (the most overdue at the top); none due last.
    Due,
    /// Critical, high, medium, low, then none; within a risk, by due date.
    Risk,
}

impl CaseSort {
    pub const ALL: [CaseSort; 3] = [CaseSort::Updated, CaseSort::Due, CaseSort::Risk];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseSort::Updated => "updated",
            CaseSort::Due => "due",
            CaseSort::Risk => "risk",
        }
    }

    pub fn parse(text: &str) -> CaseSort {
        CaseSort::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .unwrap_or_default()
    }

    /// A listed case's place in this order: compared ascending, then by case id. The same key
    /// the stores' list query sorts by (`case_list::sort_key`).
    pub fn key(self, case: &ListedCase) -> (i64, String) {
        let due = || {
            case.summary
                .next_followup_due
                .clone()
                .unwrap_or_else(|| NO_DUE.to_string())
        };
        match self {
            CaseSort::Updated => (-case.updated_at, String::new()),
            CaseSort::Due => (0, due()),
            CaseSort::Risk => (risk_rank(case.summary.risk_level.as_deref()), due()),
        }
    }
}

/// Sorts after every date a follow-up can set.
pub const NO_DUE: &str = "9999-12-31";

/// Risk levels, most urgent first (the identification form's choices).
pub const RISK_ORDER: [&str; 4] = ["critical", "high", "medium", "low"];

pub fn risk_rank(risk: Option<&str>) -> i64 {
    risk.and_then(|r| RISK_ORDER.iter().position(|x| *x == r))
        .unwrap_or(RISK_ORDER.len()) as i64
}

/// A village's key or beginning as kept among a case's search terms, tagged apart from the
/// name keys beside it.
pub fn village_term(prefix: &str) -> String {
    format!("v:{prefix}")
}

impl CaseQuery {
    /// Whether a listed case meets every criterion, as the stores' list query decides it: what
    /// an export of a filtered list keeps while it walks the reader's scope.
    pub fn matches(&self, case: &ListedCase) -> bool {
        let s = &case.summary;
        let terms = if self.name_terms.is_empty() {
            Vec::new()
        } else {
            suivi_core::names::search_terms(&[&s.first_name, &s.last_name])
        };
        self.name_terms.iter().all(|t| terms.contains(t))
            && self.village_key.as_ref().is_none_or(|v| {
                s.village
                    .as_deref()
                    .is_some_and(|village| suivi_core::names::place_prefixes(village).contains(v))
            })
            && self
                .agent
                .as_ref()
                .is_none_or(|a| a.to_lowercase() == case.created_by.to_lowercase())
            && self
                .risk_level
                .as_ref()
                .is_none_or(|r| s.risk_level.as_ref() == Some(r))
            && self
                .referral_status
                .as_ref()
                .is_none_or(|st| s.referral_statuses.contains(st))
            && self.due_before.as_ref().is_none_or(|d| {
                s.next_followup_due
                    .as_ref()
                    .is_some_and(|due| due.as_str() < d.as_str())
            })
            && (!self.conflicts_only || s.conflict_count > 0)
    }
}

/// A page of listed cases, newest first, and how many match in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseList {
    pub cases: Vec<ListedCase>,
    pub total: u64,
}

/// Which stuck referrals to list: in one status since before `before`, of an agent (in any
/// case) or a service when given, the oldest first, a page of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StuckQuery {
    pub before: i64,
    pub agent: Option<String>,
    pub service_type: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

/// A page of stuck referrals and how many there are in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StuckList {
    pub referrals: Vec<StuckReferral>,
    pub total: u64,
}
