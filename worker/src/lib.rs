//! The `minutes` worker: pipeline stages and the command line that runs them.
//!
//! Code map:
//! - [`stages`]: decode, resample, transcribe: pure transforms, no I/O adapters.
//! - [`audio`]: decode and resample composed into "file to 16 kHz samples".
//! - [`panic_guard`]: contains panics of third-party decoders.
//! - `src/bin/minutes`: the `minutes` command line (argument parsing, progress, output).

pub mod audio;
pub mod panic_guard;
pub mod stages;
