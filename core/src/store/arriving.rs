//! Cases arriving with a first sync: their list rows come ahead of their histories (protocol
//! 8), so the agent's list and search work within seconds on 2G. A row stays read-only until
//! its case arrives; then the phone's own projection of the case is what the list shows.

use rusqlite::{params, OptionalExtension};

use super::projection::SearchKeys;
use super::Store;
use crate::error::Result;
use crate::protocol::CaseRow;

impl Store {
    /// Lists rows the server sent ahead of their cases; a case already held keeps its own.
    /// Returns how many were listed.
    pub fn list_arriving(&mut self, rows: &[CaseRow]) -> Result<usize> {
        let tx = self.conn.unchecked_transaction()?;
        let mut listed = 0;
        for r in rows {
            let held: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM case_docs WHERE case_id = ?1",
                    [&r.case_id],
                    |row| row.get(0),
                )
                .optional()?;
            if held.is_some() {
                continue;
            }
            let updated = chrono::DateTime::from_timestamp(r.updated_at, 0)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let statuses = format!(" {} ", r.referral_statuses.join(" "));
            let keys = SearchKeys::of(&r.first_name, &r.last_name, r.village.as_deref());
            tx.execute(
                "INSERT OR REPLACE INTO arriving_cases (case_id, first_name, last_name,
                    name_folded, sex, province, commune, village, village_folded, work_sector,
                    risk_level, created_at, created_by, updated_at, next_followup_due,
                    referral_count, followup_count, conflict_count, name_terms, village_key,
                    referral_statuses)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, '', ?12, ?13, ?14,
                    ?15, ?16, ?17, ?18, ?19)",
                params![
                    r.case_id,
                    r.first_name,
                    r.last_name,
                    keys.name_folded,
                    r.sex,
                    r.province,
                    r.commune,
                    r.village,
                    keys.village_folded,
                    r.work_sector,
                    r.risk_level,
                    updated,
                    r.next_followup_due,
                    r.referral_count,
                    r.followup_count,
                    r.conflict_count,
                    keys.name_terms,
                    keys.village_key,
                    statuses,
                ],
            )?;
            listed += 1;
        }
        tx.commit()?;
        Ok(listed)
    }

    /// Whether a case is listed from the server's row and its history has not arrived.
    pub fn is_arriving(&self, case_id: &str) -> Result<bool> {
        let row: Option<i64> = self
            .conn
            .query_row(
                "SELECT 1 FROM arriving_cases a WHERE case_id = ?1
                 AND NOT EXISTS (SELECT 1 FROM case_docs d WHERE d.case_id = a.case_id)",
                [case_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(row.is_some())
    }

    /// Rows still waiting for their case.
    pub fn arriving_count(&self) -> Result<usize> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM arriving_cases a
             WHERE NOT EXISTS (SELECT 1 FROM case_docs d WHERE d.case_id = a.case_id)",
            [],
            |r| r.get(0),
        )?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Drops every row the server sent ahead: at the end of a sync, what arrived is listed from
    /// the phone's own projection and what did not come is not the phone's to show.
    pub fn clear_arriving(&mut self) -> Result<()> {
        self.conn.execute("DELETE FROM arriving_cases", [])?;
        Ok(())
    }
}
