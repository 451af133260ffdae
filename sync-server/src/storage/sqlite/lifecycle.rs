//! LifecycleStore on SQLite: a case leaving a caseload: erasure, quarantine, reassignment and its handover.

use super::*;
use crate::storage::LifecycleStore;

impl LifecycleStore for SqliteStore {
    fn queue_removal(&self, user_id: &str, case_id: &str, now: i64) -> StorageResult<()> {
        self.conn()
            .prepare_cached("INSERT INTO removals (user_id, case_id, at) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![user_id, case_id, now]))
            .map_err(backend)?;
        Ok(())
    }

    fn lifecycle_heads(&self) -> StorageResult<(u64, u64)> {
        self.conn()
            .query_row(
                "SELECT (SELECT COALESCE(MAX(seq), 0) FROM erasures),
                        (SELECT COALESCE(MAX(seq), 0) FROM removals)",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(backend)
    }

    fn erase_case(&self, case_id: &str, now: i64) -> StorageResult<bool> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let known: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM erasures WHERE case_id = ?1",
                [case_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        if known.is_some() {
            return Ok(false);
        }
        // Feed rows first (they point at changes; their marks are kept), then everything else
        // the case owns.
        tx.execute(
            "INSERT INTO erased_feed_marks (seq, mark, case_id, hash, audience)
             SELECT f.seq, f.mark, f.case_id, c.hash, f.audience
             FROM feed f LEFT JOIN changes c ON c.id = f.change_id WHERE f.case_id = ?1",
            [case_id],
        )
        .map_err(backend)?;
        for sql in [
            "DELETE FROM feed WHERE case_id = ?1",
            "DELETE FROM changes WHERE case_id = ?1",
            "DELETE FROM assignments WHERE case_id = ?1",
            "DELETE FROM quarantined_cases WHERE case_id = ?1",
            "DELETE FROM case_search_terms WHERE case_id = ?1",
            "DELETE FROM case_summaries WHERE case_id = ?1",
            "DELETE FROM case_indicators WHERE case_id = ?1",
            "DELETE FROM referral_summaries WHERE case_id = ?1",
            "DELETE FROM case_records WHERE case_id = ?1",
            "DELETE FROM case_handovers WHERE case_id = ?1",
            "DELETE FROM distinct_cases WHERE case_a = ?1 OR case_b = ?1",
            "DELETE FROM cases WHERE case_id = ?1",
        ] {
            tx.execute(sql, [case_id]).map_err(backend)?;
        }
        tx.execute(
            "INSERT INTO erasures (case_id, at) VALUES (?1, ?2)",
            params![case_id, now],
        )
        .map_err(backend)?;
        audit_row(&tx, now, "admin", "case.erased", case_id)?;
        tx.commit().map_err(backend)?;
        Ok(true)
    }

    fn is_erased(&self, case_id: &str) -> StorageResult<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM erasures WHERE case_id = ?1",
                [case_id],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map_err(backend)?
            .is_some())
    }

    fn erasures_after(&self, seq: u64, limit: usize) -> StorageResult<Vec<(u64, String)>> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, case_id FROM erasures WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![seq, limit as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn quarantine_case(&self, case_id: &str, reason: &str, now: i64) -> StorageResult<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(backend)?;
        let known: bool = tx
            .query_row("SELECT 1 FROM cases WHERE case_id = ?1", [case_id], |_| {
                Ok(())
            })
            .optional()
            .map_err(backend)?
            .is_some();
        if !known {
            return Err(StorageError::NotFound(format!("case {case_id}")));
        }
        let n = tx
            .execute(
                "INSERT OR IGNORE INTO quarantined_cases (case_id, reason, at) VALUES (?1, ?2, ?3)",
                params![case_id, reason, now],
            )
            .map_err(backend)?;
        if n > 0 {
            audit_row(&tx, now, "admin", "case.quarantine", case_id)?;
        }
        tx.commit().map_err(backend)?;
        Ok(n > 0)
    }

    fn quarantined_cases(&self) -> StorageResult<Vec<QuarantinedCase>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT case_id, reason FROM quarantined_cases ORDER BY case_id")
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(QuarantinedCase {
                    case_id: r.get(0)?,
                    reason: r.get(1)?,
                })
            })
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn is_quarantined(&self, case_id: &str) -> StorageResult<bool> {
        self.conn()
            .prepare_cached("SELECT 1 FROM quarantined_cases WHERE case_id = ?1")
            .and_then(|mut s| s.exists([case_id]))
            .map_err(backend)
    }

    fn reassign_cases(
        &self,
        case_ids: &[String],
        to: &User,
        by: &str,
        now: i64,
        grace_until: i64,
    ) -> StorageResult<Vec<String>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let moved = reassign_in(&tx, case_ids, to, by, now, grace_until)?;
        tx.commit().map_err(backend)?;
        Ok(moved)
    }

    fn in_handover(&self, case_id: &str, user_id: &str, now: i64) -> StorageResult<bool> {
        self.conn()
            .prepare_cached(
                "SELECT 1 FROM case_handovers WHERE case_id = ?1 AND user_id = ?2 AND until > ?3",
            )
            .map_err(backend)?
            .exists(params![case_id, user_id, now])
            .map_err(backend)
    }

    fn removals_after(
        &self,
        user_id: &str,
        seq: u64,
        limit: usize,
    ) -> StorageResult<Vec<(u64, String)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, case_id FROM removals WHERE user_id = ?1 AND seq > ?2
                 ORDER BY seq LIMIT ?3",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![
                    user_id,
                    i64::try_from(seq).unwrap_or(i64::MAX),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }
}

/// `reassign_cases` inside a transaction the caller commits (a push's admission moves the
/// cases its changes gave away in the transaction that stores them).
pub(super) fn reassign_in(
    tx: &Connection,
    case_ids: &[String],
    to: &User,
    by: &str,
    now: i64,
    grace_until: i64,
) -> StorageResult<Vec<String>> {
    let mut moved = Vec::new();
    {
        let mut feed = FeedAppender::start(tx)?;
        let mut owner_of = tx
            .prepare_cached("SELECT created_by, team FROM cases WHERE case_id = ?1")
            .map_err(backend)?;
        for case_id in case_ids {
            let Some((old, team)) = owner_of
                .query_row([case_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .optional()
                .map_err(backend)?
            else {
                continue;
            };
            if old == to.user_id || team != to.team {
                continue;
            }
            for sql in [
                "UPDATE cases SET created_by = ?2 WHERE case_id = ?1",
                "UPDATE case_summaries SET owner = ?2 WHERE case_id = ?1",
                // Later pulls find the case's rows under its new owner.
                // Every row of the case, those queued for an earlier owner too: a case moved
                // back leaves nothing behind for the owner it left.
                "UPDATE feed SET owner = ?2 WHERE case_id = ?1",
                // A removal still waiting for the new owner (the case moved away from it
                // and back) would take the case off its phones again.
                "DELETE FROM removals WHERE case_id = ?1 AND user_id = ?2",
            ] {
                tx.prepare_cached(sql)
                    .map_err(backend)?
                    .execute(params![case_id, to.user_id])
                    .map_err(backend)?;
            }
            // The new owner's phones may have passed these rows: its own copy of each.
            queue_case_for(tx, &mut feed, case_id, &to.user_id)?;
            tx.prepare_cached(
                "INSERT INTO case_handovers (case_id, user_id, until) VALUES (?1, ?2, ?3)
                     ON CONFLICT (case_id, user_id) DO UPDATE SET until = excluded.until",
            )
            .map_err(backend)?
            .execute(params![case_id, old, grace_until])
            .map_err(backend)?;
            // The former owner's phones remove the case, unless the policy still lets
            // that user read it.
            let former = tx
                .prepare_cached("SELECT role, team FROM users WHERE user_id = ?1")
                .map_err(backend)?
                .query_row([&old], |r| {
                    Ok((parse_role(&r.get::<_, String>(0)?)?, r.get::<_, String>(1)?))
                })
                .optional()
                .map_err(backend)?;
            let assignees = tx
                .prepare_cached("SELECT user_id FROM assignments WHERE case_id = ?1")
                .map_err(backend)?
                .query_map([case_id], |r| r.get::<_, String>(0))
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            let still_reads = crate::storage::still_reads_after_move(
                &old,
                former.as_ref().map(|(role, team)| (*role, team.as_str())),
                &to.user_id,
                &team,
                &assignees,
            );
            if !still_reads {
                tx.prepare_cached(
                    "INSERT INTO removals (user_id, case_id, at) VALUES (?1, ?2, ?3)",
                )
                .map_err(backend)?
                .execute(params![old, case_id, now])
                .map_err(backend)?;
            }
            audit_row(
                tx,
                now,
                by,
                "case.reassign",
                &format!("{case_id} {old} -> {}", to.user_id),
            )?;
            moved.push(case_id.clone());
        }
    }
    Ok(moved)
}
