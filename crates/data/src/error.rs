use std::path::PathBuf;

/// A misuse of the library or a failure outside the input itself: an invalid
/// configuration, an impossible resize, a file that cannot be written.
///
/// Problems with an *input* (a corrupt image, an undecodable caption) are not
/// errors: they are [`crate::Reject`] values, recorded and skipped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of its valid range.
    #[error("invalid {what}: {reason}")]
    Config { what: &'static str, reason: String },
    /// A resize was asked for that the chosen method cannot do.
    #[error("cannot resize {from_width}x{from_height} to {to_width}x{to_height}: {reason}")]
    Resize {
        from_width: u32,
        from_height: u32,
        to_width: u32,
        to_height: u32,
        reason: &'static str,
    },
    /// Writing an output file failed.
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for this crate's fallible operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
