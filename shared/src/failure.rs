//! Why a job failed: a stable code that the worker writes and the pages, the CLI and API
//! clients read, and a detail for people. Stored in `jobs.failure_reason` as
//! `code: detail` (the form rows written before this type have), read back typed; a row
//! whose code is unknown to this version reads as [`FailureCode::Other`] with the whole
//! text as its detail, so nothing is lost.

use std::fmt;

use serde::{Deserialize, Serialize};
use sqlx::Postgres;

/// The kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// The file holds no bytes.
    Empty,
    /// Not a container or codec the decoder knows.
    NotMedia,
    /// A container without an audio track.
    NoAudioTrack,
    /// An audio codec the decoder cannot decode.
    UnsupportedCodec,
    /// The file ends before its data does.
    Truncated,
    /// Longer than the installation accepts.
    TooLong,
    /// Too many undecodable packets.
    Corrupt,
    /// The local copy could not be read.
    Io,
    /// The decoder itself failed (a panic it raised, contained).
    DecoderFailure,
    /// Decoded, but not usable (the resampler refused it).
    InvalidMedia,
    /// The upload is gone from the store.
    UploadMissing,
    /// Workers processing it kept vanishing (the crash budget is spent).
    WorkerLost,
    /// The model the job names is not offered or cannot be loaded.
    ModelUnavailable,
    /// The model does not know the language asked for.
    UnsupportedLanguage,
    /// The PDF could not be made.
    RenderFailed,
    /// Errors around the job (storage, network) outlasted the retry budget.
    RetriesExhausted,
    /// The summarizer the job chose failed and the operator turned the extractive
    /// fallback off (`MINUTES_SUMMARY_FALLBACK=false`).
    SummaryFailed,
    /// A person stopped the run.
    Cancelled,
    /// A bug: a stage crashed.
    InternalError,
    /// A code this version does not know (written by a newer one).
    Other,
}

impl FailureCode {
    /// Every code, for documentation and tests.
    pub const ALL: [Self; 20] = [
        Self::Empty,
        Self::NotMedia,
        Self::NoAudioTrack,
        Self::UnsupportedCodec,
        Self::Truncated,
        Self::TooLong,
        Self::Corrupt,
        Self::Io,
        Self::DecoderFailure,
        Self::InvalidMedia,
        Self::UploadMissing,
        Self::WorkerLost,
        Self::ModelUnavailable,
        Self::UnsupportedLanguage,
        Self::RenderFailed,
        Self::RetriesExhausted,
        Self::SummaryFailed,
        Self::Cancelled,
        Self::InternalError,
        Self::Other,
    ];

    /// The code as stored and served (`not_media`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::NotMedia => "not_media",
            Self::NoAudioTrack => "no_audio_track",
            Self::UnsupportedCodec => "unsupported_codec",
            Self::Truncated => "truncated",
            Self::TooLong => "too_long",
            Self::Corrupt => "corrupt",
            Self::Io => "io",
            Self::DecoderFailure => "decoder_failure",
            Self::InvalidMedia => "invalid_media",
            Self::UploadMissing => "upload_missing",
            Self::WorkerLost => "worker_lost",
            Self::ModelUnavailable => "model_unavailable",
            Self::UnsupportedLanguage => "unsupported_language",
            Self::RenderFailed => "render_failed",
            Self::RetriesExhausted => "retries_exhausted",
            Self::SummaryFailed => "summary_failed",
            Self::Cancelled => "cancelled",
            Self::InternalError => "internal_error",
            Self::Other => "other",
        }
    }

    /// The code named `text`, if this version knows it.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }

    /// Whether the recording itself is at fault (retrying cannot help; the person should
    /// look at the file).
    pub fn is_bad_input(self) -> bool {
        matches!(
            self,
            Self::Empty
                | Self::NotMedia
                | Self::NoAudioTrack
                | Self::UnsupportedCodec
                | Self::Truncated
                | Self::TooLong
                | Self::Corrupt
                | Self::DecoderFailure
                | Self::InvalidMedia
        )
    }

    /// One sentence a person understands.
    pub fn sentence(self) -> &'static str {
        match self {
            Self::Empty
            | Self::NotMedia
            | Self::NoAudioTrack
            | Self::UnsupportedCodec
            | Self::Corrupt
            | Self::InvalidMedia
            | Self::DecoderFailure => "This file could not be read as a recording.",
            Self::Truncated => "The recording is incomplete: the file was cut short.",
            Self::TooLong => "The recording is longer than this server accepts.",
            Self::UploadMissing => "The uploaded file is no longer stored.",
            Self::WorkerLost => "Processing stopped several times on this file.",
            Self::UnsupportedLanguage => "The speech model does not know this language.",
            Self::ModelUnavailable => "The speech model asked for is not available.",
            Self::RetriesExhausted => "The server kept failing around this job; retry it later.",
            Self::SummaryFailed => "The summarizer asked for failed, and falling back is off.",
            Self::Cancelled => "Processing was stopped by a person.",
            Self::Io | Self::RenderFailed | Self::InternalError | Self::Other => {
                "The minutes could not be made."
            }
        }
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailureReason {
    /// The kind.
    pub code: FailureCode,
    /// What happened, for people.
    pub detail: String,
}

impl FailureReason {
    /// A reason of `code`.
    pub fn new(code: FailureCode, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into() }
    }

    /// Reads the stored `code: detail` form; never fails (see the module's header).
    pub fn from_stored(text: &str) -> Self {
        match text.split_once(": ").map(|(code, detail)| (FailureCode::parse(code), detail)) {
            Some((Some(code), detail)) if code != FailureCode::Other => Self::new(code, detail),
            _ => match FailureCode::parse(text) {
                Some(code) => Self::new(code, ""),
                None => Self::new(FailureCode::Other, text),
            },
        }
    }

    /// The reason in plain words: the code's sentence, then the detail.
    pub fn plain(&self) -> String {
        let mut detail = self.detail.trim().trim_end_matches('.').to_string();
        if let Some(first) = detail.get(..1) {
            detail = first.to_uppercase() + &detail[1..];
        }
        match detail.is_empty() {
            true => self.code.sentence().to_string(),
            false => format!("{} {detail}.", self.code.sentence()),
        }
    }
}

/// The stored form, `code: detail`.
impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.detail.is_empty() {
            true => write!(f, "{}", self.code),
            false => write!(f, "{}: {}", self.code, self.detail),
        }
    }
}

impl sqlx::Type<Postgres> for FailureReason {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <String as sqlx::Type<Postgres>>::type_info()
    }

    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <String as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for FailureReason {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Self::from_stored(<&str as sqlx::Decode<Postgres>>::decode(value)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_form_reads_back_typed_and_unknown_codes_keep_their_text() {
        let reason = FailureReason::new(FailureCode::Truncated, "the file is truncated");
        assert_eq!(reason.to_string(), "truncated: the file is truncated");
        assert_eq!(FailureReason::from_stored(&reason.to_string()), reason);
        for code in FailureCode::ALL {
            assert_eq!(FailureCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        let old = FailureReason::from_stored("storage: timeout after 30 s");
        assert_eq!(old, FailureReason::new(FailureCode::Other, "storage: timeout after 30 s"));
        assert_eq!(FailureReason::from_stored("worker_lost").code, FailureCode::WorkerLost);
    }

    #[test]
    fn failure_reasons_read_as_sentences() {
        let reason = FailureReason::new(FailureCode::Truncated, "the file ends at 0:12.");
        assert_eq!(
            reason.plain(),
            "The recording is incomplete: the file was cut short. The file ends at 0:12."
        );
        assert_eq!(
            FailureReason::new(FailureCode::WorkerLost, "").plain(),
            "Processing stopped several times on this file."
        );
    }
}
