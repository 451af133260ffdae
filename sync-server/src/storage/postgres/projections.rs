//! ProjectionStore on PostgreSQL: the console's projections: case summaries and lists, indicators, referral views, duplicates.

use super::*;
use crate::storage::ProjectionStore;

impl ProjectionStore for PostgresStore {
    fn duplicate_candidates(
        &self,
        reader: &User,
        limit: usize,
    ) -> StorageResult<Vec<(String, String)>> {
        let (scope, arg): (&str, Option<String>) = match ReadScope::of(reader.role) {
            ReadScope::All => ("", None),
            ReadScope::Team => ("AND a.team = $2 AND b.team = $2", Some(reader.team.clone())),
            ReadScope::Own => (
                "AND a.owner = $2 AND b.owner = $2",
                Some(reader.user_id.clone()),
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
             ORDER BY a.case_id, b.case_id LIMIT $1"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut client = self.client()?;
        let rows = match &arg {
            Some(arg) => client.query(&sql, &[&limit, arg]),
            None => client.query(&sql, &[&limit]),
        }
        .map_err(backend)?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn mark_distinct(&self, a: &str, b: &str, by: &str, now: i64) -> StorageResult<()> {
        let (a, b) = if a < b { (a, b) } else { (b, a) };
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        let n = tx
            .execute(
                "INSERT INTO distinct_cases (case_a, case_b, marked_by, at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&a, &b, &by, &now],
            )
            .map_err(backend)?;
        if n > 0 {
            audit_row(&mut tx, now, by, "case.not_duplicate", &format!("{a} {b}"))?;
        }
        tx.commit().map_err(backend)
    }

    fn write_summaries(&self, summaries: &[SummaryWrite]) -> StorageResult<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        // The sequencer, as a push: the change count is exact while it is held.
        let head = FeedHead::lock(&mut tx)?;
        for write in summaries {
            let updated_at: Option<i64> = tx
                .query_one(
                    "SELECT max(received_at) FROM changes WHERE case_id = $1",
                    &[&write.summary.case_id],
                )
                .map_err(backend)?
                .get(0);
            if let Some(updated_at) = updated_at {
                self.write_summary(&mut tx, write, updated_at)?;
            }
        }
        drop(head);
        tx.commit().map_err(backend)
    }

    fn summaries_to_refresh(&self, limit: usize) -> StorageResult<Vec<String>> {
        let mut client = self.client()?;
        Ok(client
            .query(
                "SELECT case_id FROM (
                    SELECT k.case_id FROM cases k WHERE NOT EXISTS
                        (SELECT 1 FROM case_summaries s WHERE s.case_id = k.case_id)
                    UNION SELECT case_id FROM case_summaries WHERE stale) AS r
                 ORDER BY case_id LIMIT $1",
                &[&i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .map_err(backend)?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn list_cases(&self, reader: &User, query: &CaseQuery) -> StorageResult<CaseList> {
        use crate::storage::case_list::{arm_limit, arms, page_of, sort_key, Dialect};
        let dialect = Dialect {
            param: |n| format!("${n}"),
            contains: |needle, haystack| format!("strpos({haystack}, {needle}) > 0"),
        };
        let arms = arms(reader, query, &dialect, &|t| self.sealer.blind(t));
        let mut client = self.client()?;
        // One snapshot for the counts and the page.
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(backend)?;
        let mut total = 0u64;
        let mut keys: Vec<((i64, String), String)> = Vec::new();
        let (key, order) = sort_key(query.sort);
        for arm in &arms {
            let params: Vec<&(dyn postgres::types::ToSql + Sync)> = arm
                .args
                .iter()
                .map(|a| a as &(dyn postgres::types::ToSql + Sync))
                .collect();
            let count: i64 = tx
                .query_one(
                    &format!("SELECT count(*) FROM case_summaries s {}", arm.filter),
                    &params,
                )
                .map_err(backend)?
                .get(0);
            total += count as u64;
            for r in tx
                .query(
                    &format!(
                        "SELECT {key}, s.case_id FROM case_summaries s {} ORDER BY {order} LIMIT {}",
                        arm.filter,
                        arm_limit(query)
                    ),
                    &params,
                )
                .map_err(backend)?
            {
                keys.push(((r.get(0), r.get(1)), r.get(2)));
            }
        }
        let page = page_of(keys, query);
        let rows = tx
            .query(
                "SELECT shown, owner, team, updated_at, case_id FROM case_summaries
                 WHERE case_id = ANY($1)",
                &[&page],
            )
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        let mut by_id: HashMap<String, ListedCase> = HashMap::new();
        for r in &rows {
            let listed = self.row_to_listed(r)?;
            by_id.insert(listed.summary.case_id.clone(), listed);
        }
        let cases = page.iter().filter_map(|id| by_id.remove(id)).collect();
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
            param: |n| format!("${n}"),
            contains: |needle, haystack| format!("strpos({haystack}, {needle}) > 0"),
        };
        let arms = arms(reader, &CaseQuery::default(), &dialect, &|t| {
            self.sealer.blind(t)
        });
        let limit_arg = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = after.to_string();
        let mut client = self.client()?;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(backend)?;
        let mut ids = Vec::new();
        for arm in &arms {
            let n = arm.args.len();
            let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = arm
                .args
                .iter()
                .map(|a| a as &(dyn postgres::types::ToSql + Sync))
                .collect();
            params.push(&after);
            params.push(&limit_arg);
            for r in tx
                .query(
                    &format!(
                        "SELECT s.case_id FROM case_summaries s {} ORDER BY s.case_id LIMIT ${}",
                        and(&arm.filter, &format!("s.case_id > ${}", n + 1)),
                        n + 2
                    ),
                    &params,
                )
                .map_err(backend)?
            {
                ids.push(r.get::<_, String>(0));
            }
        }
        let page = merged_ids(ids, limit);
        let rows = tx
            .query(
                "SELECT shown, owner, team, updated_at, case_id FROM case_summaries
                 WHERE case_id = ANY($1) ORDER BY case_id",
                &[&page],
            )
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        rows.iter().map(|r| self.row_to_listed(r)).collect()
    }

    fn case_records(&self, case_ids: &[String]) -> StorageResult<Vec<(String, CaseRecords)>> {
        let rows = self
            .client()?
            .query(
                "SELECT case_id, body FROM case_records WHERE case_id = ANY($1)",
                &[&case_ids],
            )
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let id: String = r.get(0);
                let sealed: Vec<u8> = r.get(1);
                let body = self
                    .sealer
                    .open_records(&id, &sealed)
                    .map_err(|e| StorageError::Backend(e.to_string()))?;
                let records = serde_json::from_slice(&body)
                    .map_err(|e| StorageError::Backend(format!("records of {id}: {e}")))?;
                Ok((id, records))
            })
            .collect()
    }

    fn indicator_cells(&self, reader: &User, today: &str) -> StorageResult<Vec<IndicatorCell>> {
        use crate::storage::indicators::{cells_sql, merge_cells};
        let today = today.to_string();
        let cells = self.per_arm(reader, &cells_sql, &[&today], |r| {
            let count = |i: usize| r.get::<_, Option<i64>>(i).unwrap_or(0) as u64;
            IndicatorCell {
                month: r.get::<_, Option<String>>(0).unwrap_or_default(),
                province_key: r.get(1),
                commune_key: r.get(2),
                sector: r.get(3),
                days_to_service: r.get(4),
                cases: count(5),
                referred: count(6),
                service: count(7),
                stopped_working: count(8),
                overdue: count(9),
                sex: r.get(10),
                age: r.get::<_, Option<i64>>(11),
                agent: r.get(12),
                team: r.get(13),
                closed_reason: r.get(14),
                withdrawn: count(15),
                prevented: count(16),
                exited: count(17),
                relapsed: count(18),
                proposed: count(19),
                reopened: count(20),
                visits_scheduled: count(21),
                visits_on_time: count(22),
            }
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
                &[],
                |r| PlaceSpelling {
                    kind: kind.to_string(),
                    key: r.get(0),
                    spelling: r.get(1),
                    cases: r.get::<_, i64>(2) as u64,
                },
            )?);
        }
        Ok(merge_spellings(spellings))
    }

    fn referral_groups(&self, reader: &User, now: i64) -> StorageResult<Vec<ReferralGroup>> {
        use crate::storage::indicators::{groups_sql, merge_groups};
        let groups = self.per_arm(reader, &groups_sql, &[&now], |r| {
            let mut time_in = [(0i64, 0u64); 5];
            for (k, slot) in time_in.iter_mut().enumerate() {
                *slot = (
                    r.get::<_, Option<i64>>(5 + 2 * k).unwrap_or(0),
                    r.get::<_, Option<i64>>(6 + 2 * k).unwrap_or(0) as u64,
                );
            }
            ReferralGroup {
                service_type: r.get(0),
                provider_key: r.get(1),
                provider: r.get(2),
                status: r.get(3),
                referrals: r.get::<_, i64>(4) as u64,
                time_in,
            }
        })?;
        Ok(merge_groups(groups))
    }

    fn stuck_referrals(&self, reader: &User, query: &StuckQuery) -> StorageResult<StuckList> {
        use crate::storage::indicators::{merge_stuck, stuck_arm_limit, stuck_sql};
        let agent = query.agent.as_ref().map(|a| a.to_lowercase());
        let limit = stuck_arm_limit(query);
        let total: i64 = self
            .per_arm(
                reader,
                &|arm, dialect| stuck_sql(arm, dialect, true),
                &[&query.before, &agent, &query.service_type],
                |r| r.get::<_, i64>(0),
            )?
            .into_iter()
            .sum();
        let stuck = self.per_arm(
            reader,
            &|arm, dialect| stuck_sql(arm, dialect, false),
            &[&query.before, &agent, &query.service_type, &limit],
            |r| StuckReferral {
                case_id: r.get(0),
                referral_id: r.get(1),
                service_type: r.get(2),
                provider: r.get(3),
                status: r.get(4),
                status_since: r.get(5),
                urgency: r.get(6),
                agent: r.get(7),
            },
        )?;
        Ok(StuckList {
            referrals: merge_stuck(stuck, query),
            total: total as u64,
        })
    }

    fn listed_case(&self, case_id: &str) -> StorageResult<Option<ListedCase>> {
        let mut client = self.client()?;
        client
            .query_opt(
                "SELECT shown, owner, team, updated_at, case_id FROM case_summaries
                 WHERE case_id = $1",
                &[&case_id],
            )
            .map_err(backend)?
            .map(|r| self.row_to_listed(&r))
            .transpose()
    }
}
