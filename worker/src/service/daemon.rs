//! The worker daemon: consumes job tickets from the queue, claims each job in Postgres,
//! runs it, and records how it ended.
//!
//! Redis only delivers "job X is ready"; the claim in Postgres decides who runs it, so a
//! ticket delivered twice runs once. Handlers never hand job errors to apalis (whose Redis
//! backend would re-run a failed task up to 25 times, and never counts crashes): permanent
//! errors fail the job at once, transient ones queue it again with a backoff counted in
//! Postgres, a job whose workers keep vanishing fails after the crash budget. Only a
//! database outage is returned to apalis; the job is then still `queued` in Postgres, and
//! whether or not apalis delivers that ticket again, the reconciler pushes any queued job
//! no worker claimed within `MINUTES_STRANDED_SECS` (see `JobRepo::due_for_push`).
//!
//! Each job runs in a task of its own holding one of the process's `MINUTES_WORKER_CONCURRENCY`
//! slots, so it goes on when the apalis worker that fetched it stops: apalis stops when its
//! registration in Redis lapsed (the process was paused, Redis was away), and the daemon
//! then registers a new one instead of exiting.
//!
//! Beside the consumer run a reconciler (pushes jobs Postgres says should be on the queue:
//! uploads whose push was lost, tickets lost in Redis, retries whose backoff ended, jobs
//! handed back or orphaned) and a small HTTP server with `/healthz` and `/metrics`.
//!
//! Shutdown (SIGTERM or SIGINT): fetch nothing new, give running jobs the grace period to
//! finish, then stop them at their next chunk and hand them back to the queue; exit 0.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis::prelude::{BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use minutes_shared::failure::{FailureCode, FailureReason};
use minutes_shared::jobs::{Claim, Job, JobState, Lease};
use minutes_shared::queue::{push_due, JobQueue, JobTicket};
use minutes_shared::settings::{ConnectError, Services};
use minutes_shared::stage::Stage;
use tokio::sync::watch;
use tracing::Instrument as _;
use uuid::Uuid;

use super::http;
use super::lease_keeper::{LeaseKeeper, Progress, StopFlag, StopReason};
use super::metrics::{Metrics, Outcome};
use super::models::Models;
use super::runner::{self, RunOptions, Tools};
use super::settings::WorkerSettings;
use crate::mail::Outbox;
use crate::pipeline::{Diarize, PipelineError};
use crate::settings::{Provider, SummarizerArgs};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Postgres, Redis or the object store could not be used.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A setting cannot be used.
    #[error("{0}")]
    Settings(String),
    /// The consumer failed.
    #[error("worker: {0}")]
    Worker(String),
    /// The HTTP port could not be opened.
    #[error("http: {0}")]
    Http(String),
}

/// How long a job whose owner is at their running limit waits before it is queued again.
const OWNER_BUSY_DELAY: Duration = Duration::from_secs(1);

/// Wait before registering the queue worker again after it stopped with an error.
const REREGISTER_DELAY: Duration = Duration::from_secs(1);

/// What every handler shares.
struct Daemon {
    tools: Tools,
    queue: JobQueue,
    name: String,
    lease: Duration,
    heartbeat: Duration,
    crash_budget: i32,
    retry_budget: i32,
    settings: WorkerSettings,
    /// Running jobs and their stop flags (raised when the grace period ends).
    running: Mutex<HashMap<Uuid, StopFlag>>,
    /// One permit per job this process may run at once, held by the job's own task: a job
    /// outlives the queue worker that fetched it (registered again after a lapse), and the
    /// new one takes no more jobs than there are free slots.
    slots: Arc<tokio::sync::Semaphore>,
}

/// Starts the daemon and runs it until `shutdown` resolves and running jobs are finished
/// or handed back.
pub async fn serve(
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let name = settings.worker_name();
    let service = &settings.service;
    let Services { repo, storage, queue } = service.connect().await?;
    let summarizer =
        settings.summarizer.build().map_err(|e| DaemonError::Settings(e.to_string()))?;
    // Jobs may ask for the OpenAI-compatible provider whatever the default is.
    let openai = SummarizerArgs { summarizer: Provider::Openai, ..settings.summarizer.clone() }
        .build()
        .map_err(|e| DaemonError::Settings(e.to_string()))?;
    let outbox = Outbox::new(&settings.mail()).map_err(|e| DaemonError::Settings(e.to_string()))?;
    settings.recognition.check().map_err(|e| DaemonError::Settings(e.to_string()))?;
    let (model, detector, diarizer) = {
        let recognition = settings.recognition.clone();
        tokio::task::spawn_blocking(move || {
            Ok::<_, crate::settings::RecognitionError>((
                recognition.load_model()?,
                recognition.speech_detector()?,
                recognition.diarizer()?,
            ))
        })
        .await
        .map_err(|e| DaemonError::Settings(format!("loading the model crashed: {e}")))?
        .map_err(|e| DaemonError::Settings(e.to_string()))?
    };
    let model_options =
        settings.recognition.model_options().map_err(|e| DaemonError::Settings(e.to_string()))?;
    let options = RunOptions {
        decoder: settings
            .recognition
            .decoder()
            .map_err(|e| DaemonError::Settings(format!("cannot find this program: {e}")))?,
        transcribe: settings.recognition.transcribe_options(),
        paper: settings.delivery.paper,
        mail_from: settings.delivery.mail_from.clone(),
        attachment_limit: settings.delivery.attachment_limit(),
        public_url: service.public_url.clone(),
        work_dir: settings.work_dir(),
        lease: service.lease(),
        summarizers: service.summarizers.clone(),
        summary_fallback: settings.summarizer.summary_fallback,
        keep_versions: settings.keep_versions,
    };
    let metrics = Arc::new(Metrics::default());
    let tools = Tools {
        repo,
        storage,
        models: Arc::new(Models::new(
            model,
            model_options,
            service.models.clone(),
            settings.recognition.locations(),
        )),
        detector,
        diarize: diarizer.map(|diarizer| Diarize {
            diarizer: Arc::new(diarizer),
            options: settings.recognition.diarization.cluster_options(),
        }),
        summarizer: Arc::from(summarizer),
        openai: Arc::from(openai),
        outbox,
        metrics: Arc::clone(&metrics),
        options,
    };
    let daemon = Arc::new(Daemon {
        tools,
        queue: queue.clone(),
        name: name.clone(),
        lease: service.lease(),
        heartbeat: service.heartbeat(),
        crash_budget: settings.crash_budget,
        retry_budget: settings.retry_budget,
        running: Mutex::new(HashMap::new()),
        slots: Arc::new(tokio::sync::Semaphore::new(usize::from(settings.concurrency))),
        settings,
    });

    let listener = tokio::net::TcpListener::bind(daemon.settings.http_addr)
        .await
        .map_err(|e| DaemonError::Http(format!("{}: {e}", daemon.settings.http_addr)))?;
    let address = listener.local_addr().map_err(|e| DaemonError::Http(e.to_string()))?;
    let dependencies = http::Dependencies {
        repo: daemon.tools.repo.clone(),
        queue: daemon.queue.clone(),
        storage: daemon.tools.storage.clone(),
    };
    tokio::spawn(http::serve(listener, Arc::clone(&metrics), dependencies));
    // Tests and operators read this line to find the port and the name.
    tracing::info!(worker = %name, "ready; health and metrics on http://{address}");

    let (stopping_tx, stopping_rx) = watch::channel(false);
    tokio::spawn(reconcile(Arc::clone(&daemon), stopping_rx.clone()));
    tokio::spawn({
        let daemon = Arc::clone(&daemon);
        let mut stopping = stopping_rx.clone();
        async move {
            if stopping.wait_for(|s| *s).await.is_ok() {
                tokio::time::sleep(Duration::from_secs(daemon.settings.shutdown_grace_secs)).await;
                hand_back_all(&daemon);
            }
        }
    });
    tokio::spawn({
        let name = name.clone();
        async move {
            shutdown.await;
            tracing::info!(worker = %name, "stopping: no new jobs; running ones may finish");
            let _ = stopping_tx.send(true);
        }
    });
    // The apalis worker ends with an error when its registration in Redis lapsed (this
    // process was paused, or Redis was away longer than the keep-alive): register again and
    // go on taking jobs, instead of leaving the process up with nothing polling or exiting.
    loop {
        let worker = WorkerBuilder::new(name.as_str())
            .backend(queue.backend())
            .concurrency(usize::from(daemon.settings.concurrency))
            .data(Arc::clone(&daemon))
            .build(handle);
        let mut stopping = stopping_rx.clone();
        let signal = async move {
            let _ = stopping.wait_for(|s| *s).await;
            Ok::<(), std::io::Error>(())
        };
        match worker.run_until(signal).await {
            Ok(()) => break,
            Err(error) if !*stopping_rx.borrow() => {
                tracing::warn!(worker = %name, %error, "the queue worker stopped; registering again");
                tokio::time::sleep(REREGISTER_DELAY).await;
            }
            Err(error) => {
                tracing::info!(worker = %name, "stopped");
                return Err(DaemonError::Worker(error.to_string()));
            }
        }
    }
    // Jobs fetched by a queue worker that stopped run in their own tasks: wait for them
    // too (the grace period's end hands them back).
    let all = u32::from(daemon.settings.concurrency);
    let _ = daemon.slots.acquire_many(all).await;
    tracing::info!(worker = %name, "stopped");
    Ok(())
}

/// Stops every running job at its next chunk; each hands itself back.
fn hand_back_all(daemon: &Daemon) {
    if let Ok(running) = daemon.running.lock() {
        for stop in running.values() {
            stop.raise(StopReason::Shutdown);
        }
    }
}

/// The apalis handler: one ticket.
async fn handle(ticket: JobTicket, daemon: Data<Arc<Daemon>>) -> Result<(), BoxDynError> {
    let daemon: Arc<Daemon> = Arc::clone(&daemon);
    let slot = Arc::clone(&daemon.slots).acquire_owned().await?;
    let claim = daemon
        .tools
        .repo
        .claim_limited(
            ticket.job_id,
            &daemon.name,
            daemon.lease,
            daemon.crash_budget,
            Some(daemon.settings.max_running_per_user).filter(|limit| *limit > 0),
        )
        .await?;
    match claim {
        Claim::NotClaimable => Ok(()),
        Claim::OwnerBusy => {
            // Back of the line: the reconciler pushes it again shortly, and the tickets of
            // other users' jobs behind it are taken meanwhile.
            daemon.tools.repo.defer(ticket.job_id, OWNER_BUSY_DELAY).await?;
            Ok(())
        }
        Claim::CrashBudgetSpent => {
            if let Some(job) = daemon.tools.repo.get(ticket.job_id).await? {
                let reason = job.failure_reason.clone().unwrap_or_else(|| {
                    FailureReason::new(FailureCode::WorkerLost, "the crash budget is spent")
                });
                runner::notify_failure(&daemon.tools, &job, &reason).await?;
            }
            Ok(())
        }
        Claim::Leased(lease, job) => {
            // Every line logged while it runs carries these (in JSON, as span fields).
            let span = tracing::info_span!(
                "job",
                job_id = %job.id,
                attempt = job.attempts,
                request_id = job.request_id.as_deref().unwrap_or_default(),
            );
            // The job's own task: it goes on if the queue worker that fetched it stops.
            let task = tokio::spawn(
                async move {
                    let _slot = slot;
                    run_leased(&daemon, lease, *job).await;
                }
                .instrument(span),
            );
            if let Err(error) = task.await {
                tracing::error!(%error, "a job's task ended abnormally");
            }
            Ok(())
        }
    }
}

async fn run_leased(daemon: &Daemon, lease: Lease, job: Job) {
    let tools = &daemon.tools;
    tools.metrics.job_started();
    let stop = StopFlag::default();
    if let Ok(mut running) = daemon.running.lock() {
        running.insert(job.id, stop.clone());
    }
    let keeper = LeaseKeeper::start(
        tools.repo.clone(),
        lease,
        daemon.heartbeat,
        daemon.lease,
        stop.clone(),
        Progress {
            stage: Stage::Decode,
            percent: 0.0,
            message: format!("started by {}", daemon.name),
        },
    );
    let reporter = keeper.reporter();
    tracing::info!(worker = %daemon.name, "started");
    let result = runner::run(tools, lease, &job, &reporter, &stop).await;
    drop(reporter);
    keeper.finish().await;
    if let Ok(mut running) = daemon.running.lock() {
        running.remove(&job.id);
    }
    let outcome = match result {
        Ok(()) => match tools.repo.finish(lease, None).await {
            Ok(_) => {
                tracing::info!(version = lease.version, "done");
                runner::tidy_versions(tools, lease).await;
                Outcome::Done
            }
            Err(error) => {
                tracing::error!(%error, "not marked done");
                Outcome::Lost
            }
        },
        Err(PipelineError::Permanent(reason)) => {
            tracing::warn!(%reason, "failed");
            match tools.repo.finish(lease, Some(&reason)).await {
                Ok(_) => {
                    if let Err(error) = runner::notify_failure(tools, &job, &reason).await {
                        tracing::warn!(%error, "failure email not sent");
                    }
                    Outcome::Failed
                }
                Err(_) => Outcome::Lost,
            }
        }
        Err(PipelineError::Transient(error)) => {
            let reason = crate::pipeline::with_causes(error.as_ref());
            let delay = daemon.settings.retry_backoff(job.error_retries);
            tracing::warn!(%reason, retry_in_secs = delay.as_secs_f64(), "transient error; retrying");
            match tools.repo.retry_later(lease, &reason, delay, daemon.retry_budget).await {
                Ok(JobState::Failed | JobState::Done) => {
                    let reason = FailureReason::new(FailureCode::RetriesExhausted, reason);
                    if let Err(error) = runner::notify_failure(tools, &job, &reason).await {
                        tracing::warn!(%error, "failure email not sent");
                    }
                    Outcome::Failed
                }
                Ok(_) => Outcome::Retried,
                Err(_) => Outcome::Lost,
            }
        }
        Err(PipelineError::Stopped(StopReason::Shutdown)) => {
            match tools.repo.release(lease).await {
                Ok(()) => Outcome::HandedBack,
                Err(_) => Outcome::Lost,
            }
        }
        Err(PipelineError::Stopped(StopReason::LeaseLost)) => Outcome::Lost,
    };
    tools.metrics.job_ended(outcome);
}

/// Pushes what Postgres says should be on the queue, every few seconds, until shutdown.
async fn reconcile(daemon: Arc<Daemon>, mut stopping: watch::Receiver<bool>) {
    let every = Duration::from_secs(daemon.settings.reconcile_secs.max(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        if let Err(error) =
            push_due(&daemon.tools.repo, &daemon.queue, daemon.settings.service.push_policy(every))
                .await
        {
            tracing::warn!(%error, "reconciler pass failed");
        }
    }
}
