//! Why a recording could not be decoded: the error type of the decode stage, and how an
//! I/O error met while demuxing is told apart (the file's fault, or the local copy's).

use std::time::Duration;

use minutes_shared::failure::FailureCode;

/// Why a recording could not be decoded. Every variant is a property of the input, to be
/// shown to the person who uploaded it, except [`DecodeError::Io`] and
/// [`DecodeError::Internal`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file has no bytes.
    #[error("the file is empty")]
    Empty,
    /// No supported container format recognised the bytes.
    #[error("not a recognised audio or video file")]
    NotMedia,
    /// The container holds tracks, but none of them is audio.
    #[error("the file has no audio track")]
    NoAudioTrack,
    /// The audio track uses a codec this build cannot decode.
    #[error("unsupported audio codec: {0}")]
    UnsupportedCodec(String),
    /// The header promises more audio than the file holds.
    #[error("the file is truncated: it ends after {decoded:.1} s of the {declared:.1} s its header declares")]
    Truncated {
        /// Seconds that could be decoded.
        decoded: f64,
        /// Seconds the header declares.
        declared: f64,
    },
    /// The recording is longer than the configured maximum.
    #[error("the recording is longer than the maximum of {}", format_duration(max))]
    TooLong {
        /// The configured maximum.
        max: Duration,
    },
    /// Too many packets in a row failed to decode, or the header is impossible.
    #[error("the audio data is corrupt: {0}")]
    Corrupt(String),
    /// Reading the file failed.
    #[error("could not read the file: {0}")]
    Io(#[from] std::io::Error),
    /// The decoding library failed in a way it should not (a caught panic).
    #[error("the decoder failed on this file: {0}")]
    Internal(String),
}

impl DecodeError {
    /// The failure a job that meets this error ends with.
    pub fn failure_code(&self) -> FailureCode {
        match self {
            Self::Empty => FailureCode::Empty,
            Self::NotMedia => FailureCode::NotMedia,
            Self::NoAudioTrack => FailureCode::NoAudioTrack,
            Self::UnsupportedCodec(_) => FailureCode::UnsupportedCodec,
            Self::Truncated { .. } => FailureCode::Truncated,
            Self::TooLong { .. } => FailureCode::TooLong,
            Self::Corrupt(_) => FailureCode::Corrupt,
            Self::Io(_) => FailureCode::Io,
            Self::Internal(_) => FailureCode::DecoderFailure,
        }
    }

    /// A short stable name for the reason, for logs, metrics and API error codes: the
    /// name of its [`Self::failure_code`].
    pub fn code(&self) -> &'static str {
        self.failure_code().as_str()
    }
}

fn format_duration(duration: &Duration) -> String {
    let secs = duration.as_secs();
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// An I/O error met while demuxing. A seek or read that the file's own numbers made
/// impossible (an offset past any end: `InvalidInput`, `InvalidData`) is the file's fault;
/// anything else is reading the local copy failing, worth trying again.
pub(super) fn io_failure(error: std::io::Error) -> DecodeError {
    match error.kind() {
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
            DecodeError::Corrupt(format!("it points outside itself ({error})"))
        }
        _ => DecodeError::Io(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(format_duration(&Duration::from_secs(6 * 3600)), "6 h 0 min");
        assert_eq!(format_duration(&Duration::from_secs(90)), "1 min 30 s");
        assert_eq!(format_duration(&Duration::from_secs(5)), "5 s");
    }
}
