//! The per-document fallback's writes: what the server sent merged into the case, and a
//! refused case's state.

use super::*;

impl Store {
    /// Merges what the server sent during the fallback into the case as it is now (saves may
    /// have come in between) and saves it; with `synced` (the exchange converged at those
    /// heads), the case is clean if nothing was saved meanwhile. A case erased meanwhile is
    /// left alone.
    pub(crate) fn commit_doc_sync(
        &mut self,
        case_id: &str,
        received: &[Vec<u8>],
        synced: Option<Vec<ChangeHash>>,
    ) -> Result<()> {
        let Some(mut current) = self.load_doc(case_id)? else {
            return Ok(());
        };
        current.apply_changes(received)?;
        let forms = self.forms()?;
        let tx = self.connection_ref().unchecked_transaction()?;
        Store::save_doc(&tx, &forms, case_id, &mut current, false)?;
        if let Some(heads) = synced {
            let dirty = if current.heads() == heads {
                SyncState::Clean
            } else {
                SyncState::Pending
            };
            tx.execute(
                "UPDATE case_sync SET synced_heads = ?2, dirty = ?3 WHERE case_id = ?1",
                params![case_id, Store::format_heads(&heads), dirty],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes an erased case here, in one transaction; `false` if it was not held.
    pub(crate) fn erase_case_locally(&self, case_id: &str) -> Result<bool> {
        let tx = self.connection_ref().unchecked_transaction()?;
        let erased = erase_locally(&tx, case_id)?;
        tx.commit()?;
        Ok(erased)
    }

    /// A case the server refused: its state (pending again, or set aside) and why.
    pub(crate) fn set_refused(&self, case_id: &str, state: SyncState, why: &str) -> Result<()> {
        self.connection_ref().execute(
            "UPDATE case_sync SET dirty = ?2, refusal = ?3 WHERE case_id = ?1",
            params![case_id, state, why],
        )?;
        Ok(())
    }
}
