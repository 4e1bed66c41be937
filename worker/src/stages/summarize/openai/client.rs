//! One chat-completions request, with timeouts and retries.
//!
//! 429 and 5xx answers, timeouts and refused connections are retried with exponential
//! backoff (honouring `Retry-After`, capped); other 4xx answers are final at once, except
//! that a prompt larger than the context is reported as such so the caller can split it.

use std::time::Duration;

use serde_json::{json, Value};

use super::super::SummarizeError;
use super::OpenAiSettings;

/// Longest wait a `Retry-After` header may impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// An OpenAI-compatible endpoint.
#[derive(Debug, Clone)]
pub struct ChatClient {
    http: reqwest::Client,
    url: String,
    settings: OpenAiSettings,
}

/// What went wrong with one attempt, and whether another may help.
enum Attempt {
    Retry(SummarizeError, Option<Duration>),
    Fail(SummarizeError),
}

impl ChatClient {
    /// A client for `settings.base_url` (`.../v1`).
    pub fn new(settings: &OpenAiSettings) -> Result<Self, SummarizeError> {
        minutes_shared::tls::use_ring();
        let base = settings.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SummarizeError::Settings(format!(
                "the LLM URL {:?} must start with http:// or https:// (e.g. http://127.0.0.1:8080/v1)",
                settings.base_url
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(settings.timeout))
            .timeout(settings.timeout)
            .build()
            .map_err(|e| SummarizeError::Settings(format!("HTTP client: {e}")))?;
        Ok(ChatClient { http, url: format!("{base}/chat/completions"), settings: settings.clone() })
    }

    /// Sends `system` and `user` and returns the assistant's message, asking for JSON
    /// matching `schema`.
    pub async fn complete(
        &self,
        system: &str,
        user: &str,
        schema: &Value,
    ) -> Result<String, SummarizeError> {
        let mut body = json!({
            "model": self.settings.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user}
            ],
            "temperature": 0.2,
            "max_tokens": self.settings.max_output_tokens,
            "stream": false,
        });
        body["response_format"] = match self.settings.response_format {
            ResponseFormat::JsonSchema => json!({
                "type": "json_schema",
                "json_schema": {"name": "minutes", "strict": false, "schema": schema}
            }),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
        };
        let attempts = self.settings.attempts.max(1);
        let mut attempt = 1;
        loop {
            let error = match self.attempt(&body).await {
                Ok(content) => return Ok(content),
                Err(Attempt::Fail(error)) => return Err(error),
                Err(Attempt::Retry(error, _)) if attempt >= attempts => return Err(error),
                Err(Attempt::Retry(_, wait)) => wait,
            };
            let backoff = self.settings.backoff.saturating_mul(1 << (attempt - 1).min(10));
            tokio::time::sleep(error.unwrap_or(backoff).min(MAX_RETRY_AFTER)).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, body: &Value) -> Result<String, Attempt> {
        let mut request = self.http.post(&self.url).json(body);
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            let message = error_message(&text);
            let error = SummarizeError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
                message: message.clone(),
            };
            let lower = message.to_lowercase();
            return Err(if status.as_u16() == 429 || status.is_server_error() {
                Attempt::Retry(error, retry_after)
            } else if status.as_u16() == 400
                && (lower.contains("context") || lower.contains("too long"))
            {
                Attempt::Fail(SummarizeError::ContextExceeded(message))
            } else {
                Attempt::Fail(error)
            });
        }
        let answer: Value = serde_json::from_str(&text).map_err(|e| {
            Attempt::Fail(SummarizeError::BadAnswer(format!("the response is not JSON: {e}")))
        })?;
        let choice = &answer["choices"][0];
        if choice["finish_reason"] == "length" {
            return Err(Attempt::Fail(SummarizeError::BadAnswer(format!(
                "the answer was cut off at max_tokens ({})",
                self.settings.max_output_tokens
            ))));
        }
        choice["message"]["content"].as_str().map(str::to_string).ok_or_else(|| {
            Attempt::Fail(SummarizeError::BadAnswer("the response has no message content".into()))
        })
    }

    fn transport_error(&self, error: reqwest::Error) -> Attempt {
        let error = if error.is_timeout() {
            SummarizeError::Timeout {
                url: self.url.clone(),
                seconds: self.settings.timeout.as_secs(),
            }
        } else {
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !message.contains(&text) {
                    message = format!("{message}: {text}");
                }
                source = cause.source();
            }
            SummarizeError::Unreachable { url: self.url.clone(), message }
        };
        Attempt::Retry(error, None)
    }
}

/// The `error.message` of an OpenAI-style error body, else the body's start.
fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v["error"]["message"].as_str().or_else(|| v["error"].as_str()))
        .map(str::to_string)
        .unwrap_or_else(|| body.trim().to_string());
    message.chars().take(300).collect()
}

/// How the answer's shape is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseFormat {
    /// `json_schema`: the server constrains the answer to our schema (OpenAI, llama.cpp,
    /// vLLM, Ollama).
    #[default]
    JsonSchema,
    /// `json_object`: plain JSON mode, for servers without schema support; the schema is
    /// then only in the prompt.
    JsonObject,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_come_from_openai_style_bodies_or_the_raw_text() {
        let body = r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#;
        assert_eq!(error_message(body), "Rate limit reached");
        assert_eq!(error_message("  Bad Gateway \n"), "Bad Gateway");
    }
}
