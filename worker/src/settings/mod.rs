//! Command-line settings shared by the `minutes` command line and the `minutes-worker`
//! daemon: how speech is recognised and who writes the minutes. Each is a flag with a
//! `MINUTES_*` environment variable.

mod recognition;
mod summarizer;

pub use recognition::{RecognitionArgs, RecognitionError};
pub use summarizer::{FormatArg, Provider, SummarizerArgs};
