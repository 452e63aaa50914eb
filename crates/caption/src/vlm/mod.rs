//! Captioning through a VLM behind an OpenAI-compatible chat-completions
//! endpoint (vLLM, llama.cpp server, Ollama).
//!
//! Each request carries the model name, the system instruction, and a user
//! turn with the category label and the image as a base64 `data:` URL. The
//! client limits requests in flight and their start rate, times each one
//! out, retries failures (timeouts, connection errors, HTTP 408/429/5xx)
//! with exponential backoff, and cleans every caption: one that still breaks
//! the rules after cleaning is asked for again, and the last one that is
//! only too long is truncated (or refused, by configuration).

mod config;
mod limiter;
mod request;

pub use config::{OverlongPolicy, VlmConfig};
pub use request::{completion_text, image_data_url, request_body};

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::clean::{Cleaned, Fix, clean, truncate_to_words};
use crate::error::{Error, Result};
use crate::prompt::user_text;
use crate::rules::{Issue, Severity, has_violation};
use limiter::RateLimiter;

/// Longest part of an error body kept in an error message.
const MAX_ERROR_BODY_CHARS: usize = 300;

/// One image to caption.
#[derive(Debug, Clone)]
pub struct CaptionRequest {
    /// Names the image in logs and errors (a path or a content id).
    pub input: String,
    /// The encoded image file (PNG, JPEG, WebP, …).
    pub image: Vec<u8>,
    /// The category label hint, if any.
    pub label: Option<String>,
}

/// A caption that follows the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptionOutcome {
    /// The cleaned caption.
    pub caption: String,
    /// Requests it took.
    pub attempts: u32,
    /// Repairs the cleaner made to the model's answer.
    pub fixes: Vec<Fix>,
    /// Whether the caption was cut to the word limit.
    pub truncated: bool,
    /// Advisory issues of the final caption (phrase order, no commas).
    pub advice: Vec<Issue>,
}

/// The VLM captioning client; clones share the limits.
#[derive(Debug, Clone)]
pub struct Captioner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: VlmConfig,
    system: String,
    url: String,
    http: reqwest::Client,
    permits: Semaphore,
    limiter: Option<RateLimiter>,
}

/// Why one attempt produced no caption.
#[derive(Debug)]
enum Failure {
    Status { status: u16, body: String },
    Timeout,
    Transport(String),
    Response(String),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Self::Timeout | Self::Transport(_) | Self::Response(_) => true,
        }
    }

    fn into_error(self, input: &str, attempts: u32, timeout_ms: u64) -> Error {
        let input = input.to_owned();
        match self {
            Self::Status { status, body } => Error::Http {
                input,
                status,
                attempts,
                body,
            },
            Self::Timeout => Error::Timeout {
                input,
                timeout_ms: u128::from(timeout_ms),
                attempts,
            },
            Self::Transport(reason) => Error::Transport {
                input,
                attempts,
                reason,
            },
            Self::Response(reason) => Error::Response { input, reason },
        }
    }
}

/// The last problem seen, reported when the attempts run out.
enum Last {
    Failure(Failure),
    Rules(Cleaned),
}

impl Captioner {
    /// Validates `config`, resolves the system instruction and builds the
    /// HTTP client.
    pub fn new(config: VlmConfig) -> Result<Self> {
        let system = config.validate()?;
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| Error::Config {
                what: "vlm http client",
                reason: e.to_string(),
            })?;
        let inner = Inner {
            url: config.completions_url(),
            permits: Semaphore::new(config.max_concurrency),
            limiter: config.requests_per_second.map(RateLimiter::new),
            system,
            http,
            config,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The system instruction sent with every request.
    pub fn system_prompt(&self) -> &str {
        &self.inner.system
    }

    /// Captions every request, concurrently within the limits; results are in
    /// request order.
    pub async fn caption_all(&self, requests: &[CaptionRequest]) -> Vec<Result<CaptionOutcome>> {
        futures::future::join_all(requests.iter().map(|r| self.caption(r))).await
    }

    /// Captions one image, retrying as configured.
    pub async fn caption(&self, request: &CaptionRequest) -> Result<CaptionOutcome> {
        let config = &self.inner.config;
        let body = request_body(
            &config.model,
            &self.inner.system,
            &user_text(request.label.as_deref()),
            &image_data_url(&request.image),
            config.max_tokens,
            config.temperature,
        );
        let mut last = None;
        for attempt in 1..=config.max_attempts {
            match self.send(&body).await {
                Ok(text) => {
                    let cleaned = clean(&text, &config.rules);
                    if !has_violation(&cleaned.issues) {
                        return Ok(outcome(cleaned, attempt, false));
                    }
                    tracing::warn!(input = %request.input, attempt, caption = %cleaned.text,
                        issues = ?cleaned.issues, "caption breaks the rules, asking again");
                    last = Some(Last::Rules(cleaned));
                }
                Err(failure) if failure.retryable() => {
                    tracing::warn!(input = %request.input, attempt, ?failure, "captioning request failed");
                    last = Some(Last::Failure(failure));
                    if attempt < config.max_attempts {
                        tokio::time::sleep(config.backoff(attempt)).await;
                    }
                }
                Err(failure) => {
                    return Err(failure.into_error(&request.input, attempt, config.timeout_ms));
                }
            }
        }
        let attempts = config.max_attempts;
        match last.expect("max_attempts is at least 1") {
            Last::Failure(failure) => {
                Err(failure.into_error(&request.input, attempts, config.timeout_ms))
            }
            Last::Rules(cleaned) => self.settle(&request.input, cleaned, attempts),
        }
    }

    /// The last caption still breaks the rules: truncate it if length is its
    /// only problem and the policy allows, else fail.
    fn settle(&self, input: &str, cleaned: Cleaned, attempts: u32) -> Result<CaptionOutcome> {
        let config = &self.inner.config;
        let only_length = cleaned.issues.iter().all(|issue| {
            issue.severity() == Severity::Advice || matches!(issue, Issue::TooManyWords { .. })
        });
        if only_length && config.overlong == OverlongPolicy::Truncate {
            let short = truncate_to_words(&cleaned.text, config.rules.max_words);
            let recleaned = clean(&short, &config.rules);
            if !has_violation(&recleaned.issues) {
                tracing::info!(input, words = config.rules.max_words, "caption truncated");
                let mut outcome = outcome(recleaned, attempts, true);
                outcome.fixes = merge_fixes(&cleaned.fixes, &outcome.fixes);
                return Ok(outcome);
            }
        }
        Err(Error::Rules {
            input: input.to_owned(),
            attempts,
            issues: cleaned.issues,
            caption: cleaned.text,
        })
    }

    /// One request: waits for a concurrency permit and a rate slot, then
    /// posts and reads the caption text.
    async fn send(&self, body: &Value) -> Result<String, Failure> {
        let inner = &*self.inner;
        let _permit = inner
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        if let Some(limiter) = &inner.limiter {
            limiter.acquire().await;
        }
        let mut post = inner
            .http
            .post(&inner.url)
            .timeout(inner.config.timeout())
            .json(body);
        if let Some(key) = &inner.config.api_key {
            post = post.bearer_auth(key);
        }
        let response = post.send().await.map_err(transport_failure)?;
        let status = response.status();
        let text = response.text().await.map_err(transport_failure)?;
        if !status.is_success() {
            return Err(Failure::Status {
                status: status.as_u16(),
                body: text.chars().take(MAX_ERROR_BODY_CHARS).collect(),
            });
        }
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| Failure::Response(format!("body is not JSON: {e}")))?;
        completion_text(&json).map_err(Failure::Response)
    }
}

fn outcome(cleaned: Cleaned, attempts: u32, truncated: bool) -> CaptionOutcome {
    CaptionOutcome {
        caption: cleaned.text,
        attempts,
        fixes: cleaned.fixes,
        truncated,
        advice: cleaned.issues,
    }
}

fn merge_fixes(first: &[Fix], second: &[Fix]) -> Vec<Fix> {
    let mut all = first.to_vec();
    all.extend(second.iter().filter(|f| !first.contains(f)));
    all
}

fn transport_failure(error: reqwest::Error) -> Failure {
    if error.is_timeout() {
        return Failure::Timeout;
    }
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    Failure::Transport(reason)
}
