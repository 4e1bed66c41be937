//! Decoding in a supervised child process: a file that makes the decoder loop, abort or
//! eat memory costs that process, never the worker and its other jobs.
//!
//! Both binaries re-execute themselves in the decoder role ([`serve_child_if_asked`] is
//! the first thing their `main` does); [`SupervisedDecoder::load`] starts one such process
//! per recording and collects its samples over a pipe. The decoder fences itself in (dies
//! with its parent, bounded memory and CPU time, no files); the supervisor kills it when it
//! makes no progress for the watchdog period or when the job is stopped (cancelled, its
//! lease lost, the worker shutting down).

mod child;
mod protocol;
mod supervisor;

pub use child::serve_if_asked as serve_child_if_asked;
pub use supervisor::{DecoderCommand, DecoderLimits, SupervisedDecoder, SupervisedError};
