//! SignInStore on SQLite: console sign-in: passwords, sessions and the failed-login counts of the throttle.

use super::*;
use crate::storage::SignInStore;

impl SignInStore for SqliteStore {
    fn set_password(&self, user_id: &str, hash: Option<&str>, now: i64) -> StorageResult<bool> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let changed = tx
            .execute(
                "UPDATE users SET password_hash = ?2 WHERE user_id = ?1",
                params![user_id, hash],
            )
            .map_err(backend)?;
        if changed == 0 {
            return Ok(false);
        }
        tx.execute("DELETE FROM console_sessions WHERE user_id = ?1", [user_id])
            .map_err(backend)?;
        audit_row(&tx, now, "admin", "user.password", user_id)?;
        tx.commit().map_err(backend)?;
        Ok(true)
    }

    fn add_session(&self, session: &ConsoleSession) -> StorageResult<()> {
        self.conn()
            .execute(
                "INSERT INTO console_sessions (token_hash, user_id, csrf_token, created_at, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    session.token_hash,
                    session.user_id,
                    session.csrf_token,
                    session.created_at,
                    session.last_seen
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn session(&self, token_hash: &str) -> StorageResult<Option<ConsoleSession>> {
        self.conn()
            .query_row(
                "SELECT token_hash, user_id, csrf_token, created_at, last_seen
                 FROM console_sessions WHERE token_hash = ?1",
                [token_hash],
                |r| {
                    Ok(ConsoleSession {
                        token_hash: r.get(0)?,
                        user_id: r.get(1)?,
                        csrf_token: r.get(2)?,
                        created_at: r.get(3)?,
                        last_seen: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(backend)
    }

    fn touch_session(&self, token_hash: &str, now: i64) -> StorageResult<()> {
        self.conn()
            .execute(
                "UPDATE console_sessions SET last_seen = max(last_seen, ?2) WHERE token_hash = ?1",
                params![token_hash, now],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn end_session(&self, token_hash: &str) -> StorageResult<()> {
        self.conn()
            .execute(
                "DELETE FROM console_sessions WHERE token_hash = ?1",
                [token_hash],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn end_expired_sessions(&self, idle_before: i64, created_before: i64) -> StorageResult<()> {
        self.conn()
            .execute(
                "DELETE FROM console_sessions WHERE last_seen < ?1 OR created_at < ?2",
                params![idle_before, created_before],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn login_failures(&self, key: &str) -> StorageResult<LoginFailures> {
        Ok(self
            .conn()
            .query_row(
                "SELECT count, last_at FROM login_failures WHERE key = ?1",
                [key],
                |r| {
                    Ok(LoginFailures {
                        count: r.get(0)?,
                        last_at: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(backend)?
            .unwrap_or_default())
    }

    fn record_login_failure(
        &self,
        key: &str,
        now: i64,
        forget_before: i64,
    ) -> StorageResult<LoginFailures> {
        self.conn()
            .query_row(
                "INSERT INTO login_failures (key, count, last_at) VALUES (?1, 1, ?2)
                 ON CONFLICT (key) DO UPDATE
                 SET count = CASE WHEN last_at < ?3 THEN 1 ELSE count + 1 END,
                     last_at = excluded.last_at
                 RETURNING count, last_at",
                params![key, now, forget_before],
                |r| {
                    Ok(LoginFailures {
                        count: r.get(0)?,
                        last_at: r.get(1)?,
                    })
                },
            )
            .map_err(backend)
    }

    fn forgive_login_failure(&self, key: &str) -> StorageResult<()> {
        self.conn()
            .execute(
                "UPDATE login_failures SET count = max(count - 1, 0) WHERE key = ?1",
                [key],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn clear_login_failures(&self, key: &str) -> StorageResult<()> {
        self.conn()
            .execute("DELETE FROM login_failures WHERE key = ?1", [key])
            .map_err(backend)?;
        Ok(())
    }
}
