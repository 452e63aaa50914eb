//! Configuration of the VLM captioning client.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::prompt::{BOTANICAL_INSTRUCTION, load_prompt};
use crate::rules::CaptionRules;

/// What to do when every attempt gave a caption over the word limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlongPolicy {
    /// Keep the last caption, cut at the last whole phrase within the limit.
    #[default]
    Truncate,
    /// Fail with [`Error::Rules`].
    Reject,
}

/// How to reach the VLM and how hard to try.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VlmConfig {
    /// Base URL of the OpenAI-compatible API (vLLM, llama.cpp server, Ollama),
    /// such as `http://127.0.0.1:8000/v1`; `/chat/completions` is appended.
    pub endpoint: String,
    /// The `model` field of each request.
    pub model: String,
    /// Sent as a bearer token when set.
    pub api_key: Option<String>,
    /// The system instruction; [`BOTANICAL_INSTRUCTION`] when neither this nor
    /// `system_prompt_file` is set.
    pub system_prompt: Option<String>,
    /// A file holding the system instruction (exclusive with `system_prompt`).
    pub system_prompt_file: Option<PathBuf>,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// Limit on one request, from sending to the last byte of the answer.
    pub timeout_ms: u64,
    /// Attempts per image, counting retries after failures and after
    /// captions that break the rules.
    pub max_attempts: u32,
    /// Wait before the first retry after a failure; doubles on each retry.
    pub backoff_initial_ms: u64,
    /// Longest wait between retries.
    pub backoff_max_ms: u64,
    /// Requests started per second, across all concurrent requests; no
    /// limit when unset.
    pub requests_per_second: Option<f64>,
    /// `max_tokens` of each request (50 words are ~70 tokens).
    pub max_tokens: u32,
    /// `temperature` of each request.
    pub temperature: f32,
    /// The rules captions are cleaned and checked against.
    pub rules: CaptionRules,
    /// What to do when the last caption is still too long.
    pub overlong: OverlongPolicy,
}

impl Default for VlmConfig {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:8000/v1".to_owned(),
            model: "Qwen/Qwen3-VL-4B-Instruct".to_owned(),
            api_key: None,
            system_prompt: None,
            system_prompt_file: None,
            max_concurrency: 4,
            timeout_ms: 120_000,
            max_attempts: 4,
            backoff_initial_ms: 500,
            backoff_max_ms: 20_000,
            requests_per_second: None,
            max_tokens: 160,
            temperature: 0.2,
            rules: CaptionRules::default(),
            overlong: OverlongPolicy::default(),
        }
    }
}

impl VlmConfig {
    /// Checks the values and resolves the system instruction.
    pub(crate) fn validate(&self) -> Result<String> {
        let invalid = |what, reason: &str| {
            Err(Error::Config {
                what,
                reason: reason.to_owned(),
            })
        };
        if self.max_concurrency == 0 {
            return invalid("vlm max_concurrency", "must be at least 1");
        }
        if self.max_attempts == 0 {
            return invalid("vlm max_attempts", "must be at least 1");
        }
        if self.timeout_ms == 0 {
            return invalid("vlm timeout_ms", "must be positive");
        }
        if self
            .requests_per_second
            .is_some_and(|rps| !(rps.is_finite() && rps > 0.0))
        {
            return invalid("vlm requests_per_second", "must be a positive number");
        }
        if self.model.trim().is_empty() {
            return invalid("vlm model", "must not be empty");
        }
        match (&self.system_prompt, &self.system_prompt_file) {
            (Some(_), Some(_)) => invalid(
                "vlm system prompt",
                "set system_prompt or system_prompt_file, not both",
            ),
            (Some(text), None) if text.trim().is_empty() => {
                invalid("vlm system_prompt", "must not be empty")
            }
            (Some(text), None) => Ok(text.trim().to_owned()),
            (None, Some(path)) => load_prompt(path),
            (None, None) => Ok(BOTANICAL_INSTRUCTION.to_owned()),
        }
    }

    /// The chat-completions URL.
    pub fn completions_url(&self) -> String {
        format!("{}/chat/completions", self.endpoint.trim_end_matches('/'))
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The wait after failed attempt `attempt` (1-based): the initial backoff
    /// doubled per earlier retry, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.saturating_sub(1).min(20);
        Duration::from_millis(
            self.backoff_initial_ms
                .saturating_mul(factor)
                .min(self.backoff_max_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let config = VlmConfig {
            backoff_initial_ms: 100,
            backoff_max_ms: 500,
            ..VlmConfig::default()
        };
        let waits: Vec<u128> = (1..=5).map(|a| config.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
    }

    #[test]
    fn prompt_resolution_and_validation() {
        let config = VlmConfig::default();
        assert_eq!(config.validate().unwrap(), BOTANICAL_INSTRUCTION);
        let custom = VlmConfig {
            system_prompt: Some(" Describe. ".into()),
            ..VlmConfig::default()
        };
        assert_eq!(custom.validate().unwrap(), "Describe.");
        let both = VlmConfig {
            system_prompt_file: Some("p.txt".into()),
            ..custom
        };
        assert!(both.validate().is_err());
        for bad in [
            VlmConfig {
                max_concurrency: 0,
                ..VlmConfig::default()
            },
            VlmConfig {
                max_attempts: 0,
                ..VlmConfig::default()
            },
            VlmConfig {
                requests_per_second: Some(0.0),
                ..VlmConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert_eq!(
            VlmConfig {
                endpoint: "http://h/v1/".into(),
                ..VlmConfig::default()
            }
            .completions_url(),
            "http://h/v1/chat/completions"
        );
    }
}
