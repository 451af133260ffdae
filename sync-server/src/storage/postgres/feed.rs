//! FeedStore on PostgreSQL: changes in and out: who owns a case, storing a checked push, the feed a pull reads and its marks.

use super::*;
use crate::storage::FeedStore;

impl FeedStore for PostgresStore {
    fn assign_case(&self, case_id: &str, user_id: &str, now: i64) -> StorageResult<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        // The sequencer first: the case's rows are re-appended in one block, and an erasure of
        // the case cannot interleave.
        let mut head = FeedHead::lock(&mut tx)?;
        let Some(case) = tx
            .query_opt(
                "SELECT created_by, team FROM cases WHERE case_id = $1",
                &[&case_id],
            )
            .map_err(backend)?
        else {
            return Err(StorageError::NotFound(format!("case {case_id}")));
        };
        let (owner, team): (String, String) = (case.get(0), case.get(1));
        if tx
            .query_opt("SELECT 1 FROM users WHERE user_id = $1", &[&user_id])
            .map_err(backend)?
            .is_none()
        {
            return Err(StorageError::NotFound(format!("user {user_id}")));
        }
        let n = tx
            .execute(
                "INSERT INTO assignments (case_id, user_id, assigned_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&case_id, &user_id, &now],
            )
            .map_err(backend)?;
        if n > 0 {
            // The new assignee's devices may have passed these changes already: queue them
            // again for that user only, in feed order.
            head.queue_case_for(&mut tx, case_id, user_id, (&owner, &team))?;
            head.save(&mut tx)?;
            audit_row(
                &mut tx,
                now,
                "admin",
                "case.assign",
                &format!("{case_id} -> {user_id}"),
            )?;
        }
        tx.commit().map_err(backend)
    }

    fn case_access(&self, case_ids: &[String]) -> StorageResult<HashMap<String, CaseAccess>> {
        let mut client = self.client()?;
        let mut out: HashMap<String, CaseAccess> = client
            .query(
                "SELECT case_id, created_by, team FROM cases WHERE case_id = ANY($1)",
                &[&case_ids],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| {
                (
                    r.get(0),
                    CaseAccess {
                        created_by: r.get(1),
                        team: r.get(2),
                        assignees: Vec::new(),
                    },
                )
            })
            .collect();
        for r in client
            .query(
                "SELECT case_id, user_id FROM assignments WHERE case_id = ANY($1) ORDER BY assigned_at, user_id",
                &[&case_ids],
            )
            .map_err(backend)?
        {
            if let Some(access) = out.get_mut(r.get::<_, &str>(0)) {
                access.assignees.push(r.get(1));
            }
        }
        Ok(out)
    }

    fn known_changes(&self, case_id: &str, hashes: &[String]) -> StorageResult<HashSet<String>> {
        Ok(self
            .client()?
            .query(
                "SELECT hash FROM changes WHERE case_id = $1 AND hash = ANY($2)",
                &[&case_id, &hashes],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn write_admission(&self, write: &AdmissionWrite<'_>) -> StorageResult<usize> {
        let AdmissionWrite {
            device_id,
            cases: batch,
            audit,
            now,
            ..
        } = *write;
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        // Changes are inserted before the sequencer is taken, so the lock is held only to
        // number feed rows and commit.
        struct Inserted<'a> {
            case_id: &'a str,
            id: i64,
            hash: &'a str,
            bytes: u64,
        }
        let mut inserted = Vec::new();
        let mut new_cases: HashSet<&str> = HashSet::new();
        {
            let insert_case = tx
                .prepare(
                    "INSERT INTO cases (case_id, created_by, team, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                )
                .map_err(backend)?;
            let insert_change = tx
                .prepare(
                    "INSERT INTO changes (hash, case_id, origin_device, received_at, data)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO NOTHING RETURNING id",
                )
                .map_err(backend)?;
            for case in batch {
                if let Some((created_by, team)) = &case.new_case {
                    if tx
                        .execute(&insert_case, &[&case.case_id, created_by, team, &now])
                        .map_err(backend)?
                        > 0
                    {
                        new_cases.insert(&case.case_id);
                    }
                }
                for (hash, data) in &case.changes {
                    let sealed = self.sealer.seal_change(&case.case_id, hash, data);
                    if let Some(row) = tx
                        .query_opt(
                            &insert_change,
                            &[hash, &case.case_id, &device_id, &now, &sealed],
                        )
                        .map_err(backend)?
                    {
                        inserted.push(Inserted {
                            case_id: &case.case_id,
                            id: row.get(0),
                            hash,
                            bytes: data.len() as u64,
                        });
                    }
                }
            }
        }
        let mut head = FeedHead::lock(&mut tx)?;
        // Under the sequencer every other write to these cases has committed (and is counted)
        // or waits: a case holding other changes than admission read plus this transaction's
        // own was written meanwhile, and is decided again.
        if !write.held.is_empty() {
            let mut ours: HashMap<&str, u64> = HashMap::new();
            for change in &inserted {
                *ours.entry(change.case_id).or_default() += 1;
            }
            let ids: Vec<&str> = write.held.iter().map(|(id, _)| id.as_str()).collect();
            let counts: HashMap<String, i64> = tx
                .query(
                    "SELECT case_id, count(*) FROM changes WHERE case_id = ANY($1) GROUP BY case_id",
                    &[&ids],
                )
                .map_err(backend)?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for (case_id, held) in write.held {
                let now_held = counts.get(case_id).copied().unwrap_or(0) as u64;
                let expected = held + ours.get(case_id.as_str()).copied().unwrap_or(0);
                if now_held != expected {
                    return Err(StorageError::Moved(format!(
                        "case {case_id} holds {now_held} changes, admission expected {expected}"
                    )));
                }
            }
        }
        // An erasure that committed after the service checked this batch: its cases keep
        // nothing of it (the erasure held the sequencer, so it is visible now).
        let batch_cases: Vec<&str> = batch.iter().map(|c| c.case_id.as_str()).collect();
        let erased: HashSet<String> = tx
            .query(
                "SELECT case_id FROM erasures WHERE case_id = ANY($1)",
                &[&batch_cases],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        if !erased.is_empty() {
            let erased_list: Vec<&String> = erased.iter().collect();
            for sql in [
                "DELETE FROM changes WHERE case_id = ANY($1)",
                "DELETE FROM cases WHERE case_id = ANY($1)",
            ] {
                tx.execute(sql, &[&erased_list]).map_err(backend)?;
            }
            inserted.retain(|c| !erased.contains(c.case_id));
            new_cases.retain(|c| !erased.contains(*c));
        }
        let mut usage = Usage {
            new_cases: new_cases.len() as u64,
            bytes: 0,
        };
        let mut owners: HashMap<&str, (String, String)> = HashMap::new();
        for change in &inserted {
            if !owners.contains_key(change.case_id) {
                let r = tx
                    .query_one(
                        "SELECT created_by, team FROM cases WHERE case_id = $1",
                        &[&change.case_id],
                    )
                    .map_err(backend)?;
                owners.insert(change.case_id, (r.get(0), r.get(1)));
            }
            let (owner, team) = &owners[change.case_id];
            head.append(
                &mut tx,
                change.id,
                change.case_id,
                change.hash,
                None,
                (owner, team),
            )?;
            usage.bytes += change.bytes;
        }
        // Under the sequencer, every other push to these cases has committed or will count
        // these changes: the count a summary is checked against is exact.
        for case in batch {
            if let Some(summary) = &case.summary {
                if !erased.contains(&case.case_id) {
                    self.write_summary(&mut tx, summary, now)?;
                }
            }
        }
        if let Some((action, subject)) = audit {
            audit_row(&mut tx, now, device_id, action, subject)?;
        }
        for (to, case_ids) in write.moves_by_agent() {
            super::lifecycle::reassign_in(
                &mut tx,
                &mut head,
                &case_ids,
                to,
                write.moved_by,
                now,
                write.grace_until,
            )?;
        }
        head.save(&mut tx)?;
        for (user_id, case_id) in write.removals {
            tx.execute(
                "INSERT INTO removals (user_id, case_id, at) VALUES ($1, $2, $3)",
                &[user_id, case_id, &now],
            )
            .map_err(backend)?;
        }
        if usage != Usage::default() {
            let day = now.div_euclid(86_400);
            tx.execute(
                "INSERT INTO device_usage (device_id, day, new_cases, bytes) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (device_id, day) DO UPDATE
                 SET new_cases = device_usage.new_cases + excluded.new_cases,
                     bytes = device_usage.bytes + excluded.bytes",
                &[&device_id, &day, &(usage.new_cases as i64), &(usage.bytes as i64)],
            )
            .map_err(backend)?;
            tx.execute(
                "DELETE FROM device_usage WHERE device_id = $1 AND day < $2",
                &[&device_id, &(day - USAGE_DAYS_KEPT)],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(inserted.len())
    }

    fn check_cursor(&self, cursor: u64, mark: &[u8]) -> StorageResult<CursorCheck> {
        if cursor == 0 {
            return Ok(CursorCheck::Matches);
        }
        let Ok(seq) = i64::try_from(cursor) else {
            return Ok(CursorCheck::Invalid);
        };
        let stored: Option<Vec<u8>> = self
            .client()?
            .query_opt(
                "SELECT mark FROM feed WHERE seq = $1 UNION ALL SELECT mark FROM erased_feed_marks WHERE seq = $1",
                &[&seq],
            )
            .map_err(backend)?
            .map(|r| r.get(0));
        Ok(CursorCheck::decide(stored.as_deref().map(Some), mark))
    }

    fn feed_marks(&self) -> StorageResult<FeedMarks> {
        feed_marks(&mut *self.client()?)
    }

    fn own_feed_rows(
        &self,
        device_id: &str,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> StorageResult<Vec<(u64, String, String)>> {
        Ok(self
            .client()?
            .query(
                "SELECT f.seq, f.case_id, c.hash FROM changes c
                 JOIN feed f ON f.change_id = c.id
                 WHERE c.origin_device = $1 AND f.seq > $2 AND f.seq <= $3
                 ORDER BY f.seq LIMIT $4",
                &[
                    &device_id,
                    &pg_seq(after),
                    &pg_seq(upto),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
            )
            .map_err(backend)?
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1), r.get(2)))
            .collect())
    }

    fn feed_mark(&self, seq: u64) -> StorageResult<Vec<u8>> {
        if seq == 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .client()?
            .query_opt(
                "SELECT mark FROM feed WHERE seq = $1 UNION ALL SELECT mark FROM erased_feed_marks WHERE seq = $1",
                &[&pg_seq(seq)],
            )
            .map_err(backend)?
            .map(|r| r.get(0))
            .unwrap_or_default())
    }

    fn case_ids(&self) -> StorageResult<Vec<String>> {
        Ok(self
            .client()?
            .query("SELECT case_id FROM cases ORDER BY case_id", &[])
            .map_err(backend)?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn feed_page(
        &self,
        viewer: &Viewer,
        cursor: u64,
        raw_bytes_max: usize,
    ) -> StorageResult<FeedPage> {
        let mut client = self.client()?;
        // One snapshot for the head and the page. The head moves only when a writer holding the
        // sequencer commits, so every row up to it is visible here; reading takes no lock and
        // never waits for a writer.
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(backend)?;
        let end: i64 = tx
            .query_one("SELECT seq FROM feed_head", &[])
            .map_err(backend)?
            .get(0);
        // Typed: a scope's query need not use every parameter (an agent's ignores the team).
        let stmt = tx
            .prepare_typed(
                &feed_sql(ReadScope::of(viewer.role)),
                &[Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT],
            )
            .map_err(backend)?;
        let mut page = FeedPage {
            rows: Vec::new(),
            cursor: end as u64,
            more: false,
        };
        let mut from = pg_seq(cursor);
        let mut bytes = 0usize;
        'outer: loop {
            let rows = tx
                .query(
                    &stmt,
                    &[
                        &from,
                        &end,
                        &viewer.user_id,
                        &viewer.team,
                        &viewer.device_id,
                    ],
                )
                .map_err(backend)?;
            let fetched = rows.len() as i64;
            for r in rows {
                let seq: i64 = r.get(0);
                let case_id: String = r.get(1);
                let hash: &str = r.get(2);
                let row = FeedRow {
                    seq: seq as u64,
                    data: self.open_change(&case_id, hash, r.get(3))?,
                    case_id,
                    user_id: r.get(4),
                    device_id: r.get(5),
                    received_at: r.get(6),
                };
                from = seq;
                if !page.push_within(row, &mut bytes, raw_bytes_max) {
                    break 'outer;
                }
            }
            if fetched < FEED_ROWS_PER_QUERY {
                break;
            }
        }
        tx.commit().map_err(backend)?;
        Ok(page)
    }

    fn case_changes(&self, case_id: &str) -> StorageResult<Vec<Vec<u8>>> {
        self.client()?
            .query(
                "SELECT c.hash, c.data FROM changes c
                 JOIN feed f ON f.change_id = c.id AND f.audience IS NULL
                 WHERE c.case_id = $1 ORDER BY f.seq",
                &[&case_id],
            )
            .map_err(backend)?
            .iter()
            .map(|r| self.open_change(case_id, r.get(0), r.get(1)))
            .collect()
    }
}

/// The feed's sequencer, locked for the rest of the transaction: rows appended through it get
/// the positions after the head, and the head moves when the transaction commits.
pub(super) struct FeedHead {
    /// Prepared at the first append: an erasure locks the head without appending.
    pub(super) insert: Option<postgres::Statement>,
    pub(super) seq: i64,
    pub(super) mark: Vec<u8>,
    pub(super) erasure_seq: i64,
    pub(super) marks: FeedMarks,
}

/// The feed marks' formula, as the database records it.
pub(super) fn feed_marks(client: &mut impl GenericClient) -> StorageResult<FeedMarks> {
    let from: i64 = client
        .query_one(
            "SELECT case_id_from FROM feed_mark_formula WHERE one = 1",
            &[],
        )
        .map_err(backend)?
        .get(0);
    Ok(FeedMarks {
        case_id_from: u64::try_from(from).map_err(|_| {
            StorageError::Backend(format!("feed_mark_formula holds {from}, not a position"))
        })?,
    })
}

impl FeedHead {
    pub(super) fn lock(tx: &mut impl GenericClient) -> StorageResult<FeedHead> {
        let row = tx
            .query_one(
                "SELECT seq, mark, erasure_seq FROM feed_head FOR UPDATE",
                &[],
            )
            .map_err(backend)?;
        Ok(FeedHead {
            insert: None,
            seq: row.get(0),
            mark: row.get(1),
            erasure_seq: row.get(2),
            marks: feed_marks(tx)?,
        })
    }

    /// Appends a copy of every change of a case, in feed order, for `user` only (an
    /// assignment, a reassignment): that user's phones may have passed the case's rows already.
    pub(super) fn queue_case_for(
        &mut self,
        tx: &mut impl GenericClient,
        case_id: &str,
        user: &str,
        owner_team: (&str, &str),
    ) -> StorageResult<()> {
        let changes = tx
            .query(
                "SELECT c.id, c.hash FROM changes c
                 JOIN feed f ON f.change_id = c.id AND f.audience IS NULL
                 WHERE c.case_id = $1 ORDER BY f.seq",
                &[&case_id],
            )
            .map_err(backend)?;
        for row in changes {
            let hash: String = row.get(1);
            self.append(tx, row.get(0), case_id, &hash, Some(user), owner_team)?;
        }
        Ok(())
    }

    pub(super) fn append(
        &mut self,
        tx: &mut impl GenericClient,
        change_id: i64,
        case_id: &str,
        hash: &str,
        audience: Option<&str>,
        (owner, team): (&str, &str),
    ) -> StorageResult<()> {
        self.seq += 1;
        self.mark = self
            .marks
            .next(&self.mark, self.seq as u64, hash, audience, case_id);
        let insert = match &self.insert {
            Some(insert) => insert,
            None => self
                .insert
                .insert(tx.prepare(INSERT_FEED_ROW).map_err(backend)?),
        };
        tx.execute(
            insert,
            &[
                &self.seq, &change_id, &case_id, &audience, &owner, &team, &self.mark,
            ],
        )
        .map_err(backend)?;
        Ok(())
    }

    /// Appends many rows in one statement, each `(case, change id, hash)` for `audience` only:
    /// positions and marks are chained here as `append` chains them, one by one.
    pub(super) fn append_all(
        &mut self,
        tx: &mut impl GenericClient,
        rows: &[(String, i64, String)],
        audience: &str,
        (owner, team): (&str, &str),
    ) -> StorageResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut seqs = Vec::with_capacity(rows.len());
        let mut marks = Vec::with_capacity(rows.len());
        for (case_id, _, hash) in rows {
            self.seq += 1;
            self.mark = self
                .marks
                .next(&self.mark, self.seq as u64, hash, Some(audience), case_id);
            seqs.push(self.seq);
            marks.push(self.mark.clone());
        }
        let change_ids: Vec<i64> = rows.iter().map(|(_, id, _)| *id).collect();
        let case_ids: Vec<&str> = rows.iter().map(|(case, _, _)| case.as_str()).collect();
        tx.execute(
            "INSERT INTO feed (seq, change_id, case_id, audience, owner, team, mark)
             SELECT s, c, k, $4, $5, $6, m
             FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $7::bytea[]) AS t(s, c, k, m)",
            &[
                &seqs,
                &change_ids,
                &case_ids,
                &audience,
                &owner,
                &team,
                &marks,
            ],
        )
        .map_err(backend)?;
        Ok(())
    }

    pub(super) fn save(&self, tx: &mut impl GenericClient) -> StorageResult<()> {
        tx.execute(
            "UPDATE feed_head SET seq = $1, mark = $2, erasure_seq = $3",
            &[&self.seq, &self.mark, &self.erasure_seq],
        )
        .map_err(backend)?;
        Ok(())
    }
}

pub(super) const INSERT_FEED_ROW: &str =
    "INSERT INTO feed (seq, change_id, case_id, audience, owner, team, mark)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The feed query of a read scope ($1 cursor, $2 end, $3 user, $4 team, $5 the reading
/// device): one arm per way a row enters the caseload, each an index range scan, merged in
/// feed order. The same translation of `ReadScope` as the SQLite store's.
pub(super) fn feed_sql(scope: ReadScope) -> String {
    // Rows of cases assigned to the user, found from the user's assignments: a lateral join, so
    // the plan starts from the few assignments and seeks each case's rows by index, whatever
    // the statistics say (before autovacuum's first analyze, PostgreSQL otherwise walked every
    // feed row after the cursor: 100 ms with 50,000 other rows).
    let assigned_rows = format!(
        "assignments a CROSS JOIN LATERAL (
             SELECT * FROM feed f0
             WHERE f0.case_id = a.case_id AND f0.audience IS NULL AND f0.seq > $1 AND f0.seq <= $2
             ORDER BY f0.seq LIMIT {FEED_ROWS_PER_QUERY}) f"
    );
    let assigned = "f.case_id IN (SELECT a.case_id FROM assignments a WHERE a.user_id = $3)";
    // (rows, condition) per way a row enters the caseload.
    let arms: Vec<(String, String)> = match scope {
        ReadScope::Own => vec![
            (
                "feed f".into(),
                "f.audience IS NULL AND f.owner = $3".into(),
            ),
            (assigned_rows, "a.user_id = $3 AND f.owner <> $3".into()),
            (
                "feed f".into(),
                format!("f.audience = $3 AND (f.owner = $3 OR {assigned})"),
            ),
        ],
        ReadScope::Team => vec![
            ("feed f".into(), "f.audience IS NULL AND f.team = $4".into()),
            (assigned_rows, "a.user_id = $3 AND f.team <> $4".into()),
            (
                "feed f".into(),
                format!("f.audience = $3 AND (f.team = $4 OR {assigned})"),
            ),
        ],
        ReadScope::All => vec![(
            "feed f".into(),
            "f.audience IS NULL OR f.audience = $3".into(),
        )],
    };
    let select = arms
        .iter()
        .map(|(rows, arm)| {
            format!(
                "(SELECT f.seq, f.case_id, c.hash, c.data, coalesce(d.user_id, ''), c.origin_device, c.received_at
                  FROM {rows}
                  JOIN changes c ON c.id = f.change_id
                  LEFT JOIN devices d ON d.device_id = c.origin_device
                  WHERE f.seq > $1 AND f.seq <= $2 AND ({arm})
                    AND (f.audience IS NOT NULL OR c.origin_device <> $5)
                    AND NOT EXISTS (SELECT 1 FROM quarantined_cases q WHERE q.case_id = f.case_id)
                  ORDER BY f.seq LIMIT {FEED_ROWS_PER_QUERY})"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    if arms.len() == 1 {
        // One arm is already ordered and limited; PostgreSQL refuses a second ORDER BY on it.
        return select;
    }
    format!("{select} ORDER BY 1 LIMIT {FEED_ROWS_PER_QUERY}")
}
