//! LifecycleStore on PostgreSQL: a case leaving a caseload: erasure, quarantine, reassignment and its handover.

use super::*;
use crate::storage::LifecycleStore;

impl LifecycleStore for PostgresStore {
    fn queue_removal(&self, user_id: &str, case_id: &str, now: i64) -> StorageResult<()> {
        self.client()?
            .execute(
                "INSERT INTO removals (user_id, case_id, at) VALUES ($1, $2, $3)",
                &[&user_id, &case_id, &now],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn lifecycle_heads(&self) -> StorageResult<(u64, u64)> {
        let row = self
            .client()?
            .query_one(
                "SELECT (SELECT COALESCE(MAX(seq), 0) FROM erasures),
                        (SELECT COALESCE(MAX(seq), 0) FROM removals)",
                &[],
            )
            .map_err(backend)?;
        Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
    }

    fn erase_case(&self, case_id: &str, now: i64) -> StorageResult<bool> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        // The sequencer orders erasures as it orders feed rows, and keeps a push of this case
        // from interleaving (see `store_changes`).
        let mut head = FeedHead::lock(&mut tx)?;
        if tx
            .query_opt("SELECT 1 FROM erasures WHERE case_id = $1", &[&case_id])
            .map_err(backend)?
            .is_some()
        {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO erased_feed_marks (seq, mark, case_id, hash, audience)
             SELECT f.seq, f.mark, f.case_id, c.hash, f.audience
             FROM feed f LEFT JOIN changes c ON c.id = f.change_id WHERE f.case_id = $1",
            &[&case_id],
        )
        .map_err(backend)?;
        for sql in [
            "DELETE FROM feed WHERE case_id = $1",
            "DELETE FROM changes WHERE case_id = $1",
            "DELETE FROM assignments WHERE case_id = $1",
            "DELETE FROM quarantined_cases WHERE case_id = $1",
            "DELETE FROM case_search_terms WHERE case_id = $1",
            "DELETE FROM case_summaries WHERE case_id = $1",
            "DELETE FROM case_indicators WHERE case_id = $1",
            "DELETE FROM referral_summaries WHERE case_id = $1",
            "DELETE FROM case_records WHERE case_id = $1",
            "DELETE FROM case_handovers WHERE case_id = $1",
            "DELETE FROM distinct_cases WHERE case_a = $1 OR case_b = $1",
            "DELETE FROM cases WHERE case_id = $1",
        ] {
            tx.execute(sql, &[&case_id]).map_err(backend)?;
        }
        head.erasure_seq += 1;
        tx.execute(
            "INSERT INTO erasures (seq, case_id, at) VALUES ($1, $2, $3)",
            &[&head.erasure_seq, &case_id, &now],
        )
        .map_err(backend)?;
        head.save(&mut tx)?;
        audit_row(&mut tx, now, "admin", "case.erased", case_id)?;
        tx.commit().map_err(backend)?;
        Ok(true)
    }

    fn is_erased(&self, case_id: &str) -> StorageResult<bool> {
        Ok(self
            .client()?
            .query_opt("SELECT 1 FROM erasures WHERE case_id = $1", &[&case_id])
            .map_err(backend)?
            .is_some())
    }

    fn erasures_after(&self, seq: u64, limit: usize) -> StorageResult<Vec<(u64, String)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .client()?
            .query(
                "SELECT seq, case_id FROM erasures WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&pg_seq(seq), &limit],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
            .collect())
    }

    fn quarantine_case(&self, case_id: &str, reason: &str, now: i64) -> StorageResult<bool> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        if tx
            .query_opt("SELECT 1 FROM cases WHERE case_id = $1", &[&case_id])
            .map_err(backend)?
            .is_none()
        {
            return Err(StorageError::NotFound(format!("case {case_id}")));
        }
        let n = tx
            .execute(
                "INSERT INTO quarantined_cases (case_id, reason, at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&case_id, &reason, &now],
            )
            .map_err(backend)?;
        if n > 0 {
            audit_row(&mut tx, now, "admin", "case.quarantine", case_id)?;
        }
        tx.commit().map_err(backend)?;
        Ok(n > 0)
    }

    fn quarantined_cases(&self) -> StorageResult<Vec<QuarantinedCase>> {
        Ok(self
            .client()?
            .query(
                "SELECT case_id, reason FROM quarantined_cases ORDER BY case_id",
                &[],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| QuarantinedCase {
                case_id: r.get(0),
                reason: r.get(1),
            })
            .collect())
    }

    fn is_quarantined(&self, case_id: &str) -> StorageResult<bool> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT 1 FROM quarantined_cases WHERE case_id = $1",
                &[&case_id],
            )
            .map_err(backend)?
            .is_some())
    }

    fn reassign_cases(
        &self,
        case_ids: &[String],
        to: &User,
        by: &str,
        now: i64,
        grace_until: i64,
    ) -> StorageResult<Vec<String>> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        // The sequencer first, as an assignment: each case's rows for its new owner are appended
        // in one block, and an erasure cannot interleave.
        let mut head = FeedHead::lock(&mut tx)?;
        let moved = reassign_in(&mut tx, &mut head, case_ids, to, by, now, grace_until)?;
        head.save(&mut tx)?;
        tx.commit().map_err(backend)?;
        Ok(moved)
    }

    fn in_handover(&self, case_id: &str, user_id: &str, now: i64) -> StorageResult<bool> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT 1 FROM case_handovers WHERE case_id = $1 AND user_id = $2 AND until > $3",
                &[&case_id, &user_id, &now],
            )
            .map_err(backend)?
            .is_some())
    }

    fn removals_after(
        &self,
        user_id: &str,
        seq: u64,
        limit: usize,
    ) -> StorageResult<Vec<(u64, String)>> {
        Ok(self
            .client()?
            .query(
                "SELECT seq, case_id FROM removals WHERE user_id = $1 AND seq > $2
                 ORDER BY seq LIMIT $3",
                &[
                    &user_id,
                    &pg_seq(seq),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1)))
            .collect())
    }
}

/// `reassign_cases` inside a transaction that holds the feed's sequencer (`head`), which the
/// caller saves and commits: a push's admission moves the cases its changes gave away in the
/// transaction that stores them.
#[allow(clippy::too_many_arguments)]
pub(super) fn reassign_in(
    tx: &mut postgres::Transaction<'_>,
    head: &mut FeedHead,
    case_ids: &[String],
    to: &User,
    by: &str,
    now: i64,
    grace_until: i64,
) -> StorageResult<Vec<String>> {
    // Set-based, a statement for all the cases at each step: a list of 1,000 cases is a
    // dozen round trips, not ten per case.
    let mut owners: HashMap<String, (String, String)> = HashMap::new();
    for row in tx
        .query(
            "SELECT case_id, created_by, team FROM cases WHERE case_id = ANY($1)",
            &[&case_ids],
        )
        .map_err(backend)?
    {
        owners.insert(row.get(0), (row.get(1), row.get(2)));
    }
    let mut seen = HashSet::new();
    let (moved, former): (Vec<String>, Vec<String>) = case_ids
        .iter()
        .filter(|id| seen.insert(id.as_str()))
        .filter_map(|id| {
            let (old, team) = owners.get(id)?;
            (*old != to.user_id && *team == to.team).then(|| (id.clone(), old.clone()))
        })
        .unzip();
    if moved.is_empty() {
        return Ok(moved);
    }
    for sql in [
        "UPDATE cases SET created_by = $2 WHERE case_id = ANY($1)",
        "UPDATE case_summaries SET owner = $2 WHERE case_id = ANY($1)",
        // Every row of the case, those queued for an earlier owner too: a case moved back
        // leaves nothing behind for the owner it left.
        "UPDATE feed SET owner = $2 WHERE case_id = ANY($1)",
        // A removal still waiting for the new owner (the case moved away from it and
        // back) would take the case off its phones again.
        "DELETE FROM removals WHERE case_id = ANY($1) AND user_id = $2",
    ] {
        tx.execute(sql, &[&moved, &to.user_id]).map_err(backend)?;
    }
    // The new owner's phones may have passed these rows: its own copy of each, case by
    // case in the list's order, each case's in feed order.
    let mut rows_of: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for row in tx
        .query(
            "SELECT c.case_id, c.id, c.hash FROM changes c
             JOIN feed f ON f.change_id = c.id AND f.audience IS NULL
             WHERE c.case_id = ANY($1) ORDER BY f.seq",
            &[&moved],
        )
        .map_err(backend)?
    {
        rows_of
            .entry(row.get(0))
            .or_default()
            .push((row.get(1), row.get(2)));
    }
    let queued: Vec<(String, i64, String)> = moved
        .iter()
        .flat_map(|case_id| {
            rows_of
                .remove(case_id)
                .unwrap_or_default()
                .into_iter()
                .map(move |(id, hash)| (case_id.clone(), id, hash))
        })
        .collect();
    head.append_all(tx, &queued, &to.user_id, (&to.user_id, &to.team))?;
    tx.execute(
        "INSERT INTO case_handovers (case_id, user_id, until)
         SELECT c, u, $3 FROM UNNEST($1::text[], $2::text[]) AS t(c, u)
         ON CONFLICT (case_id, user_id) DO UPDATE SET until = excluded.until",
        &[&moved, &former, &grace_until],
    )
    .map_err(backend)?;
    // The former owner's phones remove the case, unless the policy still lets that user
    // read it: the facts in two statements, the decision in Rust.
    let mut users: HashMap<String, (Role, String)> = HashMap::new();
    for row in tx
        .query(
            "SELECT user_id, role, team FROM users WHERE user_id = ANY($1)",
            &[&former],
        )
        .map_err(backend)?
    {
        users.insert(row.get(0), (role(row.get(1))?, row.get(2)));
    }
    let mut assignees_of: HashMap<String, Vec<String>> = HashMap::new();
    for row in tx
        .query(
            "SELECT case_id, user_id FROM assignments WHERE case_id = ANY($1)",
            &[&moved],
        )
        .map_err(backend)?
    {
        assignees_of.entry(row.get(0)).or_default().push(row.get(1));
    }
    let (removed, removed_from): (Vec<&String>, Vec<&String>) = moved
        .iter()
        .zip(&former)
        .filter(|(case_id, old)| {
            let assignees = assignees_of.get(*case_id).map(Vec::as_slice).unwrap_or(&[]);
            let user = users.get(*old).map(|(r, t)| (*r, t.as_str()));
            !crate::storage::still_reads_after_move(old, user, &to.user_id, &to.team, assignees)
        })
        .unzip();
    tx.execute(
        "INSERT INTO removals (user_id, case_id, at)
         SELECT u, c, $3 FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS t(c, u, n)
         ORDER BY n",
        &[&removed, &removed_from, &now],
    )
    .map_err(backend)?;
    let subjects: Vec<String> = moved
        .iter()
        .zip(&former)
        .map(|(case_id, old)| format!("{case_id} {old} -> {}", to.user_id))
        .collect();
    let subjects: Vec<&str> = subjects.iter().map(String::as_str).collect();
    let mut audit = AuditHead::lock(tx)?;
    audit.append(tx, now, by, "case.reassign", &subjects)?;
    audit.save(tx)?;
    Ok(moved)
}
