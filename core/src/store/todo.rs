//! What an agent has to do, from the projections only (no document is loaded): visits overdue
//! or due soon, referrals waiting on the agent, cases in conflict. The phone's "to do" screen
//! and its count on the main screen read this; the filters are the caseload's own (risk level,
//! village by its beginning).

use super::reads::{row_to_case, row_to_referral, village_clause};
use super::*;

/// A visit due within this many days is listed beside the overdue ones.
pub const DUE_SOON_DAYS: i64 = 7;
/// Rows per list: an agent's caseload is far smaller; a bound keeps a bad store from flooding.
pub const TODO_ROWS_MAX: usize = 500;

/// The statuses that wait on the agent who made the referral: a draft to send, a declined
/// referral to transfer or close.
pub const WAITING_ON_AGENT: [&str; 2] = ["draft", "declined"];

/// Narrows the to-do lists as the caseload list is narrowed.
#[derive(Debug, Clone, Default)]
pub struct TodoFilter {
    pub risk_level: Option<String>,
    /// A village, by its name or its beginning from three letters.
    pub village: Option<String>,
}

/// An agent's to-do lists.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Todo {
    /// Cases whose next visit is overdue or due within `DUE_SOON_DAYS`, the most overdue first.
    pub visits: Vec<CaseRow>,
    /// Referrals waiting on the agent (`WAITING_ON_AGENT`), oldest first, each with its case.
    pub referrals: Vec<(CaseRow, ReferralRow)>,
    /// Cases holding a value two phones set at once, to settle.
    pub conflicts: Vec<CaseRow>,
}

impl Todo {
    /// What the main screen counts: every row of every list.
    pub fn count(&self) -> usize {
        self.visits.len() + self.referrals.len() + self.conflicts.len()
    }
}

impl Store {
    /// The to-do lists on `today` (the phone's own day), narrowed by `filter`.
    pub fn todo(&self, today: NaiveDate, filter: &TodoFilter) -> Result<Todo> {
        let mut args: Vec<String> = Vec::new();
        let mut narrowed = String::new();
        if let Some(risk) = &filter.risk_level {
            args.push(risk.clone());
            narrowed.push_str(&format!(" AND cases.risk_level = ?{}", args.len()));
        }
        if let Some(clause) = filter
            .village
            .as_deref()
            .and_then(|v| village_clause(&mut args, v))
        {
            narrowed.push_str(&format!(" AND {clause}"));
        }
        let soon = (today + chrono::Duration::days(DUE_SOON_DAYS))
            .format("%Y-%m-%d")
            .to_string();
        let visits = self.todo_cases(
            &format!(
                "cases.next_followup_due IS NOT NULL AND cases.next_followup_due <= ?{}{narrowed}
                 ORDER BY cases.next_followup_due, cases.case_id",
                args.len() + 1
            ),
            args.iter().chain([&soon]),
        )?;
        let conflicts = self.todo_cases(
            &format!(
                "cases.conflict_count > 0{narrowed} ORDER BY cases.updated_at DESC, cases.case_id"
            ),
            args.iter(),
        )?;
        let statuses = WAITING_ON_AGENT.map(|s| format!("'{s}'")).join(", ");
        let waiting: Vec<ReferralRow> = {
            let sql = format!(
                "SELECT r.referral_id, r.case_id, r.service_type, r.provider, r.urgency, r.status,
                    r.created_at, r.created_by, r.updated_at, r.previous_referral, r.next_referral
                 FROM referrals r JOIN cases ON cases.case_id = r.case_id
                 WHERE r.status IN ({statuses}){narrowed}
                 ORDER BY r.updated_at, r.referral_id LIMIT {TODO_ROWS_MAX}"
            );
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), row_to_referral)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut referrals = Vec::with_capacity(waiting.len());
        let mut case_of = self
            .conn
            .prepare_cached("SELECT * FROM cases WHERE case_id = ?1")?;
        for referral in waiting {
            if let Some(case) = case_of
                .query_row([&referral.case_id], row_to_case)
                .optional()?
            {
                referrals.push((case, referral));
            }
        }
        Ok(Todo {
            visits,
            referrals,
            conflicts,
        })
    }

    fn todo_cases<'a>(
        &self,
        condition_and_order: &str,
        args: impl Iterator<Item = &'a String>,
    ) -> Result<Vec<CaseRow>> {
        let sql = format!("SELECT * FROM cases WHERE {condition_and_order} LIMIT {TODO_ROWS_MAX}");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), row_to_case)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
