//! Decoding a validated image to 8-bit RGB: EXIF orientation applied,
//! grayscale / 16-bit / float / CMYK converted, alpha composited on a
//! background colour.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::reject::RejectReason;
use crate::validate::{ImageHeader, ValidationConfig};

/// How a validated image is turned into 8-bit RGB.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    /// Colour that transparent pixels are composited onto (sRGB, 8-bit).
    pub background: [u8; 3],
    /// Rotate/flip by the EXIF orientation tag. The seed's PIL pipeline does
    /// not (PIL's `convert("RGB")` ignores EXIF); cameras and phones rely on
    /// it, so it is on by default.
    pub apply_orientation: bool,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            background: [255, 255, 255],
            apply_orientation: true,
        }
    }
}

/// Decodes an image that passed [`crate::validate`] into 8-bit RGB.
///
/// JPEG CMYK/YCCK is converted to RGB by the decoder itself (zune-jpeg);
/// every other layout is converted here: grayscale is replicated, 16-bit and
/// float samples are rounded to 8 bits, and alpha is composited onto
/// `config.background` in sRGB as image editors do.
pub fn decode(
    bytes: &[u8],
    header: &ImageHeader,
    validation: &ValidationConfig,
    config: &DecodeConfig,
) -> Result<RgbImage, RejectReason> {
    let failure = |e| crate::validate::decode_failure(header.format, e);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), header.format);
    reader.limits(validation.decoder_limits());
    let mut decoder = reader.into_decoder().map_err(failure)?;
    let orientation = decoder.orientation().map_err(failure)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(failure)?;
    if config.apply_orientation {
        image.apply_orientation(orientation);
    }
    Ok(to_rgb8(image, config.background))
}

/// Converts any decoded layout to 8-bit RGB, compositing alpha onto `background`.
pub fn to_rgb8(image: DynamicImage, background: [u8; 3]) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba32f();
    let bg = background.map(|c| f32::from(c) / 255.0);
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let a = a.clamp(0.0, 1.0);
        let over = |c: f32, bg: f32| {
            let v = c.clamp(0.0, 1.0) * a + bg * (1.0 - a);
            (v * 255.0).round() as u8
        };
        image::Rgb([over(r, bg[0]), over(g, bg[1]), over(b, bg[2])])
    })
}
