//! ProjectionStore on SQLite: the console's projections: case summaries and lists, indicators, referral views, duplicates.

use super::*;
use crate::storage::ProjectionStore;

impl ProjectionStore for SqliteStore {
    fn duplicate_candidates(
        &self,
        reader: &User,
        limit: usize,
    ) -> StorageResult<Vec<(String, String)>> {
        let (scope, args): (&str, Vec<String>) = match ReadScope::of(reader.role) {
            ReadScope::All => ("", vec![]),
            ReadScope::Team => ("AND a.team = ?2 AND b.team = ?2", vec![reader.team.clone()]),
            ReadScope::Own => (
                "AND a.owner = ?2 AND b.owner = ?2",
                vec![reader.user_id.clone()],
            ),
        };
        let sql = format!(
            "SELECT a.case_id, b.case_id FROM case_summaries a
             JOIN case_summaries b ON b.dup_key = a.dup_key AND b.case_id > a.case_id
             WHERE a.dup_key IN (SELECT dup_key FROM case_summaries WHERE dup_key IS NOT NULL
                                 GROUP BY dup_key HAVING count(*) <= 50)
               AND coalesce(a.commune_key, '') = coalesce(b.commune_key, '')
               AND (a.birth_year IS NULL OR b.birth_year IS NULL
                    OR abs(a.birth_year - b.birth_year) <= 1)
               AND NOT EXISTS (SELECT 1 FROM distinct_cases d
                               WHERE d.case_a = a.case_id AND d.case_b = b.case_id)
               {scope}
             ORDER BY a.case_id, b.case_id LIMIT ?1"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
        let mut params: Vec<rusqlite::types::Value> = vec![rusqlite::types::Value::Integer(
            i64::try_from(limit).unwrap_or(i64::MAX),
        )];
        params.extend(args.into_iter().map(rusqlite::types::Value::Text));
        let rows = stmt
            .query_map(params_from_iter(params), |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn mark_distinct(&self, a: &str, b: &str, by: &str, now: i64) -> StorageResult<()> {
        let (a, b) = if a < b { (a, b) } else { (b, a) };
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let n = tx
            .execute(
                "INSERT OR IGNORE INTO distinct_cases (case_a, case_b, marked_by, at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![a, b, by, now],
            )
            .map_err(backend)?;
        if n > 0 {
            audit_row(&tx, now, by, "case.not_duplicate", &format!("{a} {b}"))?;
        }
        tx.commit().map_err(backend)
    }

    fn write_summaries(&self, summaries: &[SummaryWrite]) -> StorageResult<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        for write in summaries {
            let updated_at: Option<i64> = tx
                .query_row(
                    "SELECT max(received_at) FROM changes WHERE case_id = ?1",
                    [&write.summary.case_id],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if let Some(updated_at) = updated_at {
                write_summary(&tx, write, updated_at)?;
            }
        }
        tx.commit().map_err(backend)
    }

    fn summaries_to_refresh(&self, limit: usize) -> StorageResult<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT case_id FROM (
                    SELECT k.case_id FROM cases k WHERE NOT EXISTS
                        (SELECT 1 FROM case_summaries s WHERE s.case_id = k.case_id)
                    UNION SELECT case_id FROM case_summaries WHERE stale = 1)
                 ORDER BY case_id LIMIT ?1",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(backend)
    }

    fn list_cases(&self, reader: &User, query: &CaseQuery) -> StorageResult<CaseList> {
        use crate::storage::case_list::{arm_limit, arms, page_of, sort_key, Dialect};
        let dialect = Dialect {
            param: |n| format!("?{n}"),
            contains: |needle, haystack| format!("instr({haystack}, {needle}) > 0"),
        };
        let arms = arms(reader, query, &dialect, &|t| t.to_string());
        let mut conn = self.conn();
        // One snapshot for the counts and the page.
        let tx = conn.transaction().map_err(backend)?;
        let mut total = 0u64;
        let mut keys: Vec<((i64, String), String)> = Vec::new();
        for arm in &arms {
            let count: i64 = tx
                .prepare_cached(&format!(
                    "SELECT count(*) FROM case_summaries s {}",
                    arm.filter
                ))
                .map_err(backend)?
                .query_row(params_from_iter(arm.args.iter()), |r| r.get(0))
                .map_err(backend)?;
            total += count as u64;
            let (key, order) = sort_key(query.sort);
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {key}, s.case_id FROM case_summaries s {} ORDER BY {order} LIMIT {}",
                    arm.filter,
                    arm_limit(query)
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params_from_iter(arm.args.iter()), |r| {
                    Ok(((r.get(0)?, r.get(1)?), r.get(2)?))
                })
                .map_err(backend)?;
            for row in rows {
                keys.push(row.map_err(backend)?);
            }
        }
        let mut cases = Vec::new();
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT shown, owner, team, updated_at FROM case_summaries WHERE case_id = ?1",
                )
                .map_err(backend)?;
            for id in page_of(keys, query) {
                cases.push(stmt.query_row([&id], row_to_listed).map_err(backend)?);
            }
        }
        tx.commit().map_err(backend)?;
        Ok(CaseList { cases, total })
    }

    fn scoped_cases(
        &self,
        reader: &User,
        after: &str,
        limit: usize,
    ) -> StorageResult<Vec<ListedCase>> {
        use crate::storage::case_list::{and, arms, merged_ids, Dialect};
        let dialect = Dialect {
            param: |n| format!("?{n}"),
            contains: |needle, haystack| format!("instr({haystack}, {needle}) > 0"),
        };
        let arms = arms(reader, &CaseQuery::default(), &dialect, &|t| t.to_string());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(backend)?;
        let mut ids = Vec::new();
        for arm in &arms {
            let n = arm.args.len();
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT s.case_id FROM case_summaries s {} ORDER BY s.case_id LIMIT ?{}",
                    and(&arm.filter, &format!("s.case_id > ?{}", n + 1)),
                    n + 2
                ))
                .map_err(backend)?;
            let mut args: Vec<rusqlite::types::Value> =
                arm.args.iter().map(|a| a.clone().into()).collect();
            args.push(after.to_string().into());
            args.push(limit.into());
            let rows = stmt
                .query_map(params_from_iter(args), |r| r.get::<_, String>(0))
                .map_err(backend)?;
            for row in rows {
                ids.push(row.map_err(backend)?);
            }
        }
        let mut cases = Vec::new();
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT shown, owner, team, updated_at FROM case_summaries WHERE case_id = ?1",
                )
                .map_err(backend)?;
            for id in merged_ids(ids, limit as usize) {
                cases.push(stmt.query_row([&id], row_to_listed).map_err(backend)?);
            }
        }
        tx.commit().map_err(backend)?;
        Ok(cases)
    }

    fn case_records(&self, case_ids: &[String]) -> StorageResult<Vec<(String, CaseRecords)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT body FROM case_records WHERE case_id = ?1")
            .map_err(backend)?;
        let mut out = Vec::with_capacity(case_ids.len());
        for id in case_ids {
            let body: Option<Vec<u8>> = stmt
                .query_row([id], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            if let Some(body) = body {
                let records = serde_json::from_slice(&body)
                    .map_err(|e| StorageError::Backend(format!("records of {id}: {e}")))?;
                out.push((id.clone(), records));
            }
        }
        Ok(out)
    }

    fn indicator_cells(&self, reader: &User, today: &str) -> StorageResult<Vec<IndicatorCell>> {
        use crate::storage::indicators::{cells_sql, merge_cells};
        let cells = self.per_arm(reader, &cells_sql, vec![today.to_string().into()], |r| {
            let count = |i: usize| -> rusqlite::Result<u64> {
                Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0) as u64)
            };
            Ok(IndicatorCell {
                month: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                province_key: r.get(1)?,
                commune_key: r.get(2)?,
                sector: r.get(3)?,
                days_to_service: r.get(4)?,
                cases: count(5)?,
                referred: count(6)?,
                service: count(7)?,
                stopped_working: count(8)?,
                overdue: count(9)?,
                sex: r.get(10)?,
                age: r.get::<_, Option<i64>>(11)?,
                agent: r.get(12)?,
                team: r.get(13)?,
                closed_reason: r.get(14)?,
                withdrawn: count(15)?,
                prevented: count(16)?,
                exited: count(17)?,
                relapsed: count(18)?,
                proposed: count(19)?,
                reopened: count(20)?,
                visits_scheduled: count(21)?,
                visits_on_time: count(22)?,
            })
        })?;
        Ok(merge_cells(cells))
    }

    fn place_spellings(&self, reader: &User, kinds: &[&str]) -> StorageResult<Vec<PlaceSpelling>> {
        use crate::storage::indicators::{merge_spellings, spellings_sql, SPELLING_KINDS};
        let mut spellings = Vec::new();
        for &kind in kinds.iter().filter(|k| SPELLING_KINDS.contains(k)) {
            spellings.extend(self.per_arm(
                reader,
                &|arm, _| spellings_sql(arm, kind),
                Vec::new(),
                |r| {
                    Ok(PlaceSpelling {
                        kind: kind.to_string(),
                        key: r.get(0)?,
                        spelling: r.get(1)?,
                        cases: r.get::<_, i64>(2)? as u64,
                    })
                },
            )?);
        }
        Ok(merge_spellings(spellings))
    }

    fn referral_groups(&self, reader: &User, now: i64) -> StorageResult<Vec<ReferralGroup>> {
        use crate::storage::indicators::{groups_sql, merge_groups};
        let groups = self.per_arm(reader, &groups_sql, vec![now.into()], |r| {
            let mut time_in = [(0i64, 0u64); 5];
            for (k, slot) in time_in.iter_mut().enumerate() {
                *slot = (
                    r.get::<_, Option<i64>>(5 + 2 * k)?.unwrap_or(0),
                    r.get::<_, Option<i64>>(6 + 2 * k)?.unwrap_or(0) as u64,
                );
            }
            Ok(ReferralGroup {
                service_type: r.get(0)?,
                provider_key: r.get(1)?,
                provider: r.get(2)?,
                status: r.get(3)?,
                referrals: r.get::<_, i64>(4)? as u64,
                time_in,
            })
        })?;
        Ok(merge_groups(groups))
    }

    fn stuck_referrals(&self, reader: &User, query: &StuckQuery) -> StorageResult<StuckList> {
        use crate::storage::indicators::{merge_stuck, stuck_arm_limit, stuck_sql};
        use rusqlite::types::Value;
        let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
        let params = vec![
            Value::Integer(query.before),
            text(&query.agent.as_ref().map(|a| a.to_lowercase())),
            text(&query.service_type),
        ];
        let total: i64 = self
            .per_arm(
                reader,
                &|arm, dialect| stuck_sql(arm, dialect, true),
                params.clone(),
                |r| r.get::<_, i64>(0),
            )?
            .into_iter()
            .sum();
        let mut with_limit = params;
        with_limit.push(Value::Integer(stuck_arm_limit(query)));
        let stuck = self.per_arm(
            reader,
            &|arm, dialect| stuck_sql(arm, dialect, false),
            with_limit,
            |r| {
                Ok(StuckReferral {
                    case_id: r.get(0)?,
                    referral_id: r.get(1)?,
                    service_type: r.get(2)?,
                    provider: r.get(3)?,
                    status: r.get(4)?,
                    status_since: r.get(5)?,
                    urgency: r.get(6)?,
                    agent: r.get(7)?,
                })
            },
        )?;
        Ok(StuckList {
            referrals: merge_stuck(stuck, query),
            total: total as u64,
        })
    }

    fn listed_case(&self, case_id: &str) -> StorageResult<Option<ListedCase>> {
        self.conn()
            .query_row(
                "SELECT shown, owner, team, updated_at FROM case_summaries WHERE case_id = ?1",
                [case_id],
                row_to_listed,
            )
            .optional()
            .map_err(backend)
    }
}
