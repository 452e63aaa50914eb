/// Why an optimizer operation refused its input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of its domain.
    #[error("invalid {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    /// A parameter, its gradient and its optimizer state disagree.
    #[error("parameter {param}: {reason}")]
    Param { param: String, reason: String },
    /// A saved optimizer state cannot be read or does not fit the model.
    #[error("optimizer state: {0}")]
    State(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}
