//! The console's projections of stored cases, refreshed and rebuilt.

use super::*;

impl SyncService {
    /// Recomputes and stores the projections of these cases from their stored changes.
    pub fn rebuild_summaries(&self, case_ids: &[String]) -> Result<(), ServiceError> {
        let mut writes = Vec::new();
        let forms = self.refresh_forms();
        let settings = self.outcome_settings();
        for case_id in case_ids {
            // One bad stored case (for `case check` to find) never stops the others.
            let stored = match self.stored_changes(case_id) {
                Ok(stored) => stored,
                Err(ServiceError::Storage(e)) => return Err(ServiceError::Storage(e)),
                Err(e) => {
                    tracing::warn!(case = %case_id, error = %e, "a stored case does not parse");
                    continue;
                }
            };
            let count = stored.len() as u64;
            match CaseCheck::load(case_id, stored) {
                Ok(check) => writes.extend(summary::summarize(
                    check.into_document(),
                    count,
                    &forms,
                    &settings,
                )),
                Err(e) => {
                    tracing::warn!(case = %case_id, error = ?e, "a stored case does not load")
                }
            }
        }
        if !writes.is_empty() {
            self.store.write_summaries(&writes)?;
        }
        Ok(())
    }

    /// Builds every missing or stale projection (a store from before projections, a refresh
    /// cut short), a batch at a time. Returns how many it wrote.
    pub fn refresh_all_summaries(&self) -> Result<usize, ServiceError> {
        let mut done = 0;
        let mut last: Option<String> = None;
        loop {
            let batch = self.store.summaries_to_refresh(256)?;
            // A case that cannot be summarized stays listed: stop rather than loop on it.
            if batch.is_empty() || batch.last() == last.as_ref() {
                return Ok(done);
            }
            self.rebuild_summaries(&batch)?;
            done += batch.len();
            last = batch.last().cloned();
        }
    }
}
