//! Keeps a job's lease alive and its progress written while the stages run.
//!
//! The stages run on blocking threads and report progress into an unbounded channel, which
//! never blocks them; one task per job writes it to Postgres (at most a few times a
//! second, keeping the last report of each stage so that every stage shows up in the event
//! log however fast it was; each write fenced by the lease and followed by a `NOTIFY`) and
//! extends the lease every heartbeat. When a fenced write finds the lease gone (the job was
//! cancelled, or another worker took it after this one stalled) the keeper raises the
//! job's stop flag, so the stages stop at their next chunk.

use std::time::Duration;

use minutes_shared::jobs::{JobRepo, Lease, RepoError};
use minutes_shared::stage::Stage;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use crate::pipeline::{StopFlag, StopReason};

/// Where a job is: its stage, percent (0 to 100) and a line for people.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The stage it is at.
    pub stage: Stage,
    /// Of the whole job.
    pub percent: f32,
    /// What it is doing.
    pub message: String,
}

/// The sending side, handed to the stages.
#[derive(Debug, Clone)]
pub struct Reporter {
    sender: mpsc::UnboundedSender<Progress>,
}

impl Reporter {
    /// Reports progress; never blocks.
    pub fn report(&self, stage: Stage, percent: f32, message: impl Into<String>) {
        let _ = self.sender.send(Progress { stage, percent, message: message.into() });
    }
}

/// The running keeper of one job.
#[derive(Debug)]
pub struct LeaseKeeper {
    handle: JoinHandle<()>,
    reporter: Reporter,
}

/// Fewest time between two progress writes.
const WRITE_INTERVAL: Duration = Duration::from_millis(250);

impl LeaseKeeper {
    /// Writes `first` (on its own: it names who started the run), then keeps `lease` (of
    /// `lease_length`) alive every `heartbeat`.
    pub fn start(
        repo: JobRepo,
        lease: Lease,
        heartbeat: Duration,
        lease_length: Duration,
        stop: StopFlag,
        first: Progress,
    ) -> Self {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let handle = tokio::spawn(async move {
            // Bug fixed: `first` ("started by WORKER") went through the channel and was
            // folded into the decode stage's next report when both were pending, so the
            // event log could miss who started the run. It is written on its own first.
            if check(write(&repo, lease, vec![first]).await, &stop).is_err() {
                return;
            }
            let mut beat = tokio::time::interval(heartbeat);
            beat.tick().await;
            loop {
                let outcome = tokio::select! {
                    next = receiver.recv() => {
                        let Some(next) = next else {
                            // Every reporter is gone: the job ended.
                            return;
                        };
                        let mut pending = vec![next];
                        while let Ok(more) = receiver.try_recv() {
                            pending.push(more);
                        }
                        let written = write(&repo, lease, last_of_each_stage(pending)).await;
                        if written.is_ok() {
                            tokio::time::sleep(WRITE_INTERVAL).await;
                        }
                        written
                    }
                    _ = beat.tick() => repo.heartbeat(lease, lease_length).await,
                };
                if check(outcome, &stop).is_err() {
                    return;
                }
            }
        });
        LeaseKeeper { handle, reporter: Reporter { sender } }
    }

    /// A handle for the stages.
    pub fn reporter(&self) -> Reporter {
        self.reporter.clone()
    }

    /// Writes the progress still pending and stops.
    pub async fn finish(self) {
        let LeaseKeeper { handle, reporter } = self;
        drop(reporter);
        let _ = handle.await;
    }
}

/// Of consecutive reports of one stage only the last matters.
fn last_of_each_stage(reports: Vec<Progress>) -> Vec<Progress> {
    let mut kept: Vec<Progress> = Vec::with_capacity(reports.len());
    for report in reports {
        match kept.last_mut() {
            Some(last) if last.stage == report.stage => *last = report,
            _ => kept.push(report),
        }
    }
    kept
}

async fn write(repo: &JobRepo, lease: Lease, reports: Vec<Progress>) -> Result<(), RepoError> {
    for report in reports {
        repo.progress(lease, report.stage, report.percent, &report.message).await?;
    }
    Ok(())
}

/// A lost lease raises the stop flag and ends the keeper; a database error is only logged
/// (the next beat tries again, and the lease outlives a few missed beats).
fn check(outcome: Result<(), RepoError>, stop: &StopFlag) -> Result<(), ()> {
    match outcome {
        Ok(()) => Ok(()),
        Err(RepoError::LeaseLost(job)) => {
            tracing::warn!(job_id = %job, "the lease was lost; stopping it");
            stop.raise(StopReason::LeaseLost);
            Err(())
        }
        Err(error) => {
            tracing::warn!(%error, "progress or heartbeat not written");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(stage: Stage, percent: f32) -> Progress {
        Progress { stage, percent, message: String::new() }
    }

    #[test]
    fn fast_stages_keep_their_last_report_each() {
        let kept = last_of_each_stage(vec![
            report(Stage::Transcribe, 50.0),
            report(Stage::Transcribe, 85.0),
            report(Stage::Summarize, 86.0),
            report(Stage::Render, 93.0),
            report(Stage::Notify, 97.0),
        ]);
        let stages: Vec<_> = kept.iter().map(|p| (p.stage, p.percent)).collect();
        assert_eq!(
            stages,
            [
                (Stage::Transcribe, 85.0),
                (Stage::Summarize, 86.0),
                (Stage::Render, 93.0),
                (Stage::Notify, 97.0)
            ]
        );
    }
}
