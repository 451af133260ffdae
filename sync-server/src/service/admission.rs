//! Admission's reads and write: what every written case's decision needs is read here once,
//! `decision` decides (pure), and the plan is written in one transaction, decided again if a
//! case was written meanwhile. Push, fallback and console all pass through it.

use super::*;

impl SyncService {
    /// Whether an erasure the database holds was made by `case erase`: its `case.erased` row is
    /// in the chained audit log. One that is not is logged and never acted on.
    pub(super) fn erasure_proven(&self, case_id: &str) -> Result<bool, ServiceError> {
        let proven = self
            .store
            .audit_row_exists(crate::evidence::ERASURE_ACTION, case_id)?;
        if !proven {
            tracing::error!(case = %case_id, "an erasure the audit log never recorded: not announced to phones; run verify");
        }
        Ok(proven)
    }

    /// What a user may do to a case, from the envelope alone (its id and who owns it).
    pub(super) fn write_mode(
        &self,
        user: &User,
        existing: Option<&CaseAccess>,
    ) -> Option<WriteMode> {
        decision::write_mode(user, existing)
    }

    /// Reads what deciding one case needs, once: whether it was erased (and proven), whether a
    /// user with no write mode is a former owner in its handover, whether it is set aside,
    /// which of the `written` changes (and their dependencies) the server holds, and the stored
    /// history when one of them is new, or `stored` when the caller read it already. A read
    /// whose answer cannot change the decision (the history of a case the user may not write)
    /// is skipped.
    pub(super) fn case_facts(
        &self,
        user: &User,
        case_id: &str,
        existing: Option<&CaseAccess>,
        written: &[Change],
        stored: Option<Vec<Change>>,
        now: i64,
    ) -> Result<CaseFacts, ServiceError> {
        let mut facts = CaseFacts {
            existing: existing.cloned(),
            ..CaseFacts::default()
        };
        if self.store.is_erased(case_id)? {
            facts.erased = Some(self.erasure_proven(case_id)?);
            return Ok(facts);
        }
        if existing.is_none() {
            return Ok(facts);
        }
        if decision::write_mode(user, existing).is_none() {
            facts.in_handover = self.store.in_handover(case_id, &user.user_id, now)?;
            if !facts.in_handover {
                return Ok(facts);
            }
        }
        facts.quarantined = self.store.is_quarantined(case_id)?;
        if facts.quarantined {
            return Ok(facts);
        }
        match stored {
            Some(stored) => {
                facts.known = stored.iter().map(|c| c.hash().to_string()).collect();
                facts.stored = stored;
            }
            None => {
                let mut lookup: Vec<String> =
                    written.iter().map(|c| c.hash().to_string()).collect();
                lookup.extend(
                    written
                        .iter()
                        .flat_map(|c| c.deps().iter().map(ToString::to_string)),
                );
                facts.known = self.store.known_changes(case_id, &lookup)?;
                if written
                    .iter()
                    .any(|c| !facts.known.contains(&c.hash().to_string()))
                {
                    facts.stored = self.stored_changes(case_id)?;
                }
            }
        }
        Ok(facts)
    }

    /// Reads the agents of `team` into the request's budget once, for the decision to check a
    /// reassignment against.
    pub(super) fn read_agents(
        &self,
        budget: &mut OpsBudget,
        team: &str,
    ) -> Result<(), ServiceError> {
        if budget.teams_read.insert(team.to_string()) {
            for member in self.store.team_members(team)? {
                budget.agents.insert(member.user_id.clone(), member);
            }
        }
        Ok(())
    }

    /// Plans a push: reads what every case needs (the ids' owners in one query, then each
    /// case's facts), then decides it all in `decision::decide_push`.
    pub(super) fn plan_push(
        &self,
        device: &AuthedDevice,
        push: &[CaseChanges],
        now: i64,
    ) -> Result<PushPlan, ServiceError> {
        let ids: Vec<String> = push
            .iter()
            .filter(|c| valid_case_id(&c.case_id))
            .map(|c| c.case_id.clone())
            .collect();
        let access = self.store.case_access(&ids)?;
        let allowance = Allowance::today(self.store.as_ref(), &device.device.device_id, now)?;
        let mut budget = self.budget();
        let mut seen = HashSet::new();
        let mut cases = Vec::with_capacity(push.len());
        for case in push {
            if !valid_case_id(&case.case_id) || !seen.insert(case.case_id.clone()) {
                // An id that is not ours is echoed back cut short, never as sent.
                let id: String = case.case_id.chars().take(32).collect();
                cases.push(Err(Refusal::new(&id, RefusalReason::Malformed, "case id")));
                continue;
            }
            cases.push(Ok(self.read_case(
                device,
                case,
                access.get(&case.case_id),
                &mut budget,
                None,
                now,
            )?));
        }
        #[allow(unused_mut)]
        let mut plan = decision::decide_push(device, cases, allowance, &mut budget, now);
        #[cfg(feature = "simulation")]
        if planted::on() && plan.admitted.cases.len() >= 2 {
            if let Some(dropped) = plan.admitted.cases.pop() {
                plan.admitted.held.retain(|(id, _)| *id != dropped.case_id);
            }
        }
        Ok(plan)
    }

    /// Reads and decides one case written outside a push (the console's): `stored`, the
    /// history when the caller read it already.
    pub(super) fn check_case(
        &self,
        device: &AuthedDevice,
        case: &CaseChanges,
        existing: Option<&CaseAccess>,
        budget: &mut OpsBudget,
        now: i64,
        stored: Option<Vec<Change>>,
    ) -> Result<Decided, ServiceError> {
        let read = self.read_case(device, case, existing, budget, stored, now)?;
        Ok(decision::decide_case(
            device,
            &case.case_id,
            read.facts,
            case.changes.len(),
            read.parsed,
            budget,
            now,
        ))
    }

    /// One written case's changes parsed, and what deciding it needs read: its facts, and the
    /// agents of its team (and the writer's) into the budget.
    fn read_case<'a>(
        &self,
        device: &AuthedDevice,
        case: &'a CaseChanges,
        existing: Option<&CaseAccess>,
        budget: &mut OpsBudget,
        stored: Option<Vec<Change>>,
        now: i64,
    ) -> Result<PushedCase<'a>, ServiceError> {
        self.read_agents(budget, &device.user.team)?;
        if let Some(existing) = existing {
            self.read_agents(budget, &existing.team)?;
        }
        let parsed = parse_changes(case);
        let facts = self.case_facts(
            &device.user,
            &case.case_id,
            existing,
            parsed.as_deref().unwrap_or_default(),
            stored,
            now,
        )?;
        Ok(PushedCase {
            case,
            parsed,
            facts,
        })
    }

    /// Writes what admission decided, in one transaction: the accepted cases, the audit row,
    /// the moves their changes made, the removals a handover owes. `Moved` if a case was
    /// written meanwhile (run the admission again with `admitting`). Returns how many changes
    /// were stored.
    pub(super) fn write_admitted(
        &self,
        device: &AuthedDevice,
        admitted: &Admitted,
        audit: Option<(&str, &str)>,
        now: i64,
    ) -> Result<usize, ServiceError> {
        if admitted.is_empty() && audit.is_none() {
            return Ok(0);
        }
        Ok(self.store.write_admission(&AdmissionWrite {
            device_id: &device.device.device_id,
            cases: &admitted.cases,
            held: &admitted.held,
            audit,
            moves: &admitted.moves,
            moved_by: &device.user.user_id,
            grace_until: now + REASSIGN_GRACE_SECS,
            removals: &admitted.removals,
            now,
        })?)
    }

    /// Runs an admission (read, decide, write) again while what it read changed before its
    /// write could land (another write to the same case came between): a few times, then the
    /// device is told to retry later. Each attempt reads afresh, so nothing decided on a stale
    /// copy is ever stored.
    pub(super) fn admitting<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let mut tries = 1;
        loop {
            match attempt() {
                Err(ServiceError::Storage(StorageError::Moved(why))) => {
                    if tries >= ADMISSION_ATTEMPTS_MAX {
                        return Err(ServiceError::Storage(StorageError::Retryable(why)));
                    }
                    tracing::info!(%why, "a case was written meanwhile: admission decides again");
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// A case's stored changes, parsed under the same bounds as a push.
    pub(super) fn stored_changes(&self, case_id: &str) -> Result<Vec<Change>, ServiceError> {
        self.store
            .case_changes(case_id)?
            .iter()
            .map(|raw| check::parse_change(raw))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ServiceError::Internal(format!("stored change of {case_id}: {e}")))
    }

    /// Checks every stored case against the layout rules, as if each change were pushed again
    /// by the user whose device pushed it: the cases that fail, with why.
    pub fn check_stored_cases(&self) -> Result<Vec<(String, String)>, ServiceError> {
        let mut failing = Vec::new();
        let forms = self.refresh_forms();
        for case_id in self.store.case_ids()? {
            let raw = self.store.case_changes(&case_id)?;
            let mut changes = Vec::new();
            let mut broken = None;
            for r in &raw {
                match check::parse_change(r) {
                    Ok(c) => changes.push(c),
                    Err(e) => {
                        broken = Some(e.to_string());
                        break;
                    }
                }
            }
            let result = match broken {
                Some(why) => Err(why),
                None => CaseCheck::load(&case_id, changes)
                    .map_err(|e| e.to_string())
                    .and_then(|copy| {
                        let doc = copy.into_document();
                        check::check_document(&doc, &case_id, &forms).map_err(|e| e.to_string())
                    }),
            };
            if let Err(why) = result {
                failing.push((case_id, why));
            }
        }
        Ok(failing)
    }
}

/// Times one admission is tried while the cases it read are written meanwhile.
const ADMISSION_ATTEMPTS_MAX: usize = 4;

/// A pushed case's changes, each parsed under bounds (none past the per-case limit, which its
/// envelope refuses), or why one does not parse.
fn parse_changes(case: &CaseChanges) -> Result<Vec<Change>, (RefusalReason, String)> {
    if case.changes.len() > protocol::PUSH_CHANGES_PER_CASE_MAX {
        return Err((RefusalReason::TooManyChanges, String::new()));
    }
    case.changes
        .iter()
        .map(|raw| check::parse_change(raw).map_err(|e| refusal_of(&e)))
        .collect()
}

/// Reads the version a body speaks before decoding the rest: an older device gets "upgrade
/// required", never a decoding failure.
pub(super) fn check_version(body: &[u8]) -> Result<(), ServiceError> {
    let version =
        protocol::peek_version(body).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    if version < PROTOCOL_VERSION_MIN {
        return Err(ServiceError::UpgradeRequired(version));
    }
    if version > PROTOCOL_VERSION {
        return Err(ServiceError::BadRequest(format!(
            "protocol version {version} is newer than this server's {PROTOCOL_VERSION}"
        )));
    }
    Ok(())
}

/// Orders changes so each comes after the ones it depends on among them; `None` if some depend
/// on changes that are neither here nor in `known`.
pub(super) fn causal_order(
    changes: Vec<Change>,
    known: &HashSet<ChangeHash>,
) -> Option<Vec<Change>> {
    let mut have: HashSet<ChangeHash> = known.clone();
    let mut left = changes;
    let mut out = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let before = left.len();
        let (ready, rest): (Vec<Change>, Vec<Change>) = left
            .into_iter()
            .partition(|c| c.deps().iter().all(|d| have.contains(d)));
        for c in &ready {
            have.insert(c.hash());
        }
        out.extend(ready);
        left = rest;
        if left.len() == before {
            return None;
        }
    }
    Some(out)
}
