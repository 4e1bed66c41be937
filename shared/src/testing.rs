//! Helpers for the integration tests of every crate (feature `testing`): a fresh Postgres
//! database per test and a queue name of its own, against the real services the README's
//! test command starts, and users with API tokens to make requests as.

use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

use crate::accounts::{hash_password, AccountError, Role, User, UserRepo};
use crate::credentials::CredentialRepo;

/// The password of every user [`add_user`] makes.
pub const PASSWORD: &str = "correct horse battery";

/// A user with [`PASSWORD`] and an API token made for them: the user and the token.
pub async fn add_user(
    pool: &PgPool,
    email: &str,
    role: Role,
) -> Result<(User, String), AccountError> {
    let hash = hash_password(PASSWORD)?;
    let user = UserRepo::new(pool.clone()).add(email, "", &hash, role).await?;
    let (_, token) = CredentialRepo::new(pool.clone()).create_token(user.id, "tests").await?;
    Ok((user, token))
}

/// A database made for one test; [`TestDatabase::drop_database`] removes it (the test
/// command also drops leftovers of tests that crashed).
#[derive(Debug)]
pub struct TestDatabase {
    admin: String,
    name: String,
    /// URL of the new database.
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database on `MINUTES_TEST_DATABASE_URL` (default: the local
    /// server as `postgres`).
    pub async fn create() -> Result<Self, sqlx::Error> {
        let admin = std::env::var("MINUTES_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("minutes_test_{}", Uuid::new_v4().simple());
        let mut connection = PgConnection::connect(&admin).await?;
        connection.execute(format!("CREATE DATABASE {name}").as_str()).await?;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Ok(TestDatabase { admin, name, url })
    }

    /// Drops the database, closing whatever is still connected.
    pub async fn drop_database(self) -> Result<(), sqlx::Error> {
        let mut connection = PgConnection::connect(&self.admin).await?;
        connection
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await?;
        Ok(())
    }
}

/// A queue name no other test uses.
pub fn queue_name() -> String {
    format!("minutes-test:{}", Uuid::new_v4().simple())
}

/// The Redis the tests use (`MINUTES_TEST_REDIS_URL`, default the local server).
pub fn redis_url() -> String {
    std::env::var("MINUTES_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Deletes every key of `queue` in the Redis at `url`, as a flushed or restarted Redis
/// that lost its last writes would: the tickets on it are gone. Returns how many keys.
pub async fn forget_queue(url: &str, queue: &str) -> Result<usize, redis::RedisError> {
    let mut connection = redis::Client::open(url)?.get_multiplexed_async_connection().await?;
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{queue}:*")).query_async(&mut connection).await?;
    if keys.is_empty() {
        return Ok(0);
    }
    redis::cmd("DEL").arg(&keys).query_async::<()>(&mut connection).await?;
    Ok(keys.len())
}

/// Every file under `root` (a local object store's folder), relative to it, sorted.
pub fn files_under(root: &std::path::Path) -> Vec<String> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if let Ok(relative) = path.strip_prefix(root) {
                out.push(relative.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}
