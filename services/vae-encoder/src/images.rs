//! Image files in, with ssdit-data's checks: the header is validated (byte
//! limit, format from the content, truncation, pixel limit) before any pixel
//! is decoded, so a request or a stored sample never makes the service
//! allocate more than its limits allow.

use image::RgbImage;
use ssdit_data::{DecodeConfig, ImageHeader, RejectReason, ValidationConfig};

/// The limits an image is read under: at most `max_bytes` bytes and
/// `max_pixels` pixels, any size from one pixel up.
pub fn limits(max_bytes: u64, max_pixels: u64) -> ValidationConfig {
    ValidationConfig {
        max_bytes,
        max_pixels,
        min_side: 1,
    }
}

/// Validates an image file from its header alone (nothing is decoded).
pub fn header(bytes: &[u8], limits: &ValidationConfig) -> Result<ImageHeader, RejectReason> {
    ssdit_data::validate(bytes, limits)
}

/// Decodes a validated file to 8-bit RGB, its pixels as stored (no EXIF
/// rotation, so the size is the header's), alpha composited onto
/// `background`.
pub fn decode_rgb(
    bytes: &[u8],
    header: &ImageHeader,
    limits: &ValidationConfig,
    background: [u8; 3],
) -> Result<RgbImage, RejectReason> {
    let config = DecodeConfig {
        background,
        apply_orientation: false,
    };
    ssdit_data::decode(bytes, header, limits, &config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssdit_data::RejectKind;
    use ssdit_render::encode_png;

    #[test]
    fn pngs_decode_and_bad_files_are_named() {
        let image = RgbImage::from_fn(16, 8, |x, y| image::Rgb([x as u8 * 10, y as u8 * 20, 7]));
        let png = encode_png(&image).unwrap();
        let roomy = limits(1 << 20, 128);
        let head = header(&png, &roomy).unwrap();
        assert_eq!((head.width, head.height), (16, 8));
        assert_eq!(decode_rgb(&png, &head, &roomy, [0; 3]).unwrap(), image);
        let kind =
            |bytes: &[u8], limits: &ValidationConfig| header(bytes, limits).unwrap_err().kind();
        assert_eq!(kind(&png, &limits(1 << 20, 100)), RejectKind::TooManyPixels);
        assert_eq!(kind(&png, &limits(10, 128)), RejectKind::TooManyBytes);
        assert_eq!(kind(b"not an image", &roomy), RejectKind::UnknownFormat);
        assert_eq!(kind(&png[..png.len() / 2], &roomy), RejectKind::Truncated);
    }
}
