use std::path::PathBuf;

/// What went wrong configuring, running or loading the DiT. Every variant
/// names the input at fault and the reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration describes a model that cannot be built.
    #[error("invalid DiT configuration: {0}")]
    Config(String),
    /// A configuration file could not be read or parsed.
    #[error("DiT configuration {path}: {reason}")]
    ConfigFile { path: PathBuf, reason: String },
    /// A forward input has a shape the model cannot take.
    #[error("DiT input {input}: {reason}")]
    Input { input: &'static str, reason: String },
    /// Reading, applying or writing weights failed.
    #[error(transparent)]
    Weights(#[from] ssdit_weights::Error),
    /// Writing a weight file failed.
    #[error("writing DiT weights to {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
