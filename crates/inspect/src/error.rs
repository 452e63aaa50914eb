use std::path::PathBuf;

/// Errors inspecting a dataset or a codec.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad argument (unknown sample id, ambiguous encodings…).
    #[error("{0}")]
    Input(String),
    /// A stored latent or embedding that is not what it should be.
    #[error("sample {sample_id}: {what} at {key}: {reason}")]
    SampleData {
        sample_id: String,
        what: &'static str,
        key: String,
        reason: String,
    },
    /// An image that cannot be read.
    #[error("image {path}: {reason}")]
    Image { path: PathBuf, reason: String },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] ssdit_store::Error),
    #[error(transparent)]
    Dataset(#[from] ssdit_dataset::Error),
    #[error(transparent)]
    Vae(#[from] ssdit_vae::Error),
    #[error(transparent)]
    Render(#[from] ssdit_render::Error),
    #[error("worker thread: {0}")]
    Worker(String),
}

/// Result alias of the inspect crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
