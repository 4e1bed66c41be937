//! A job's email intents, one per email and version of its results: the Message-ID fixed
//! before the first try, so a resend after a crash is recognisable, and the outcome of
//! delivering it.

use uuid::Uuid;

use super::{JobRepo, RepoError};

/// Which email a job sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    /// The minutes, when the job is done.
    Minutes,
    /// The failure notice, when it failed.
    Failure,
}

impl EmailKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::Minutes => "minutes",
            EmailKind::Failure => "failure",
        }
    }
}

/// A job's intent to send one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailIntent {
    /// Fixed when the intent was made, so a resend is recognisable.
    pub message_id: String,
    /// Where it goes.
    pub recipient: String,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    /// Delivery tries so far.
    pub attempts: i32,
    /// The last failure, when there was one.
    pub last_error: Option<String>,
}

impl EmailIntent {
    /// Whether the server accepted it already.
    pub fn is_sent(&self) -> bool {
        self.state == "sent"
    }
}

impl JobRepo {
    /// The send intent for an email of `kind` about version `version` of the job's
    /// results, made now with `message_id` unless one exists (then its fixed Message-ID is
    /// kept). Returns the intent as stored.
    pub async fn email_intent(
        &self,
        job_id: Uuid,
        version: i32,
        kind: EmailKind,
        message_id: &str,
        recipient: &str,
    ) -> Result<EmailIntent, RepoError> {
        sqlx::query!(
            r#"INSERT INTO email_intents (job_id, kind, message_id, recipient, version)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id, kind, version) DO NOTHING"#,
            job_id,
            kind.as_str(),
            message_id,
            recipient,
            version
        )
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query_as!(
            EmailIntent,
            r#"SELECT message_id, recipient, state, attempts, last_error
               FROM email_intents WHERE job_id = $1 AND kind = $2 AND version = $3"#,
            job_id,
            kind.as_str(),
            version
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records the outcome of delivering the email of `kind` about version `version`: sent
    /// (`error` none) or failed for good, after `attempts` tries.
    pub async fn email_outcome(
        &self,
        job_id: Uuid,
        version: i32,
        kind: EmailKind,
        attempts: i32,
        error: Option<&str>,
    ) -> Result<(), RepoError> {
        sqlx::query!(
            r#"UPDATE email_intents
               SET state = CASE WHEN $4::text IS NULL THEN 'sent' ELSE 'failed' END,
                   attempts = attempts + $3, last_error = $4,
                   sent_at = CASE WHEN $4::text IS NULL THEN now() END
               WHERE job_id = $1 AND kind = $2 AND version = $5"#,
            job_id,
            kind.as_str(),
            attempts,
            error,
            version
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
