//! FeedStore on SQLite: changes in and out: who owns a case, storing a checked push, the feed a pull reads and its marks.

use super::*;
use crate::storage::FeedStore;

impl FeedStore for SqliteStore {
    fn assign_case(&self, case_id: &str, user_id: &str, now: i64) -> StorageResult<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let exists: Option<i64> = tx
            .query_row("SELECT 1 FROM cases WHERE case_id = ?1", [case_id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(backend)?;
        if exists.is_none() {
            return Err(StorageError::NotFound(format!("case {case_id}")));
        }
        let n = tx
            .execute(
                "INSERT OR IGNORE INTO assignments (case_id, user_id, assigned_at) VALUES (?1, ?2, ?3)",
                params![case_id, user_id, now],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    StorageError::NotFound(format!("user {user_id}"))
                }
                other => backend(other),
            })?;
        if n > 0 {
            // The new assignee's devices may have passed these changes already: queue them again
            // for that user only.
            let mut feed = FeedAppender::start(&tx)?;
            queue_case_for(&tx, &mut feed, case_id, user_id)?;
            audit_row(
                &tx,
                now,
                "admin",
                "case.assign",
                &format!("{case_id} -> {user_id}"),
            )?;
        }
        tx.commit().map_err(backend)?;
        Ok(())
    }

    fn case_access(&self, case_ids: &[String]) -> StorageResult<HashMap<String, CaseAccess>> {
        let conn = self.conn();
        let mut out = HashMap::new();
        let mut case_stmt = conn
            .prepare_cached("SELECT created_by, team FROM cases WHERE case_id = ?1")
            .map_err(backend)?;
        let mut assignee_stmt = conn
            .prepare_cached("SELECT user_id FROM assignments WHERE case_id = ?1")
            .map_err(backend)?;
        for id in case_ids {
            let row: Option<(String, String)> = case_stmt
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(backend)?;
            if let Some((created_by, team)) = row {
                let assignees = assignee_stmt
                    .query_map([id], |r| r.get(0))
                    .map_err(backend)?
                    .collect::<rusqlite::Result<Vec<String>>>()
                    .map_err(backend)?;
                out.insert(
                    id.clone(),
                    CaseAccess {
                        created_by,
                        team,
                        assignees,
                    },
                );
            }
        }
        Ok(out)
    }

    fn known_changes(&self, case_id: &str, hashes: &[String]) -> StorageResult<HashSet<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT 1 FROM changes WHERE hash = ?1 AND case_id = ?2")
            .map_err(backend)?;
        let mut known = HashSet::new();
        for h in hashes {
            if stmt.exists(params![h, case_id]).map_err(backend)? {
                known.insert(h.clone());
            }
        }
        Ok(known)
    }

    fn write_admission(&self, write: &AdmissionWrite<'_>) -> StorageResult<usize> {
        let AdmissionWrite {
            device_id,
            cases: batch,
            audit,
            now,
            ..
        } = *write;
        let mut conn = self.conn();
        // Immediate: the only writer from here to the commit, so what was counted stays true.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        {
            let mut count = tx
                .prepare_cached("SELECT count(*) FROM changes WHERE case_id = ?1")
                .map_err(backend)?;
            for (case_id, held) in write.held {
                let now_held: i64 = count.query_row([case_id], |r| r.get(0)).map_err(backend)?;
                if now_held as u64 != *held {
                    return Err(StorageError::Moved(format!(
                        "case {case_id} holds {now_held} changes, admission read {held}"
                    )));
                }
            }
        }
        let mut stored = 0;
        let mut usage = Usage::default();
        {
            let mut feed = FeedAppender::start(&tx)?;
            let mut insert_change = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO changes (hash, case_id, origin_device, received_at, data)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(backend)?;
            let mut erased = tx
                .prepare_cached("SELECT 1 FROM erasures WHERE case_id = ?1")
                .map_err(backend)?;
            for case in batch {
                // An erasure that landed after the service checked this batch wins: the case
                // keeps nothing of it.
                if erased.exists([&case.case_id]).map_err(backend)? {
                    continue;
                }
                if let Some((created_by, team)) = &case.new_case {
                    usage.new_cases += tx.execute(
                        "INSERT OR IGNORE INTO cases (case_id, created_by, team, created_at) VALUES (?1, ?2, ?3, ?4)",
                        params![case.case_id, created_by, team, now],
                    )
                    .map_err(backend)? as u64;
                }
                for (hash, data) in &case.changes {
                    if insert_change
                        .execute(params![hash, case.case_id, device_id, now, data])
                        .map_err(backend)?
                        > 0
                    {
                        feed.append(&tx, tx.last_insert_rowid(), &case.case_id, hash, None)?;
                        stored += 1;
                        usage.bytes += data.len() as u64;
                    }
                }
                if let Some(summary) = &case.summary {
                    write_summary(&tx, summary, now)?;
                }
            }
        }
        if let Some((action, subject)) = audit {
            audit_row(&tx, now, device_id, action, subject)?;
        }
        for (to, case_ids) in write.moves_by_agent() {
            super::lifecycle::reassign_in(
                &tx,
                &case_ids,
                to,
                write.moved_by,
                now,
                write.grace_until,
            )?;
        }
        for (user_id, case_id) in write.removals {
            tx.prepare_cached("INSERT INTO removals (user_id, case_id, at) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![user_id, case_id, now]))
                .map_err(backend)?;
        }
        if usage != Usage::default() {
            let day = now.div_euclid(86_400);
            tx.execute(
                "INSERT INTO device_usage (device_id, day, new_cases, bytes) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (device_id, day) DO UPDATE
                 SET new_cases = new_cases + excluded.new_cases, bytes = bytes + excluded.bytes",
                params![device_id, day, usage.new_cases as i64, usage.bytes as i64],
            )
            .map_err(backend)?;
            tx.execute(
                "DELETE FROM device_usage WHERE device_id = ?1 AND day < ?2",
                params![device_id, day - USAGE_DAYS_KEPT],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(stored)
    }

    fn check_cursor(&self, cursor: u64, mark: &[u8]) -> StorageResult<CursorCheck> {
        if cursor == 0 {
            return Ok(CursorCheck::Matches);
        }
        let Ok(seq) = i64::try_from(cursor) else {
            return Ok(CursorCheck::Invalid);
        };
        let row: Option<Option<Vec<u8>>> = self
            .conn()
            .query_row(
                &format!("SELECT mark FROM {ALL_MARKS} WHERE seq = ?1"),
                [seq],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        Ok(CursorCheck::decide(
            row.as_ref().map(|m| m.as_deref()),
            mark,
        ))
    }

    fn feed_marks(&self) -> StorageResult<FeedMarks> {
        feed_marks(&self.conn())
    }

    fn own_feed_rows(
        &self,
        device_id: &str,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> StorageResult<Vec<(u64, String, String)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT f.seq, f.case_id, c.hash FROM changes c
                 JOIN feed f ON f.change_id = c.id
                 WHERE c.origin_device = ?1 AND f.seq > ?2 AND f.seq <= ?3
                 ORDER BY f.seq LIMIT ?4",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(
                params![
                    device_id,
                    i64::try_from(after).unwrap_or(i64::MAX),
                    i64::try_from(upto).unwrap_or(i64::MAX),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?)),
            )
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn feed_mark(&self, seq: u64) -> StorageResult<Vec<u8>> {
        if seq == 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT mark FROM {ALL_MARKS} WHERE seq = ?1"),
                [i64::try_from(seq).unwrap_or(i64::MAX)],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()
            .map_err(backend)?
            .flatten()
            .unwrap_or_default())
    }

    fn case_ids(&self) -> StorageResult<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT case_id FROM cases ORDER BY case_id")
            .map_err(backend)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn feed_page(
        &self,
        viewer: &Viewer,
        cursor: u64,
        raw_bytes_max: usize,
    ) -> StorageResult<FeedPage> {
        let mut conn = self.conn();
        // One read transaction: the feed's end and the page come from the same snapshot, so a
        // row committed meanwhile is never skipped.
        let tx = conn.transaction().map_err(backend)?;
        let end: u64 = tx
            // Rows an erasure removed count: the end never moves back past a device's cursor.
            .query_row(FEED_END, [], |r| r.get::<_, i64>(0))
            .map_err(backend)? as u64;
        let sql = feed_sql(ReadScope::of(viewer.role));
        let mut page = FeedPage {
            rows: Vec::new(),
            cursor: end,
            more: false,
        };
        let mut from = cursor;
        let mut bytes = 0usize;
        let mut stmt = tx.prepare_cached(&sql).map_err(backend)?;
        'outer: loop {
            let rows = stmt
                .query_map(
                    params_from_iter([
                        rusqlite::types::Value::Integer(from as i64),
                        rusqlite::types::Value::Integer(end as i64),
                        rusqlite::types::Value::Text(viewer.user_id.clone()),
                        rusqlite::types::Value::Text(viewer.team.clone()),
                        rusqlite::types::Value::Text(viewer.device_id.clone()),
                    ]),
                    |r| {
                        Ok(FeedRow {
                            seq: r.get::<_, i64>(0)? as u64,
                            case_id: r.get(1)?,
                            data: r.get(2)?,
                            user_id: r.get(3)?,
                            device_id: r.get(4)?,
                            received_at: r.get(5)?,
                        })
                    },
                )
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            let fetched = rows.len();
            for row in rows {
                from = row.seq;
                if !page.push_within(row, &mut bytes, raw_bytes_max) {
                    break 'outer;
                }
            }
            if fetched < FEED_ROWS_PER_QUERY {
                break;
            }
        }
        drop(stmt);
        tx.commit().map_err(backend)?;
        Ok(page)
    }

    fn case_changes(&self, case_id: &str) -> StorageResult<Vec<Vec<u8>>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT data FROM changes WHERE case_id = ?1 ORDER BY id")
            .map_err(backend)?;
        let rows = stmt.query_map([case_id], |r| r.get(0)).map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<Vec<u8>>>>()
            .map_err(backend)
    }
}
