//! Errors of the object store.

use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A client-provided key component (dataset name, run id, file name…) is unsafe.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidComponent {
        /// Which component ("dataset name", "run id", "key"…).
        what: &'static str,
        /// The offending value (truncated when very long).
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The store URL cannot be used.
    #[error("invalid store url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The backend could not be configured or reached at open time.
    #[error("opening store {url}: {source}")]
    Open {
        /// The URL as given.
        url: String,
        /// The backend's error.
        source: object_store::Error,
    },
    /// The key does not exist.
    #[error("{operation} {key}: not found")]
    NotFound {
        /// What was being done ("get", "head"…).
        operation: &'static str,
        /// The key.
        key: String,
    },
    /// The backend refused the operation, or transient failures outlasted the retries.
    #[error("{operation} {key}: failed after {attempts} attempt(s): {source}")]
    Backend {
        /// What was being done.
        operation: &'static str,
        /// The key or prefix concerned.
        key: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        source: object_store::Error,
    },
    /// An object is larger than the caller's limit.
    #[error("{key}: {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The key.
        key: String,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The bytes read disagree with the size the store announced or the caller expected.
    #[error("{key}: read {actual} bytes, expected {expected}")]
    SizeMismatch {
        /// The key.
        key: String,
        /// Expected size.
        expected: u64,
        /// Bytes read.
        actual: u64,
    },
    /// A tensor file is malformed, or holds something else than asked for.
    #[error("tensor file {key}: {reason}")]
    TensorFile {
        /// The key, or `<new>` for a file built in memory.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A local file could not be read for upload.
    #[error("reading {path}: {source}")]
    Io {
        /// The local file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
