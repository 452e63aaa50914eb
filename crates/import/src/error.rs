use std::path::PathBuf;

/// Errors importing the seed's files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not a readable `torch.save` file (not a zip, truncated, hostile pickle…).
    #[error("{origin}: {reason}")]
    Malformed { origin: String, reason: String },
    /// A readable file that does not hold what the seed writes there.
    #[error("{origin}: {reason}")]
    Content { origin: String, reason: String },
    /// An invalid option (fingerprint, run name…).
    #[error("invalid {what}: {reason}")]
    Input { what: &'static str, reason: String },
    #[error(transparent)]
    Store(Box<ssdit_store::Error>),
    #[error(transparent)]
    Dataset(Box<ssdit_dataset::Error>),
    #[error(transparent)]
    Model(Box<ssdit_model::Error>),
    #[error(transparent)]
    Optim(Box<ssdit_optim::Error>),
    #[error(transparent)]
    Train(Box<ssdit_train::Error>),
    #[error("import worker: {0}")]
    Worker(String),
}

// The errors of the crates below, boxed: they are large, and `Result`s of
// this crate stay small.
ssdit_core::boxed_from!(
    Error:
    Store(ssdit_store::Error),
    Dataset(ssdit_dataset::Error),
    Model(ssdit_model::Error),
    Optim(ssdit_optim::Error),
    Train(ssdit_train::Error),
);

/// Result alias of the import crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A content error for `origin`.
pub(crate) fn content(origin: &str, reason: impl Into<String>) -> Error {
    Error::Content {
        origin: origin.to_string(),
        reason: reason.into(),
    }
}
