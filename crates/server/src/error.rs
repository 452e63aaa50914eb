/// Errors starting or running a server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("gRPC reflection: {0}")]
    Reflection(String),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("gRPC server on {addr}: {reason}")]
    Transport { addr: String, reason: String },
    #[error("{0}")]
    Deployment(String),
    #[error(transparent)]
    Config(#[from] ssdit_core::Error),
    #[error("starting compute worker {name}: {reason}")]
    Worker { name: String, reason: String },
}

/// Result alias for server plumbing.
pub type Result<T, E = Error> = std::result::Result<T, E>;
