//! FormStore on SQLite: published form versions and the forms feed.

use super::*;
use crate::storage::{settings_body, settings_of, FormStore};
use suivi_core::outcome::OutcomeSettings;

impl FormStore for SqliteStore {
    fn outcome_settings(&self) -> StorageResult<Option<OutcomeSettings>> {
        let body: Option<String> = self
            .conn()
            .query_row(
                "SELECT body FROM outcome_settings ORDER BY version DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        body.map(|b| settings_of(&b)).transpose()
    }

    fn publish_outcome_settings(
        &self,
        settings: &OutcomeSettings,
        (by, now): (&str, i64),
    ) -> StorageResult<OutcomeSettings> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let version: i64 = tx
            .query_row(
                "SELECT coalesce(max(version), 1) + 1 FROM outcome_settings",
                [],
                |r| r.get(0),
            )
            .map_err(backend)?;
        let published = OutcomeSettings {
            version: u32::try_from(version).unwrap_or(u32::MAX),
            ..settings.clone()
        };
        tx.execute(
            "INSERT INTO outcome_settings (version, body, published_at, published_by)
             VALUES (?1, ?2, ?3, ?4)",
            params![version, settings_body(&published)?, now, by],
        )
        .map_err(backend)?;
        tx.execute("UPDATE case_summaries SET stale = 1", [])
            .map_err(backend)?;
        audit_row(
            &tx,
            now,
            by,
            "outcome_settings.publish",
            &format!("v{version}"),
        )?;
        tx.commit().map_err(backend)?;
        Ok(published)
    }

    fn publish_form(
        &self,
        form_id: &str,
        version: u32,
        definition: &str,
        (by, now): (&str, i64),
        expected_head: u64,
    ) -> StorageResult<(PublishedForm, bool)> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let stored = |tx: &rusqlite::Transaction<'_>| {
            tx.query_row(
                &format!("SELECT {FORM_COLUMNS} FROM forms WHERE form_id = ?1 AND version = ?2"),
                params![form_id, version],
                form_row,
            )
            .optional()
            .map_err(backend)
        };
        if let Some(existing) = stored(&tx)? {
            return Ok((existing, false));
        }
        sqlite_forms_head_is(&tx, expected_head)?;
        tx.execute(
            "INSERT INTO forms (form_id, version, definition, published_at, published_by, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, (SELECT coalesce(max(seq), 0) + 1 FROM forms))",
            params![form_id, version, definition, now, by],
        )
        .map_err(backend)?;
        audit_row(
            &tx,
            now,
            by,
            "form.publish",
            &format!("{form_id} v{version}"),
        )?;
        let published = stored(&tx)?.ok_or_else(|| {
            StorageError::Backend("a published form is not there to read back".into())
        })?;
        tx.commit().map_err(backend)?;
        Ok((published, true))
    }

    fn forms(&self) -> StorageResult<Vec<PublishedForm>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {FORM_COLUMNS} FROM forms ORDER BY form_id, version"
            ))
            .map_err(backend)?;
        let rows = stmt.query_map([], form_row).map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn forms_after(&self, seq: u64, limit: usize) -> StorageResult<Vec<PublishedForm>> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {FORM_COLUMNS} FROM forms WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![seq, limit as i64], form_row)
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn forms_head(&self) -> StorageResult<u64> {
        self.conn()
            .query_row("SELECT coalesce(max(seq), 0) FROM forms", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|seq| seq as u64)
            .map_err(backend)
    }

    fn retire_form(
        &self,
        form_id: &str,
        version: u32,
        (by, now): (&str, i64),
        expected_head: u64,
    ) -> StorageResult<Option<PublishedForm>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        sqlite_forms_head_is(&tx, expected_head)?;
        let retired = tx
            .execute(
                "UPDATE forms SET retired_at = ?3, seq = (SELECT max(seq) + 1 FROM forms)
                 WHERE form_id = ?1 AND version = ?2 AND retired_at IS NULL",
                params![form_id, version, now],
            )
            .map_err(backend)?;
        if retired > 0 {
            audit_row(
                &tx,
                now,
                by,
                "form.retire",
                &format!("{form_id} v{version}"),
            )?;
        }
        let form = tx
            .query_row(
                &format!("SELECT {FORM_COLUMNS} FROM forms WHERE form_id = ?1 AND version = ?2"),
                params![form_id, version],
                form_row,
            )
            .optional()
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(form)
    }
}
