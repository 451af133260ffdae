//! A case's outcome and closure on the phone: the closure's steps as the agent and the
//! supervisor take them offline, and the outcome of rows projected before it existed.

use super::*;

use crate::protocol::OUTCOMES_SINCE;

impl Store {
    /// Proposes to close a case for `reason` (one of `case_doc::CLOSURE_REASONS`), offline if
    /// need be: a supervisor approves or returns it.
    pub fn propose_closure(
        &mut self,
        case_id: &str,
        reason: &str,
        note: Option<&str>,
    ) -> Result<()> {
        self.change_case(case_id, |doc, _, ctx| {
            doc.propose_closure(reason, note, ctx)
        })
    }

    /// A supervisor's decision on a proposed closure, from a supervisor's phone: only a
    /// supervisor's or admin's device may (the server checks the team too).
    pub fn decide_closure(
        &mut self,
        case_id: &str,
        approve: bool,
        note: Option<&str>,
    ) -> Result<()> {
        if !matches!(
            self.role()?,
            crate::policy::Role::Supervisor | crate::policy::Role::Admin
        ) {
            return Err(Error::Forbidden(
                "supervisors and admins decide closures".into(),
            ));
        }
        self.change_case(case_id, |doc, _, ctx| {
            doc.decide_closure(approve, note, ctx)
        })
    }

    /// Opens a closed case again: its visits are due again, and the reopening is counted.
    pub fn reopen_case(&mut self, case_id: &str, note: Option<&str>) -> Result<()> {
        self.require_closures_served()?;
        self.change_case(case_id, |doc, _, ctx| doc.reopen(note, ctx))
    }

    /// A server older than closures (protocol 9) would refuse the case's every later change:
    /// the step is refused here, in words, until the server is updated.
    fn require_closures_served(&self) -> Result<()> {
        match self.server_speaks()? {
            Some(v) if v < OUTCOMES_SINCE => Err(Error::InvalidInput(format!(
                "the server speaks protocol {v}: cases can be closed once it is updated (protocol {OUTCOMES_SINCE})"
            ))),
            _ => Ok(()),
        }
    }

    /// A case's closure: its status and every step, with who took it.
    pub fn closure(&self, case_id: &str) -> Result<crate::case_doc::Closure> {
        self.require_doc(case_id)?.closure()
    }

    /// A case's closure as its screen shows it, in `lang`: where it stands, each step with who
    /// took it and when, and what this phone's user may do next.
    pub fn closure_in_words(
        &self,
        case_id: &str,
        lang: crate::Lang,
        zone: crate::words::Zone,
    ) -> Result<ClosureWords> {
        use crate::case_doc::ClosureStatus;
        use crate::outcome::{closure_label, closure_reason_label, closure_step_label};
        let closure = self.closure(case_id)?;
        let supervises = matches!(
            self.role()?,
            crate::policy::Role::Supervisor | crate::policy::Role::Admin
        );
        let settled = !closure.disputed;
        Ok(ClosureWords {
            status: closure.code().to_string(),
            label: closure_label(lang, closure.code()),
            reason: closure
                .reason
                .as_deref()
                .filter(|_| closure.status != ClosureStatus::Open)
                .map(|r| closure_reason_label(lang, r)),
            steps: closure
                .steps
                .iter()
                .map(|s| ClosureStepWords {
                    step: closure_step_label(lang, &s.step),
                    actor: s.actor.clone(),
                    at: zone.time_text(lang, &s.at),
                    reason: s.reason.as_deref().map(|r| closure_reason_label(lang, r)),
                    note: s.note.clone(),
                })
                .collect(),
            may_propose: settled
                && matches!(
                    closure.status,
                    ClosureStatus::Open | ClosureStatus::Returned
                ),
            may_decide: settled && supervises && closure.status == ClosureStatus::Proposed,
            may_reopen: settled && closure.status == ClosureStatus::Closed,
        })
    }

    /// The programme's outcome settings this phone derives outcomes with: the server's, once
    /// received, else the defaults.
    pub fn outcome_settings(&self) -> Result<crate::outcome::OutcomeSettings> {
        outcome_settings_in(&self.conn)
    }

    /// Projects again the cases whose rows were written before outcomes were (schema 11), from
    /// their documents; nothing to do once done. A case that does not load stays as it was.
    pub(super) fn project_outcomes(&mut self) -> Result<usize> {
        let ids: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT case_id FROM cases WHERE stage IS NULL")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if ids.is_empty() {
            return Ok(0);
        }
        let forms = self.forms()?;
        let settings = self.outcome_settings()?;
        let mut projected = Vec::new();
        for case_id in ids {
            let Ok(Some(mut doc)) = self.load_doc(&case_id) else {
                continue;
            };
            let unacknowledged: bool = self.conn.query_row(
                "SELECT dirty != ?2 FROM case_sync WHERE case_id = ?1",
                params![case_id, SyncState::Clean],
                |r| r.get(0),
            )?;
            if let Ok(p) = projection::project_on_phone(&mut doc, &forms, &settings, unacknowledged)
            {
                projected.push(p);
            }
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for p in &projected {
            projection::write(&tx, p)?;
        }
        let done = projected.len();
        tx.commit()?;
        Ok(done)
    }
}

/// A case's closure in words (`Store::closure_in_words`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClosureWords {
    /// `open`, `proposed`, `returned`, `closed` or `disputed`.
    pub status: String,
    pub label: String,
    /// The reason proposed, unless the case is open.
    pub reason: Option<String>,
    pub steps: Vec<ClosureStepWords>,
    pub may_propose: bool,
    pub may_decide: bool,
    pub may_reopen: bool,
}

/// One step of a closure, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClosureStepWords {
    pub step: String,
    pub actor: String,
    /// When, on the author's clock, as the reader writes it.
    pub at: String,
    pub reason: Option<String>,
    pub note: Option<String>,
}
