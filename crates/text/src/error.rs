use std::path::PathBuf;

/// What went wrong building or running a text encoder. Every variant names
/// the file, field or input at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {reason}")]
    Json { origin: String, reason: String },
    #[error("model config {origin}: field {field}: {reason}")]
    Config {
        origin: String,
        field: String,
        reason: String,
    },
    #[error("tokenizer {origin}: {reason}")]
    Tokenizer { origin: String, reason: String },
    #[error("text encoder input: {0}")]
    Input(String),
    #[error(transparent)]
    Weights(#[from] ssdit_weights::Error),
}

impl Error {
    /// A configuration error about one field.
    pub(crate) fn config(
        origin: impl Into<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Config {
            origin: origin.into(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Result alias for text-encoder operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
