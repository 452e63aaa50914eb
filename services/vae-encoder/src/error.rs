//! The service's errors, and their one mapping to gRPC statuses.

use tonic::Status;

/// What can go wrong in the vae-encoder.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request's input is malformed: the message names the input and the reason.
    #[error("{0}")]
    InvalidArgument(String),
    /// A request asks for more than one call may (images, pixels).
    #[error("{0}")]
    TooLarge(String),
    /// The configured codec could not be chosen or built.
    #[error("vae {spec}: {reason}")]
    Model { spec: String, reason: String },
    /// The codec failed on input that passed validation.
    #[error("vae compute: {0}")]
    Compute(#[from] ssdit_vae::Error),
    /// The compute thread is gone or a job panicked.
    #[error(transparent)]
    Worker(#[from] ssdit_server::WorkerGone),
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] ssdit_store::Error),
    /// A dataset record could not be written or read.
    #[error(transparent)]
    Dataset(#[from] ssdit_dataset::Error),
    /// The event bus failed.
    #[error(transparent)]
    Bus(#[from] ssdit_bus::Error),
    /// Serving or deployment plumbing failed.
    #[error(transparent)]
    Server(#[from] ssdit_server::Error),
    /// Encoding an image as PNG failed.
    #[error("png encoding: {0}")]
    Png(#[from] ssdit_render::Error),
    /// A bug: something that validation should have made impossible.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result alias of this service.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::InvalidArgument(_) => Status::invalid_argument(message),
            Error::TooLarge(_) => Status::resource_exhausted(message),
            Error::Store(ssdit_store::Error::NotFound { .. }) => Status::not_found(message),
            Error::Store(_) | Error::Bus(_) | Error::Dataset(_) => Status::unavailable(message),
            Error::Worker(_) => Status::unavailable(message),
            Error::Model { .. }
            | Error::Compute(_)
            | Error::Server(_)
            | Error::Png(_)
            | Error::Internal(_) => Status::internal(message),
        }
    }
}
