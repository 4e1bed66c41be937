//! A job's emails: the minutes of each version that asked for them and the failure notice
//! once a first run failed (a failed reprocess sends none: the person still has their
//! minutes), each sent through a send intent with a fixed Message-ID per version, so a
//! retried or taken-over job never sends one twice.

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use minutes_shared::failure::FailureReason;
use minutes_shared::jobs::{EmailKind, Job, Lease, RepoError};
use minutes_shared::stage::Stage;
use minutes_shared::Minutes;

use super::{meeting_info, Tools};
use crate::mail::MailError;
use crate::pipeline::{Control, Notifier, PipelineError};
use crate::stages::notify::{
    failure_email, message_id, minutes_email, FailureNotice, Notice, NotifyOptions,
};

/// The job page, when the service has a public address.
fn job_link(tools: &Tools, job: &Job) -> Option<String> {
    tools
        .options
        .public_url
        .as_ref()
        .and_then(|base| base.join(&format!("jobs/{}", job.id)).ok())
        .map(String::from)
}

fn notify_options(tools: &Tools, job: &Job, to: &str, message_id: String) -> NotifyOptions {
    NotifyOptions {
        from: tools.options.mail_from.clone(),
        to: to.to_string(),
        message_id,
        link: job_link(tools, job),
        attachment_limit: tools.options.attachment_limit,
    }
}

/// Sends a leased job's minutes email.
pub(super) struct JobNotifier<'a> {
    pub(super) tools: &'a Tools,
    pub(super) lease: Lease,
    pub(super) job: &'a Job,
}

impl Notifier for JobNotifier<'_> {
    /// Sends the minutes email once: a sent intent is not sent again. A refused or
    /// undeliverable email is recorded on the intent and in the job's message; the minutes
    /// stand.
    async fn minutes(
        &self,
        minutes: &Minutes,
        pdf: &Bytes,
        control: &Control,
    ) -> Result<Option<String>, PipelineError> {
        let Self { tools, lease, job } = *self;
        let Some(to) = job.notify_email.as_deref().filter(|to| !to.is_empty()) else {
            return Ok(None);
        };
        // Reprocessing sends no new email unless asked to.
        if job.options.notify == Some(false) {
            return Ok(None);
        }
        let started = Instant::now();
        let id = message_id(Notice::Minutes, &job.id.to_string(), lease.version);
        let repo = &tools.repo;
        let intent = repo.email_intent(job.id, lease.version, EmailKind::Minutes, &id, to).await?;
        if intent.is_sent() {
            return Ok(None);
        }
        control.report(Stage::Notify, 97.0, format!("emailing {to}"));
        // Sending cannot be taken back: make sure this worker still holds the job (a stale
        // worker stops here instead of mailing a second copy).
        repo.heartbeat(lease, tools.options.lease).await?;
        let options = notify_options(tools, job, &intent.recipient, intent.message_id.clone());
        let outcome = match minutes_email(minutes, pdf, &pdf_file_name(job), &options) {
            Ok(email) => {
                tools.outbox.deliver(&email, &job.id.to_string()).await.map(|d| d.attempts)
            }
            Err(error) => Err(MailError::Permanent(error.to_string())),
        };
        match outcome {
            Ok(attempts) => {
                let attempts = attempts as i32;
                repo.email_outcome(job.id, lease.version, EmailKind::Minutes, attempts, None)
                    .await?;
                control.finished(Stage::Notify, started.elapsed());
                Ok(None)
            }
            Err(error) => {
                let reason = error.to_string();
                let version = lease.version;
                repo.email_outcome(job.id, version, EmailKind::Minutes, 1, Some(&reason)).await?;
                control.report(Stage::Notify, 99.0, format!("the email was not sent: {reason}"));
                tools.metrics.email_failed();
                Ok(Some(reason))
            }
        }
    }
}

/// Sends the failure email of a job whose first run ended `failed`, once. A job with a
/// current version (a failed reprocess) sends none.
pub async fn notify_failure(
    tools: &Tools,
    job: &Job,
    reason: &FailureReason,
) -> Result<(), RepoError> {
    let Some(to) = job.notify_email.as_deref().filter(|to| !to.is_empty()) else {
        return Ok(());
    };
    if job.current_version.is_some() {
        return Ok(());
    }
    let version = job.building_version.unwrap_or(1);
    let id = message_id(Notice::Failure, &job.id.to_string(), version);
    let intent = tools.repo.email_intent(job.id, version, EmailKind::Failure, &id, to).await?;
    if intent.is_sent() {
        return Ok(());
    }
    let notice = FailureNotice {
        title: meeting_info(job).title,
        source_filename: job.original_filename.clone(),
        reason: reason.plain(),
    };
    let email =
        failure_email(&notice, &notify_options(tools, job, &intent.recipient, intent.message_id));
    let outcome = match email {
        Ok(email) => {
            tools.outbox.deliver(&email, &format!("{}.failed", job.id)).await.map(|d| d.attempts)
        }
        Err(error) => Err(MailError::Permanent(error.to_string())),
    };
    match outcome {
        Ok(attempts) => {
            tools
                .repo
                .email_outcome(job.id, version, EmailKind::Failure, attempts as i32, None)
                .await
        }
        Err(error) => {
            let error = error.to_string();
            tools.repo.email_outcome(job.id, version, EmailKind::Failure, 1, Some(&error)).await
        }
    }
}

/// `weekly sync.m4a` -> `weekly sync.pdf`.
fn pdf_file_name(job: &Job) -> String {
    let stem = Path::new(&job.original_filename)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "minutes".into());
    format!("{stem}.pdf")
}
