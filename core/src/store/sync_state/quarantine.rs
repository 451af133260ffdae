//! Cases set aside (a pulled case that would not apply, a push the server refused) and the wipe the server orders.

use super::*;

impl Store {
    /// Tries the cases set aside again, with what this build knows: a case an older version of
    /// the app quarantined (a document key added since, such as a merge link) is taken in after
    /// the update, from the changes kept with it; one that still fails stays aside. Run at the
    /// start of each sync. Returns how many were taken in.
    pub fn retry_quarantined(&mut self) -> Result<usize> {
        let ids: Vec<String> = {
            let mut stmt = self
                .connection_ref()
                .prepare_cached("SELECT case_id FROM quarantine ORDER BY case_id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if ids.is_empty() {
            return Ok(0);
        }
        let forms = self.forms()?;
        let tx = self.connection_ref().unchecked_transaction()?;
        let mut taken = 0;
        for case_id in ids {
            tx.execute_batch("SAVEPOINT retried_case")?;
            let kept = PulledCase {
                case_id,
                changes: Vec::new(),
            };
            match self.commit_pulled_case(&tx, &forms, &[], &kept) {
                Ok(Pulled::Saved { .. }) => {
                    tx.execute_batch("RELEASE retried_case")?;
                    taken += 1;
                }
                Ok(Pulled::Waiting) => tx.execute_batch("RELEASE retried_case")?,
                Ok(Pulled::Forged(_)) => {
                    tx.execute_batch("ROLLBACK TO retried_case; RELEASE retried_case")?
                }
                Err(e @ (Error::StorageFull | Error::Storage(_) | Error::WrongKeyOrCorrupt)) => {
                    return Err(e)
                }
                Err(_) => tx.execute_batch("ROLLBACK TO retried_case; RELEASE retried_case")?,
            }
        }
        tx.commit()?;
        Ok(taken)
    }

    /// Sets a pulled case aside: its changes wait with it (retried with its next pulled
    /// changes), its last good state stays readable.
    pub(crate) fn quarantine(
        &self,
        tx: &rusqlite::Transaction<'_>,
        case_id: &str,
        pulled: &[&[u8]],
        reason: &str,
    ) -> Result<()> {
        for data in pulled {
            keep_pending(tx, case_id, data)?;
        }
        tx.execute(
            "INSERT INTO quarantine (case_id, reason, at) VALUES (?1, ?2, ?3)
             ON CONFLICT(case_id) DO UPDATE SET reason = excluded.reason, at = excluded.at",
            params![case_id, reason, chrono::Utc::now().to_rfc3339()],
        )?;
        Ok(())
    }

    /// Pulled cases set aside, with why.
    pub fn quarantined_cases(&self) -> Result<Vec<QuarantinedCase>> {
        let mut stmt = self
            .connection_ref()
            .prepare_cached("SELECT case_id, reason FROM quarantine ORDER BY case_id")?;
        let rows = stmt.query_map([], |r| {
            Ok(QuarantinedCase {
                case_id: r.get(0)?,
                reason: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Cases whose own changes the server refused, with its reason.
    pub fn refused_cases(&self) -> Result<Vec<RefusedCase>> {
        let mut stmt = self.connection_ref().prepare_cached(
            "SELECT case_id, coalesce(refusal, 'refused') FROM case_sync WHERE dirty = ?1 OR refusal IS NOT NULL ORDER BY case_id",
        )?;
        let rows = stmt.query_map([SyncState::Refused], |r| {
            Ok(RefusedCase {
                case_id: r.get(0)?,
                reason: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Erases every case, its documents, projections, sync state and drafts; keeps the empty
    /// store.
    pub fn wipe_case_data(&mut self) -> Result<()> {
        let tx = self.connection_ref().unchecked_transaction()?;
        tx.execute("DELETE FROM case_docs", [])?;
        tx.execute("DELETE FROM pending_changes", [])?;
        tx.execute("DELETE FROM change_origins", [])?;
        tx.execute("DELETE FROM quarantine", [])?;
        // A new case's draft too: it names a child.
        tx.execute("DELETE FROM drafts", [])?;
        tx.execute("DELETE FROM arriving_cases", [])?;
        tx.execute(
            "DELETE FROM meta WHERE key IN (?1, ?2)",
            params![META_CURSOR, META_MARK],
        )?;
        tx.commit()?;
        let conn = self.connection_ref();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        conn.execute_batch("VACUUM")?;
        Ok(())
    }

    /// Whether a revoked device's wipe happened (for tests and the app's status screen).
    pub fn is_wiped(&self) -> Result<bool> {
        let any: Option<i64> = self
            .connection_ref()
            .query_row("SELECT 1 FROM case_docs LIMIT 1", [], |r| r.get(0))
            .optional()?;
        Ok(any.is_none()
            && self.meta(META_TOKEN)?.is_none()
            && self.meta(META_DEVICE_ID)?.is_some())
    }
}

/// A case whose own changes the server refused: still readable here, its later edits kept.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RefusedCase {
    pub case_id: String,
    pub reason: String,
}
