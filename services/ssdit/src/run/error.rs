//! What can stop `ssdit run`, each error naming the step and the input.

use std::path::PathBuf;

use ssdit_dataset::DatasetStatus;

/// An error of the all-in-one job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file or a flag is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A model was asked for but cannot be used (missing weights, bad spec).
    #[error("models: {0}")]
    Models(String),
    /// The store, the bus or a listener could not be opened.
    #[error("deployment: {0}")]
    Deployment(Box<ssdit_server::Error>),
    /// A service failed to load or to serve.
    #[error("{service}: {reason}")]
    Service {
        service: &'static str,
        reason: String,
    },
    /// Ingesting the image folder failed as a whole (single files are rejected, not errors).
    #[error("ingest: {0}")]
    Ingest(Box<ssdit_ingest::Error>),
    /// The folder gave nothing to train on.
    #[error("no image of {folder} was accepted ({rejected} rejected); nothing to train on")]
    NothingIngested { folder: PathBuf, rejected: usize },
    /// The encoders did not finish in time.
    #[error(
        "dataset {dataset}: encoding did not finish within {seconds} s ({} ingested, {} latents, {} captioned, {} embeddings)",
        status.ingested, status.latents, status.captioned, status.embeddings
    )]
    EncodingTimeout {
        dataset: String,
        seconds: u64,
        status: DatasetStatus,
    },
    /// Reading the dataset's records or its encodings failed.
    #[error("dataset: {0}")]
    Dataset(Box<ssdit_dataset::Error>),
    /// Reading or writing the store failed.
    #[error("store: {0}")]
    Store(Box<ssdit_store::Error>),
    /// Training could not start or ended in failure.
    #[error("training: {0}")]
    Training(String),
    /// A `Generate` call failed or returned no usable image.
    #[error("generate {prompt:?}: {reason}")]
    Generate { prompt: String, reason: String },
    /// Decoding a latent or an image failed.
    #[error("{what}: {reason}")]
    Image { what: String, reason: String },
    /// Drawing the contact sheet failed.
    #[error("contact sheet: {0}")]
    Render(Box<ssdit_render::Error>),
    /// Writing an output file failed.
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The job's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A service's failure, from any displayable error.
    pub(crate) fn service(service: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Service {
            service,
            reason: error.to_string(),
        }
    }
}

// The errors of the libraries the job drives, boxed: they are large, and
// the job's `Result`s stay small.
ssdit_core::boxed_from!(
    Error:
    Deployment(ssdit_server::Error),
    Ingest(ssdit_ingest::Error),
    Dataset(ssdit_dataset::Error),
    Store(ssdit_store::Error),
    Render(ssdit_render::Error),
);
