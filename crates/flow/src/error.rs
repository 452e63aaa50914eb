/// Why a flow-matching operation refused its input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of its domain (e.g. zero sampling steps).
    #[error("invalid {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    /// Two tensors that must agree in shape do not.
    #[error("{what}: expected shape {expected:?}, found {found:?}")]
    ShapeMismatch {
        what: &'static str,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// The progress callback asked the sampler to stop.
    #[error("sampling cancelled after {completed} of {steps} steps")]
    Cancelled { completed: usize, steps: usize },
    /// The EMA copy and the live model do not have the same parameters.
    #[error("ema: parameter {path}: {reason}")]
    EmaMismatch { path: String, reason: String },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}
