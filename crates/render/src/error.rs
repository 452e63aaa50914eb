/// Errors drawing or writing an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing was given to draw.
    #[error("{what}: nothing to draw")]
    Empty { what: &'static str },
    /// The drawing would exceed [`crate::MAX_SIDE`] pixels on a side.
    #[error("{what}: {width}x{height} pixels exceeds the limit of {limit} per side")]
    TooLarge {
        what: &'static str,
        width: u64,
        height: u64,
        limit: u32,
    },
    /// A value that cannot be plotted (NaN, infinite, …).
    #[error("{what}: {reason}")]
    Value { what: &'static str, reason: String },
    /// PNG encoding failed.
    #[error("encoding a png: {0}")]
    Encode(String),
    /// Writing the file failed.
    #[error("writing {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Result alias of the rendering crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
