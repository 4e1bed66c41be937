//! Uploads becoming jobs: the job row that replaces the pending one (written by
//! `allowance` before any byte is stored) in one transaction, and the pending rows an API
//! that died mid-upload left behind.

use std::time::Duration;

use uuid::Uuid;

use super::{seconds, Job, JobRepo, RepoError};
use crate::options::JobOptions;

/// What an upload creates.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Server-generated id.
    pub id: Uuid,
    /// Object key the upload was stored at.
    pub source_key: String,
    /// Sanitised file name.
    pub original_filename: String,
    /// Detected media type.
    pub content_type: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// Meeting title, when given.
    pub title: Option<String>,
    /// Spoken language, when given.
    pub language: Option<String>,
    /// Notification address, when given.
    pub notify_email: Option<String>,
    /// Processing options, checked.
    pub options: JobOptions,
    /// The request's Idempotency-Key, when it had one (scoped to the owner by the caller).
    pub idempotency_key: Option<String>,
    /// The uploader.
    pub owner_id: Option<Uuid>,
    /// The id of the upload's HTTP request (see [`Job::request_id`]).
    pub request_id: Option<String>,
}

impl JobRepo {
    /// Creates the job, or returns the one created earlier with the same idempotency key.
    /// The flag says whether this call created it.
    pub async fn create(&self, new: &NewJob) -> Result<(Job, bool), RepoError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query_scalar!(
            r#"INSERT INTO jobs (id, source_key, original_filename, content_type, size_bytes,
                                 title, language, notify_email, options, idempotency_key,
                                 owner_id, request_id, building_version)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)
               ON CONFLICT (idempotency_key) DO NOTHING
               RETURNING id"#,
            new.id,
            new.source_key,
            new.original_filename,
            new.content_type,
            new.size_bytes,
            new.title,
            new.language,
            new.notify_email,
            serde_json::to_value(&new.options).unwrap_or_default(),
            new.idempotency_key,
            new.owner_id,
            new.request_id,
        )
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_some() {
            // The first run builds version 1.
            sqlx::query!(
                r#"INSERT INTO job_versions (job_id, number, from_stage, options, requested_by)
                   SELECT id, 1, 'decode', options, owner_id FROM jobs WHERE id = $1"#,
                new.id
            )
            .execute(&mut *tx)
            .await?;
            // The upload now has its job: it is no longer the reconciler's to delete.
            sqlx::query!("DELETE FROM pending_uploads WHERE job_id = $1", new.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let id = match (inserted, &new.idempotency_key) {
            (Some(id), _) => id,
            (None, Some(key)) => {
                sqlx::query_scalar!("SELECT id FROM jobs WHERE idempotency_key = $1", key)
                    .fetch_one(&self.pool)
                    .await?
            }
            (None, None) => return Err(RepoError::Database(sqlx::Error::RowNotFound)),
        };
        let job = self.get(id).await?.ok_or(RepoError::Database(sqlx::Error::RowNotFound))?;
        Ok((job, inserted.is_some()))
    }

    /// Forgets a pending upload whose objects were removed (a rejected or failed upload).
    pub async fn upload_abandoned(&self, id: Uuid) -> Result<(), RepoError> {
        sqlx::query!("DELETE FROM pending_uploads WHERE job_id = $1", id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Pending uploads started more than `age` ago with no job row: their API died
    /// mid-upload. The caller deletes their objects, then calls [`Self::upload_abandoned`].
    pub async fn stale_uploads(&self, age: Duration) -> Result<Vec<Uuid>, RepoError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT p.job_id FROM pending_uploads p
               WHERE p.started_at < now() - make_interval(secs => $1)
                 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = p.job_id)
               LIMIT 1000"#,
            seconds(age)
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The job with `idempotency_key`, if one was created with it.
    pub async fn by_idempotency_key(&self, key: &str) -> Result<Option<Job>, RepoError> {
        let id = sqlx::query_scalar!("SELECT id FROM jobs WHERE idempotency_key = $1", key)
            .fetch_optional(&self.pool)
            .await?;
        match id {
            Some(id) => self.get(id).await,
            None => Ok(None),
        }
    }
}
