//! What proves who a request comes from: web sessions (a cookie), API tokens (a bearer
//! header), and the server's signing key for download links.
//!
//! Secrets are random (the OS's source), handed to the person once, and stored only as
//! their SHA-256: a copy of the database signs no one in. A session or token of a disabled
//! user resolves to nobody.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgPool;
use std::time::Duration;
use uuid::Uuid;

use crate::accounts::{user_from_record, AccountError, User};

/// What every API token starts with, so a leaked one is recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "mnt_";

/// `bytes` random bytes from the OS, URL-safe base64 without padding.
pub fn random_secret(bytes: usize) -> Result<String, AccountError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes(bytes)?))
}

fn random_bytes(count: usize) -> Result<Vec<u8>, AccountError> {
    let mut buffer = vec![0u8; count];
    getrandom::getrandom(&mut buffer)
        .map_err(|e| AccountError::Crypto(format!("no random source: {e}")))?;
    Ok(buffer)
}

/// SHA-256 of a secret, as stored.
pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A new web session.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie's value (stored only hashed).
    pub secret: String,
    /// The session's form token.
    pub csrf: String,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// An API token as listed (never its secret); the API returns it as it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    /// Id, for revoking.
    pub id: Uuid,
    /// What the person called it.
    pub name: String,
    /// Its first characters, to tell tokens apart.
    pub prefix: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Sessions, tokens and server secrets.
#[derive(Debug, Clone)]
pub struct CredentialRepo {
    pool: PgPool,
}

impl CredentialRepo {
    /// A repository over `pool`.
    pub fn new(pool: PgPool) -> Self {
        CredentialRepo { pool }
    }

    /// Starts a session for `user` lasting `lifetime`.
    pub async fn start_session(
        &self,
        user: Uuid,
        lifetime: Duration,
    ) -> Result<NewSession, AccountError> {
        let secret = random_secret(32)?;
        let csrf = random_secret(24)?;
        let expires_at = sqlx::query_scalar!(
            r#"INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at)
               VALUES ($1, $2, $3, now() + make_interval(secs => $4))
               RETURNING expires_at"#,
            digest(&secret),
            user,
            csrf,
            lifetime.as_secs_f64()
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(NewSession { secret, csrf, expires_at })
    }

    /// Removes expired sessions (the API's periodic sweep).
    pub async fn forget_expired_sessions(&self) -> Result<u64, AccountError> {
        let done = sqlx::query!("DELETE FROM sessions WHERE expires_at < now()")
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The enabled user a session cookie belongs to, with the session's form token (one
    /// query: this runs on every page and cookie-authenticated API request).
    pub async fn session_user(&self, secret: &str) -> Result<Option<(User, String)>, AccountError> {
        let row = sqlx::query!(
            r#"SELECT s.csrf_token, u.id, u.email, u.display_name, u.role, u.disabled_at,
                      u.created_at, u.last_login_at
               FROM sessions s JOIN users u ON u.id = s.user_id
               WHERE s.token_hash = $1 AND s.expires_at > now() AND u.disabled_at IS NULL"#,
            digest(secret)
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (user_from_record!(r), r.csrf_token)))
    }

    /// Ends a session.
    pub async fn end_session(&self, secret: &str) -> Result<(), AccountError> {
        sqlx::query!("DELETE FROM sessions WHERE token_hash = $1", digest(secret))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Makes an API token for `user`; the secret is returned once and stored hashed.
    pub async fn create_token(
        &self,
        user: Uuid,
        name: &str,
    ) -> Result<(ApiToken, String), AccountError> {
        let name: String = name.chars().filter(|c| !c.is_control()).take(100).collect();
        let name = name.trim();
        if name.is_empty() {
            return Err(AccountError::Invalid("a token needs a name (what it is for)".into()));
        }
        let secret = format!("{TOKEN_PREFIX}{}", random_secret(32)?);
        let prefix: String = secret.chars().take(TOKEN_PREFIX.len() + 6).collect();
        let token = sqlx::query_as!(
            ApiToken,
            r#"INSERT INTO api_tokens (id, user_id, name, token_hash, prefix)
               VALUES ($1, $2, $3, $4, $5)
               RETURNING id, name, prefix, created_at, last_used_at, revoked_at"#,
            Uuid::new_v4(),
            user,
            name,
            digest(&secret),
            prefix
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((token, secret))
    }

    /// The tokens of `user`, newest first (revoked ones included).
    pub async fn tokens(&self, user: Uuid) -> Result<Vec<ApiToken>, AccountError> {
        Ok(sqlx::query_as!(
            ApiToken,
            r#"SELECT id, name, prefix, created_at, last_used_at, revoked_at
               FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC"#,
            user
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Revokes token `id` of `user`; false when `user` has no such live token.
    pub async fn revoke_token(&self, user: Uuid, id: Uuid) -> Result<bool, AccountError> {
        let done = sqlx::query!(
            r#"UPDATE api_tokens SET revoked_at = now()
               WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"#,
            id,
            user
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The enabled user a live bearer token belongs to. This runs on every API request,
    /// so it is one read; the token's last use is written at most once a minute (a write
    /// per request would serialise every request of one token on its row lock).
    pub async fn token_user(&self, secret: &str) -> Result<Option<User>, AccountError> {
        let row = sqlx::query!(
            r#"SELECT t.id AS token_id,
                      (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')
                          AS "stale!",
                      u.id, u.email, u.display_name, u.role, u.disabled_at, u.created_at,
                      u.last_login_at
               FROM api_tokens t JOIN users u ON u.id = t.user_id
               WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL"#,
            digest(secret)
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        if r.stale {
            sqlx::query!("UPDATE api_tokens SET last_used_at = now() WHERE id = $1", r.token_id)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(user_from_record!(r)))
    }

    /// The secret called `name`: `given` when set (and then stored), else the one stored,
    /// else a new random one stored for every process of the installation to share.
    pub async fn server_secret(
        &self,
        name: &str,
        given: Option<&[u8]>,
    ) -> Result<Vec<u8>, AccountError> {
        if let Some(given) = given {
            sqlx::query!(
                r#"INSERT INTO server_secrets (name, value) VALUES ($1, $2)
                   ON CONFLICT (name) DO UPDATE SET value = excluded.value"#,
                name,
                given
            )
            .execute(&self.pool)
            .await?;
            return Ok(given.to_vec());
        }
        let fresh = random_bytes(32)?;
        sqlx::query!(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            name,
            fresh
        )
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query_scalar!("SELECT value FROM server_secrets WHERE name = $1", name)
            .fetch_one(&self.pool)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_digests_fixed_length() -> Result<(), AccountError> {
        let a = random_secret(32)?;
        let b = random_secret(32)?;
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(digest(&a).len(), 32);
        assert_eq!(digest(&a), digest(&a));
        Ok(())
    }
}
