//! Readiness of a process of the service: whether Postgres, Redis and the object store
//! answer, each within 3 s. Served by the API's and the workers' `/readyz`, which are
//! public: each says `ok`, `unavailable` or `timeout`, never the error text (it can name
//! hosts, users or buckets); the error goes to the log.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::jobs::JobRepo;
use crate::queue::JobQueue;
use crate::storage::Storage;

/// How long each dependency has to answer.
const TIMEOUT: Duration = Duration::from_secs(3);

/// What a readiness check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readiness {
    /// "ok", "unavailable" or "timeout".
    pub postgres: String,
    /// "ok", "unavailable" or "timeout".
    pub redis: String,
    /// The object store: "ok", "unavailable" or "timeout".
    pub storage: String,
}

impl Readiness {
    /// Whether everything answered.
    pub fn is_ready(&self) -> bool {
        [&self.postgres, &self.redis, &self.storage].iter().all(|s| *s == "ok")
    }
}

/// Checks the three, side by side.
pub async fn check(repo: &JobRepo, queue: &JobQueue, storage: &Storage) -> Readiness {
    let postgres = async { sqlx::query("SELECT 1").execute(repo.pool()).await.map(|_| ()) };
    let (postgres, redis, storage) = tokio::join!(
        tokio::time::timeout(TIMEOUT, postgres),
        tokio::time::timeout(TIMEOUT, queue.ping()),
        tokio::time::timeout(TIMEOUT, storage.check()),
    );
    Readiness {
        postgres: outcome("postgres", postgres),
        redis: outcome("redis", redis),
        storage: outcome("storage", storage),
    }
}

fn outcome<E: std::fmt::Display>(
    service: &str,
    result: Result<Result<(), E>, tokio::time::error::Elapsed>,
) -> String {
    match result {
        Ok(Ok(())) => "ok".into(),
        Ok(Err(error)) => {
            tracing::warn!(service, %error, "not ready");
            "unavailable".into()
        }
        Err(_) => {
            tracing::warn!(service, "not ready: no answer within 3 s");
            "timeout".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/readyz` returned raw error text (a Redis URL with its user, a bucket name).
    #[test]
    fn readyz_says_unavailable_without_the_error_text() {
        let failed: Result<Result<(), &str>, _> =
            Ok(Err("redis://admin:hunter2@cache.internal: refused"));
        assert_eq!(outcome("redis", failed), "unavailable");
        assert_eq!(outcome("redis", Ok(Ok::<(), &str>(()))), "ok");
    }
}
