//! The `minutes` worker: pipeline stages and the command line that runs them.
//!
//! Code map:
//! - [`stages`]: decode, resample, transcribe, summarize, render, notify: transforms from
//!   input to output; only the `openai` summarizer talks to a network.
//! - [`audio`]: decode and resample composed into "file to 16 kHz samples".
//! - [`decoder_process`]: that decoding run in a supervised child process with limits.
//! - [`pipeline`]: the stages in order over an artifact store, resuming where a run
//!   stopped: the one pipeline of the daemon and `minutes process`.
//! - [`mail`]: the outbox that delivers notification emails (a folder, or SMTP).
//! - [`models`]: where models and runtimes are installed, and `minutes models install`.
//! - [`onnx`]: ONNX Runtime, loaded once for every ONNX model.
//! - [`panic_guard`]: contains panics of third-party decoders.
//! - [`settings`]: recognition and summarizer flags shared by both binaries.
//! - [`service`]: the `minutes-worker` daemon: queue consumer, leases, stage runner,
//!   health and metrics.
//! - `src/bin/minutes`: the `minutes` command line (argument parsing, progress, output).
//! - `src/bin/minutes-worker`: the daemon's entry point.

pub mod audio;
pub mod decoder_process;
pub mod mail;
pub mod models;
pub mod onnx;
pub mod panic_guard;
pub mod pipeline;
pub mod service;
pub mod settings;
pub mod stages;
