//! The training library's errors.

/// What can go wrong preparing or running a training run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value that cannot work, named by key.
    #[error("invalid training setting {key}: {reason}")]
    Config { key: &'static str, reason: String },
    /// No sample of the dataset is ready to train on.
    #[error(
        "dataset {dataset}: no sample is ready to train on ({missing} missing{first}); encode the dataset first"
    )]
    NothingReady {
        dataset: String,
        missing: usize,
        first: String,
    },
    /// The ready samples cannot fill one optimizer step.
    #[error(
        "dataset {dataset}: {batches} full batches of {batch_size} per epoch cannot fill one optimizer step of {accum_steps} batches"
    )]
    TooSmall {
        dataset: String,
        batches: usize,
        batch_size: usize,
        accum_steps: usize,
    },
    /// A latent or embedding file that does not hold what training needs.
    #[error("sample {sample_id}: {what} at {key}: {reason}")]
    SampleData {
        sample_id: String,
        what: &'static str,
        key: String,
        reason: String,
    },
    /// A checkpoint that cannot be used.
    #[error("checkpoint {key}: {reason}")]
    Checkpoint { key: String, reason: String },
    /// No committed checkpoint where one was required.
    #[error("run {run_id}: no committed checkpoint to resume from")]
    NoCheckpoint { run_id: String },
    /// The DiT preset or config file.
    #[error("dit model {spec}: {reason}")]
    Model { spec: String, reason: String },
    /// Drawing or encoding an image, plot or animation.
    #[error("rendering: {0}")]
    Render(#[from] ssdit_render::Error),
    /// The run was asked to stop (internal: turned into a stopped state).
    #[error("run stopped")]
    Stopped,
    #[error(transparent)]
    Store(#[from] ssdit_store::Error),
    #[error(transparent)]
    Dataset(#[from] ssdit_dataset::Error),
    #[error(transparent)]
    Dit(#[from] ssdit_model::Error),
    #[error(transparent)]
    Flow(#[from] ssdit_flow::Error),
    #[error(transparent)]
    Optim(#[from] ssdit_optim::Error),
    #[error(transparent)]
    Vae(#[from] ssdit_vae::Error),
    #[error(transparent)]
    Weights(#[from] ssdit_weights::Error),
    #[error("event bus: {0}")]
    Bus(#[from] ssdit_bus::Error),
    #[error("training thread: {0}")]
    Thread(String),
    /// The run's thread panicked (out of GPU memory, say); checkpoints are
    /// committed whole, so the last one is intact.
    #[error("the run stopped on a panic: {0} (its last checkpoint is intact: resume from it)")]
    Panicked(String),
}

/// Result alias of the training library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A configuration error for `key`.
pub(crate) fn config_error(key: &'static str, reason: impl Into<String>) -> Error {
    Error::Config {
        key,
        reason: reason.into(),
    }
}
