//! Users: who may sign in, with which role, and their argon2id password hashes.
//!
//! The API signs people in against this table; the `minutes users` command manages it
//! directly in Postgres (so the first admin exists before any API runs). Emails are unique
//! without regard to case. A disabled user keeps their jobs but can no longer sign in, and
//! their sessions and tokens stop working at once.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgPool;
use uuid::Uuid;

use crate::jobs::RepoError;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees and manages every job.
    Admin,
    /// Sees and manages their own jobs.
    Member,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AccountError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(AccountError::Invalid(format!("unknown role {other:?}"))),
        }
    }
}

/// A user as stored (without the password hash).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    /// Server-generated id.
    pub id: Uuid,
    /// Sign-in name and default notification address.
    pub email: String,
    /// Name shown on pages.
    pub display_name: String,
    /// Admin or member.
    pub role: Role,
    /// Set when the account was disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Last successful sign-in.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl User {
    /// Whether the user sees every job.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Postgres failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// Another user has this email.
    #[error("a user with the email {0} exists already")]
    EmailTaken(String),
    /// No user has this email.
    #[error("no user has the email {0}")]
    NoSuchUser(String),
    /// An email, name or password that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// Hashing or the OS's random source failed (they do not, short of a broken system).
    #[error("cryptography failed: {0}")]
    Crypto(String),
}

impl From<sqlx::Error> for AccountError {
    fn from(error: sqlx::Error) -> Self {
        AccountError::Repo(RepoError::Database(error))
    }
}

/// The argon2id PHC string of `password` (CPU-heavy by design: call it off the async
/// runtime).
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Crypto(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (CPU-heavy, like [`hash_password`]).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash that matches no password, verified when the email is unknown so that an unknown
/// email takes as long as a wrong password.
pub fn decoy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$bWludXRlcy1kZWNveQ$0tU3tO2HB1G2S1m3nT4FvJ0q8J1kq4W0uZsVv3p3kQ8"
}

/// The password rules, with the reason a password is refused.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::Invalid(format!(
            "the password is too short: at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(AccountError::Invalid("the password is too long: at most 1024 bytes".into()));
    }
    Ok(())
}

/// An email address as accounts use it: trimmed, one `@`, a dotted domain, nothing that
/// could break a header.
pub fn check_email(address: &str) -> Result<String, AccountError> {
    let address = address.trim();
    let valid = (3..=254).contains(&address.len())
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
        && address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(address.to_string())
    } else {
        let shown: String = address.chars().take(80).collect();
        Err(AccountError::Invalid(format!("{shown:?} is not an email address")))
    }
}

/// A `users` row as queries return it (the role as text).
pub(crate) struct UserRow {
    pub(crate) id: Uuid,
    pub(crate) email: String,
    pub(crate) display_name: String,
    pub(crate) role: String,
    pub(crate) disabled_at: Option<DateTime<Utc>>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) last_login_at: Option<DateTime<Utc>>,
}

/// The [`User`] in a query record that selects the `users` columns beside others (sqlx
/// gives every `query!` its own record type, so `query_as!(UserRow, ..)` cannot serve
/// queries that also return a password hash or a session's form token).
macro_rules! user_from_record {
    ($record:expr) => {
        $crate::accounts::User::from($crate::accounts::UserRow {
            id: $record.id,
            email: $record.email,
            display_name: $record.display_name,
            role: $record.role,
            disabled_at: $record.disabled_at,
            created_at: $record.created_at,
            last_login_at: $record.last_login_at,
        })
    };
}
pub(crate) use user_from_record;

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id,
            email: row.email,
            display_name: row.display_name,
            // The column's CHECK allows only these two.
            role: if row.role == "admin" { Role::Admin } else { Role::Member },
            disabled_at: row.disabled_at,
            created_at: row.created_at,
            last_login_at: row.last_login_at,
        }
    }
}

/// Reads and writes users.
#[derive(Debug, Clone)]
pub struct UserRepo {
    pool: PgPool,
}

impl UserRepo {
    /// A repository over `pool`.
    pub fn new(pool: PgPool) -> Self {
        UserRepo { pool }
    }

    /// Adds a user with an already hashed password.
    pub async fn add(
        &self,
        email: &str,
        display_name: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, AccountError> {
        let email = check_email(email)?;
        let display_name: String =
            display_name.chars().filter(|c| !c.is_control()).take(100).collect();
        let display_name = match display_name.trim() {
            "" => email.split('@').next().unwrap_or(&email).to_string(),
            name => name.to_string(),
        };
        let row = sqlx::query_as!(
            UserRow,
            r#"INSERT INTO users (id, email, display_name, password_hash, role)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT DO NOTHING
               RETURNING id, email, display_name, role, disabled_at, created_at, last_login_at"#,
            Uuid::new_v4(),
            email,
            display_name,
            password_hash,
            role.as_str(),
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(User::from).ok_or(AccountError::EmailTaken(email))
    }

    /// The user with `email` (any case) and their password hash.
    pub async fn by_email(&self, email: &str) -> Result<Option<(User, String)>, AccountError> {
        let row = sqlx::query!(
            r#"SELECT id, email, display_name, role, disabled_at, created_at, last_login_at,
                      password_hash
               FROM users WHERE lower(email) = lower($1)"#,
            email.trim()
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (user_from_record!(r), r.password_hash)))
    }

    /// The user with `id`.
    pub async fn get(&self, id: Uuid) -> Result<Option<User>, AccountError> {
        let row = sqlx::query_as!(
            UserRow,
            r#"SELECT id, email, display_name, role, disabled_at, created_at, last_login_at
               FROM users WHERE id = $1"#,
            id
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(User::from))
    }

    /// Every user, by email.
    pub async fn list(&self) -> Result<Vec<User>, AccountError> {
        let rows = sqlx::query_as!(
            UserRow,
            r#"SELECT id, email, display_name, role, disabled_at, created_at, last_login_at
               FROM users ORDER BY lower(email)"#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// Disables or enables the user with `email`; disabling ends their sessions.
    pub async fn set_disabled(&self, email: &str, disabled: bool) -> Result<User, AccountError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query_as!(
            UserRow,
            r#"UPDATE users
               SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) ELSE NULL END
               WHERE lower(email) = lower($1)
               RETURNING id, email, display_name, role, disabled_at, created_at, last_login_at"#,
            email.trim(),
            disabled
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| AccountError::NoSuchUser(email.to_string()))?;
        if disabled {
            sqlx::query!("DELETE FROM sessions WHERE user_id = $1", row.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(row.into())
    }

    /// Replaces the password hash of the user with `email` and ends their sessions.
    pub async fn set_password(
        &self,
        email: &str,
        password_hash: &str,
    ) -> Result<User, AccountError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query_as!(
            UserRow,
            r#"UPDATE users SET password_hash = $2
               WHERE lower(email) = lower($1)
               RETURNING id, email, display_name, role, disabled_at, created_at, last_login_at"#,
            email.trim(),
            password_hash
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| AccountError::NoSuchUser(email.to_string()))?;
        sqlx::query!("DELETE FROM sessions WHERE user_id = $1", row.id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// Records a successful sign-in.
    pub async fn signed_in(&self, id: Uuid) -> Result<(), AccountError> {
        sqlx::query!("UPDATE users SET last_login_at = now() WHERE id = $1", id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() -> Result<(), AccountError> {
        let hash = hash_password("correct horse battery")?;
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("anything", decoy_hash()));
        assert!(PasswordHash::new(decoy_hash()).is_ok(), "the decoy parses, so it costs a hash");
        Ok(())
    }

    #[test]
    fn emails_and_passwords_are_checked() {
        assert_eq!(check_email(" Ann@Example.com ").ok().as_deref(), Some("Ann@Example.com"));
        assert!(check_email("ann@example").is_err());
        assert!(check_email("a@b.c\r\nBcc: x@y.z").is_err());
        assert!(check_email("a@b@c.d").is_err());
        assert!(check_password("short").is_err());
        assert!(check_password("long enough!").is_ok());
    }
}
