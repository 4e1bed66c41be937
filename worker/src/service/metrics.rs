//! The worker's own counters, served as Prometheus text on `/metrics`: jobs by outcome,
//! jobs in flight, and time spent per stage.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Counters of one worker process.
#[derive(Debug, Default)]
pub struct Metrics {
    started: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    handed_back: AtomicU64,
    lost: AtomicU64,
    emails_failed: AtomicU64,
    in_flight: AtomicU64,
    /// Stage -> (runs, seconds in all).
    stages: Mutex<BTreeMap<&'static str, (u64, f64)>>,
}

/// How an attempt at a job ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The minutes are done.
    Done,
    /// Failed for good.
    Failed,
    /// A transient error: queued again with a backoff.
    Retried,
    /// Handed back at shutdown.
    HandedBack,
    /// The lease was lost (cancelled or taken over).
    Lost,
}

impl Metrics {
    /// A job attempt began.
    pub fn job_started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A job attempt ended.
    pub fn job_ended(&self, outcome: Outcome) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let counter = match outcome {
            Outcome::Done => &self.done,
            Outcome::Failed => &self.failed,
            Outcome::Retried => &self.retried,
            Outcome::HandedBack => &self.handed_back,
            Outcome::Lost => &self.lost,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A stage finished after `took`.
    pub fn stage_done(&self, stage: &'static str, took: Duration) {
        if let Ok(mut stages) = self.stages.lock() {
            let entry = stages.entry(stage).or_insert((0, 0.0));
            entry.0 += 1;
            entry.1 += took.as_secs_f64();
        }
    }

    /// An email could not be delivered.
    pub fn email_failed(&self) {
        self.emails_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Jobs running now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP minutes_worker_jobs_total Job attempts by outcome.");
        let _ = writeln!(out, "# TYPE minutes_worker_jobs_total counter");
        for (outcome, counter) in [
            ("started", &self.started),
            ("done", &self.done),
            ("failed", &self.failed),
            ("retried", &self.retried),
            ("handed_back", &self.handed_back),
            ("lost", &self.lost),
        ] {
            let _ = writeln!(
                out,
                "minutes_worker_jobs_total{{outcome=\"{outcome}\"}} {}",
                get(counter)
            );
        }
        let _ = writeln!(out, "# HELP minutes_worker_jobs_in_flight Jobs running in this worker.");
        let _ = writeln!(out, "# TYPE minutes_worker_jobs_in_flight gauge");
        let _ = writeln!(out, "minutes_worker_jobs_in_flight {}", get(&self.in_flight));
        let _ = writeln!(out, "# HELP minutes_worker_emails_failed_total Emails not delivered.");
        let _ = writeln!(out, "# TYPE minutes_worker_emails_failed_total counter");
        let _ = writeln!(out, "minutes_worker_emails_failed_total {}", get(&self.emails_failed));
        let _ = writeln!(out, "# HELP minutes_worker_stage_seconds Time spent per stage.");
        let _ = writeln!(out, "# TYPE minutes_worker_stage_seconds summary");
        if let Ok(stages) = self.stages.lock() {
            for (stage, (count, sum)) in stages.iter() {
                let _ =
                    writeln!(out, "minutes_worker_stage_seconds_sum{{stage=\"{stage}\"}} {sum:.3}");
                let _ = writeln!(
                    out,
                    "minutes_worker_stage_seconds_count{{stage=\"{stage}\"}} {count}"
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_up_in_the_exposition() {
        let metrics = Metrics::default();
        metrics.job_started();
        metrics.stage_done("transcribe", Duration::from_millis(1500));
        metrics.job_ended(Outcome::Done);
        let text = metrics.render();
        assert!(text.contains("minutes_worker_jobs_total{outcome=\"done\"} 1"), "{text}");
        assert!(text.contains("minutes_worker_jobs_in_flight 0"), "{text}");
        assert!(
            text.contains("minutes_worker_stage_seconds_sum{stage=\"transcribe\"} 1.500"),
            "{text}"
        );
    }
}
