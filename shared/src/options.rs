//! The options a job carries from the API (or the CLI) to the workers: one typed contract,
//! checked once where it enters ([`JobOptions::check`]), stored as JSON in the job's row,
//! read back by the workers as the same type. An unknown field is an error, never ignored.

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::Postgres;

use crate::models::ModelList;

/// Longest vocabulary hint accepted, in characters (it becomes part of a prompt of at most
/// 223 tokens).
pub const MAX_VOCABULARY_CHARS: usize = 500;

/// Who writes a job's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SummarizerKind {
    /// The offline, rule-based summarizer.
    Extractive,
    /// The OpenAI-compatible language model the operator configured.
    Openai,
}

impl SummarizerKind {
    /// `extractive` or `openai`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Extractive => "extractive",
            Self::Openai => "openai",
        }
    }
}

impl std::str::FromStr for SummarizerKind {
    type Err = OptionsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "extractive" => Ok(Self::Extractive),
            "openai" => Ok(Self::Openai),
            other => Err(OptionsError::Summarizer(other.chars().take(40).collect())),
        }
    }
}

/// The summarizers a job may choose (`MINUTES_SUMMARIZERS`: `extractive`, `openai`, or
/// both, comma-separated; empty: none). A job that chooses none gets the workers' default,
/// whatever this list says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummarizerList(Vec<SummarizerKind>);

impl SummarizerList {
    /// Whether a job may choose `kind`.
    pub fn offers(&self, kind: SummarizerKind) -> bool {
        self.0.contains(&kind)
    }

    /// The names, comma-separated (`none` when empty), for messages.
    pub fn names(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        self.0.iter().map(|kind| kind.as_str()).collect::<Vec<_>>().join(", ")
    }
}

impl Default for SummarizerList {
    /// Only the offline summarizer: sending a meeting to a language model is the operator's
    /// choice to offer.
    fn default() -> Self {
        SummarizerList(vec![SummarizerKind::Extractive])
    }
}

impl std::str::FromStr for SummarizerList {
    type Err = OptionsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut kinds = Vec::new();
        for name in text.split(',').map(str::trim).filter(|name| !name.is_empty()) {
            let kind = name.parse()?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(SummarizerList(kinds))
    }
}

/// How one job is processed, beyond its title and language.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JobOptions {
    /// A Whisper model the installation offers (`MINUTES_MODELS`), by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Who writes the summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summarizer: Option<SummarizerKind>,
    /// Names and jargon to expect ("Kubernetes, Sarah Chen").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocabulary: Option<String>,
    /// `false`: send no minutes email (a reprocess that did not ask for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<bool>,
    /// Who speaks when: found (`auto`, the worker's default when omitted), a fixed
    /// number, or not at all (`off`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = r"^(auto|off|[1-9]|1[0-9]|20)$"))]
    pub speakers: Option<Speakers>,
}

/// How many speakers a recording has: found, given, or not looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Speakers {
    /// As many as the recording has.
    Auto,
    /// Exactly this many (1 to 20).
    Exactly(u8),
    /// No diarization: the transcript has no speakers.
    Off,
}

/// A speakers value that is not `auto`, `off` or a number from 1 to 20.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("speakers: expected auto, off or a number from 1 to 20, not {0:?}")]
pub struct BadSpeakers(String);

impl std::str::FromStr for Speakers {
    type Err = BadSpeakers;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "off" | "none" | "0" => Ok(Self::Off),
            n => match n.parse::<u8>() {
                Ok(n @ 1..=20) => Ok(Self::Exactly(n)),
                _ => Err(BadSpeakers(value.chars().take(40).collect())),
            },
        }
    }
}

impl TryFrom<String> for Speakers {
    type Error = BadSpeakers;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Speakers> for String {
    fn from(value: Speakers) -> Self {
        value.to_string()
    }
}

impl std::fmt::Display for Speakers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.pad("auto"),
            Self::Off => f.pad("off"),
            Self::Exactly(n) => f.pad(&n.to_string()),
        }
    }
}

/// Why options cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// The model is not offered here.
    #[error("model {0:?} is not offered here (offered: {1})")]
    Model(String, String),
    /// Not a summarizer.
    #[error("summarizer {0:?}: expected extractive or openai")]
    Summarizer(String),
    /// A summarizer this installation does not let jobs choose.
    #[error("summarizer {0} is not offered here (offered: {1})")]
    SummarizerNotOffered(&'static str, String),
    /// The vocabulary hint is too long or has control characters.
    #[error("vocabulary: {0}")]
    Vocabulary(String),
    /// Not a language code.
    #[error("language: an ISO 639-1 code such as en or de")]
    Language,
}

impl JobOptions {
    /// Checks the options against the models and summarizers this installation offers, and
    /// tidies the hint.
    pub fn check(
        mut self,
        offered: &ModelList,
        summarizers: &SummarizerList,
    ) -> Result<Self, OptionsError> {
        if let Some(model) = &self.model {
            if offered.get(model).is_none() {
                return Err(OptionsError::Model(model.chars().take(80).collect(), offered.names()));
            }
        }
        if let Some(kind) = self.summarizer {
            if !summarizers.offers(kind) {
                return Err(OptionsError::SummarizerNotOffered(kind.as_str(), summarizers.names()));
            }
        }
        self.vocabulary = self.vocabulary.as_deref().map(check_vocabulary).transpose()?.flatten();
        Ok(self)
    }

    /// These options with every option `patch` sets replacing this one's.
    pub fn merged(&self, patch: &JobOptions) -> JobOptions {
        JobOptions {
            model: patch.model.clone().or_else(|| self.model.clone()),
            summarizer: patch.summarizer.or(self.summarizer),
            vocabulary: patch.vocabulary.clone().or_else(|| self.vocabulary.clone()),
            notify: patch.notify.or(self.notify),
            speakers: patch.speakers.or(self.speakers),
        }
    }
}

/// An ISO 639-1 (or 639-3) code in lower case.
pub fn check_language(code: &str) -> Result<String, OptionsError> {
    let code = code.trim().to_ascii_lowercase();
    if (2..=3).contains(&code.len()) && code.chars().all(|c| c.is_ascii_lowercase()) {
        Ok(code)
    } else {
        Err(OptionsError::Language)
    }
}

/// A vocabulary hint with white space folded (`None` when empty); refused when it is longer
/// than [`MAX_VOCABULARY_CHARS`] or holds control characters.
pub fn check_vocabulary(text: &str) -> Result<Option<String>, OptionsError> {
    if text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return Err(OptionsError::Vocabulary("control characters are not allowed".into()));
    }
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() > MAX_VOCABULARY_CHARS {
        return Err(OptionsError::Vocabulary(format!("at most {MAX_VOCABULARY_CHARS} characters")));
    }
    Ok((!folded.is_empty()).then_some(folded))
}

// Stored as jsonb: decoded through serde, so a row with an unknown option fails loudly.
impl sqlx::Type<Postgres> for JobOptions {
    fn type_info() -> PgTypeInfo {
        <sqlx::types::Json<Self> as sqlx::Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <sqlx::types::Json<Self> as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for JobOptions {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(<sqlx::types::Json<Self> as sqlx::Decode<Postgres>>::decode(value)?.0)
    }
}

impl sqlx::Encode<'_, Postgres> for JobOptions {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <sqlx::types::Json<&Self> as sqlx::Encode<Postgres>>::encode(sqlx::types::Json(self), buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_option_is_an_error_not_ignored() {
        let error = serde_json::from_str::<JobOptions>(r#"{"modle": "base"}"#).unwrap_err();
        assert!(error.to_string().contains("unknown field `modle`"), "{error}");
        let options: JobOptions =
            serde_json::from_str(r#"{"model": "base", "summarizer": "openai"}"#).expect("options");
        assert_eq!(options.summarizer, Some(SummarizerKind::Openai));
        assert!(serde_json::from_str::<JobOptions>(r#"{"summarizer": "gpt"}"#).is_err());
    }

    #[test]
    fn speaker_counts_read_and_write_as_text_and_bad_ones_are_named() {
        let options: JobOptions = serde_json::from_str(r#"{"speakers": "3"}"#).expect("options");
        assert_eq!(options.speakers, Some(Speakers::Exactly(3)));
        assert_eq!(serde_json::to_string(&options).ok().as_deref(), Some(r#"{"speakers":"3"}"#));
        assert_eq!("OFF".parse::<Speakers>(), Ok(Speakers::Off));
        assert_eq!("auto".parse::<Speakers>(), Ok(Speakers::Auto));
        for bad in ["21", "many", "-1", ""] {
            let error = bad.parse::<Speakers>().expect_err(bad).to_string();
            assert!(error.contains("from 1 to 20"), "{error}");
        }
        assert!(serde_json::from_str::<JobOptions>(r#"{"speakers": "lots"}"#).is_err());
    }

    #[test]
    fn models_must_be_offered_and_hints_are_tidied() {
        let offered: ModelList = "tiny.en,base".parse().expect("list");
        let with = |model: &str| JobOptions { model: Some(model.into()), ..JobOptions::default() };
        let summarizers = SummarizerList::default();
        assert!(with("base").check(&offered, &summarizers).is_ok());
        for bad in ["/etc", "small", "../models/base", "/m/../m"] {
            let checked = with(bad).check(&offered, &summarizers);
            assert!(matches!(checked, Err(OptionsError::Model(..))), "{bad}");
        }
        let hinted = JobOptions {
            vocabulary: Some("  Kubernetes,\n Sarah  Chen ".into()),
            ..Default::default()
        };
        assert_eq!(
            hinted.check(&offered, &summarizers).expect("ok").vocabulary.as_deref(),
            Some("Kubernetes, Sarah Chen")
        );
        assert!(check_vocabulary(&"x".repeat(501)).is_err());
        assert!(check_vocabulary("a\u{0}b").is_err());
        assert_eq!(check_vocabulary("   ").expect("ok"), None);
    }

    /// The hole: a member could choose the LLM summarizer though the operator offered only
    /// the offline one, sending the meeting to a language model the operator did not mean
    /// jobs to use.
    #[test]
    fn a_summarizer_not_offered_is_refused() {
        let models: ModelList = "tiny.en".parse().expect("list");
        let openai = JobOptions { summarizer: Some(SummarizerKind::Openai), ..Default::default() };
        let refused = openai.clone().check(&models, &SummarizerList::default());
        assert_eq!(
            refused.map_err(|e| e.to_string()),
            Err("summarizer openai is not offered here (offered: extractive)".to_string())
        );
        let both: SummarizerList = "extractive, openai".parse().expect("list");
        assert!(openai.clone().check(&models, &both).is_ok());
        let none: SummarizerList = "".parse().expect("list");
        assert_eq!(none.names(), "none");
        assert!("extractive,gpt".parse::<SummarizerList>().is_err());
    }
}
