//! Flags that choose and configure the summarizer, and what they build.

use std::time::Duration;

use crate::stages::summarize::openai::client::ResponseFormat;
use crate::stages::summarize::openai::{OpenAi, OpenAiSettings};
use crate::stages::summarize::{Extractive, SummarizeError, Summarizer};

/// Which provider writes the minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    /// Offline sentence ranking and phrase rules: deterministic, no network.
    Extractive,
    /// Any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM, llama.cpp).
    Openai,
}

/// How the JSON answer is requested from the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// `response_format: json_schema` (OpenAI, llama.cpp, vLLM, Ollama).
    JsonSchema,
    /// `response_format: json_object`, for servers without schema support.
    JsonObject,
}

/// Summarizer flags; every one can also come from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct SummarizerArgs {
    /// Who writes the minutes; `openai` falls back to `extractive` when the endpoint fails,
    /// and the minutes say so.
    #[arg(long, env = "MINUTES_SUMMARIZER", default_value = "extractive")]
    pub summarizer: Provider,
    /// Base URL of the OpenAI-compatible API (for `--summarizer openai`).
    #[arg(long, env = "MINUTES_LLM_URL", default_value = "http://127.0.0.1:8080/v1")]
    pub llm_url: String,
    /// Model name as the endpoint knows it.
    #[arg(long, env = "MINUTES_LLM_MODEL", default_value = "default")]
    pub llm_model: String,
    /// API key (prefer the environment variable: flags show up in process lists).
    #[arg(long, env = "MINUTES_LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<String>,
    /// The model's context window in tokens; longer transcripts are summarized in parts.
    #[arg(long, env = "MINUTES_LLM_CONTEXT_TOKENS", default_value_t = 8192)]
    pub llm_context_tokens: usize,
    /// Longest answer per request, in tokens; also sets how many items each list may hold.
    #[arg(long, env = "MINUTES_LLM_MAX_OUTPUT_TOKENS", default_value_t = 3072)]
    pub llm_max_output_tokens: usize,
    /// Time limit of one request, in seconds.
    #[arg(long, env = "MINUTES_LLM_TIMEOUT_SECS", default_value_t = 300)]
    pub llm_timeout_secs: u64,
    /// Tries per request (429, 5xx, timeouts and refused connections are retried).
    #[arg(long, env = "MINUTES_LLM_ATTEMPTS", default_value_t = 4)]
    pub llm_attempts: u32,
    /// Wait before the first retry, in milliseconds; doubles each time.
    #[arg(long, env = "MINUTES_LLM_BACKOFF_MS", default_value_t = 2000)]
    pub llm_backoff_ms: u64,
    /// Requests in flight at once.
    #[arg(long, env = "MINUTES_LLM_CONCURRENCY", default_value_t = 2)]
    pub llm_concurrency: usize,
    /// How the JSON answer is requested.
    #[arg(long, env = "MINUTES_LLM_RESPONSE_FORMAT", default_value = "json-schema")]
    pub llm_response_format: FormatArg,
    /// When the chosen summarizer fails, write the extractive minutes instead (true) or
    /// fail with `summary_failed` (false; in the service a failed reprocess keeps the
    /// earlier minutes).
    #[arg(long, env = "MINUTES_SUMMARY_FALLBACK", default_value_t = true, action = clap::ArgAction::Set)]
    pub summary_fallback: bool,
}

impl SummarizerArgs {
    /// The configured provider; settings that cannot work are an error before any work.
    pub fn build(&self) -> Result<Box<dyn Summarizer>, SummarizeError> {
        Ok(match self.summarizer {
            Provider::Extractive => Box::new(Extractive),
            Provider::Openai => Box::new(OpenAi::new(OpenAiSettings {
                base_url: self.llm_url.clone(),
                model: self.llm_model.clone(),
                api_key: self.llm_api_key.clone().filter(|k| !k.is_empty()),
                context_tokens: self.llm_context_tokens,
                max_output_tokens: self.llm_max_output_tokens,
                timeout: Duration::from_secs(self.llm_timeout_secs.max(1)),
                attempts: self.llm_attempts,
                backoff: Duration::from_millis(self.llm_backoff_ms),
                concurrency: self.llm_concurrency,
                response_format: match self.llm_response_format {
                    FormatArg::JsonSchema => ResponseFormat::JsonSchema,
                    FormatArg::JsonObject => ResponseFormat::JsonObject,
                },
            })?),
        })
    }
}
