//! AuditStore on SQLite: the audit log, and what `verify` reads of both chains (tamper evidence).

use super::*;
use crate::storage::AuditStore;

impl AuditStore for SqliteStore {
    fn audit_row_exists(&self, action: &str, subject: &str) -> StorageResult<bool> {
        self.conn()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM audit_log WHERE action = ?1 AND subject = ?2)",
                params![action, subject],
                |r| r.get(0),
            )
            .map_err(backend)
    }

    fn audit(&self, now: i64, actor: &str, action: &str, subject: &str) -> StorageResult<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        audit_row(&tx, now, actor, action, subject)?;
        tx.commit().map_err(backend)
    }

    fn audit_log(&self, after: u64, limit: usize) -> StorageResult<Vec<AuditRow>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, at, actor, action, subject, mark FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![
                    i64::try_from(after).unwrap_or(i64::MAX),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                row_to_audit,
            )
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn audit_search(&self, query: &AuditQuery) -> StorageResult<Vec<AuditRow>> {
        let mut sql = String::from(
            "SELECT id, at, actor, action, subject, mark FROM audit_log WHERE id < ?1",
        );
        let mut args: Vec<rusqlite::types::Value> = vec![query
            .before
            .map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX))
            .into()];
        if let Some(actor) = &query.actor {
            // A user's rows, and those of her devices: her phones' pushes and her console
            // changes (`console-<user>`) are recorded under a device id.
            args.push(actor.clone().into());
            let n = args.len();
            sql.push_str(&format!(
                " AND (actor = ?{n} OR actor IN (SELECT device_id FROM devices WHERE user_id = ?{n}))"
            ));
        }
        // Any of several patterns on one column: `(col LIKE ?a OR col LIKE ?b)`.
        let mut any_like = |column: &str, patterns: Vec<String>| {
            if patterns.is_empty() {
                return;
            }
            let mut ors = Vec::new();
            for p in patterns {
                args.push(p.into());
                ors.push(format!("{column} LIKE ?{} ESCAPE '\\'", args.len()));
            }
            sql.push_str(&format!(" AND ({})", ors.join(" OR ")));
        };
        any_like(
            "subject",
            query
                .case_ids
                .iter()
                .map(|c| format!("%{}%", like_escaped(c)))
                .collect(),
        );
        any_like(
            "action",
            query
                .action_prefixes
                .iter()
                .map(|p| format!("{}%", like_escaped(p)))
                .collect(),
        );
        for (bound, op) in [(query.from, ">="), (query.until, "<")] {
            if let Some(at) = bound {
                args.push(at.into());
                sql.push_str(&format!(" AND at {op} ?{}", args.len()));
            }
        }
        args.push(i64::try_from(query.limit).unwrap_or(i64::MAX).into());
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", args.len()));
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql).map_err(backend)?;
        let rows = stmt
            .query_map(params_from_iter(args), row_to_audit)
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn chain_heads(&self) -> StorageResult<ChainHeads> {
        let conn = self.conn();
        let (feed_seq, feed_mark): (i64, Option<Vec<u8>>) = conn
            .query_row(
                &format!(
                    "SELECT e.n, (SELECT mark FROM {ALL_MARKS} WHERE seq = e.n)
                     FROM ({FEED_END} AS n) e"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(backend)?;
        let (audit_id, audit_mark): (i64, Option<Vec<u8>>) = conn
            .query_row(
                "SELECT id, mark FROM audit_log ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(backend)?
            .unwrap_or((0, None));
        Ok(ChainHeads {
            feed_seq: feed_seq as u64,
            feed_mark: feed_mark.unwrap_or_default(),
            audit_id: audit_id as u64,
            audit_mark: audit_mark.unwrap_or_default(),
        })
    }

    fn feed_links(&self, after: u64, limit: usize) -> StorageResult<Vec<FeedLink>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT f.seq, f.mark, f.case_id, c.hash, f.audience, 0
                 FROM feed f LEFT JOIN changes c ON c.id = f.change_id WHERE f.seq > ?1
                 UNION ALL
                 SELECT seq, mark, case_id, hash, audience, 1 FROM erased_feed_marks
                 WHERE seq > ?1
                 ORDER BY 1 LIMIT ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![
                    i64::try_from(after).unwrap_or(i64::MAX),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    let case_id: Option<String> = r.get(2)?;
                    Ok(FeedLink {
                        seq: r.get::<_, i64>(0)? as u64,
                        mark: r.get::<_, Option<Vec<u8>>>(1)?.unwrap_or_default(),
                        erased: r.get(5)?,
                        change: match case_id {
                            Some(case_id) => Some(FeedLinkChange {
                                case_id,
                                hash: r.get(3)?,
                                audience: r.get(4)?,
                            }),
                            None => None,
                        },
                    })
                },
            )
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn stored_changes(&self, after: u64, limit: usize) -> StorageResult<Vec<StoredChange>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {STORED_CHANGE_COLUMNS} WHERE c.id > ?1 ORDER BY c.id LIMIT ?2"
            ))
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![
                    i64::try_from(after).unwrap_or(i64::MAX),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                row_to_stored_change,
            )
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn case_stored_changes(&self, case_id: &str) -> StorageResult<Vec<StoredChange>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {STORED_CHANGE_COLUMNS} WHERE c.case_id = ?1 ORDER BY c.id"
            ))
            .map_err(backend)?;
        let rows = stmt
            .query_map([case_id], row_to_stored_change)
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn case_feed_span(&self, case_id: &str) -> StorageResult<Option<(u64, u64)>> {
        let span: (Option<i64>, Option<i64>) = self
            .conn()
            .query_row(
                "SELECT min(seq), max(seq) FROM feed WHERE case_id = ?1",
                [case_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(backend)?;
        Ok(match span {
            (Some(first), Some(last)) => Some((first as u64, last as u64)),
            _ => None,
        })
    }

    fn change_origins(&self, case_id: &str) -> StorageResult<Vec<ChangeOrigin>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT c.hash, coalesce(d.user_id, ''), c.origin_device, c.received_at
                 FROM changes c LEFT JOIN devices d ON d.device_id = c.origin_device
                 WHERE c.case_id = ?1 ORDER BY c.id",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map([case_id], |r| {
                Ok(ChangeOrigin {
                    hash: r.get(0)?,
                    user_id: r.get(1)?,
                    device_id: r.get(2)?,
                    received_at: r.get(3)?,
                })
            })
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }
}
