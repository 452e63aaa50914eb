use std::path::PathBuf;

/// Why a parity check could not run (as opposed to running and failing).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("fixture {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("fixture {path}: {reason}")]
    Fixture { path: PathBuf, reason: String },
    #[error("model: {0}")]
    Model(String),
}

/// Result alias for parity checks.
pub type Result<T, E = Error> = std::result::Result<T, E>;
