//! How a running pipeline talks to whoever runs it: progress out (the job's events in the
//! daemon, the terminal bar in `minutes process`), stage timings out, and a stop flag in.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use minutes_shared::stage::Stage;

/// Why a run was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The lease is gone: cancelled by a person, or taken over by another worker.
    LeaseLost,
    /// This process is shutting down (the daemon's grace ran out, or Ctrl-C): hand back.
    Shutdown,
}

/// A run's stop flag, shared by the stages (which poll it) and whoever stops them.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicU8>);

impl StopFlag {
    /// Asks the run to stop; the first reason given wins.
    pub fn raise(&self, reason: StopReason) {
        let code = match reason {
            StopReason::LeaseLost => 1,
            StopReason::Shutdown => 2,
        };
        let _ = self.0.compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Why the run should stop, if it should.
    pub fn reason(&self) -> Option<StopReason> {
        match self.0.load(Ordering::SeqCst) {
            1 => Some(StopReason::LeaseLost),
            2 => Some(StopReason::Shutdown),
            _ => None,
        }
    }
}

type ProgressSink = Arc<dyn Fn(Stage, f32, String) + Send + Sync>;
type TimingSink = Arc<dyn Fn(Stage, Duration) + Send + Sync>;

/// The run's side of the conversation; cheap to clone into the blocking threads.
#[derive(Clone)]
pub struct Control {
    progress: ProgressSink,
    timing: TimingSink,
    stop: StopFlag,
}

impl Control {
    /// `progress` gets (stage, percent of the whole run, a line for people) and must never
    /// block; `timing` gets each stage that ran and how long it took.
    pub fn new(
        progress: impl Fn(Stage, f32, String) + Send + Sync + 'static,
        timing: impl Fn(Stage, Duration) + Send + Sync + 'static,
        stop: StopFlag,
    ) -> Self {
        Self { progress: Arc::new(progress), timing: Arc::new(timing), stop }
    }

    /// Reports where the run is.
    pub fn report(&self, stage: Stage, percent: f32, message: impl Into<String>) {
        (self.progress)(stage, percent, message.into());
    }

    /// Records that `stage` ran for `took`.
    pub fn finished(&self, stage: Stage, took: Duration) {
        tracing::info!(stage = stage.as_str(), seconds = took.as_secs_f64(), "stage finished");
        (self.timing)(stage, took);
    }

    /// Why the run should stop, if it should.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop.reason()
    }
}
