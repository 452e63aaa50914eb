use std::path::PathBuf;

/// What went wrong configuring, loading or running a latent codec. Every
/// variant names the file, field or input at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `config.json` could not be read or is not valid JSON of the expected form.
    #[error("vae config {path}: {reason}")]
    ConfigFile { path: PathBuf, reason: String },
    /// A configuration value this implementation does not support.
    #[error("vae config {origin}: unsupported {field} = {value}: {reason}")]
    Unsupported {
        origin: String,
        field: &'static str,
        value: String,
        reason: String,
    },
    /// Resolving, opening or applying the weight files failed.
    #[error(transparent)]
    Weights(#[from] ssdit_weights::Error),
    /// An input tensor or image of the wrong shape or size.
    #[error("{what}: expected {expected}, got {found}")]
    Input {
        what: &'static str,
        expected: String,
        found: String,
    },
    /// Tiling parameters that cannot tile.
    #[error("tiling: {0}")]
    Tiling(String),
    /// Codec selection or command-line value that names nothing known.
    #[error("latent codec {spec:?}: {reason}")]
    Codec { spec: String, reason: String },
}

/// Result alias for the VAE crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A shape error about an input tensor.
    pub(crate) fn shape(what: &'static str, expected: impl Into<String>, dims: &[usize]) -> Self {
        Self::Input {
            what,
            expected: expected.into(),
            found: format!("shape {dims:?}"),
        }
    }
}
