//! A run's artifacts in the object store: reading what its version has, storing under the
//! run's own keys with the row written under the lease (and the object deleted again when
//! the lease was lost), and, after a run made its version current, pruning old versions and
//! the objects no kept version refers to.

use bytes::Bytes;
use minutes_shared::failure::FailureCode;
use minutes_shared::jobs::{Job, Lease, RepoError};
use minutes_shared::storage::{artifact_key, version_prefix, StorageError};
use serde_json::Value;

use super::Tools;
use crate::pipeline::{Artifacts, FolderError, LocalRecording, PipelineError};

/// The artifacts of the version a lease builds.
pub(super) struct JobArtifacts<'a> {
    tools: &'a Tools,
    lease: Lease,
    job: &'a Job,
    /// Name to object key, as the version's row had them when the run started.
    keys: Value,
}

impl<'a> JobArtifacts<'a> {
    /// The store of `lease`'s version.
    pub(super) async fn open(
        tools: &'a Tools,
        lease: Lease,
        job: &'a Job,
    ) -> Result<Self, PipelineError> {
        let keys = tools.repo.working_artifacts(lease).await?;
        Ok(Self { tools, lease, job, keys })
    }
}

impl Artifacts for JobArtifacts<'_> {
    async fn recording(&self) -> Result<LocalRecording, PipelineError> {
        let dir = &self.tools.options.work_dir;
        std::fs::create_dir_all(dir)
            .map_err(|source| PipelineError::transient(FolderError::new(dir, source)))?;
        let local = LocalRecording::copy(dir.join(format!("{}.upload", self.job.id)));
        match self.tools.storage.download_to(&self.job.source_key, local.path()).await {
            Ok(_) => Ok(local),
            Err(StorageError::NotFound(_)) => Err(PipelineError::permanent(
                FailureCode::UploadMissing,
                "the uploaded recording is no longer stored",
            )),
            Err(error) => Err(error.into()),
        }
    }

    async fn load(&self, name: &str) -> Result<Option<Bytes>, PipelineError> {
        let Some(key) = self.keys.get(name).and_then(Value::as_str) else { return Ok(None) };
        match self.tools.storage.get(key).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Stores under the run's own key, then records it in the lease's version. When the
    /// lease is lost in between, the object is deleted again: the key is this run's alone,
    /// so nothing another worker stored is touched.
    async fn store(&self, name: &str, bytes: Bytes) -> Result<(), PipelineError> {
        let (tools, lease) = (self.tools, self.lease);
        let key = artifact_key(lease.job_id, lease.version, lease.attempt, name);
        tools.storage.put(&key, bytes).await?;
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

    async fn media(&self, duration: f64, language: Option<&str>) -> Result<(), PipelineError> {
        Ok(self.tools.repo.set_media(self.lease, duration, language).await?)
    }
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
