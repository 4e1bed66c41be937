//! A run's artifacts in the object store: reading what its version has, storing under the
//! run's own keys with the row written under the lease (and the object deleted again when
//! the lease was lost), and, after a run made its version current, pruning old versions and
//! the objects no kept version refers to.

use bytes::Bytes;
use minutes_shared::jobs::{Lease, RepoError};
use minutes_shared::storage::{artifact_key, version_prefix, StorageError};

use super::{JobError, Tools};

/// The stored artifact at `key`, or `None` when the row names it but the store lost it.
pub(super) async fn load(tools: &Tools, key: &str) -> Result<Option<Bytes>, JobError> {
    match tools.storage.get(key).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(StorageError::NotFound(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The stored artifact at `key` parsed; `None` when it is missing or unreadable (made
/// again).
pub(super) async fn load_json<T: serde::de::DeserializeOwned>(
    tools: &Tools,
    key: &str,
) -> Result<Option<T>, JobError> {
    Ok(load(tools, key).await?.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// Stores artifact `name` under the run's own key, then records it in the lease's version.
/// When the lease is lost in between, the object is deleted again: the key is this run's
/// alone, so nothing another worker stored is touched.
pub(super) async fn store(
    tools: &Tools,
    lease: Lease,
    name: &str,
    bytes: impl Into<Bytes>,
) -> Result<(), JobError> {
    let key = artifact_key(lease.job_id, lease.version, lease.attempt, name);
    tools.storage.put(&key, bytes.into()).await?;
    if let Err(error) = tools.repo.store_artifact(lease, name, &key).await {
        if matches!(error, RepoError::LeaseLost(_)) {
            if let Err(cleanup) = tools.storage.delete(&key).await {
                tracing::warn!(%cleanup, key, "an artifact stored after the lease was lost stays");
            }
        }
        return Err(error.into());
    }
    Ok(())
}

/// After a run made its version current: deletes the versions beyond `keep` (never the
/// current one) and every object under them or under this version that no remaining
/// version refers to (what a lost attempt stored). Failures are logged: a leftover object
/// costs space, never a result.
pub async fn tidy_versions(tools: &Tools, lease: Lease) {
    let pruned = match tools.repo.prune_versions(lease.job_id, tools.options.keep_versions).await {
        Ok(pruned) => pruned,
        Err(error) => {
            tracing::warn!(%error, "old versions not pruned");
            return;
        }
    };
    let versions = pruned.numbers.iter().copied().chain([lease.version]);
    for version in versions {
        let prefix = version_prefix(lease.job_id, version);
        let keys = match tools.storage.list(&prefix).await {
            Ok(keys) => keys,
            Err(error) => {
                tracing::warn!(%error, version, "objects of a version not listed");
                continue;
            }
        };
        for key in keys.iter().filter(|key| !pruned.referenced.contains(*key)) {
            if let Err(error) = tools.storage.delete(key).await {
                tracing::warn!(%error, key, "an object no version uses stays");
            }
        }
    }
    if !pruned.numbers.is_empty() {
        tracing::info!(versions = ?pruned.numbers, "old versions deleted");
    }
}
