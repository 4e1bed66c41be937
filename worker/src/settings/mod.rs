//! Command-line settings shared by the `minutes` command line and the `minutes-worker`
//! daemon: how speech is recognised, who writes the minutes and how they are delivered. Each is a flag with a
//! `MINUTES_*` environment variable.

mod delivery;
mod diarization;
mod recognition;
mod summarizer;

pub use delivery::DeliveryArgs;
pub use diarization::{DiarizationArgs, Speakers};
pub use recognition::{RecognitionArgs, RecognitionError};
pub use summarizer::{FormatArg, Provider, SummarizerArgs};
