//! The JSON shapes the API serves and the command line reads: one definition for both, and
//! the OpenAPI document's schemas made from the same types (feature `openapi`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::failure::FailureReason;
use crate::jobs::{JobState, VersionOutcome};
use crate::options::{JobOptions, SummarizerKind};
use crate::stage::JobStage;

/// A job as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobView {
    /// Server-generated id.
    pub id: Uuid,
    /// queued, running, done, failed or cancelled.
    pub state: JobState,
    /// upload, decode, transcribe, summarize, render or notify.
    pub stage: JobStage,
    /// Of the whole job, 0 to 100.
    pub percent: f32,
    /// What it is doing, for people.
    pub message: String,
    /// Why it failed (a stable code, a colon, plain words): `failure` as one string.
    pub failure_reason: Option<String>,
    /// Why it failed, typed: the code to act on and the detail for people.
    pub failure: Option<FailureReason>,
    /// The version of its results that downloads serve (none until a first run succeeds).
    pub current_version: Option<i32>,
    /// Why the last reprocess ended without a result; the job stays done on
    /// `current_version`.
    pub reprocess_failure: Option<FailureReason>,
    /// Times a worker took it.
    pub attempts: i32,
    /// The uploaded file's name.
    pub filename: String,
    /// Media type.
    pub content_type: String,
    /// Size of the upload in bytes.
    pub size_bytes: i64,
    /// The recording's length in seconds, once decoded.
    pub duration_seconds: Option<f64>,
    /// Spoken language, given or detected.
    pub language: Option<String>,
    /// Meeting title.
    pub title: Option<String>,
    /// Where the notification goes.
    pub email: Option<String>,
    /// Upload time.
    pub created_at: DateTime<Utc>,
    /// When a worker first took it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a final state.
    pub finished_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Where to go next.
    pub links: Links,
}

/// A job's links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Links {
    /// This job.
    #[serde(rename = "self")]
    pub this: String,
    /// Its progress as Server-Sent Events.
    pub events: String,
    /// The versions of its results.
    pub versions: String,
    /// Downloads that exist now, by file name: signed links that work without
    /// credentials until they expire (15 minutes by default).
    pub files: BTreeMap<String, String>,
}

impl JobView {
    /// Whether it reached a state it leaves only when a person acts.
    pub fn is_final(&self) -> bool {
        self.state.is_final()
    }

    /// Whether its last run ended without a result: a failed or cancelled job, or a done
    /// one whose reprocess failed (its earlier version stands).
    pub fn run_failed(&self) -> bool {
        matches!(self.state, JobState::Failed | JobState::Cancelled)
            || self.reprocess_failure.is_some()
    }
}

/// A page of jobs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobPage {
    /// The jobs of this page.
    pub jobs: Vec<JobView>,
    /// Cursor of the next page; absent on the last.
    pub next: Option<String>,
}

/// One version of a job's results as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionView {
    /// 1 for the first run, one more per reprocess that produced a result.
    pub number: i32,
    /// Whether downloads of the job serve this one.
    pub current: bool,
    /// building, ready, failed or cancelled.
    pub outcome: VersionOutcome,
    /// The first stage its run made anew (decode for the first run).
    pub from_stage: String,
    /// The options its run was asked with.
    pub options: JobOptions,
    /// Who asked for it (their sign-in name), when known.
    pub requested_by: Option<String>,
    /// Why its run ended without a result.
    pub failure: Option<FailureReason>,
    /// When its run was asked for.
    pub created_at: DateTime<Utc>,
    /// When its run ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its downloads, by file name: signed links like the job's.
    pub files: BTreeMap<String, String>,
}

/// A job's versions, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionList {
    /// The version downloads serve, once one exists.
    pub current_version: Option<i32>,
    /// Every kept version, newest first.
    pub versions: Vec<VersionView>,
}

/// The JSON body of every error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable code, e.g. `not_found`, `unsupported_media_type`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
}

/// Body of `POST /api/v1/jobs/{id}/reprocess`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReprocessBody {
    /// The first stage to run again: decode, transcribe, summarize, render or notify.
    pub from: String,
    /// Email the new version's minutes (default: no new email).
    #[serde(default)]
    pub notify: bool,
    /// A Whisper model this installation offers (`MINUTES_MODELS`), by name, for this job
    /// from now on.
    pub model: Option<String>,
    /// Spoken language (ISO 639-1).
    pub language: Option<String>,
    /// `extractive` or `openai`.
    pub summarizer: Option<SummarizerKind>,
    /// Names and jargon to expect, e.g. "Kubernetes, Sarah Chen".
    pub vocabulary: Option<String>,
    /// Who speaks when, from now on: `auto`, a number from 1 to 20, or `off` (a new count
    /// takes a reprocess from transcribe).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = r"^(auto|off|[1-9]|1[0-9]|20)$"))]
    pub speakers: Option<crate::options::Speakers>,
    /// A new meeting title.
    pub title: Option<String>,
}
