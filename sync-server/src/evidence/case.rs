//! One case's evidence, as the console's case page shows it.

use super::*;

/// What the console says of one case's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseEvidence {
    /// Every change checks, and the feed through the case's last row is the one checkpointed
    /// at `checkpoint_at`.
    Verified { changes: usize, checkpoint_at: i64 },
    /// Every change checks, and the chain links hold, but the case's last rows are newer than
    /// the last checkpoint: verified at the next one.
    NotYetCheckpointed { changes: usize },
    /// Something does not check.
    NotVerified { problems: Vec<Problem> },
}

/// Verifies one case: its changes, and the feed from the checkpoint before its first row to
/// the first checkpoint after its last (compared with that checkpoint's mark).
pub fn verify_case(
    store: &dyn ServerStore,
    checkpoints: &Checkpointer,
    case_id: &str,
) -> Result<CaseEvidence, EvidenceError> {
    let changes = store.case_stored_changes(case_id)?;
    let mut problems = Vec::new();
    let mut dependencies = DependencyCheck::default();
    for change in &changes {
        let checked = check_change_deps(change);
        problems.extend(checked.problem);
        dependencies.add(change, checked.deps);
    }
    problems.extend(dependencies.problems());
    // A phone's witness against one of this case's changes.
    let reports = store.audit_search(&crate::storage::AuditQuery {
        actor: None,
        case_ids: vec![case_id.to_string()],
        action_prefixes: vec![FORGERY_REPORTED.into()],
        limit: 100,
        ..Default::default()
    })?;
    for row in reports {
        if let Some((case, hash)) = row.subject.split_once(' ') {
            if case == case_id && !store.audit_row_exists(FORGERY_REVIEWED, &row.subject)? {
                problems.push(Problem::ForgeryReported {
                    device: row.actor.clone(),
                    case_id: case.to_string(),
                    hash: hash.to_string(),
                });
            }
        }
    }
    // The devices the case's changes are said to come from, held to their bindings: a device
    // rebound to another user would show its work as theirs.
    let mut devices: Vec<&str> = changes.iter().map(|c| c.origin_device.as_str()).collect();
    devices.sort_unstable();
    devices.dedup();
    for device_id in devices {
        if let Some(device) = store.device(device_id)? {
            if let Err(problem) = check_binding(&device, binding_of(store, device_id)?.as_ref()) {
                problems.push(problem);
            }
        }
    }
    let Some((first, last)) = store.case_feed_span(case_id)? else {
        return Ok(if problems.is_empty() {
            CaseEvidence::NotYetCheckpointed { changes: 0 }
        } else {
            CaseEvidence::NotVerified { problems }
        });
    };
    // Start from the journalled mark just before the case's first row: trusted, it is outside
    // the database. The stored mark there must be the same.
    let (start, end) = checkpoints.around(first, last);
    let end = end.as_ref();
    let marks = store.feed_marks()?;
    let mut walk = match start {
        Some(c) => {
            let stored = store.feed_mark(c.heads.feed_seq)?;
            if stored != c.heads.feed_mark {
                problems.push(Problem::FeedCheckpoint {
                    at: c.at,
                    seq: c.heads.feed_seq,
                    why: "the stored history up to there is not the one checkpointed".into(),
                });
            }
            FeedWalk {
                stored_previous: stored,
                recomputed: c.heads.feed_mark.clone(),
                seq: c.heads.feed_seq,
                legacy_erased: 0,
                marks,
            }
        }
        None => FeedWalk::from(0, Vec::new(), marks),
    };
    let stop = end.map_or(u64::MAX, |c| c.heads.feed_seq);
    'walk: loop {
        let page = store.feed_links(walk.seq, PAGE)?;
        if page.is_empty() {
            break;
        }
        for link in &page {
            if link.seq > stop {
                break 'walk;
            }
            // Rows of other cases are only links here: their changes are checked in their
            // own case's verification, and by `verify`.
            walk.step(
                link,
                &|case| store.is_erased(case).unwrap_or(false),
                &mut problems,
            );
        }
    }
    if let Some(c) = end {
        if walk.seq < c.heads.feed_seq {
            problems.push(Problem::FeedCheckpoint {
                at: c.at,
                seq: c.heads.feed_seq,
                why: format!(
                    "the feed now ends at row {}: rows after it were deleted",
                    walk.seq
                ),
            });
        } else if walk.recomputed != c.heads.feed_mark {
            problems.push(Problem::FeedCheckpoint {
                at: c.at,
                seq: c.heads.feed_seq,
                why: "the stored history up to there is not the one checkpointed".into(),
            });
        }
    }
    Ok(match (problems.is_empty(), end) {
        (false, _) => CaseEvidence::NotVerified { problems },
        (true, Some(c)) => CaseEvidence::Verified {
            changes: changes.len(),
            checkpoint_at: c.at,
        },
        (true, None) => CaseEvidence::NotYetCheckpointed {
            changes: changes.len(),
        },
    })
}
