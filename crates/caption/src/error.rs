use std::path::PathBuf;

use crate::rules::Issue;

/// What went wrong in a caption operation; every variant names its input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A configuration value or a pattern is invalid.
    #[error("invalid {what}: {reason}")]
    Config { what: &'static str, reason: String },
    /// A labels file line cannot be parsed.
    #[error("labels file {path}, line {line}: {reason}")]
    Labels {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// The captioning endpoint answered with an error status on the last attempt.
    #[error(
        "captioning {input}: endpoint answered HTTP {status} after {attempts} attempts: {body}"
    )]
    Http {
        input: String,
        status: u16,
        attempts: u32,
        body: String,
    },
    /// Every attempt timed out.
    #[error("captioning {input}: no answer within {timeout_ms} ms in {attempts} attempts")]
    Timeout {
        input: String,
        timeout_ms: u128,
        attempts: u32,
    },
    /// The endpoint could not be reached on the last attempt.
    #[error("captioning {input}: request failed after {attempts} attempts: {reason}")]
    Transport {
        input: String,
        attempts: u32,
        reason: String,
    },
    /// The endpoint answered, but not with a chat completion.
    #[error("captioning {input}: malformed response: {reason}")]
    Response { input: String, reason: String },
    /// Every caption the model gave broke the rules in a way cleaning cannot fix.
    #[error("captioning {input}: caption still breaks the rules after {attempts} attempts: {}",
        .issues.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Rules {
        input: String,
        attempts: u32,
        issues: Vec<Issue>,
        caption: String,
    },
}

/// Result alias for caption operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
