//! FormStore on PostgreSQL: published form versions and the forms feed.

use super::*;
use crate::storage::{settings_body, settings_of, FormStore};
use suivi_core::outcome::OutcomeSettings;

impl FormStore for PostgresStore {
    fn outcome_settings(&self) -> StorageResult<Option<OutcomeSettings>> {
        let row = self
            .client()?
            .query_opt(
                "SELECT body FROM outcome_settings ORDER BY version DESC LIMIT 1",
                &[],
            )
            .map_err(backend)?;
        row.map(|r| settings_of(&r.get::<_, String>(0))).transpose()
    }

    fn publish_outcome_settings(
        &self,
        settings: &OutcomeSettings,
        (by, now): (&str, i64),
    ) -> StorageResult<OutcomeSettings> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        // One publisher at a time: the next version is read and written under this lock.
        tx.execute("LOCK TABLE outcome_settings IN EXCLUSIVE MODE", &[])
            .map_err(backend)?;
        let version: i64 = tx
            .query_one(
                "SELECT (coalesce(max(version), 1) + 1)::BIGINT FROM outcome_settings",
                &[],
            )
            .map_err(backend)?
            .get(0);
        let published = OutcomeSettings {
            version: u32::try_from(version).unwrap_or(u32::MAX),
            ..settings.clone()
        };
        tx.execute(
            "INSERT INTO outcome_settings (version, body, published_at, published_by)
             VALUES ($1, $2, $3, $4)",
            &[&version, &settings_body(&published)?, &now, &by],
        )
        .map_err(backend)?;
        tx.execute("UPDATE case_summaries SET stale = TRUE", &[])
            .map_err(backend)?;
        audit_row(
            &mut tx,
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
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        // Publications and retirements take the forms feed's next position one at a time, so a
        // device never reads a position before an earlier one commits (instances share it).
        tx.batch_execute("LOCK TABLE forms IN SHARE ROW EXCLUSIVE MODE")
            .map_err(backend)?;
        let version_key = i64::from(version);
        let select =
            format!("SELECT {FORM_COLUMNS} FROM forms WHERE form_id = $1 AND version = $2");
        if let Some(row) = tx
            .query_opt(&select, &[&form_id, &version_key])
            .map_err(backend)?
        {
            return Ok((form_of(&row)?, false));
        }
        pg_forms_head_is(&mut tx, expected_head)?;
        tx.execute(
            "INSERT INTO forms (form_id, version, definition, published_at, published_by, seq)
             VALUES ($1, $2, $3, $4, $5, (SELECT coalesce(max(seq), 0) + 1 FROM forms))",
            &[&form_id, &version_key, &definition, &now, &by],
        )
        .map_err(backend)?;
        audit_row(
            &mut tx,
            now,
            by,
            "form.publish",
            &format!("{form_id} v{version}"),
        )?;
        let row = tx
            .query_one(&select, &[&form_id, &version_key])
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok((form_of(&row)?, true))
    }

    fn forms(&self) -> StorageResult<Vec<PublishedForm>> {
        self.client()?
            .query(
                &format!("SELECT {FORM_COLUMNS} FROM forms ORDER BY form_id, version"),
                &[],
            )
            .map_err(backend)?
            .iter()
            .map(form_of)
            .collect()
    }

    fn forms_after(&self, seq: u64, limit: usize) -> StorageResult<Vec<PublishedForm>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.client()?
            .query(
                &format!("SELECT {FORM_COLUMNS} FROM forms WHERE seq > $1 ORDER BY seq LIMIT $2"),
                &[&pg_seq(seq), &limit],
            )
            .map_err(backend)?
            .iter()
            .map(form_of)
            .collect()
    }

    fn forms_head(&self) -> StorageResult<u64> {
        Ok(self
            .client()?
            .query_one("SELECT coalesce(max(seq), 0)::BIGINT FROM forms", &[])
            .map_err(backend)?
            .get::<_, i64>(0) as u64)
    }

    fn retire_form(
        &self,
        form_id: &str,
        version: u32,
        (by, now): (&str, i64),
        expected_head: u64,
    ) -> StorageResult<Option<PublishedForm>> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        tx.batch_execute("LOCK TABLE forms IN SHARE ROW EXCLUSIVE MODE")
            .map_err(backend)?;
        pg_forms_head_is(&mut tx, expected_head)?;
        let version_key = i64::from(version);
        let retired = tx
            .execute(
                "UPDATE forms SET retired_at = $3, seq = (SELECT max(seq) + 1 FROM forms)
                 WHERE form_id = $1 AND version = $2 AND retired_at IS NULL",
                &[&form_id, &version_key, &now],
            )
            .map_err(backend)?;
        if retired > 0 {
            audit_row(
                &mut tx,
                now,
                by,
                "form.retire",
                &format!("{form_id} v{version}"),
            )?;
        }
        let form = tx
            .query_opt(
                &format!("SELECT {FORM_COLUMNS} FROM forms WHERE form_id = $1 AND version = $2"),
                &[&form_id, &version_key],
            )
            .map_err(backend)?
            .as_ref()
            .map(form_of)
            .transpose()?;
        tx.commit().map_err(backend)?;
        Ok(form)
    }
}
