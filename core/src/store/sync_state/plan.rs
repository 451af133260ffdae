//! What one page of a sync commits, decided from the push and the server's response alone:
//! the session builds the plan (pure: no store, unit-tested here), the store applies it in one
//! transaction (`Store::commit_page`). A page today; a frame once sync streams.

use automerge::ChangeHash;

use crate::protocol::{
    self, FormUpdate, OwnChange, PulledCase, Refusal, RefusalReason, SyncResponse,
};
use crate::store::SyncState;

use super::Pushed;

/// A pushed case the server accepted: what this phone now knows the server holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Acknowledged {
    pub(crate) case_id: String,
    pub(crate) heads: SyncedHeads,
    /// What the case becomes unless it was saved again while the request was out.
    pub(crate) state: SyncState,
    /// The save count the push was gathered at (`case_sync.edits`).
    pub(crate) edits: i64,
    pub(crate) changes: usize,
}

/// The heads recorded as held by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyncedHeads {
    /// The case's heads when it was pushed: the server holds all of it.
    Exactly(Vec<ChangeHash>),
    /// Only part of the case went (a push cut at the per-case limit): these changes are added
    /// to what the server was known to hold, and the case stays pending for the rest.
    Adding(Vec<ChangeHash>),
}

/// What a refusal does on this phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnRefusal {
    /// The server lacks the case's history: the per-document fallback, after the pages.
    Fallback,
    /// Erased on the server while this phone held it: deleted here too.
    EraseHere,
    /// Kept pending with why, tried again at the next sync.
    RetryLater,
    /// Never granted to this user: leaves the phone unless it holds work written here.
    LeaveUnlessOwnWork,
    /// Set aside with why, never deleted (it may hold this phone's offline work).
    SetAside,
}

/// One page's commit.
#[derive(Debug)]
pub(crate) struct PagePlan<'a> {
    pub(crate) forms: &'a [FormUpdate],
    /// Where the forms feed now stands (a server of version 5 or later says).
    pub(crate) forms_cursor: Option<u64>,
    /// The programme's outcome settings, when the server sent newer ones (version 9 on).
    pub(crate) settings: Option<&'a crate::outcome::OutcomeSettings>,
    pub(crate) acknowledged: Vec<Acknowledged>,
    pub(crate) refusals: Vec<(&'a Refusal, OnRefusal)>,
    /// The server does not hold the history this phone read: every case is pushed again.
    pub(crate) reset: bool,
    pub(crate) pulled: &'a [PulledCase],
    /// Cases sent whole as one document each (version 7 on).
    pub(crate) documents: &'a [protocol::PulledDocument],
    pub(crate) authors: &'a [protocol::Author],
    pub(crate) own: &'a [OwnChange],
    pub(crate) erased: &'a [String],
    pub(crate) erasures_cursor: u64,
    pub(crate) removed: &'a [String],
    /// Where the removals feed now stands (a server of version 4 or later says).
    pub(crate) removals_cursor: Option<u64>,
    pub(crate) cursor: u64,
    pub(crate) mark: &'a [u8],
    /// Whether the page moves this phone's feed positions (cursor, mark, erasures, removals):
    /// not for cases fetched by id ahead of the stream.
    pub(crate) moves_positions: bool,
    /// Cases for the per-document fallback, and cases kept for a later sync, in order.
    pub(crate) fallback: Vec<String>,
    pub(crate) later: Vec<String>,
}

impl PagePlan<'_> {
    /// Whether the page deletes anything here (the store then checkpoints its log, so old
    /// page images do not linger).
    pub(crate) fn erases(&self) -> bool {
        !self.erased.is_empty()
            || self
                .refusals
                .iter()
                .any(|(_, on)| *on == OnRefusal::EraseHere)
    }
}

/// Plans one page: `pushed`, what the request carried; `reset_before`, whether the server
/// already said this sync that it lost this phone's history (a case may then hold another
/// device's change the server lost, which this phone cannot push for it).
pub(crate) fn plan_page<'a>(
    pushed: &[Pushed],
    response: &'a SyncResponse,
    reset_before: bool,
) -> PagePlan<'a> {
    let acknowledged = pushed
        .iter()
        .filter(|p| response.accepted.contains(&p.case_id))
        .map(|p| {
            let whole = p.changes.len() < protocol::PUSH_CHANGES_PER_CASE_MAX;
            Acknowledged {
                case_id: p.case_id.clone(),
                heads: if whole {
                    SyncedHeads::Exactly(p.heads.clone())
                } else {
                    SyncedHeads::Adding(p.hashes.clone())
                },
                state: if whole {
                    SyncState::Clean
                } else {
                    SyncState::Pending
                },
                edits: p.edits,
                changes: p.changes.len(),
            }
        })
        .collect();
    let mut fallback: Vec<String> = Vec::new();
    let mut later: Vec<String> = Vec::new();
    let refusals = response
        .refused
        .iter()
        .map(|refusal| {
            let on = match refusal.reason {
                RefusalReason::MissingDeps => OnRefusal::Fallback,
                RefusalReason::Erased => OnRefusal::EraseHere,
                reason
                    if reason.is_retryable()
                        || (reset_before && reason == RefusalReason::WrongActor) =>
                {
                    OnRefusal::RetryLater
                }
                // "Forbidden" with no detail: the server never granted this case to this
                // user (a detail names a rule the case broke, as a merged case's).
                RefusalReason::Forbidden if refusal.detail.is_empty() => {
                    OnRefusal::LeaveUnlessOwnWork
                }
                _ => OnRefusal::SetAside,
            };
            let list = match on {
                OnRefusal::Fallback => Some(&mut fallback),
                OnRefusal::RetryLater => Some(&mut later),
                _ => None,
            };
            if let Some(list) = list {
                if !list.contains(&refusal.case_id) {
                    list.push(refusal.case_id.clone());
                }
            }
            (refusal, on)
        })
        .collect();
    PagePlan {
        forms: &response.forms,
        forms_cursor: (response.version >= 5).then_some(response.forms_cursor),
        settings: response.settings.iter().max_by_key(|s| s.version),
        acknowledged,
        refusals,
        reset: response.reset,
        pulled: &response.pull,
        documents: &response.documents,
        authors: &response.authors,
        own: &response.own,
        erased: &response.erased,
        erasures_cursor: response.erasures_cursor,
        removed: &response.removed,
        removals_cursor: (response.version >= 4).then_some(response.removals_cursor),
        cursor: response.cursor,
        mark: &response.mark,
        moves_positions: true,
        fallback,
        later,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a panic is the failure report.
mod tests {
    use super::*;

    fn pushed(case_id: &str, changes: usize) -> Pushed {
        Pushed {
            case_id: case_id.into(),
            changes: vec![vec![0u8]; changes],
            hashes: vec![ChangeHash([changes as u8; 32])],
            heads: vec![ChangeHash([9; 32])],
            edits: 3,
        }
    }

    fn refusal(case_id: &str, reason: RefusalReason, detail: &str) -> Refusal {
        Refusal::new(case_id, reason, detail)
    }

    fn response(version: u16) -> SyncResponse {
        SyncResponse {
            version,
            ..SyncResponse::nothing_new(0, 0)
        }
    }

    /// An accepted case records the heads it was pushed at and becomes clean; one cut at the
    /// per-case limit adds what went and stays pending; a case not accepted is not touched.
    #[test]
    fn accepted_cases_record_what_the_server_holds() {
        let limit = protocol::PUSH_CHANGES_PER_CASE_MAX;
        let mut page = response(protocol::PROTOCOL_VERSION);
        page.accepted = vec!["a".into(), "b".into()];
        let plan = plan_page(
            &[pushed("a", 2), pushed("b", limit), pushed("c", 1)],
            &page,
            false,
        );
        assert_eq!(
            plan.acknowledged,
            vec![
                Acknowledged {
                    case_id: "a".into(),
                    heads: SyncedHeads::Exactly(vec![ChangeHash([9; 32])]),
                    state: SyncState::Clean,
                    edits: 3,
                    changes: 2,
                },
                Acknowledged {
                    case_id: "b".into(),
                    heads: SyncedHeads::Adding(vec![ChangeHash([limit as u8; 32])]),
                    state: SyncState::Pending,
                    edits: 3,
                    changes: limit,
                },
            ]
        );
    }

    /// Each refusal's fate on the phone, the fallback and later lists without repeats, and a
    /// wrong-actor refusal kept for later only once the server said it lost this phone's
    /// history.
    #[test]
    fn refusals_decide_what_the_phone_does_with_each_case() {
        let mut page = response(protocol::PROTOCOL_VERSION);
        page.refused = vec![
            refusal("m", RefusalReason::MissingDeps, ""),
            refusal("m", RefusalReason::MissingDeps, ""),
            refusal("e", RefusalReason::Erased, ""),
            refusal("q", RefusalReason::QuotaExceeded, "10000 new cases per day"),
            refusal("f", RefusalReason::Forbidden, ""),
            refusal("g", RefusalReason::Forbidden, "merged_into"),
            refusal("w", RefusalReason::WrongActor, ""),
            refusal("i", RefusalReason::Invalid, "identification.sex"),
        ];
        let on = |reset_before| -> Vec<(String, OnRefusal)> {
            plan_page(&[], &page, reset_before)
                .refusals
                .iter()
                .map(|(r, on)| (r.case_id.clone(), *on))
                .collect()
        };
        use OnRefusal::*;
        let want = |wrong_actor| {
            vec![
                ("m".to_string(), Fallback),
                ("m".to_string(), Fallback),
                ("e".to_string(), EraseHere),
                ("q".to_string(), RetryLater),
                ("f".to_string(), LeaveUnlessOwnWork),
                ("g".to_string(), SetAside),
                ("w".to_string(), wrong_actor),
                ("i".to_string(), SetAside),
            ]
        };
        assert_eq!(on(false), want(SetAside));
        assert_eq!(on(true), want(RetryLater));
        let plan = plan_page(&[], &page, true);
        assert_eq!(plan.fallback, vec!["m".to_string()]);
        assert_eq!(plan.later, vec!["q".to_string(), "w".to_string()]);
        assert!(plan.erases());
    }

    /// The cursors a page moves, as far as the server's version says them: an older server's
    /// page leaves the removals and forms positions alone.
    #[test]
    fn an_older_servers_page_moves_only_the_cursors_it_speaks_of() {
        let mut page = response(3);
        page.cursor = 40;
        page.erasures_cursor = 2;
        page.removals_cursor = 7;
        page.forms_cursor = 5;
        let plan = plan_page(&[], &page, false);
        assert_eq!(
            (
                plan.cursor,
                plan.erasures_cursor,
                plan.removals_cursor,
                plan.forms_cursor
            ),
            (40, 2, None, None)
        );
        assert!(!plan.erases() && !plan.reset);
        page.version = 5;
        let plan = plan_page(&[], &page, false);
        assert_eq!(
            (plan.removals_cursor, plan.forms_cursor),
            (Some(7), Some(5))
        );
    }
}
