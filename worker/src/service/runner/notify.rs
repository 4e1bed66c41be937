//! A job's emails: the minutes once it is done and the failure notice once it failed, each
//! sent through a send intent with a fixed Message-ID, so a retried or taken-over job never
//! sends one twice.

use std::path::Path;
use std::time::Instant;

use minutes_shared::failure::FailureReason;
use minutes_shared::jobs::{EmailKind, Job, Lease, RepoError};
use minutes_shared::Minutes;

use super::{meeting_info, stage_finished, JobError, Tools};
use crate::mail::MailError;
use crate::service::lease_keeper::Reporter;
use crate::stages::notify::{failure_email, minutes_email, FailureNotice, NotifyOptions};

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

/// Sends the minutes email once: a sent intent is not sent again. A refused or
/// undeliverable email is recorded on the intent and in the job's message; the minutes
/// stand.
pub(super) async fn notify(
    tools: &Tools,
    lease: Lease,
    job: &Job,
    minutes: &Minutes,
    pdf: &[u8],
    reporter: &Reporter,
) -> Result<(), JobError> {
    let Some(to) = job.notify_email.as_deref().filter(|to| !to.is_empty()) else {
        return Ok(());
    };
    // Reprocessing sends no new email unless asked to.
    if job.options.notify == Some(false) {
        return Ok(());
    }
    let started = Instant::now();
    let intent = tools
        .repo
        .email_intent(job.id, EmailKind::Minutes, &format!("minutes-{}@minutes", job.id), to)
        .await?;
    if intent.is_sent() {
        return Ok(());
    }
    reporter.report("notify", 97.0, format!("emailing {to}"));
    // Sending cannot be taken back: make sure this worker still holds the job (a stale
    // worker stops here instead of mailing a second copy).
    tools.repo.heartbeat(lease, tools.options.lease).await?;
    let email = minutes_email(
        minutes,
        pdf,
        &pdf_file_name(job),
        &notify_options(tools, job, &intent.recipient, intent.message_id.clone()),
    );
    let outcome = match email {
        Ok(email) => tools.outbox.deliver(&email, &job.id.to_string()).await.map(|d| d.attempts),
        Err(error) => Err(MailError::Permanent(error.to_string())),
    };
    match outcome {
        Ok(attempts) => {
            tools.repo.email_outcome(job.id, EmailKind::Minutes, attempts as i32, None).await?;
            stage_finished(tools, "notify", started);
        }
        Err(error) => {
            let reason = error.to_string();
            tools.repo.email_outcome(job.id, EmailKind::Minutes, 1, Some(&reason)).await?;
            reporter.report("notify", 99.0, format!("the email was not sent: {reason}"));
            tools.metrics.email_failed();
        }
    }
    Ok(())
}

/// Sends the failure email of a job that ended `failed`, once.
pub async fn notify_failure(
    tools: &Tools,
    job: &Job,
    reason: &FailureReason,
) -> Result<(), RepoError> {
    let Some(to) = job.notify_email.as_deref().filter(|to| !to.is_empty()) else {
        return Ok(());
    };
    let intent = tools
        .repo
        .email_intent(job.id, EmailKind::Failure, &format!("failed-{}@minutes", job.id), to)
        .await?;
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
            tools.repo.email_outcome(job.id, EmailKind::Failure, attempts as i32, None).await
        }
        Err(error) => {
            tools.repo.email_outcome(job.id, EmailKind::Failure, 1, Some(&error.to_string())).await
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
