//! Admission's decision, pure: from what was read about a case (its facts) and the changes
//! written to it, what to store and what follows, or why not. No store and no clock here (the
//! time is given), so every rule is unit-tested without a database; `admission` reads the
//! facts before and writes the plan after.

use super::*;

/// What admission read about one case before deciding, and nothing after.
#[derive(Debug, Default, Clone)]
pub(super) struct CaseFacts {
    pub(super) existing: Option<CaseAccess>,
    /// `Some(proven)` when the case was erased; `proven`: the audit log holds its erasure.
    pub(super) erased: Option<bool>,
    /// The user is a former owner still in its handover (read when the policy gives it no
    /// write mode).
    pub(super) in_handover: bool,
    pub(super) quarantined: bool,
    /// Hashes the server holds among the written changes and their dependencies (all the
    /// stored ones when the history was read first).
    pub(super) known: HashSet<String>,
    /// The stored history, parsed: read when some written change is new to the server.
    pub(super) stored: Vec<Change>,
}

/// A case that passed every check: what to store, the agent its changes gave it to, and how
/// many changes the server held when it was decided (the write is refused if that moved).
#[derive(Debug)]
pub(super) struct Checked {
    pub(super) case: AcceptedCase,
    pub(super) reassigned: Option<User>,
    pub(super) held: u64,
}

/// One case's decision: `Ok(None)` when the server holds all of it already.
pub(super) type Decided = Result<Option<Checked>, (RefusalReason, String)>;

/// What a user may do to a case, from its envelope alone (who owns it).
pub(super) fn write_mode(user: &User, existing: Option<&CaseAccess>) -> Option<WriteMode> {
    policy::write_mode(
        &user.subject(),
        existing.map(CaseAccess::ownership).as_ref(),
    )
}

/// Whether a user writes a held case only as its former owner, in the handover: its phones
/// are told to remove the case again once the write is stored.
pub(super) fn writes_in_handover(user: &User, existing: Option<&CaseAccess>) -> bool {
    existing.is_some() && write_mode(user, existing).is_none()
}

/// The first gate every written case passes, whichever way it came: not erased (an erasure the
/// audit log never recorded sets the case aside instead), a write mode for this user (a former
/// owner in its handover included), and not quarantined, in that order: a device that may not
/// write a case is not told it is set aside either.
pub(super) fn gate(user: &User, facts: &CaseFacts) -> Result<WriteMode, (RefusalReason, String)> {
    if let Some(proven) = facts.erased {
        // An erased case has no owner left, so it would read as new; one whose erasure was not
        // made by `case erase` is set aside on the phone, never deleted.
        let reason = if proven {
            RefusalReason::Erased
        } else {
            RefusalReason::Quarantined
        };
        return Err((reason, String::new()));
    }
    let mode = match write_mode(user, facts.existing.as_ref()) {
        Some(mode) => mode,
        // A case reassigned away: what the former owner's phones recorded before they heard of
        // it is still accepted, for a grace period (it had the right when it wrote it).
        None if facts.existing.is_some() && facts.in_handover => WriteMode::Write,
        None => return Err((RefusalReason::Forbidden, String::new())),
    };
    if facts.existing.is_some() && facts.quarantined {
        return Err((RefusalReason::Quarantined, String::new()));
    }
    Ok(mode)
}

/// The whole decision on one pushed case: its envelope (`sent` changes, of which `parsed`
/// are what parsing them gave), the gate, then `admit`.
pub(super) fn decide_case(
    device: &AuthedDevice,
    case_id: &str,
    facts: CaseFacts,
    sent: usize,
    parsed: Result<Vec<Change>, (RefusalReason, String)>,
    budget: &mut OpsBudget,
    now: i64,
) -> Decided {
    // A push this large is refused by its envelope (an erased case hears that it is erased).
    if sent > protocol::PUSH_CHANGES_PER_CASE_MAX && facts.erased.is_none() {
        return Err((RefusalReason::TooManyChanges, String::new()));
    }
    let mode = gate(&device.user, &facts)?;
    admit(device, case_id, facts, mode, parsed?, budget, now)
}

/// The decision on a case's parsed changes once `gate` let them through, in the order given:
/// those the server holds are skipped; the rest must be the device's own, follow what the
/// server holds, fit the request's operation budget, and pass the case rules on the server's
/// copy.
pub(super) fn admit(
    device: &AuthedDevice,
    case_id: &str,
    facts: CaseFacts,
    mode: WriteMode,
    parsed: Vec<Change>,
    budget: &mut OpsBudget,
    now: i64,
) -> Decided {
    let mut have = facts.known;
    let mut fresh = Vec::new();
    for change in parsed {
        let hash = change.hash().to_string();
        if have.contains(&hash) {
            continue;
        }
        if change.actor_id().to_hex_string() != device.device.actor {
            return Err((RefusalReason::WrongActor, String::new()));
        }
        if !change.deps().iter().all(|d| have.contains(&d.to_string())) {
            return Err((RefusalReason::MissingDeps, String::new()));
        }
        have.insert(hash);
        fresh.push(change);
    }
    if fresh.is_empty() {
        return Ok(None);
    }
    let raw: Vec<(String, Vec<u8>)> = fresh
        .iter()
        .map(|c| (c.hash().to_string(), c.raw_bytes().to_vec()))
        .collect();
    let stored = facts.stored;
    let ops = stored.iter().chain(&fresh).map(Change::len).sum();
    budget.take(ops)?;
    let held = stored.len() as u64;
    let change_count = held + fresh.len() as u64;
    let team = facts
        .existing
        .as_ref()
        .map_or(device.user.team.as_str(), |a| a.team.as_str());
    let (checked, reassigned) =
        validate(device, (case_id, team, now), stored, mode, fresh, budget)?;
    Ok(Some(Checked {
        case: AcceptedCase {
            case_id: case_id.to_string(),
            new_case: facts
                .existing
                .is_none()
                .then(|| (device.user.user_id.clone(), device.user.team.clone())),
            changes: raw,
            summary: summary::summarize(checked, change_count, &budget.forms, &budget.settings),
        },
        reassigned,
        held,
    }))
}

/// Applies new changes to the server's copy of the case (rebuilt from `stored`) and runs the
/// layout rules: the checked document, for its projection, and the agent the changes gave the
/// case to, if they reassigned it (an agent of the case's `team` among those read, or a
/// refusal).
pub(super) fn validate(
    device: &AuthedDevice,
    (case_id, team, now): (&str, &str, i64),
    stored: Vec<Change>,
    mode: WriteMode,
    fresh: Vec<Change>,
    budget: &OpsBudget,
) -> Result<(AutoCommit, Option<User>), (RefusalReason, String)> {
    let Ok(mut copy) = CaseCheck::load(case_id, stored) else {
        return Err((
            RefusalReason::Quarantined,
            "stored history fails validation".to_string(),
        ));
    };
    let before = suivi_core::case_doc::single_assignee(copy.document());
    let role = device.user.role;
    let author = Author {
        user: &device.user.user_id,
        audit_notes_only: mode == WriteMode::AuditNotesOnly,
        // Merge links are written by the server for a supervisor in the console, never pushed
        // by a phone.
        links_cases: device.device.device_id == console_device_id(&device.user.user_id)
            && matches!(role, Role::Supervisor | Role::Admin),
        // A supervisor reassigns the cases of their own team only (one assigned to them from
        // elsewhere, they may edit but not give away).
        supervises: mode == WriteMode::Write
            && (role == Role::Admin || (role == Role::Supervisor && device.user.team == team)),
    };
    // A phone's change is checked against its own dependencies, which a hostile phone chooses:
    // a merged-away case takes changes "made without knowing of the merge" only for the grace
    // a reassigned case gets, then nothing but the console's.
    if !author.links_cases {
        if let Some(at) = copy.merged_at() {
            if now > at.timestamp().saturating_add(REASSIGN_GRACE_SECS) {
                return Err((RefusalReason::Forbidden, "merged_into".to_string()));
            }
        }
    }
    copy.apply(fresh, author, &budget.forms)
        .map_err(|e| refusal_of(&e))?;
    let doc = copy.into_document();
    let after = suivi_core::case_doc::single_assignee(&doc);
    let reassigned = match after {
        Some(agent) if Some(&agent) != before.as_ref() => match budget.agents.get(&agent) {
            Some(user) if user.role == Role::Agent && user.team == team => Some(user.clone()),
            _ => {
                return Err((
                    RefusalReason::Forbidden,
                    "assigned_to: not an agent of the case's team".to_string(),
                ))
            }
        },
        _ => None,
    };
    Ok((doc, reassigned))
}

/// A case the push names, with what was read about it, waiting for its decision.
pub(super) struct PushedCase<'a> {
    pub(super) case: &'a CaseChanges,
    pub(super) parsed: Result<Vec<Change>, (RefusalReason, String)>,
    pub(super) facts: CaseFacts,
}

/// Decides a whole push, case by case in its order, from what was read: the plan of what to
/// store, what to refuse and why, which cases move to another agent and which removals follow.
pub(super) fn decide_push(
    device: &AuthedDevice,
    cases: Vec<Result<PushedCase<'_>, Refusal>>,
    mut allowance: Allowance,
    budget: &mut OpsBudget,
    now: i64,
) -> PushPlan {
    let mut plan = PushPlan::default();
    for pushed in cases {
        let pushed = match pushed {
            Ok(pushed) => pushed,
            Err(refusal) => {
                plan.refused.push(refusal);
                continue;
            }
        };
        let case_id = pushed.case.case_id.clone();
        let handing_over = writes_in_handover(&device.user, pushed.facts.existing.as_ref());
        let decided = decide_case(
            device,
            &case_id,
            pushed.facts,
            pushed.case.changes.len(),
            pushed.parsed,
            budget,
            now,
        )
        .and_then(|checked| match checked {
            Some(checked) => allowance.take(&checked.case).map(|()| Some(checked)),
            None => Ok(None),
        });
        match decided {
            Ok(checked) => {
                plan.accepted.push(case_id.clone());
                if handing_over {
                    // A former owner's phone in its handover: told to remove the case again
                    // once this push is through (it kept the case for the work it sends now).
                    plan.admitted
                        .removals
                        .push((device.user.user_id.clone(), case_id));
                }
                if let Some(checked) = checked {
                    plan.admitted.add(checked);
                }
            }
            Err((reason, detail)) => plan.refused.push(Refusal::new(&case_id, reason, &detail)),
        }
    }
    plan
}

/// What admission writes in one transaction.
#[derive(Debug, Default)]
pub(super) struct Admitted {
    pub(super) cases: Vec<AcceptedCase>,
    /// (case, changes held when decided), for each case in `cases`.
    pub(super) held: Vec<(String, u64)>,
    /// Cases the changes gave to another agent.
    pub(super) moves: Vec<(String, User)>,
    /// (user, case): removals a handover owes.
    pub(super) removals: Vec<(String, String)>,
}

impl Admitted {
    pub(super) fn add(&mut self, checked: Checked) {
        let case_id = checked.case.case_id.clone();
        self.held.push((case_id.clone(), checked.held));
        if let Some(to) = checked.reassigned {
            self.moves.push((case_id, to));
        }
        self.cases.push(checked.case);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.cases.is_empty() && self.removals.is_empty()
    }
}

/// What a push leads to: what to write, and per case, accepted or refused.
#[derive(Debug, Default)]
pub(super) struct PushPlan {
    pub(super) admitted: Admitted,
    pub(super) accepted: Vec<String>,
    pub(super) refused: Vec<Refusal>,
}

/// The decision without a database: facts written by hand, changes made by a real case
/// document, every rule's answer checked.
#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
mod tests {
    use super::*;
    use automerge::ActorId;
    use suivi_core::forms::IDENTIFICATION;
    use suivi_core::{CaseDoc, ChangeContext};

    const CASE: &str = "0123456789abcdef0123456789abcdef";

    fn device(user: &str, role: Role, team: &str, actor: &ActorId) -> AuthedDevice {
        AuthedDevice {
            device: Device {
                device_id: format!("dev-{user}"),
                user_id: user.into(),
                actor: actor.to_hex_string(),
                name: "phone".into(),
                token_hash: String::new(),
                revoked: false,
                wiped: false,
            },
            user: User::new(user, role, team),
        }
    }

    fn owned_by(user: &str, team: &str) -> CaseAccess {
        CaseAccess {
            created_by: user.into(),
            team: team.into(),
            assignees: Vec::new(),
        }
    }

    /// A new case made by `actor`'s phone for `user`: its changes.
    fn new_case(actor: &ActorId, user: &str) -> (CaseDoc, Vec<Change>) {
        let forms = FormRegistry::builtin();
        let child = crate::service::tests::awa();
        let mut doc = CaseDoc::create(
            CASE,
            actor.clone(),
            forms.latest(IDENTIFICATION).unwrap(),
            &child,
            &ChangeContext::now(user),
        )
        .unwrap();
        let changes = parsed(doc.changes_since(&[]));
        (doc, changes)
    }

    fn parsed(raw: Vec<Vec<u8>>) -> Vec<Change> {
        raw.into_iter()
            .map(|r| Change::from_bytes(r).unwrap())
            .collect()
    }

    fn budget(agents: &[User]) -> OpsBudget {
        let mut budget = OpsBudget::new(Arc::new(FormRegistry::builtin()));
        for a in agents {
            budget.agents.insert(a.user_id.clone(), a.clone());
        }
        budget
    }

    fn reason(decided: Decided) -> RefusalReason {
        decided.unwrap_err().0
    }

    /// Erased first (proven or not), then access, then the quarantine: a device that may not
    /// write a case never learns it is set aside; a former owner in its handover writes.
    #[test]
    fn the_gate_answers_in_its_order() {
        let amina = User::new("amina", Role::Agent, "sikasso");
        let karim = User::new("karim", Role::Agent, "sikasso");
        let held = |facts: CaseFacts| CaseFacts {
            existing: Some(owned_by("amina", "sikasso")),
            ..facts
        };
        let erased = |proven| {
            held(CaseFacts {
                erased: Some(proven),
                ..CaseFacts::default()
            })
        };
        assert_eq!(
            gate(&amina, &erased(true)).unwrap_err().0,
            RefusalReason::Erased
        );
        assert_eq!(
            gate(&amina, &erased(false)).unwrap_err().0,
            RefusalReason::Quarantined
        );
        let aside = held(CaseFacts {
            quarantined: true,
            ..CaseFacts::default()
        });
        assert_eq!(
            gate(&amina, &aside).unwrap_err().0,
            RefusalReason::Quarantined
        );
        assert_eq!(
            gate(&karim, &aside).unwrap_err().0,
            RefusalReason::Forbidden
        );
        let handover = held(CaseFacts {
            in_handover: true,
            ..CaseFacts::default()
        });
        assert_eq!(gate(&karim, &handover).unwrap(), WriteMode::Write);
        assert!(writes_in_handover(&karim, handover.existing.as_ref()));
        assert!(!writes_in_handover(&amina, handover.existing.as_ref()));
        let officer = User::new("omar", Role::Officer, "project");
        assert_eq!(
            gate(&officer, &held(CaseFacts::default())).unwrap(),
            WriteMode::AuditNotesOnly
        );
        assert_eq!(
            gate(&officer, &CaseFacts::default()).unwrap_err().0,
            RefusalReason::Forbidden,
            "an officer creates no case"
        );
    }

    /// A new case from its author's phone is admitted with nothing held; the same changes from
    /// another actor, or missing what they build on, or already held, are not.
    #[test]
    fn admission_takes_only_the_devices_own_new_changes_that_follow_what_is_held() {
        let actor = ActorId::from([1u8; 16]);
        let amina = device("amina", Role::Agent, "sikasso", &actor);
        let (mut doc, changes) = new_case(&actor, "amina");

        let checked = decide_case(
            &amina,
            CASE,
            CaseFacts::default(),
            changes.len(),
            Ok(changes.clone()),
            &mut budget(&[]),
            0,
        )
        .unwrap()
        .unwrap();
        assert_eq!(checked.held, 0);
        assert_eq!(
            checked.case.new_case,
            Some(("amina".into(), "sikasso".into()))
        );
        assert_eq!(checked.case.changes.len(), changes.len());
        assert!(
            checked.case.summary.is_some(),
            "the projection comes with it"
        );
        assert!(checked.reassigned.is_none());

        let thief = device("amina", Role::Agent, "sikasso", &ActorId::from([2u8; 16]));
        let decided = decide_case(
            &thief,
            CASE,
            CaseFacts::default(),
            changes.len(),
            Ok(changes.clone()),
            &mut budget(&[]),
            0,
        );
        assert_eq!(reason(decided), RefusalReason::WrongActor);

        // An edit whose base the server does not hold.
        let before = doc.heads();
        doc.edit_identification(
            &FormRegistry::builtin(),
            &serde_json::from_value(serde_json::json!({"village": "Zégoua"})).unwrap(),
            &ChangeContext::now("amina"),
        )
        .unwrap();
        let edit = parsed(doc.changes_since(&before));
        let held = || CaseFacts {
            existing: Some(owned_by("amina", "sikasso")),
            ..CaseFacts::default()
        };
        let decided = decide_case(
            &amina,
            CASE,
            held(),
            1,
            Ok(edit.clone()),
            &mut budget(&[]),
            0,
        );
        assert_eq!(reason(decided), RefusalReason::MissingDeps);

        // With the history held, the edit is admitted on top of it; sent again, nothing is new.
        let stored = CaseFacts {
            known: changes.iter().map(|c| c.hash().to_string()).collect(),
            stored: changes.clone(),
            ..held()
        };
        let checked = decide_case(
            &amina,
            CASE,
            stored.clone(),
            1,
            Ok(edit.clone()),
            &mut budget(&[]),
            0,
        )
        .unwrap()
        .unwrap();
        assert_eq!(checked.held, changes.len() as u64);
        assert_eq!(checked.case.new_case, None);
        let all_known = CaseFacts {
            known: stored
                .known
                .iter()
                .cloned()
                .chain(edit.iter().map(|c| c.hash().to_string()))
                .collect(),
            ..stored
        };
        assert!(
            decide_case(&amina, CASE, all_known, 1, Ok(edit), &mut budget(&[]), 0)
                .unwrap()
                .is_none()
        );
    }

    /// The envelope is read before anything: past the per-case limit a push is refused even
    /// for a device that may not write the case; an erased case says it is erased.
    #[test]
    fn the_envelope_limit_comes_first_but_an_erasure_wins() {
        let actor = ActorId::from([1u8; 16]);
        let karim = device("karim", Role::Agent, "sikasso", &actor);
        let too_many = protocol::PUSH_CHANGES_PER_CASE_MAX + 1;
        let forbidden = CaseFacts {
            existing: Some(owned_by("amina", "sikasso")),
            ..CaseFacts::default()
        };
        let refused = |facts| {
            reason(decide_case(
                &karim,
                CASE,
                facts,
                too_many,
                Err((RefusalReason::TooManyChanges, String::new())),
                &mut budget(&[]),
                0,
            ))
        };
        assert_eq!(refused(forbidden.clone()), RefusalReason::TooManyChanges);
        assert_eq!(
            refused(CaseFacts {
                erased: Some(true),
                ..forbidden
            }),
            RefusalReason::Erased
        );
    }

    /// A supervisor's reassignment names the agent the case moves to, checked against the
    /// agents read for the request: another team's agent, or no agent read, is refused.
    #[test]
    fn a_reassignment_moves_the_case_only_to_an_agent_of_its_team() {
        let amina_actor = ActorId::from([1u8; 16]);
        let (mut doc, changes) = new_case(&amina_actor, "amina");
        let fatima_actor = ActorId::from([3u8; 16]);
        let fatima = device("fatima", Role::Supervisor, "sikasso", &fatima_actor);
        let mut phone = CaseDoc::empty(fatima_actor);
        phone.apply_changes(&doc.changes_since(&[])).unwrap();
        let before = phone.heads();
        phone
            .assign_to("karim", &ChangeContext::now("fatima"))
            .unwrap();
        let reassign = parsed(phone.changes_since(&before));
        let facts = CaseFacts {
            existing: Some(owned_by("amina", "sikasso")),
            known: changes.iter().map(|c| c.hash().to_string()).collect(),
            stored: changes,
            ..CaseFacts::default()
        };
        let decide = |agents: &[User]| {
            decide_case(
                &fatima,
                CASE,
                facts.clone(),
                1,
                Ok(reassign.clone()),
                &mut budget(agents),
                0,
            )
        };
        let karim = User::new("karim", Role::Agent, "sikasso");
        let checked = decide(std::slice::from_ref(&karim)).unwrap().unwrap();
        assert_eq!(checked.reassigned, Some(karim));
        assert_eq!(
            reason(decide(&[User::new("karim", Role::Agent, "souk-sebt")])),
            RefusalReason::Forbidden
        );
        assert_eq!(reason(decide(&[])), RefusalReason::Forbidden);
    }

    /// A push's plan: a repeated or bad id refused as malformed, a handover's removal owed,
    /// and the day's allowance spent case by case (what passes it no longer refused later).
    #[test]
    fn a_push_plan_refuses_bad_ids_owes_handover_removals_and_spends_the_allowance() {
        let actor = ActorId::from([1u8; 16]);
        let karim = device("karim", Role::Agent, "sikasso", &actor);
        let (_doc, changes) = new_case(&actor, "karim");
        let raw: Vec<serde_bytes::ByteBuf> = changes
            .iter()
            .map(|c| serde_bytes::ByteBuf::from(c.raw_bytes().to_vec()))
            .collect();
        let pushed = CaseChanges {
            case_id: CASE.into(),
            changes: raw.clone(),
        };
        let moved_away = CaseChanges {
            case_id: "f".repeat(32),
            changes: Vec::new(),
        };
        let plan = |allowance: Allowance| {
            decide_push(
                &karim,
                vec![
                    Ok(PushedCase {
                        case: &pushed,
                        parsed: Ok(changes.clone()),
                        facts: CaseFacts::default(),
                    }),
                    Err(Refusal::new(CASE, RefusalReason::Malformed, "case id")),
                    Ok(PushedCase {
                        case: &moved_away,
                        parsed: Ok(Vec::new()),
                        facts: CaseFacts {
                            existing: Some(owned_by("amina", "sikasso")),
                            in_handover: true,
                            ..CaseFacts::default()
                        },
                    }),
                ],
                allowance,
                &mut budget(&[]),
                0,
            )
        };
        let roomy = Allowance {
            quota: DEFAULT_QUOTA,
            used: Usage::default(),
        };
        let planned = plan(roomy);
        assert_eq!(planned.accepted, vec![CASE.to_string(), "f".repeat(32)]);
        assert_eq!(planned.refused.len(), 1);
        assert_eq!(planned.admitted.cases.len(), 1);
        assert_eq!(planned.admitted.held, vec![(CASE.to_string(), 0)]);
        assert_eq!(
            planned.admitted.removals,
            vec![("karim".to_string(), "f".repeat(32))]
        );
        let spent = Allowance {
            quota: Quota {
                new_cases_per_day: 0,
                ..DEFAULT_QUOTA
            },
            used: Usage::default(),
        };
        let planned = plan(spent);
        assert_eq!(planned.admitted.cases.len(), 0);
        assert_eq!(planned.refused[0].reason, RefusalReason::QuotaExceeded);
        assert_eq!(planned.refused[0].case_id, CASE);
        assert_eq!(planned.accepted, vec!["f".repeat(32)]);
    }
}
