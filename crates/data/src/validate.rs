//! Validation before decoding: byte limit, empty files, content-sniffed
//! format, truncation, pixel limit and minimum size, all decided from the
//! bytes and the header without decoding any pixels.

use std::io::{Cursor, Read};
use std::path::Path;

use image::{ImageError, ImageFormat, ImageReader};

use crate::completeness;
use crate::reject::RejectReason;

/// Limits an input image must satisfy before it is decoded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationConfig {
    /// Largest accepted file, in bytes.
    pub max_bytes: u64,
    /// Largest accepted width × height, read from the header. Anything above
    /// is refused without decoding (decompression bombs).
    pub max_pixels: u64,
    /// Smallest accepted shorter side, in pixels: images this small would be
    /// upscaled several times to reach even the smallest bucket.
    pub min_side: u32,
}

/// Default byte limit: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// Default pixel limit: 8192 × 8192.
pub const DEFAULT_MAX_PIXELS: u64 = 8192 * 8192;
/// Default minimum shorter side: 256 px, the smallest supported target resolution.
pub const DEFAULT_MIN_SIDE: u32 = 256;

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_pixels: DEFAULT_MAX_PIXELS,
            min_side: DEFAULT_MIN_SIDE,
        }
    }
}

impl ValidationConfig {
    /// The decoder memory limit that goes with `max_pixels`: room for the
    /// largest accepted image at 16 bytes per pixel (RGBA, 32-bit float), the
    /// widest layout a decoder produces.
    pub fn decoder_limits(&self) -> image::Limits {
        let mut limits = image::Limits::default();
        limits.max_alloc = Some(self.max_pixels.saturating_mul(16).max(1 << 20));
        limits
    }
}

/// What the header says about an image that passed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// The format detected from the content.
    pub format: ImageFormat,
    /// Width as stored (before any EXIF orientation is applied).
    pub width: u32,
    /// Height as stored (before any EXIF orientation is applied).
    pub height: u32,
}

/// Reads a whole file, refusing it before reading when it is over the byte
/// limit, and refusing it after reading if it grew past the limit meanwhile.
pub fn read_limited(path: &Path, max_bytes: u64) -> Result<Vec<u8>, RejectReason> {
    let unreadable = |e: std::io::Error| RejectReason::Unreadable {
        detail: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let len = file.metadata().map_err(unreadable)?.len();
    check_size(len, max_bytes)?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    check_size(bytes.len() as u64, max_bytes)?;
    Ok(bytes)
}

fn check_size(len: u64, max_bytes: u64) -> Result<(), RejectReason> {
    match len {
        0 => Err(RejectReason::Empty),
        bytes if bytes > max_bytes => Err(RejectReason::TooManyBytes {
            bytes,
            max: max_bytes,
        }),
        _ => Ok(()),
    }
}

/// Validates an image's bytes from its header alone: not empty, within the
/// byte limit, a format recognised from the content, within the pixel limit
/// (before anything else is parsed, so a decompression bomb is named as
/// such), structurally complete, and at least the minimum size.
pub fn validate(bytes: &[u8], config: &ValidationConfig) -> Result<ImageHeader, RejectReason> {
    check_size(bytes.len() as u64, config.max_bytes)?;
    let format = image::guess_format(bytes).map_err(|_| RejectReason::UnknownFormat)?;
    let complete = completeness::check(format, bytes);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(config.decoder_limits());
    let (width, height) = reader.into_dimensions().map_err(|e| match &complete {
        Err(detail) => RejectReason::Truncated {
            format,
            detail: detail.clone(),
        },
        Ok(()) => decode_failure(format, e),
    })?;
    let header = ImageHeader {
        format,
        width,
        height,
    };
    check_pixels(&header, config)?;
    complete.map_err(|detail| RejectReason::Truncated { format, detail })?;
    check_min_side(&header, config)?;
    Ok(header)
}

fn check_pixels(header: &ImageHeader, config: &ValidationConfig) -> Result<(), RejectReason> {
    let (width, height) = (header.width, header.height);
    if u64::from(width) * u64::from(height) > config.max_pixels {
        return Err(RejectReason::TooManyPixels {
            format: header.format,
            width,
            height,
            max: config.max_pixels,
        });
    }
    Ok(())
}

/// The shorter side must reach `min_side`, and never be zero.
fn check_min_side(header: &ImageHeader, config: &ValidationConfig) -> Result<(), RejectReason> {
    let (width, height) = (header.width, header.height);
    if width.min(height) < config.min_side.max(1) {
        return Err(RejectReason::TooSmall {
            width,
            height,
            min_side: config.min_side.max(1),
        });
    }
    Ok(())
}

/// Classifies a decoder error: running out of data is truncation, anything
/// else is corrupt data.
pub(crate) fn decode_failure(format: ImageFormat, error: ImageError) -> RejectReason {
    let detail = error.to_string();
    let truncated = match &error {
        ImageError::IoError(e) => e.kind() == std::io::ErrorKind::UnexpectedEof,
        _ => {
            let lower = detail.to_lowercase();
            lower.contains("eof") || lower.contains("end of file") || lower.contains("truncated")
        }
    };
    if truncated {
        RejectReason::Truncated { format, detail }
    } else {
        RejectReason::Corrupt { format, detail }
    }
}
