//! The `minutes-worker` daemon: any number of these, on any number of machines, share the
//! jobs of one installation through Redis and Postgres.
//!
//! - [`settings`]: every flag and `MINUTES_*` variable of a worker.
//! - [`daemon`]: queue consumer, claims, outcome handling, reconciler, shutdown.
//! - [`runner`]: one leased job through the stages, resuming at the first missing artifact.
//! - [`lease_keeper`]: heartbeats, progress writes and the stop flag of a running job.
//! - [`models`]: the configured Whisper model and any other a job asks for.
//! - [`metrics`] and [`http`]: `/healthz` and `/metrics`.

pub mod daemon;
pub mod http;
pub mod lease_keeper;
pub mod metrics;
pub mod models;
pub mod runner;
pub mod settings;
