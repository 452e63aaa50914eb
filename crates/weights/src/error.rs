use std::path::PathBuf;

/// What went wrong reading or applying a weight file. Every variant names the
/// file or tensor at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("weight file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("weight file {origin} is not a valid {format} file: {reason}")]
    Malformed {
        origin: String,
        format: &'static str,
        reason: String,
    },
    #[error("weight file {origin} has no tensors matching {what}")]
    Empty { origin: String, what: String },
    #[error("{origin}: missing tensors the model needs: {}", .names.join(", "))]
    MissingTensors { origin: String, names: Vec<String> },
    #[error("{origin}: tensors the model does not have: {}", .names.join(", "))]
    UnexpectedTensors { origin: String, names: Vec<String> },
    #[error("{origin}: tensor {name} has shape {found:?}, the model expects {expected:?}")]
    ShapeMismatch {
        origin: String,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{origin}: tensor {name}: {reason}")]
    Tensor {
        origin: String,
        name: String,
        reason: String,
    },
    #[error("{origin}: tensor {name} is {found} twice (in {first} and {second})")]
    Duplicate {
        origin: String,
        name: String,
        found: &'static str,
        first: String,
        second: String,
    },
    #[error("model {id}: {reason}")]
    Resolve { id: String, reason: String },
    #[error("writing weights to {path}: {reason}")]
    Save { path: String, reason: String },
}

/// Result alias for weight-file operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
