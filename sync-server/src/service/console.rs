//! Changes made on the console: one case's change, a batch, a merge of two cases, a reassignment.

use super::*;

impl SyncService {
    /// A change made in the console by `user` (a conflict settled, a merge, a reassignment):
    /// written by the server under the actor registered to that user's console
    /// (`console-<user>`), then checked and stored exactly as a device's push, so devices
    /// receive it with its verified author like any other change. `edit` gets the case as the
    /// server holds it.
    pub fn console_change<T>(
        &self,
        user: &User,
        case_id: &str,
        now: i64,
        edit: impl Fn(
            &mut suivi_core::CaseDoc,
            &FormRegistry,
            &suivi_core::ChangeContext,
        ) -> suivi_core::Result<T>,
    ) -> Result<T, ServiceError> {
        let _one_at_a_time = self.console_lock();
        self.console_change_locked(user, case_id, now, edit)
    }

    /// `console_change`, for a caller already holding the console lock.
    pub(super) fn console_change_locked<T>(
        &self,
        user: &User,
        case_id: &str,
        now: i64,
        edit: impl Fn(
            &mut suivi_core::CaseDoc,
            &FormRegistry,
            &suivi_core::ChangeContext,
        ) -> suivi_core::Result<T>,
    ) -> Result<T, ServiceError> {
        // Made again on the case as stored if a device wrote it between the read and the write.
        self.admitting(|| {
            let console = self.console_author(user, now)?;
            let ids = [case_id.to_string()];
            let access = self.store.case_access(&ids)?;
            let (outcome, checked) = self.console_check(
                &console,
                case_id,
                access.get(case_id),
                &mut self.budget(),
                now,
                &mut |doc, forms, ctx| edit(doc, forms, ctx),
            )?;
            self.console_store(&console, checked.into_iter().collect(), now)?;
            Ok(outcome)
        })?
    }

    /// The same edit made in the console on many cases (a list reassigned at once): each case
    /// checked as a push (`CONSOLE_WORKERS` at a time: on PostgreSQL each waits on its reads),
    /// then stored `CONSOLE_BATCH_CASES` to a transaction. Returns each case's outcome, in the
    /// order given; one refused case never stops the others.
    #[allow(clippy::type_complexity)]
    pub fn console_changes<T: Send>(
        &self,
        user: &User,
        case_ids: &[String],
        now: i64,
        edit: impl Fn(
                &mut suivi_core::CaseDoc,
                &FormRegistry,
                &suivi_core::ChangeContext,
            ) -> suivi_core::Result<T>
            + Sync,
    ) -> Result<Vec<(String, Result<T, ServiceError>)>, ServiceError> {
        let _one_at_a_time = self.console_lock();
        let console = self.console_author(user, now)?;
        let mut outcomes = Vec::with_capacity(case_ids.len());
        for chunk in case_ids.chunks(CONSOLE_BATCH_CASES) {
            // A chunk is decided again, whole, if a device wrote one of its cases meanwhile.
            outcomes.extend(self.admitting(|| self.console_chunk(&console, chunk, now, &edit))?);
        }
        Ok(outcomes)
    }

    /// One transaction's worth of `console_changes`.
    #[allow(clippy::type_complexity)]
    fn console_chunk<T: Send>(
        &self,
        console: &ConsoleAuthor,
        chunk: &[String],
        now: i64,
        edit: &(impl Fn(
            &mut suivi_core::CaseDoc,
            &FormRegistry,
            &suivi_core::ChangeContext,
        ) -> suivi_core::Result<T>
              + Sync),
    ) -> Result<Vec<(String, Result<T, ServiceError>)>, ServiceError> {
        let valid: Vec<String> = chunk
            .iter()
            .filter(|id| valid_case_id(id))
            .cloned()
            .collect();
        let access = self.store.case_access(&valid)?;
        let share = chunk.len().div_ceil(CONSOLE_WORKERS).max(1);
        let done: Vec<Result<Vec<_>, ServiceError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = chunk
                .chunks(share)
                .map(|part| {
                    let access = &access;
                    scope.spawn(move || {
                        // Each case a whole budget, as if pushed alone; each worker keeps the
                        // agents it read.
                        let mut read = (HashMap::new(), HashSet::new());
                        part.iter()
                            .map(|case_id| {
                                let mut budget = OpsBudget {
                                    agents: std::mem::take(&mut read.0),
                                    teams_read: std::mem::take(&mut read.1),
                                    ..self.budget()
                                };
                                let checked = self.console_check(
                                    console,
                                    case_id,
                                    access.get(case_id),
                                    &mut budget,
                                    now,
                                    &mut |doc, forms, ctx| edit(doc, forms, ctx),
                                );
                                read = (budget.agents, budget.teams_read);
                                checked
                                    .map(|(outcome, checked)| (case_id.clone(), outcome, checked))
                            })
                            .collect::<Result<Vec<_>, ServiceError>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join().unwrap_or_else(|_| {
                        Err(ServiceError::Internal("a console worker panicked".into()))
                    })
                })
                .collect()
        });
        let mut outcomes = Vec::with_capacity(chunk.len());
        let mut checked_cases = Vec::new();
        for part in done {
            for (case_id, outcome, checked) in part? {
                outcomes.push((case_id, outcome));
                checked_cases.extend(checked);
            }
        }
        self.console_store(console, checked_cases, now)?;
        Ok(outcomes)
    }

    pub(super) fn console_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // One console change at a time on this instance: two made at once under one console
        // actor would both take the same sequence number and break the case's history.
        self.console_writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The device, actor and change context a console user's changes are written under.
    pub(super) fn console_author(
        &self,
        user: &User,
        now: i64,
    ) -> Result<ConsoleAuthor, ServiceError> {
        let actor = suivi_core::clock::new_actor();
        let device = self
            .store
            .console_device(&user.user_id, &actor.to_hex_string(), now)?;
        let actor = automerge::ActorId::from(
            hex::decode(&device.actor).map_err(|e| ServiceError::Internal(e.to_string()))?,
        );
        Ok(ConsoleAuthor {
            authed: AuthedDevice {
                device,
                user: user.clone(),
            },
            actor,
            ctx: suivi_core::ChangeContext {
                time: chrono::DateTime::from_timestamp(now, 0).unwrap_or_default(),
                ..suivi_core::ChangeContext::now(user.user_id.clone())
            },
        })
    }

    /// One case of a console edit: loaded as stored, edited under the console actor, checked as
    /// a push. The edit's outcome for the caller, and what to store if it wrote anything. Only
    /// a failing store is an error here.
    #[allow(clippy::type_complexity)]
    pub(super) fn console_check<T>(
        &self,
        console: &ConsoleAuthor,
        case_id: &str,
        existing: Option<&CaseAccess>,
        scratch: &mut OpsBudget,
        now: i64,
        edit: &mut dyn FnMut(
            &mut suivi_core::CaseDoc,
            &FormRegistry,
            &suivi_core::ChangeContext,
        ) -> suivi_core::Result<T>,
    ) -> Result<(Result<T, ServiceError>, Option<Checked>), ServiceError> {
        let not_found = || ServiceError::Forbidden(format!("no case {case_id} in your caseload"));
        // An erased case has no owner left: not found, like a case outside the scope.
        let existing = match existing {
            Some(a)
                if valid_case_id(case_id)
                    && self.write_mode(&console.authed.user, Some(a)).is_some() =>
            {
                a
            }
            _ => return Ok((Err(not_found()), None)),
        };
        // A stored case that does not parse (for `case check`) fails alone.
        let stored = match self.stored_changes(case_id) {
            Ok(stored) => stored,
            Err(e @ ServiceError::Storage(_)) => return Err(e),
            Err(e) => return Ok((Err(e), None)),
        };
        let mut doc = match CaseCheck::load(case_id, stored.clone()) {
            Ok(c) => suivi_core::CaseDoc::from_automerge(
                c.into_document().with_actor(console.actor.clone()),
            ),
            Err(e) => {
                let why = format!("stored case does not load: {e:?}");
                return Ok((Err(ServiceError::Internal(why)), None));
            }
        };
        let before = doc.heads();
        let out = match edit(&mut doc, &self.refresh_forms(), &console.ctx) {
            Ok(out) => out,
            Err(e) => return Ok((Err(ServiceError::BadRequest(e.to_string())), None)),
        };
        let changes = doc.changes_since(&before);
        if changes.is_empty() {
            return Ok((Ok(out), None));
        }
        let pushed = CaseChanges {
            case_id: case_id.to_string(),
            changes: changes
                .into_iter()
                .map(serde_bytes::ByteBuf::from)
                .collect(),
        };
        Ok(
            match self.check_case(
                &console.authed,
                &pushed,
                Some(existing),
                scratch,
                now,
                Some(stored),
            )? {
                Ok(Some(checked)) => (Ok(out), Some(checked)),
                Ok(None) => (Ok(out), None),
                Err((reason, detail)) => (
                    Err(ServiceError::BadRequest(format!(
                        "refused: {} {detail}",
                        reason.as_str()
                    ))),
                    None,
                ),
            },
        )
    }

    /// Stores checked console changes and the moves they make in one transaction (audited
    /// `console.change`). `Moved` if a device wrote one of the cases meanwhile.
    pub(super) fn console_store(
        &self,
        console: &ConsoleAuthor,
        checked: Vec<Checked>,
        now: i64,
    ) -> Result<(), ServiceError> {
        if checked.is_empty() {
            return Ok(());
        }
        let mut admitted = Admitted::default();
        for one in checked {
            admitted.add(one);
        }
        let subject = match admitted.cases.as_slice() {
            [one] => one.case_id.clone(),
            many => format!("{} cases", many.len()),
        };
        self.write_admitted(
            &console.authed,
            &admitted,
            Some(("console.change", &subject)),
            now,
        )?;
        Ok(())
    }

    /// The access of cases `by` may write from the console, each not erased; refused, naming
    /// the first that is not, as "not in your caseload" (ids reveal nothing more).
    fn writable_cases(
        &self,
        by: &User,
        ids: &[String],
    ) -> Result<HashMap<String, CaseAccess>, ServiceError> {
        let access = self.store.case_access(ids)?;
        for id in ids {
            let writable = access
                .get(id)
                .is_some_and(|a| self.write_mode(by, Some(a)) == Some(WriteMode::Write));
            if !writable || self.store.is_erased(id)? {
                return Err(ServiceError::Forbidden(format!(
                    "no case {id} in your caseload"
                )));
            }
        }
        Ok(access)
    }

    /// Merges two records of the same child, for a supervisor or admin who may write both:
    /// `merged` is marked as merged into `survivor` and becomes read-only everywhere, the
    /// survivor links it (and shows its referrals and visits), both written as console changes
    /// with their verified author. Whoever held one case now holds the other too, so every
    /// phone that shows either can follow the link. Audited as `console.merge`.
    pub fn merge_cases(
        &self,
        by: &User,
        survivor: &str,
        merged: &str,
        now: i64,
    ) -> Result<(), ServiceError> {
        if !matches!(by.role, Role::Supervisor | Role::Admin) {
            return Err(ServiceError::Forbidden(
                "supervisors and admins merge cases".into(),
            ));
        }
        if survivor == merged || !valid_case_id(survivor) || !valid_case_id(merged) {
            return Err(ServiceError::BadRequest("two different case ids".into()));
        }
        let access = self.writable_cases(by, &[survivor.to_string(), merged.to_string()])?;
        // The whole merge under the console lock: two merges of one pair at once (A into B,
        // B into A) would otherwise leave both cases merged away.
        let _one_at_a_time = self.console_lock();
        let state = |id: &str| -> Result<(Option<String>, Vec<String>), ServiceError> {
            let doc = self
                .case_document(id)?
                .ok_or_else(|| ServiceError::BadRequest(format!("case {id} does not load")))?;
            let read =
                || -> suivi_core::Result<_> { Ok((doc.merged_into()?, doc.merged_cases()?)) };
            read().map_err(|e| ServiceError::Internal(e.to_string()))
        };
        let (survivor_into, survivor_links) = state(survivor)?;
        let (merged_into, _) = state(merged)?;
        if survivor_into.is_some() {
            return Err(ServiceError::BadRequest(format!(
                "case {survivor} was merged away: it cannot survive"
            )));
        }
        // A merge stopped halfway (the merged side written, the survivor's link not) is
        // finished by making it again.
        match merged_into.as_deref() {
            None => self.console_change_locked(by, merged, now, |doc, _, ctx| {
                doc.merge_into(survivor, ctx)
            })?,
            Some(into) if into == survivor => {}
            Some(_) => {
                return Err(ServiceError::BadRequest(format!(
                    "case {merged} was already merged away"
                )))
            }
        }
        if !survivor_links.iter().any(|id| id == merged) {
            self.console_change_locked(by, survivor, now, |doc, _, ctx| {
                doc.link_merged_case(merged, ctx)
            })?;
        }
        let holders = |a: &CaseAccess| -> Vec<String> {
            std::iter::once(a.created_by.clone())
                .chain(a.assignees.iter().cloned())
                .collect()
        };
        if let (Some(a), Some(b)) = (access.get(survivor), access.get(merged)) {
            let (hold_a, hold_b) = (holders(a), holders(b));
            for user in hold_a.iter().filter(|u| !hold_b.contains(u)) {
                self.store.assign_case(merged, user, now)?;
            }
            for user in hold_b.iter().filter(|u| !hold_a.contains(u)) {
                self.store.assign_case(survivor, user, now)?;
            }
        }
        self.store.audit(
            now,
            &by.user_id,
            "console.merge",
            &format!("{merged} -> {survivor}"),
        )?;
        Ok(())
    }

    /// Undoes a merge made by mistake, within `MERGE_UNDO_DAYS` of it: `merged` is separated
    /// from the case it was merged into and may be edited again, the survivor's link removed,
    /// both as console changes with `by` as their verified author. Nothing recorded in either
    /// case is lost or moved; whoever was given the other case by the merge keeps it. Returns
    /// the survivor.
    pub fn unmerge_case(&self, by: &User, merged: &str, now: i64) -> Result<String, ServiceError> {
        if !matches!(by.role, Role::Supervisor | Role::Admin) {
            return Err(ServiceError::Forbidden(
                "supervisors and admins undo merges".into(),
            ));
        }
        if !valid_case_id(merged) {
            return Err(ServiceError::BadRequest("a case id".into()));
        }
        let _one_at_a_time = self.console_lock();
        let mut doc = self
            .case_document(merged)?
            .ok_or_else(|| ServiceError::Forbidden(format!("no case {merged} in your caseload")))?;
        let into = doc
            .merged_into()
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .ok_or_else(|| ServiceError::BadRequest(format!("case {merged} is not merged")))?;
        let merged_at = doc
            .merge_change()
            .map(|(_, at)| at.timestamp())
            .ok_or_else(|| ServiceError::Internal(format!("case {merged}: no merge change")))?;
        if now - merged_at > suivi_core::case_doc::MERGE_UNDO_DAYS * 86_400 {
            return Err(ServiceError::BadRequest(format!(
                "merged more than {} days ago",
                suivi_core::case_doc::MERGE_UNDO_DAYS
            )));
        }
        self.writable_cases(by, &[merged.to_string(), into.clone()])?;
        // The survivor's link first: an undo stopped halfway leaves the case still merged, and
        // asking again finishes it (the link already gone is no change).
        let linked = self
            .case_document(&into)?
            .map(|survivor| survivor.merged_cases().unwrap_or_default())
            .unwrap_or_default();
        if linked.iter().any(|id| id == merged) {
            self.console_change_locked(by, &into, now, |doc, _, ctx| {
                doc.unlink_merged_case(merged, ctx).map(|_| ())
            })?;
        }
        self.console_change_locked(by, merged, now, |doc, _, ctx| doc.unmerge(ctx).map(|_| ()))?;
        self.store.audit(
            now,
            &by.user_id,
            "console.unmerge",
            &format!("{merged} -/> {into}"),
        )?;
        Ok(into)
    }

    /// Moves cases to the agent `to`, from the console or an admin's command: only cases `by`
    /// may write, only to an agent of their team (a supervisor: of its own team). The former
    /// owner's phones push what they recorded for `REASSIGN_GRACE_SECS`, and remove the case.
    /// Returns the cases moved.
    pub fn reassign(
        &self,
        by: &User,
        case_ids: &[String],
        to: &str,
        now: i64,
    ) -> Result<Vec<String>, ServiceError> {
        let to = self
            .store
            .user(to)?
            .filter(|u| u.role == Role::Agent)
            .ok_or_else(|| ServiceError::BadRequest(format!("{to} is not an agent")))?;
        if by.role == Role::Supervisor && to.team != by.team {
            return Err(ServiceError::Forbidden(format!(
                "{} is not in your team",
                to.user_id
            )));
        }
        if !matches!(by.role, Role::Supervisor | Role::Admin) {
            return Err(ServiceError::Forbidden(
                "supervisors and admins reassign cases".into(),
            ));
        }
        // The cases `by` may write that are not `to`'s yet, in `to`'s team: what moves.
        let mut permitted = Vec::with_capacity(case_ids.len());
        for chunk in case_ids.chunks(500) {
            let access = self.store.case_access(chunk)?;
            permitted.extend(
                chunk
                    .iter()
                    .filter(|id| {
                        access.get(id.as_str()).is_some_and(|a| {
                            self.write_mode(by, Some(a)) == Some(WriteMode::Write)
                                && a.created_by != to.user_id
                                && a.team == to.team
                        })
                    })
                    .cloned(),
            );
        }
        // A console user writes the reassignment into each case, which moves it (so one made
        // at the same time on a supervisor's phone shows as a conflict); the server's own
        // command, acting as no registered user, moves ownership only.
        let mut left = permitted.clone();
        if self.store.user(&by.user_id)?.is_some() {
            let to_id = to.user_id.clone();
            let outcomes = self.console_changes(by, &permitted, now, |doc, _, ctx| {
                // A merged-away case stays with the survivor's record, read-only.
                if let Some(into) = doc.merged_into()? {
                    return Err(suivi_core::Error::CaseMerged {
                        case_id: doc.case_id()?,
                        into,
                    });
                }
                doc.assign_to(&to_id, ctx)
            })?;
            left.clear();
            let mut refused = HashSet::new();
            for (case_id, outcome) in outcomes {
                match outcome {
                    // Written, so moved as the change was stored.
                    Ok(true) => {}
                    // Given to `to` in the document already: ownership follows.
                    Ok(false) => left.push(case_id),
                    // A stored case that does not load (`case check` finds it) still moves.
                    Err(e @ ServiceError::Internal(_)) => {
                        tracing::warn!(case = %case_id, error = %e, "moved without writing the case");
                        left.push(case_id);
                    }
                    Err(e) => {
                        tracing::info!(case = %case_id, error = %e, "not reassigned");
                        refused.insert(case_id);
                    }
                }
            }
            permitted.retain(|id| !refused.contains(id));
        }
        // Whatever the documents did not move (given to `to` before, or not written).
        for chunk in left.chunks(500) {
            self.store
                .reassign_cases(chunk, &to, &by.user_id, now, now + REASSIGN_GRACE_SECS)?;
        }
        Ok(permitted)
    }
}

/// Who a console user's changes are written as: the console device, its actor, the time.
pub(super) struct ConsoleAuthor {
    pub(super) authed: AuthedDevice,
    pub(super) actor: automerge::ActorId,
    pub(super) ctx: suivi_core::ChangeContext,
}
