use std::path::PathBuf;

/// Configuration errors; each names the file, key or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {origin}: {reason}")]
    Parse { origin: String, reason: String },
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("config value {key} = {value}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("device {spec:?}: {reason}")]
    Device { spec: String, reason: String },
}

/// Result alias for configuration.
pub type Result<T, E = Error> = std::result::Result<T, E>;
