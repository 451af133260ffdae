//! AccountStore on SQLite: users, their devices and enrollment codes, each device's quota and last sync.

use super::*;
use crate::storage::AccountStore;

impl AccountStore for SqliteStore {
    fn add_user(&self, user: &User, now: i64) -> StorageResult<()> {
        let conn = self.conn();
        let n = conn
            .execute(
                "INSERT OR IGNORE INTO users (user_id, role, team, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![user.user_id, user.role.as_str(), user.team, user.password_hash, now],
            )
            .map_err(backend)?;
        if n == 0 {
            return Err(StorageError::Conflict(format!("user {}", user.user_id)));
        }
        Ok(())
    }

    fn user(&self, user_id: &str) -> StorageResult<Option<User>> {
        self.conn()
            .query_row(
                "SELECT user_id, role, team, password_hash FROM users WHERE user_id = ?1",
                [user_id],
                |r| {
                    let role: String = r.get(1)?;
                    Ok(User {
                        user_id: r.get(0)?,
                        role: parse_role(&role)?,
                        team: r.get(2)?,
                        password_hash: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(backend)
    }

    fn add_enrollment_code(
        &self,
        code_hash: &str,
        user_id: &str,
        expires_at: i64,
    ) -> StorageResult<()> {
        self.conn()
            .execute(
                "INSERT INTO enrollment_codes (code_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
                params![code_hash, user_id, expires_at],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn redeem_enrollment_code(
        &self,
        code_hash: &str,
        user_id: &str,
        now: i64,
        device: &Device,
    ) -> StorageResult<Option<User>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let user_id: Option<String> = tx
            .query_row(
                "UPDATE enrollment_codes SET used_at = ?2
                 WHERE code_hash = ?1 AND user_id = ?3 AND used_at IS NULL AND expires_at > ?2 RETURNING user_id",
                params![code_hash, now, user_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO devices (device_id, user_id, actor, name, token_hash, enrolled_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![device.device_id, user_id, device.actor, device.name, device.token_hash, now],
            )
            .map_err(backend)?;
        if inserted == 0 {
            // The actor id is taken: leave the code unused so the device can retry.
            return Err(StorageError::Conflict("actor already enrolled".into()));
        }
        audit_row(
            &tx,
            now,
            &user_id,
            "device.enroll",
            &crate::storage::device_binding_subject(&device.device_id, &device.actor),
        )?;
        let user = tx
            .query_row(
                "SELECT user_id, role, team FROM users WHERE user_id = ?1",
                [&user_id],
                |r| {
                    let role: String = r.get(1)?;
                    Ok(User {
                        user_id: r.get(0)?,
                        role: parse_role(&role)?,
                        team: r.get(2)?,
                        password_hash: None,
                    })
                },
            )
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(Some(user))
    }

    fn device(&self, device_id: &str) -> StorageResult<Option<Device>> {
        self.conn()
            .query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = ?1"),
                [device_id],
                row_to_device,
            )
            .optional()
            .map_err(backend)
    }

    fn devices(&self) -> StorageResult<Vec<Device>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices ORDER BY enrolled_at, device_id"
            ))
            .map_err(backend)?;
        let rows = stmt.query_map([], row_to_device).map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn revoke_device(&self, device_id: &str, now: i64) -> StorageResult<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(backend)?;
        let revoked = tx
            .execute(
                "UPDATE devices SET revoked_at = ?2 WHERE device_id = ?1 AND revoked_at IS NULL",
                params![device_id, now],
            )
            .map_err(backend)?
            > 0;
        if revoked {
            audit_row(&tx, now, "admin", "device.revoke", device_id)?;
        }
        tx.commit().map_err(backend)?;
        Ok(revoked)
    }

    fn confirm_wipe(&self, device_id: &str, now: i64) -> StorageResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(backend)?;
        let wiped = tx
            .execute(
                // The first confirmation is the one kept; a repeat changes and audits nothing.
                "UPDATE devices SET wiped_at = ?2
                 WHERE device_id = ?1 AND revoked_at IS NOT NULL AND wiped_at IS NULL",
                params![device_id, now],
            )
            .map_err(backend)?
            > 0;
        if wiped {
            audit_row(&tx, now, device_id, "device.wiped", device_id)?;
        }
        tx.commit().map_err(backend)?;
        Ok(())
    }

    fn device_usage(&self, device_id: &str, day: i64) -> StorageResult<Usage> {
        Ok(self
            .conn()
            .query_row(
                "SELECT new_cases, bytes FROM device_usage WHERE device_id = ?1 AND day = ?2",
                params![device_id, day],
                |r| {
                    Ok(Usage {
                        new_cases: r.get::<_, i64>(0)? as u64,
                        bytes: r.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .optional()
            .map_err(backend)?
            .unwrap_or_default())
    }

    fn device_quota(&self, device_id: &str) -> StorageResult<Option<Quota>> {
        self.conn()
            .query_row(
                "SELECT new_cases_per_day, bytes_per_day FROM device_quotas WHERE device_id = ?1",
                [device_id],
                |r| {
                    Ok(Quota {
                        new_cases_per_day: r.get::<_, i64>(0)? as u64,
                        bytes_per_day: r.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .optional()
            .map_err(backend)
    }

    fn set_device_quota(
        &self,
        device_id: &str,
        quota: Option<Quota>,
        now: i64,
    ) -> StorageResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(backend)?;
        let known: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM devices WHERE device_id = ?1",
                [device_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        if known.is_none() {
            return Err(StorageError::NotFound(format!("device {device_id}")));
        }
        let subject = match quota {
            Some(q) => {
                let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                tx.execute(
                    "INSERT INTO device_quotas (device_id, new_cases_per_day, bytes_per_day)
                     VALUES (?1, ?2, ?3) ON CONFLICT (device_id) DO UPDATE
                     SET new_cases_per_day = excluded.new_cases_per_day,
                         bytes_per_day = excluded.bytes_per_day",
                    params![
                        device_id,
                        clamp(q.new_cases_per_day),
                        clamp(q.bytes_per_day)
                    ],
                )
                .map_err(backend)?;
                format!(
                    "{device_id} {} new cases/day {} bytes/day",
                    q.new_cases_per_day, q.bytes_per_day
                )
            }
            None => {
                tx.execute(
                    "DELETE FROM device_quotas WHERE device_id = ?1",
                    [device_id],
                )
                .map_err(backend)?;
                format!("{device_id} default")
            }
        };
        audit_row(&tx, now, "admin", "device.quota", &subject)?;
        tx.commit().map_err(backend)
    }

    fn team_members(&self, team: &str) -> StorageResult<Vec<User>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT user_id, role, team FROM users WHERE team = ?1 ORDER BY user_id",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map([team], |r| {
                Ok(User {
                    user_id: r.get(0)?,
                    role: parse_role(&r.get::<_, String>(1)?)?,
                    team: r.get(2)?,
                    password_hash: None,
                })
            })
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn record_device_sync(
        &self,
        device_id: &str,
        at: i64,
        app_version: Option<&str>,
        waiting_cases: Option<u64>,
    ) -> StorageResult<()> {
        self.conn()
            .prepare_cached(
                "UPDATE devices SET last_sync_at = max(coalesce(last_sync_at, 0), ?2),
                    app_version = ?3, waiting_cases = ?4 WHERE device_id = ?1",
            )
            .map_err(backend)?
            .execute(params![
                device_id,
                at,
                app_version,
                waiting_cases.map(|w| i64::try_from(w).unwrap_or(i64::MAX))
            ])
            .map_err(backend)?;
        Ok(())
    }

    fn device_statuses(&self) -> StorageResult<Vec<DeviceStatus>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT d.device_id, d.user_id, d.actor, d.name, d.token_hash, d.revoked_at,
                    d.wiped_at, u.role, u.team, d.last_sync_at, d.app_version, d.waiting_cases
                 FROM devices d JOIN users u ON u.user_id = d.user_id
                 WHERE d.token_hash <> ?1 ORDER BY u.team, d.user_id, d.device_id",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map([crate::storage::CONSOLE_TOKEN_HASH], |r| {
                Ok(DeviceStatus {
                    device: row_to_device(r)?,
                    role: parse_role(&r.get::<_, String>(7)?)?,
                    team: r.get(8)?,
                    last_sync_at: r.get(9)?,
                    app_version: r.get(10)?,
                    waiting_cases: r.get::<_, Option<i64>>(11)?.map(|w| w.max(0) as u64),
                })
            })
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn console_device(&self, user_id: &str, actor: &str, now: i64) -> StorageResult<Device> {
        let device_id = crate::storage::console_device_id(user_id);
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let made = tx
            .execute(
                "INSERT OR IGNORE INTO devices (device_id, user_id, actor, name, token_hash, enrolled_at)
                 VALUES (?1, ?2, ?3, 'console', ?4, ?5)",
                params![device_id, user_id, actor, crate::storage::CONSOLE_TOKEN_HASH, now],
            )
            .map_err(backend)?;
        if made > 0 {
            audit_row(
                &tx,
                now,
                user_id,
                crate::storage::CONSOLE_DEVICE_ACTION,
                &crate::storage::device_binding_subject(&device_id, actor),
            )?;
        }
        tx.commit().map_err(backend)?;
        conn.query_row(
            "SELECT device_id, user_id, actor, name, token_hash, revoked_at, wiped_at
             FROM devices WHERE device_id = ?1",
            [&device_id],
            row_to_device,
        )
        .map_err(backend)
    }
}
