//! The sign-in throttle: failed sign-ins counted per account and per client address over a
//! window, in Postgres so that every API process sees the same counts.
//!
//! The account key is the lower-cased email whether or not a user has it, so the throttle's
//! answers never tell whether an email exists.

use std::time::Duration;

use sqlx::postgres::PgPool;

use crate::accounts::AccountError;

/// Counts failures per key.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    pool: PgPool,
}

/// The key of an account (any email typed).
pub fn account_key(email: &str) -> String {
    format!("account:{}", email.trim().to_lowercase())
}

/// The key of a client address.
pub fn address_key(address: &str) -> String {
    format!("address:{address}")
}

impl LoginThrottle {
    /// A throttle over `pool`.
    pub fn new(pool: PgPool) -> Self {
        LoginThrottle { pool }
    }

    /// When the key with the most failures in `window` may try again: `None` while it has
    /// fewer than `limit`, else the seconds until its oldest counted failure leaves the
    /// window.
    pub async fn blocked_for(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<Option<u64>, AccountError> {
        let row = sqlx::query!(
            r#"SELECT count(*) AS "count!",
                      extract(epoch FROM (min(at) + make_interval(secs => $2) - now()))::float8
                          AS "wait: f64"
               FROM (SELECT at FROM login_failures
                     WHERE key = $1 AND at > now() - make_interval(secs => $2)
                     ORDER BY at DESC LIMIT $3) recent"#,
            key,
            window.as_secs_f64(),
            i64::from(limit)
        )
        .fetch_one(&self.pool)
        .await?;
        if row.count < i64::from(limit) {
            return Ok(None);
        }
        Ok(Some(row.wait.unwrap_or(1.0).ceil().max(1.0) as u64))
    }

    /// Records a failure under each key.
    pub async fn failed(&self, keys: &[String]) -> Result<(), AccountError> {
        sqlx::query!("INSERT INTO login_failures (key) SELECT * FROM unnest($1::text[])", keys)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets the failures of `key` (after a successful sign-in).
    pub async fn clear(&self, key: &str) -> Result<(), AccountError> {
        sqlx::query!("DELETE FROM login_failures WHERE key = $1", key).execute(&self.pool).await?;
        Ok(())
    }

    /// Forgets failures older than `age` (the API's periodic sweep), so the table stays
    /// small whatever an attacker sends.
    pub async fn forget_older_than(&self, age: Duration) -> Result<u64, AccountError> {
        let done = sqlx::query!(
            "DELETE FROM login_failures WHERE at < now() - make_interval(secs => $1)",
            age.as_secs_f64()
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
