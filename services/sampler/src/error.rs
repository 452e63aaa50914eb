//! The service's errors, and their one mapping to gRPC statuses.

use tonic::Status;

use crate::CheckpointId;

/// What can go wrong in the sampler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request's input is malformed: the message names the input and the reason.
    #[error("{0}")]
    InvalidArgument(String),
    /// A checkpoint the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The queue is full: the caller should retry later.
    #[error("{0}")]
    QueueFull(String),
    /// The service is stopping and takes no more work.
    #[error("the sampler is shutting down")]
    ShuttingDown,
    /// A checkpoint is unreadable, fails its commit check, or does not fit
    /// the text encoder or the codec.
    #[error("checkpoint {id}: {reason}")]
    Checkpoint { id: String, reason: String },
    /// A configured model could not be chosen or built.
    #[error("{what} {spec}: {reason}")]
    Model {
        what: &'static str,
        spec: String,
        reason: String,
    },
    /// The compute thread is gone or a job panicked.
    #[error(transparent)]
    Worker(#[from] ssdit_server::WorkerGone),
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] ssdit_store::Error),
    /// Listing a run's checkpoints or choosing the DiT architecture, as the
    /// training library does it, failed.
    #[error(transparent)]
    Train(Box<ssdit_train::Error>),
    /// The event bus failed.
    #[error(transparent)]
    Bus(#[from] ssdit_bus::Error),
    /// Serving or deployment plumbing failed.
    #[error(transparent)]
    Server(#[from] ssdit_server::Error),
    /// A request names a checkpoint the compute thread does not hold: the
    /// dispatcher loads it and tries again, so callers never see this.
    #[error("checkpoint {0} is not loaded")]
    NotLoaded(CheckpointId),
    /// Model compute failed on input that passed validation.
    #[error("sampling: {0}")]
    Compute(String),
    /// Encoding the image as PNG failed.
    #[error("png encoding: {0}")]
    Png(#[from] ssdit_render::Error),
}

/// Result alias of this service.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A compute failure from any model crate.
    pub(crate) fn compute(error: impl std::fmt::Display) -> Self {
        Self::Compute(error.to_string())
    }
}

/// Training-library errors are large: boxed, so every `Result` here stays small.
impl From<ssdit_train::Error> for Error {
    fn from(error: ssdit_train::Error) -> Self {
        Self::Train(Box::new(error))
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::InvalidArgument(_) => Status::invalid_argument(message),
            Error::NotFound(_) | Error::Store(ssdit_store::Error::NotFound { .. }) => {
                Status::not_found(message)
            }
            Error::QueueFull(_) => Status::resource_exhausted(message),
            Error::Train(error) if matches!(*error, ssdit_train::Error::Store(_)) => {
                Status::unavailable(message)
            }
            Error::ShuttingDown | Error::Store(_) | Error::Bus(_) | Error::Worker(_) => {
                Status::unavailable(message)
            }
            Error::Checkpoint { .. } => Status::failed_precondition(message),
            Error::Model { .. }
            | Error::Train(_)
            | Error::NotLoaded(_)
            | Error::Server(_)
            | Error::Compute(_)
            | Error::Png(_) => Status::internal(message),
        }
    }
}
