//! Admission: every change a device or the console writes is checked here, case by case, before the store keeps it (plan, check, validate, write).

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
        policy::write_mode(
            &user.subject(),
            existing.map(CaseAccess::ownership).as_ref(),
        )
    }

    /// Whether a user writes to a held case only as its former owner, in the handover (the
    /// policy gives it no write mode): its phones are told to remove the case again after.
    pub(super) fn writes_in_handover(&self, user: &User, existing: Option<&CaseAccess>) -> bool {
        existing.is_some() && self.write_mode(user, existing).is_none()
    }

    /// Decides, case by case, what of a push is stored: nothing for a case the device may not
    /// write, nothing not authored by the device, nothing whose history the server lacks,
    /// nothing that breaks the case layout rules.
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
        let mut plan = PushPlan {
            to_store: Vec::new(),
            accepted: Vec::new(),
            refused: Vec::new(),
            reassigned: Vec::new(),
            handed_over: Vec::new(),
        };
        let mut seen = HashSet::new();
        let mut allowance = Allowance::today(self.store.as_ref(), &device.device.device_id, now)?;
        let mut budget = OpsBudget::new(self.refresh_forms());
        for case in push {
            if !valid_case_id(&case.case_id) || !seen.insert(case.case_id.clone()) {
                // An id that is not ours is echoed back cut short, never as sent.
                let id: String = case.case_id.chars().take(32).collect();
                plan.refused
                    .push(Refusal::new(&id, RefusalReason::Malformed, "case id"));
                continue;
            }
            let existing = access.get(&case.case_id);
            // A former owner's phone in its handover: told to remove the case again once this
            // push is through (it may have kept the case for the work it sends now).
            let handing_over = self.writes_in_handover(&device.user, existing);
            match self.check_case(device, case, existing, &mut budget, now, None)? {
                Ok(None) => {
                    plan.accepted.push(case.case_id.clone());
                    if handing_over {
                        plan.handed_over.push(case.case_id.clone());
                    }
                }
                Ok(Some((accepted, reassigned))) => match allowance.take(&accepted) {
                    Ok(()) => {
                        plan.accepted.push(case.case_id.clone());
                        if handing_over {
                            plan.handed_over.push(case.case_id.clone());
                        }
                        plan.to_store.push(accepted);
                        if let Some(to) = reassigned {
                            plan.reassigned.push((case.case_id.clone(), to));
                        }
                    }
                    Err((reason, detail)) => {
                        plan.refused
                            .push(Refusal::new(&case.case_id, reason, &detail))
                    }
                },
                Err((reason, detail)) => {
                    plan.refused
                        .push(Refusal::new(&case.case_id, reason, &detail))
                }
            }
        }
        #[cfg(feature = "simulation")]
        if planted::on() && plan.to_store.len() >= 2 {
            plan.to_store.pop();
        }
        Ok(plan)
    }

    /// Checks one pushed case: `Ok(None)` if the server holds all of it already.
    pub(super) fn check_case(
        &self,
        device: &AuthedDevice,
        case: &CaseChanges,
        existing: Option<&CaseAccess>,
        budget: &mut OpsBudget,
        now: i64,
        preloaded: Option<Vec<Change>>,
    ) -> Result<Result<Option<Checked>, (RefusalReason, String)>, ServiceError> {
        if case.changes.len() > protocol::PUSH_CHANGES_PER_CASE_MAX {
            // Before anything is read: a push this large is refused by its envelope.
            if !self.store.is_erased(&case.case_id)? {
                return Ok(Err((RefusalReason::TooManyChanges, String::new())));
            }
        }
        let mode = match self.gate(device, &case.case_id, existing, now)? {
            Ok(mode) => mode,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let mut parsed = Vec::with_capacity(case.changes.len());
        for raw in &case.changes {
            match check::parse_change(raw) {
                Ok(change) => parsed.push(change),
                Err(e) => return Ok(Err(refusal_of(&e))),
            }
        }
        self.admit(
            device,
            &case.case_id,
            existing,
            mode,
            parsed,
            budget,
            now,
            preloaded,
        )
    }

    /// The first gate every written case passes, whichever way it came (a push, the
    /// fallback, the console): not erased (an erasure the audit log never recorded sets the
    /// case aside instead), a write mode for this user (a former owner in its handover
    /// included), and not quarantined.
    pub(super) fn gate(
        &self,
        device: &AuthedDevice,
        case_id: &str,
        existing: Option<&CaseAccess>,
        now: i64,
    ) -> Result<Result<WriteMode, (RefusalReason, String)>, ServiceError> {
        if self.store.is_erased(case_id)? {
            // Checked first: an erased case has no owner left, so it would read as new. An
            // erasure the audit log never recorded was not made by `case erase`: the phone is
            // told to set the case aside, never to delete it.
            let reason = if self.erasure_proven(case_id)? {
                RefusalReason::Erased
            } else {
                RefusalReason::Quarantined
            };
            return Ok(Err((reason, String::new())));
        }
        let mode = match self.write_mode(&device.user, existing) {
            Some(mode) => mode,
            // A case reassigned away: what the former owner's phones recorded before they heard
            // of it is still accepted, for a grace period (it had the right when it wrote it).
            None if existing.is_some()
                && self.store.in_handover(case_id, &device.user.user_id, now)? =>
            {
                WriteMode::Write
            }
            None => return Ok(Err((RefusalReason::Forbidden, String::new()))),
        };
        // After the access decision: a device that may not write a case is not told it is set
        // aside either.
        if existing.is_some() && self.store.is_quarantined(case_id)? {
            return Ok(Err((RefusalReason::Quarantined, String::new())));
        }
        Ok(Ok(mode))
    }

    /// The decision on a case's parsed changes, in the order given, once `gate` let them
    /// through: those the server holds are skipped, the rest must be the device's own and
    /// follow what the server holds, fit the request's operation budget, and pass the case
    /// rules on the server's copy. `Ok(None)`: nothing new. `preloaded`: the stored history,
    /// when the caller already read it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn admit(
        &self,
        device: &AuthedDevice,
        case_id: &str,
        existing: Option<&CaseAccess>,
        mode: WriteMode,
        parsed: Vec<Change>,
        budget: &mut OpsBudget,
        now: i64,
        preloaded: Option<Vec<Change>>,
    ) -> Result<Result<Option<Checked>, (RefusalReason, String)>, ServiceError> {
        // Which of these (and of their dependencies) the server holds.
        let mut lookup: Vec<String> = parsed.iter().map(|c| c.hash().to_string()).collect();
        lookup.extend(
            parsed
                .iter()
                .flat_map(|c| c.deps().iter().map(ToString::to_string)),
        );
        // A caller that loaded the stored case (the console, the fallback) need not ask again.
        let known: HashSet<String> = match (&preloaded, existing) {
            (_, None) => HashSet::new(),
            (Some(stored), Some(_)) => {
                let held: HashSet<String> = stored.iter().map(|c| c.hash().to_string()).collect();
                lookup.into_iter().filter(|h| held.contains(h)).collect()
            }
            (None, Some(_)) => self.store.known_changes(case_id, &lookup)?,
        };
        let mut have: HashSet<String> = known.clone();
        let mut fresh = Vec::new();
        for change in parsed {
            let hash = change.hash().to_string();
            if have.contains(&hash) {
                continue;
            }
            if change.actor_id().to_hex_string() != device.device.actor {
                return Ok(Err((RefusalReason::WrongActor, String::new())));
            }
            if !change.deps().iter().all(|d| have.contains(&d.to_string())) {
                return Ok(Err((RefusalReason::MissingDeps, String::new())));
            }
            have.insert(hash);
            fresh.push(change);
        }
        if fresh.is_empty() {
            return Ok(Ok(None));
        }
        let raw: Vec<(String, Vec<u8>)> = fresh
            .iter()
            .map(|c| (c.hash().to_string(), c.raw_bytes().to_vec()))
            .collect();
        let stored = match (preloaded, existing) {
            (_, None) => Vec::new(),
            (Some(stored), Some(_)) => stored,
            (None, Some(_)) => self.stored_changes(case_id)?,
        };
        let ops = stored.iter().chain(&fresh).map(Change::len).sum();
        if let Err(refusal) = budget.take(ops) {
            return Ok(Err(refusal));
        }
        let change_count = (stored.len() + fresh.len()) as u64;
        let team = existing.map_or(device.user.team.as_str(), |a| a.team.as_str());
        let (checked, reassigned) =
            match self.validate(device, (case_id, team, now), stored, mode, fresh, budget)? {
                Ok(checked) => checked,
                Err(refusal) => return Ok(Err(refusal)),
            };
        Ok(Ok(Some((
            AcceptedCase {
                case_id: case_id.to_string(),
                new_case: existing
                    .is_none()
                    .then(|| (device.user.user_id.clone(), device.user.team.clone())),
                changes: raw,
                summary: summary::summarize(checked, change_count, &budget.forms),
            },
            reassigned,
        ))))
    }

    /// Writes what admission decided: the accepted cases and the audit row in one
    /// transaction, then their projections, then the reassignments their changes made.
    /// Returns how many changes were stored.
    pub(super) fn write_admitted(
        &self,
        device: &AuthedDevice,
        to_store: &[AcceptedCase],
        reassigned: Vec<(String, User)>,
        handed_over: &[String],
        audit: Option<(&str, &str)>,
        now: i64,
    ) -> Result<usize, ServiceError> {
        let stored = if to_store.is_empty() && audit.is_none() {
            0
        } else {
            self.store
                .store_changes(&device.device.device_id, to_store, audit, now)?
        };
        let mut raced = Vec::new();
        if !to_store.is_empty() {
            let ids: Vec<String> = to_store.iter().map(|c| c.case_id.clone()).collect();
            raced = self.refresh_summaries_of(&ids)?;
        }
        self.apply_reassignments(&device.user, reassigned, &raced, now)?;
        // A phone that kept a case reassigned away for its unsent work removes it once the
        // work is stored: told again, after this push.
        for case_id in handed_over {
            self.store
                .queue_removal(&device.user.user_id, case_id, now)?;
        }
        Ok(stored)
    }

    /// Applies new changes to the server's copy of the case (rebuilt from `stored`) and runs
    /// the layout rules; the checked document, for its projection, and the agent the changes
    /// gave the case to, if they reassigned it (an agent of the case's `team`, or a refusal).
    #[allow(clippy::type_complexity)]
    pub(super) fn validate(
        &self,
        device: &AuthedDevice,
        (case_id, team, now): (&str, &str, i64),
        stored: Vec<Change>,
        mode: WriteMode,
        fresh: Vec<Change>,
        scratch: &mut OpsBudget,
    ) -> Result<Result<(AutoCommit, Option<User>), (RefusalReason, String)>, ServiceError> {
        let forms = scratch.forms.clone();
        let agents = &mut scratch.agents;
        let Ok(mut copy) = CaseCheck::load(case_id, stored) else {
            return Ok(Err((
                RefusalReason::Quarantined,
                "stored history fails validation".to_string(),
            )));
        };
        let before = suivi_core::case_doc::single_assignee(copy.document());
        let role = device.user.role;
        let author = Author {
            user: &device.user.user_id,
            audit_notes_only: mode == WriteMode::AuditNotesOnly,
            // Merge links are written by the server for a supervisor in the console, never
            // pushed by a phone.
            links_cases: device.device.device_id == console_device_id(&device.user.user_id)
                && matches!(role, Role::Supervisor | Role::Admin),
            // A supervisor reassigns the cases of their own team only (one assigned to them
            // from elsewhere, they may edit but not give away).
            reassigns: mode == WriteMode::Write
                && (role == Role::Admin || (role == Role::Supervisor && device.user.team == team)),
        };
        // A phone's change is checked against its own dependencies, which a hostile phone
        // chooses: a merged-away case takes changes "made without knowing of the merge" only
        // for the grace a reassigned case gets, then nothing but the console's.
        if !author.links_cases {
            if let Some(at) = copy.merged_at() {
                if now > at.timestamp().saturating_add(REASSIGN_GRACE_SECS) {
                    return Ok(Err((RefusalReason::Forbidden, "merged_into".to_string())));
                }
            }
        }
        if let Err(e) = copy.apply(fresh, author, &forms) {
            return Ok(Err(refusal_of(&e)));
        }
        let doc = copy.into_document();
        let after = suivi_core::case_doc::single_assignee(&doc);
        let reassigned = match after {
            Some(agent) if Some(&agent) != before.as_ref() => {
                let found = match agents.get(&agent) {
                    Some(found) => found.clone(),
                    None => {
                        let found = self.store.user(&agent)?;
                        agents.insert(agent.clone(), found.clone());
                        found
                    }
                };
                match found {
                    Some(user) if user.role == Role::Agent && user.team == team => Some(user),
                    _ => {
                        return Ok(Err((
                            RefusalReason::Forbidden,
                            "assigned_to: not an agent of the case's team".to_string(),
                        )))
                    }
                }
            }
            _ => None,
        };
        Ok(Ok((doc, reassigned)))
    }

    /// Moves the cases a stored push or console change gave to another agent; `by` is who
    /// reassigned them. Returns the cases whose owner changed. If the server stops between
    /// storing the change and this move, the case stays with its owner until the next
    /// reassignment: the document then shows the agent it was given to (`case check` does not
    /// catch this; a supervisor sees the owner in the console).
    pub(super) fn apply_reassignments(
        &self,
        by: &User,
        reassigned: Vec<(String, User)>,
        raced: &[String],
        now: i64,
    ) -> Result<Vec<String>, ServiceError> {
        let mut by_agent: HashMap<String, (User, Vec<String>)> = HashMap::new();
        for (case_id, to) in reassigned {
            // A case another push stored changes to meanwhile (its summary came out stale) is
            // read again as stored: if that push reassigned it too, the case holds two values,
            // a conflict, and stays where it is until one is kept.
            if raced.contains(&case_id) {
                let still = self
                    .case_document(&case_id)?
                    .and_then(|mut doc| suivi_core::case_doc::single_assignee(doc.automerge()));
                if still.as_deref() != Some(to.user_id.as_str()) {
                    tracing::info!(case = %case_id, "a reassignment met another: not moved");
                    continue;
                }
            }
            by_agent
                .entry(to.user_id.clone())
                .or_insert_with(|| (to, Vec::new()))
                .1
                .push(case_id);
        }
        let mut moved = Vec::new();
        for (to, case_ids) in by_agent.into_values() {
            for chunk in case_ids.chunks(CONSOLE_BATCH_CASES) {
                moved.extend(self.store.reassign_cases(
                    chunk,
                    &to,
                    &by.user_id,
                    now,
                    now + REASSIGN_GRACE_SECS,
                )?);
            }
        }
        Ok(moved)
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

/// What a push leads to: the changes to store, and per case, accepted or refused.
pub(super) struct PushPlan {
    pub(super) to_store: Vec<AcceptedCase>,
    pub(super) accepted: Vec<String>,
    pub(super) refused: Vec<Refusal>,
    /// Cases this push gave to another agent (a supervisor's reassignment): ownership moves
    /// once they are stored.
    pub(super) reassigned: Vec<(String, User)>,
    /// Cases stored from a former owner in its handover: its phones are told to remove them
    /// again once this is stored.
    pub(super) handed_over: Vec<String>,
}

/// A pushed case that passed every check: what to store, and the agent it was given to if the
/// push reassigned it.
pub(super) type Checked = (AcceptedCase, Option<User>);

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
