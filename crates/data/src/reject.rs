//! Rejected inputs: a value naming the file and why, never a panic or an
//! error that stops the run.

use std::fmt;
use std::path::{Path, PathBuf};

use image::ImageFormat;

/// An input that was not accepted, with the file it came from and the reason.
///
/// The ingest service records these in the dataset's rejects list and goes on
/// with the rest of the inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The file (or object key) that was rejected.
    pub file: PathBuf,
    /// Why it was rejected.
    pub reason: RejectReason,
}

impl Reject {
    /// A reject of `file` for `reason`.
    pub fn new(file: impl AsRef<Path>, reason: RejectReason) -> Self {
        Self {
            file: file.as_ref().to_path_buf(),
            reason,
        }
    }

    /// The reason's kind, a stable name for records and metrics.
    pub fn kind(&self) -> RejectKind {
        self.reason.kind()
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.reason)
    }
}

impl std::error::Error for Reject {}

/// Why an input was rejected. Each variant prints a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// The file has no bytes at all.
    #[error("file is empty (0 bytes)")]
    Empty,
    /// The file is larger than the configured byte limit.
    #[error("file is {bytes} bytes, over the limit of {max} bytes")]
    TooManyBytes { bytes: u64, max: u64 },
    /// The bytes are not an image format we can recognise (sniffed from the
    /// content; the file extension is ignored).
    #[error("content is not a recognised image format (detected from the bytes, not the name)")]
    UnknownFormat,
    /// The header declares more pixels than the limit: a decompression bomb
    /// or an image too large to process. Decided from the header alone.
    #[error(
        "{} header declares {width}x{height} = {} pixels, over the limit of {max} pixels \
         (decompression bomb or oversized image; not decoded)",
        format_name(*format), u64::from(*width) * u64::from(*height)
    )]
    TooManyPixels {
        format: ImageFormat,
        width: u32,
        height: u32,
        max: u64,
    },
    /// The file ends before the image data does.
    #[error("{} file is truncated: {detail}", format_name(*format))]
    Truncated { format: ImageFormat, detail: String },
    /// The image data is malformed and cannot be decoded.
    #[error("{} data cannot be decoded: {detail}", format_name(*format))]
    Corrupt { format: ImageFormat, detail: String },
    /// The image is smaller than the configured minimum side.
    #[error(
        "image is {width}x{height}, its shorter side is under the minimum of {min_side} pixels"
    )]
    TooSmall {
        width: u32,
        height: u32,
        min_side: u32,
    },
    /// A caption file is not valid UTF-8.
    #[error("caption is not valid UTF-8 (invalid byte sequence at byte offset {offset})")]
    InvalidUtf8 { offset: usize },
    /// The file could not be read at all.
    #[error("cannot read file: {detail}")]
    Unreadable { detail: String },
}

impl RejectReason {
    /// The kind of this reason, without its details.
    pub fn kind(&self) -> RejectKind {
        match self {
            Self::Empty => RejectKind::Empty,
            Self::TooManyBytes { .. } => RejectKind::TooManyBytes,
            Self::UnknownFormat => RejectKind::UnknownFormat,
            Self::TooManyPixels { .. } => RejectKind::TooManyPixels,
            Self::Truncated { .. } => RejectKind::Truncated,
            Self::Corrupt { .. } => RejectKind::Corrupt,
            Self::TooSmall { .. } => RejectKind::TooSmall,
            Self::InvalidUtf8 { .. } => RejectKind::InvalidUtf8,
            Self::Unreadable { .. } => RejectKind::Unreadable,
        }
    }
}

/// The kind of a [`RejectReason`], for records, metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    Empty,
    TooManyBytes,
    UnknownFormat,
    TooManyPixels,
    Truncated,
    Corrupt,
    TooSmall,
    InvalidUtf8,
    Unreadable,
}

impl RejectKind {
    /// A stable snake_case name for this kind (the same as its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooManyBytes => "too_many_bytes",
            Self::UnknownFormat => "unknown_format",
            Self::TooManyPixels => "too_many_pixels",
            Self::Truncated => "truncated",
            Self::Corrupt => "corrupt",
            Self::TooSmall => "too_small",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::Unreadable => "unreadable",
        }
    }
}

impl fmt::Display for RejectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The conventional upper-case name of an image format ("PNG", "JPEG").
pub fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "PNG",
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Gif => "GIF",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::Avif => "AVIF",
        ImageFormat::Qoi => "QOI",
        ImageFormat::Pnm => "PNM",
        ImageFormat::Tga => "TGA",
        ImageFormat::Dds => "DDS",
        ImageFormat::Hdr => "HDR",
        ImageFormat::OpenExr => "OpenEXR",
        ImageFormat::Ico => "ICO",
        ImageFormat::Farbfeld => "farbfeld",
        _ => "image",
    }
}
