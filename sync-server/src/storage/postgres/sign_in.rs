//! SignInStore on PostgreSQL: console sign-in: passwords, sessions and the failed-login counts of the throttle.

use super::*;
use crate::storage::SignInStore;

impl SignInStore for PostgresStore {
    fn set_password(&self, user_id: &str, hash: Option<&str>, now: i64) -> StorageResult<bool> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(backend)?;
        let changed = tx
            .execute(
                "UPDATE users SET password_hash = $2 WHERE user_id = $1",
                &[&user_id, &hash],
            )
            .map_err(backend)?;
        if changed == 0 {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM console_sessions WHERE user_id = $1",
            &[&user_id],
        )
        .map_err(backend)?;
        audit_row(&mut tx, now, "admin", "user.password", user_id)?;
        tx.commit().map_err(backend)?;
        Ok(true)
    }

    fn add_session(&self, session: &ConsoleSession) -> StorageResult<()> {
        self.client()?
            .execute(
                "INSERT INTO console_sessions (token_hash, user_id, csrf_token, created_at, last_seen)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &session.token_hash,
                    &session.user_id,
                    &session.csrf_token,
                    &session.created_at,
                    &session.last_seen,
                ],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn session(&self, token_hash: &str) -> StorageResult<Option<ConsoleSession>> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT token_hash, user_id, csrf_token, created_at, last_seen
                 FROM console_sessions WHERE token_hash = $1",
                &[&token_hash],
            )
            .map_err(backend)?
            .map(|r| ConsoleSession {
                token_hash: r.get(0),
                user_id: r.get(1),
                csrf_token: r.get(2),
                created_at: r.get(3),
                last_seen: r.get(4),
            }))
    }

    fn touch_session(&self, token_hash: &str, now: i64) -> StorageResult<()> {
        self.client()?
            .execute(
                "UPDATE console_sessions SET last_seen = greatest(last_seen, $2)
                 WHERE token_hash = $1",
                &[&token_hash, &now],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn end_session(&self, token_hash: &str) -> StorageResult<()> {
        self.client()?
            .execute(
                "DELETE FROM console_sessions WHERE token_hash = $1",
                &[&token_hash],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn end_expired_sessions(&self, idle_before: i64, created_before: i64) -> StorageResult<()> {
        self.client()?
            .execute(
                "DELETE FROM console_sessions WHERE last_seen < $1 OR created_at < $2",
                &[&idle_before, &created_before],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn login_failures(&self, key: &str) -> StorageResult<LoginFailures> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT count, last_at FROM login_failures WHERE key = $1",
                &[&key],
            )
            .map_err(backend)?
            .map(|r| LoginFailures {
                count: u32::try_from(r.get::<_, i64>(0)).unwrap_or(u32::MAX),
                last_at: r.get(1),
            })
            .unwrap_or_default())
    }

    fn record_login_failure(
        &self,
        key: &str,
        now: i64,
        forget_before: i64,
    ) -> StorageResult<LoginFailures> {
        let r = self
            .client()?
            .query_one(
                "INSERT INTO login_failures (key, count, last_at) VALUES ($1, 1, $2)
                 ON CONFLICT (key) DO UPDATE
                 SET count = CASE WHEN login_failures.last_at < $3 THEN 1
                                  ELSE login_failures.count + 1 END,
                     last_at = excluded.last_at
                 RETURNING count, last_at",
                &[&key, &now, &forget_before],
            )
            .map_err(backend)?;
        Ok(LoginFailures {
            count: u32::try_from(r.get::<_, i64>(0)).unwrap_or(u32::MAX),
            last_at: r.get(1),
        })
    }

    fn forgive_login_failure(&self, key: &str) -> StorageResult<()> {
        self.client()?
            .execute(
                "UPDATE login_failures SET count = greatest(count - 1, 0) WHERE key = $1",
                &[&key],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn clear_login_failures(&self, key: &str) -> StorageResult<()> {
        self.client()?
            .execute("DELETE FROM login_failures WHERE key = $1", &[&key])
            .map_err(backend)?;
        Ok(())
    }
}
