//! The trainer service's errors and their one mapping to gRPC statuses.

use tonic::Status;

/// What a trainer request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field that cannot be accepted (INVALID_ARGUMENT).
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// An id that names nothing (NOT_FOUND).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// A dataset with no accepted sample: never ingested, or every input
    /// was rejected (NOT_FOUND).
    #[error(
        "dataset {dataset} has no samples: nothing was ingested into it, or every input \
         was rejected (`ssdit dataset status {dataset}` lists the rejects)"
    )]
    NoSamples { dataset: String },
    /// The trainer's one training slot is taken (RESOURCE_EXHAUSTED).
    #[error("the trainer is busy with run {active}: stop it or wait until it ends")]
    Busy { active: String },
    /// The object store failed (UNAVAILABLE).
    #[error(transparent)]
    Store(#[from] ssdit_store::Error),
    /// Training could not start.
    #[error(transparent)]
    Train(Box<ssdit_train::Error>),
    /// Serving failed (listener, TLS, …).
    #[error(transparent)]
    Server(#[from] ssdit_server::Error),
    /// The metrics endpoint failed.
    #[error("metrics endpoint: {0}")]
    Metrics(String),
}

/// Training errors are large: boxed, so every `Result` here stays small.
impl From<ssdit_train::Error> for Error {
    fn from(error: ssdit_train::Error) -> Self {
        Error::Train(Box::new(error))
    }
}

/// Result alias of the trainer service.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match &error {
            Error::InvalidArgument { .. } => Status::invalid_argument(message),
            Error::NotFound { .. } | Error::NoSamples { .. } => Status::not_found(message),
            Error::Busy { .. } => Status::resource_exhausted(message),
            Error::Store(ssdit_store::Error::NotFound { .. }) => Status::not_found(message),
            Error::Store(_) => Status::unavailable(message),
            Error::Train(train) => match train.as_ref() {
                ssdit_train::Error::Config { .. } | ssdit_train::Error::Checkpoint { .. } => {
                    Status::invalid_argument(message)
                }
                ssdit_train::Error::Store(_) | ssdit_train::Error::Dataset(_) => {
                    Status::unavailable(message)
                }
                _ => Status::internal(message),
            },
            Error::Server(_) | Error::Metrics(_) => Status::internal(message),
        }
    }
}
