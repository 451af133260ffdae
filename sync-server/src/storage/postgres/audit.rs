//! AuditStore on PostgreSQL: the audit log, and what `verify` reads of both chains (tamper evidence).

use super::*;
use crate::storage::AuditStore;

impl AuditStore for PostgresStore {
    fn audit_row_exists(&self, action: &str, subject: &str) -> StorageResult<bool> {
        Ok(self
            .client()?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM audit_log WHERE action = $1 AND subject = $2)",
                &[&action, &subject],
            )
            .map_err(backend)?
            .get(0))
    }

    fn audit(&self, now: i64, actor: &str, action: &str, subject: &str) -> StorageResult<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        audit_row(&mut tx, now, actor, action, subject)?;
        tx.commit().map_err(backend)
    }

    fn audit_log(&self, after: u64, limit: usize) -> StorageResult<Vec<AuditRow>> {
        // Ids are handed out under the `audit_head` lock, in commit order: a page read after
        // `after` never misses a row committed later.
        Ok(self
            .client()?
            .query(
                "SELECT id, at, actor, action, subject, mark FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
                &[&pg_seq(after), &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .map_err(backend)?
            .iter()
            .map(row_to_audit)
            .collect())
    }

    fn audit_search(&self, query: &AuditQuery) -> StorageResult<Vec<AuditRow>> {
        let before = query.before.map_or(i64::MAX, pg_seq);
        let like = |text: &str| {
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        };
        let cases: Vec<String> = query
            .case_ids
            .iter()
            .map(|c| format!("%{}%", like(c)))
            .collect();
        let prefixes: Vec<String> = query
            .action_prefixes
            .iter()
            .map(|p| format!("{}%", like(p)))
            .collect();
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        Ok(self
            .client()?
            .query(
                "SELECT id, at, actor, action, subject, mark FROM audit_log
                 WHERE id < $1
                   AND ($2::text IS NULL OR actor = $2
                        OR actor IN (SELECT device_id FROM devices WHERE user_id = $2))
                   AND (cardinality($3::text[]) = 0 OR subject LIKE ANY($3))
                   AND (cardinality($4::text[]) = 0 OR action LIKE ANY($4))
                   AND ($6::bigint IS NULL OR at >= $6)
                   AND ($7::bigint IS NULL OR at < $7)
                 ORDER BY id DESC LIMIT $5",
                &[
                    &before,
                    &query.actor,
                    &cases,
                    &prefixes,
                    &limit,
                    &query.from,
                    &query.until,
                ],
            )
            .map_err(backend)?
            .iter()
            .map(row_to_audit)
            .collect())
    }

    fn chain_heads(&self) -> StorageResult<ChainHeads> {
        let mut client = self.client()?;
        let feed = client
            .query_one("SELECT seq, mark FROM feed_head", &[])
            .map_err(backend)?;
        let audit = client
            .query_one("SELECT id, mark FROM audit_head", &[])
            .map_err(backend)?;
        Ok(ChainHeads {
            feed_seq: feed.get::<_, i64>(0) as u64,
            feed_mark: feed.get(1),
            audit_id: audit.get::<_, i64>(0) as u64,
            audit_mark: audit.get(1),
        })
    }

    fn feed_links(&self, after: u64, limit: usize) -> StorageResult<Vec<FeedLink>> {
        Ok(self
            .client()?
            .query(
                "SELECT f.seq, f.mark, f.case_id, c.hash, f.audience, FALSE
                 FROM feed f LEFT JOIN changes c ON c.id = f.change_id WHERE f.seq > $1
                 UNION ALL
                 SELECT seq, mark, case_id, hash, audience, TRUE FROM erased_feed_marks
                 WHERE seq > $1
                 ORDER BY 1 LIMIT $2",
                &[&pg_seq(after), &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .map_err(backend)?
            .iter()
            .map(|r| FeedLink {
                seq: r.get::<_, i64>(0) as u64,
                mark: r.get::<_, Option<Vec<u8>>>(1).unwrap_or_default(),
                erased: r.get(5),
                change: r.get::<_, Option<String>>(2).map(|case_id| FeedLinkChange {
                    case_id,
                    hash: r.get(3),
                    audience: r.get(4),
                }),
            })
            .collect())
    }

    fn stored_changes(&self, after: u64, limit: usize) -> StorageResult<Vec<StoredChange>> {
        let rows = self
            .client()?
            .query(
                &format!("SELECT {STORED_CHANGE_COLUMNS} WHERE c.id > $1 ORDER BY c.id LIMIT $2"),
                &[&pg_seq(after), &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .map_err(backend)?;
        rows.iter().map(|r| self.row_to_stored_change(r)).collect()
    }

    fn case_stored_changes(&self, case_id: &str) -> StorageResult<Vec<StoredChange>> {
        let rows = self
            .client()?
            .query(
                &format!("SELECT {STORED_CHANGE_COLUMNS} WHERE c.case_id = $1 ORDER BY c.id"),
                &[&case_id],
            )
            .map_err(backend)?;
        rows.iter().map(|r| self.row_to_stored_change(r)).collect()
    }

    fn case_feed_span(&self, case_id: &str) -> StorageResult<Option<(u64, u64)>> {
        let row = self
            .client()?
            .query_one(
                "SELECT min(seq), max(seq) FROM feed WHERE case_id = $1",
                &[&case_id],
            )
            .map_err(backend)?;
        Ok(
            match (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) {
                (Some(first), Some(last)) => Some((first as u64, last as u64)),
                _ => None,
            },
        )
    }

    fn change_origins(&self, case_id: &str) -> StorageResult<Vec<ChangeOrigin>> {
        let mut client = self.client()?;
        Ok(client
            .query(
                "SELECT c.hash, coalesce(d.user_id, ''), c.origin_device, c.received_at
                 FROM changes c LEFT JOIN devices d ON d.device_id = c.origin_device
                 WHERE c.case_id = $1 ORDER BY c.id",
                &[&case_id],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| ChangeOrigin {
                hash: r.get(0),
                user_id: r.get(1),
                device_id: r.get(2),
                received_at: r.get(3),
            })
            .collect())
    }
}

pub(super) fn audit_row(
    tx: &mut impl GenericClient,
    now: i64,
    actor: &str,
    action: &str,
    subject: &str,
) -> StorageResult<()> {
    let mut head = AuditHead::lock(tx)?;
    head.append(tx, now, actor, action, &[subject])?;
    head.save(tx)
}

/// The audit log's sequencer, locked for the rest of the transaction: rows get the ids after
/// the head, each chained to the one before. Transactions take it last (after `feed_head`),
/// so the two locks never wait on each other in opposite orders.
pub(super) struct AuditHead {
    pub(super) id: i64,
    pub(super) mark: Vec<u8>,
}

impl AuditHead {
    pub(super) fn lock(tx: &mut impl GenericClient) -> StorageResult<AuditHead> {
        let row = tx
            .query_one("SELECT id, mark FROM audit_head FOR UPDATE", &[])
            .map_err(backend)?;
        Ok(AuditHead {
            id: row.get(0),
            mark: row.get(1),
        })
    }

    /// One row per subject, by `actor`, for `action`, in one statement.
    pub(super) fn append(
        &mut self,
        tx: &mut impl GenericClient,
        now: i64,
        actor: &str,
        action: &str,
        subjects: &[&str],
    ) -> StorageResult<()> {
        let mut ids = Vec::with_capacity(subjects.len());
        let mut marks = Vec::with_capacity(subjects.len());
        for subject in subjects {
            self.id += 1;
            self.mark = next_audit_mark(&self.mark, self.id as u64, now, actor, action, subject);
            ids.push(self.id);
            marks.push(self.mark.clone());
        }
        tx.execute(
            "INSERT INTO audit_log (id, at, actor, action, subject, mark)
             SELECT i, $2, $3, $4, s, m FROM UNNEST($1::bigint[], $5::text[], $6::bytea[]) AS t(i, s, m)",
            &[&ids, &now, &actor, &action, &subjects, &marks],
        )
        .map_err(backend)?;
        Ok(())
    }

    pub(super) fn save(&self, tx: &mut impl GenericClient) -> StorageResult<()> {
        tx.execute(
            "UPDATE audit_head SET id = $1, mark = $2",
            &[&self.id, &self.mark],
        )
        .map_err(backend)?;
        Ok(())
    }
}

/// Chains audit rows written before the log was chained (their marks are NULL), in id order,
/// and moves the head to the last row: inside the migration's transaction and lock.
pub(super) fn backfill_audit_marks(tx: &mut impl GenericClient) -> StorageResult<()> {
    let unmarked = tx
        .query(
            "SELECT id, at, actor, action, subject, mark FROM audit_log WHERE mark IS NULL ORDER BY id",
            &[],
        )
        .map_err(backend)?;
    if unmarked.is_empty() {
        return Ok(());
    }
    let mut head = AuditHead::lock(tx)?;
    for row in unmarked.iter().map(row_to_audit) {
        let previous: Vec<u8> = tx
            .query_opt(
                "SELECT mark FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT 1",
                &[&(row.id as i64)],
            )
            .map_err(backend)?
            .and_then(|r| r.get::<_, Option<Vec<u8>>>(0))
            .unwrap_or_default();
        let mark = next_audit_mark(
            &previous,
            row.id,
            row.at,
            &row.actor,
            &row.action,
            &row.subject,
        );
        tx.execute(
            "UPDATE audit_log SET mark = $2 WHERE id = $1",
            &[&(row.id as i64), &mark],
        )
        .map_err(backend)?;
    }
    let last = tx
        .query_one(
            "SELECT id, mark FROM audit_log ORDER BY id DESC LIMIT 1",
            &[],
        )
        .map_err(backend)?;
    head.id = last.get(0);
    head.mark = last.get(1);
    head.save(tx)
}

pub(super) fn row_to_audit(r: &postgres::Row) -> AuditRow {
    AuditRow {
        id: r.get::<_, i64>(0) as u64,
        at: r.get(1),
        actor: r.get(2),
        action: r.get(3),
        subject: r.get(4),
        mark: r.get::<_, Option<Vec<u8>>>(5).unwrap_or_default(),
    }
}

pub(super) const STORED_CHANGE_COLUMNS: &str =
    "c.id, c.case_id, c.hash, c.data, c.origin_device, d.actor,
    c.received_at,
    EXISTS (SELECT 1 FROM feed f
            WHERE f.change_id = c.id AND f.audience IS NULL AND f.case_id = c.case_id)
    FROM changes c LEFT JOIN devices d ON d.device_id = c.origin_device";
