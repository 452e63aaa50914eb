//! The service's errors, and their one mapping to gRPC status codes.
//!
//! A refused *input* (a corrupt image, a missing caption) is not an error: it
//! is recorded as a rejection and the batch goes on. These errors stop a call:
//! a malformed request, an upload over its limit, or the store or bus down.

use std::path::PathBuf;

use tonic::{Code, Status};

/// Why an ingest call (or a caption tool) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The dataset name could escape its prefix or is otherwise not a name.
    #[error("invalid dataset name {name:?}: {reason}")]
    InvalidDataset { name: String, reason: String },
    /// A request that breaks the protocol: data before a `FileStart`, a bad
    /// file name, sizes that disagree, an unknown enum value…
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// An uploaded file is larger than `server.max_upload_bytes`.
    #[error("upload {file}: {size} bytes exceeds the limit of {max} bytes")]
    UploadTooLarge { file: String, size: u64, max: u64 },
    /// A source URI that cannot be ingested from.
    #[error("invalid source {uri:?}: {reason}")]
    InvalidSource { uri: String, reason: String },
    /// A local source folder that does not exist.
    #[error("source folder {} does not exist", path.display())]
    SourceNotFound { path: PathBuf },
    /// A local source folder outside `ingest.uri_roots`.
    #[error("source folder {} is outside the folders allowed by ingest.uri_roots", path.display())]
    SourceNotAllowed { path: PathBuf },
    /// A local folder or file could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A caption edit that does not fit the dataset (unknown sample, bad rule).
    #[error("caption edit: {0}")]
    InvalidEdit(String),
    /// The service's configuration cannot be used.
    #[error("ingest configuration: {0}")]
    Config(String),
    /// The object store failed or refused a key.
    #[error(transparent)]
    Store(#[from] ssdit_store::Error),
    /// A dataset record could not be read or written.
    #[error(transparent)]
    Dataset(#[from] ssdit_dataset::Error),
    /// The event bus failed.
    #[error("event bus: {0}")]
    Bus(#[from] ssdit_bus::Error),
    /// The gRPC server failed.
    #[error(transparent)]
    Server(#[from] ssdit_server::Error),
    /// A bug: a worker task panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn store_code(error: &ssdit_store::Error) -> Code {
    use ssdit_store::Error as S;
    match error {
        S::InvalidComponent { .. } | S::InvalidUrl { .. } => Code::InvalidArgument,
        S::NotFound { .. } => Code::NotFound,
        S::TooLarge { .. } => Code::ResourceExhausted,
        S::Open { .. } | S::Backend { .. } | S::Io { .. } => Code::Unavailable,
        S::SizeMismatch { .. } | S::TensorFile { .. } => Code::DataLoss,
    }
}

impl Error {
    /// The gRPC status code of this error.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidDataset { .. }
            | Self::InvalidRequest(_)
            | Self::InvalidSource { .. }
            | Self::InvalidEdit(_) => Code::InvalidArgument,
            Self::UploadTooLarge { .. } => Code::ResourceExhausted,
            Self::SourceNotFound { .. } => Code::NotFound,
            Self::SourceNotAllowed { .. } => Code::PermissionDenied,
            Self::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Code::NotFound
            }
            Self::Io { .. } => Code::FailedPrecondition,
            Self::Store(error) => store_code(error),
            Self::Dataset(ssdit_dataset::Error::Store(error)) => store_code(error),
            Self::Dataset(_) => Code::DataLoss,
            Self::Bus(_) => Code::Unavailable,
            Self::Config(_) | Self::Server(_) | Self::Internal(_) => Code::Internal,
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let code = error.code();
        if matches!(code, Code::Internal | Code::Unavailable | Code::DataLoss) {
            tracing::error!(%error, ?code, "ingest call failed");
        } else {
            tracing::info!(%error, ?code, "ingest call refused");
        }
        Status::new(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_status() {
        let cases = [
            (
                Error::InvalidDataset {
                    name: "../x".into(),
                    reason: "contains a path separator".into(),
                },
                Code::InvalidArgument,
            ),
            (
                Error::UploadTooLarge {
                    file: "a.png".into(),
                    size: 11,
                    max: 10,
                },
                Code::ResourceExhausted,
            ),
            (
                Error::SourceNotFound {
                    path: "/nope".into(),
                },
                Code::NotFound,
            ),
            (
                Error::Store(ssdit_store::Error::NotFound {
                    operation: "get",
                    key: "k".into(),
                }),
                Code::NotFound,
            ),
            (Error::Internal("join".into()), Code::Internal),
        ];
        for (error, code) in cases {
            let message = error.to_string();
            let status = Status::from(error);
            assert_eq!(status.code(), code, "{message}");
            assert_eq!(status.message(), message);
        }
    }
}
