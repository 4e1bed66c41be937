//! The stages of a job, in order, and the artifacts each one stores: what a worker resumes
//! from and what reprocessing `--from` a stage throws away; and [`JobStage`], where a job
//! is (the upload, then one of the stages), as stored and served.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A stage that can be re-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Audio decoding (stored together with the transcript it feeds).
    Decode,
    /// Speech recognition.
    Transcribe,
    /// The minutes' content.
    Summarize,
    /// The PDF.
    Render,
    /// The email.
    Notify,
}

/// The transcript in every format; `transcript.json` is written last and marks the step
/// complete.
pub const TRANSCRIPT_ARTIFACTS: [&str; 4] =
    ["transcript.txt", "transcript.srt", "transcript.vtt", "transcript.json"];
/// The minutes model.
pub const MINUTES_JSON: &str = "minutes.json";
/// The rendered minutes.
pub const MINUTES_PDF: &str = "minutes.pdf";

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 5] =
        [Stage::Decode, Stage::Transcribe, Stage::Summarize, Stage::Render, Stage::Notify];

    /// The stage's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Transcribe => "transcribe",
            Stage::Summarize => "summarize",
            Stage::Render => "render",
            Stage::Notify => "notify",
        }
    }

    /// The artifacts made by this stage and every later one: what re-running from here
    /// replaces. (Decoding and transcription store one artifact set together.)
    pub fn artifacts_from(self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self <= Stage::Transcribe {
            names.extend(TRANSCRIPT_ARTIFACTS);
        }
        if self <= Stage::Summarize {
            names.push(MINUTES_JSON);
        }
        if self <= Stage::Render {
            names.push(MINUTES_PDF);
        }
        names
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so widths in format strings (tables) apply.
        f.pad(self.as_str())
    }
}

/// A name that is not a stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stage {0:?} (expected decode, transcribe, summarize, render or notify)")]
pub struct UnknownStage(pub String);

impl FromStr for Stage {
    type Err = UnknownStage;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Stage::ALL.into_iter().find(|s| s.as_str() == text).ok_or_else(|| UnknownStage(text.into()))
    }
}

/// Where a job is: its upload, then the stage running or last run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum JobStage {
    /// Uploaded, not yet taken by a worker.
    Upload,
    /// Audio decoding.
    Decode,
    /// Speech recognition.
    Transcribe,
    /// The minutes' content.
    Summarize,
    /// The PDF.
    Render,
    /// The email.
    Notify,
}

impl JobStage {
    /// Every value, in order.
    pub const ALL: [JobStage; 6] = [
        JobStage::Upload,
        JobStage::Decode,
        JobStage::Transcribe,
        JobStage::Summarize,
        JobStage::Render,
        JobStage::Notify,
    ];

    /// The name stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStage::Upload => "upload",
            JobStage::Decode => "decode",
            JobStage::Transcribe => "transcribe",
            JobStage::Summarize => "summarize",
            JobStage::Render => "render",
            JobStage::Notify => "notify",
        }
    }
}

impl From<Stage> for JobStage {
    fn from(stage: Stage) -> Self {
        match stage {
            Stage::Decode => JobStage::Decode,
            Stage::Transcribe => JobStage::Transcribe,
            Stage::Summarize => JobStage::Summarize,
            Stage::Render => JobStage::Render,
            Stage::Notify => JobStage::Notify,
        }
    }
}

impl fmt::Display for JobStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so widths in format strings (tables) apply.
        f.pad(self.as_str())
    }
}

impl FromStr for JobStage {
    type Err = UnknownStage;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        JobStage::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| UnknownStage(text.into()))
    }
}

// Stored as text, so the enum decodes from and encodes to text; a row with another value
// is an error, never a guess.
impl sqlx::Type<sqlx::Postgres> for JobStage {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <&str as sqlx::Type<sqlx::Postgres>>::type_info()
    }

    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for JobStage {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        Ok(text.parse()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerunning_a_stage_replaces_its_artifacts_and_the_later_ones() {
        assert_eq!(Stage::Summarize.artifacts_from(), [MINUTES_JSON, MINUTES_PDF]);
        assert_eq!(Stage::Render.artifacts_from(), [MINUTES_PDF]);
        assert!(Stage::Notify.artifacts_from().is_empty());
        assert_eq!(Stage::Decode.artifacts_from(), Stage::Transcribe.artifacts_from());
        assert_eq!(Stage::Transcribe.artifacts_from().len(), 6);
        assert_eq!("render".parse(), Ok(Stage::Render));
        assert!("upload".parse::<Stage>().is_err());
        assert_eq!("upload".parse(), Ok(JobStage::Upload));
        assert_eq!(JobStage::from(Stage::Render).as_str(), "render");
        assert!("reprocess".parse::<JobStage>().is_err());
        // Bug fixed: the CLI's job table pads these; Display ignored widths.
        assert_eq!(format!("{:<11}|", JobStage::Render), "render     |");
        assert_eq!(format!("{:<6}|", crate::jobs::JobState::Done), "done  |");
    }
}
