//! Types and pure helpers shared by the `minutes` API, workers and command line.
//!
//! This crate does no audio work and links no machine-learning runtime: the API depends on
//! it and must stay small. It owns the transcript model and its text renderings (plain
//! text, SRT, WebVTT, JSON), the minutes model, the word-error-rate measure used by tests
//! and benchmarks, and the service's adapters: the job repository ([`jobs`], Postgres), the
//! object store ([`storage`], a local folder or S3), the job queue ([`queue`], Redis through
//! apalis) and the settings that locate them ([`settings`]), with the models an installation
//! offers ([`models`]) and the options a job carries ([`options`]); and accounts: users and
//! password hashes ([`accounts`]), sessions, API tokens and server secrets
//! ([`credentials`]), and the sign-in throttle ([`throttle`]); and the JSON shapes the API
//! serves and the command line reads ([`api`]).

pub mod accounts;
pub mod api;
pub mod credentials;
pub mod failure;
pub mod jobs;
pub mod logging;
pub mod minutes;
pub mod models;
pub mod options;
pub mod queue;
pub mod readiness;
pub mod settings;
pub mod shutdown;
pub mod stage;
pub mod storage;
pub mod subtitles;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttle;
pub mod tls;
pub mod transcript;
pub mod wer;

pub use minutes::{ActionItem, Minutes, Participant, Point, SummarizerInfo};
pub use transcript::{Segment, Speaker, SpeakerTurn, Transcript, Word};
