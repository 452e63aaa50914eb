//! Resizing a decoded image to its bucket: DPID (default) or Lanczos3, with
//! the seed's aspect-ignoring stretch or an optional aspect-preserving crop.

mod dpid;

pub use dpid::{DEFAULT_LAMBDA, dpid};

use image::RgbImage;
use image::imageops::{self, FilterType};

use crate::bucket::Bucket;
use crate::error::Result;

/// The filter that reduces an image to its bucket size.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum Downscaler {
    /// Detail-preserving downscaling with exponent `lambda` (see [`dpid`]).
    /// The seed's images were reduced with DPID before its Lanczos resize.
    /// Axes that must grow are upscaled with Lanczos3 afterwards.
    Dpid {
        /// Detail exponent λ (0 = box filter; default 0.5).
        lambda: f32,
    },
    /// Lanczos3 with an antialiasing support widened by the scale factor, as
    /// PIL's `Image.resize(..., LANCZOS)` that the seed's
    /// `transforms.Resize` calls.
    Lanczos3,
}

impl Default for Downscaler {
    fn default() -> Self {
        Self::Dpid {
            lambda: DEFAULT_LAMBDA,
        }
    }
}

/// How an image whose aspect differs from its bucket's is fitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Resize straight to the bucket size, ignoring aspect (the seed:
    /// `transforms.Resize((bh, bw))` with a tuple resizes to exactly that
    /// size). The distortion is at most the gap to the nearest bucket aspect.
    #[default]
    Stretch,
    /// Crop the centre to the bucket's aspect first, then resize: no
    /// distortion, at the cost of the image's edges.
    CenterCrop,
}

/// How images are brought to their bucket size.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResizeConfig {
    /// The filter.
    pub downscaler: Downscaler,
    /// Stretch (seed) or centre crop.
    pub fit: Fit,
}

impl ResizeConfig {
    /// Checks the values (λ finite and non-negative).
    pub fn validate(&self) -> Result<()> {
        match self.downscaler {
            Downscaler::Dpid { lambda } if !(lambda.is_finite() && lambda >= 0.0) => {
                Err(crate::Error::Config {
                    what: "dpid lambda",
                    reason: format!("{lambda} must be finite and non-negative"),
                })
            }
            _ => Ok(()),
        }
    }
}

/// Lanczos3 resize to exactly `width`×`height`.
pub fn lanczos3(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    imageops::resize(src, width, height, FilterType::Lanczos3)
}

/// Resizes `src` to exactly the bucket's size as `config` says.
pub fn resize_to_bucket(src: &RgbImage, bucket: Bucket, config: &ResizeConfig) -> Result<RgbImage> {
    let cropped;
    let src = match config.fit {
        Fit::Stretch => src,
        Fit::CenterCrop => {
            cropped = center_crop_to_aspect(src, bucket);
            &cropped
        }
    };
    resize(src, bucket.width, bucket.height, config.downscaler)
}

/// Resizes to exactly `width`×`height` with `downscaler`.
pub fn resize(src: &RgbImage, width: u32, height: u32, downscaler: Downscaler) -> Result<RgbImage> {
    if src.dimensions() == (width, height) {
        return Ok(src.clone());
    }
    match downscaler {
        Downscaler::Lanczos3 => Ok(lanczos3(src, width, height)),
        Downscaler::Dpid { lambda } => {
            let (down_w, down_h) = (width.min(src.width()), height.min(src.height()));
            let reduced = dpid(src, down_w, down_h, lambda)?;
            if (down_w, down_h) == (width, height) {
                Ok(reduced)
            } else {
                Ok(lanczos3(&reduced, width, height))
            }
        }
    }
}

/// The largest centred region of `src` with the bucket's aspect ratio.
pub fn center_crop_to_aspect(src: &RgbImage, bucket: Bucket) -> RgbImage {
    let (w, h) = (u64::from(src.width()), u64::from(src.height()));
    let (bw, bh) = (u64::from(bucket.width), u64::from(bucket.height));
    // Keep the full width if the image is taller than the bucket, else the full height.
    let (crop_w, crop_h) = if w * bh <= h * bw {
        (w, (w * bh / bw).max(1))
    } else {
        ((h * bw / bh).max(1), h)
    };
    let (x, y) = ((w - crop_w) / 2, (h - crop_h) / 2);
    imageops::crop_imm(src, x as u32, y as u32, crop_w as u32, crop_h as u32).to_image()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        })
    }

    #[test]
    fn every_method_and_fit_gives_the_exact_bucket_size() {
        let bucket = Bucket {
            width: 64,
            height: 48,
        };
        for (w, h) in [(200, 90), (90, 200), (40, 30), (70, 40)] {
            for downscaler in [Downscaler::default(), Downscaler::Lanczos3] {
                for fit in [Fit::Stretch, Fit::CenterCrop] {
                    let config = ResizeConfig { downscaler, fit };
                    let out = resize_to_bucket(&gradient(w, h), bucket, &config).unwrap();
                    assert_eq!(out.dimensions(), (64, 48), "{w}x{h} {config:?}");
                }
            }
        }
    }

    #[test]
    fn invalid_lambda_is_a_config_error() {
        for lambda in [-0.5, f32::NAN, f32::INFINITY] {
            let config = ResizeConfig {
                downscaler: Downscaler::Dpid { lambda },
                fit: Fit::Stretch,
            };
            assert!(config.validate().is_err(), "{lambda}");
        }
        assert!(ResizeConfig::default().validate().is_ok());
    }

    #[test]
    fn center_crop_keeps_the_bucket_aspect_and_the_middle() {
        let bucket = Bucket {
            width: 512,
            height: 384,
        };
        let wide = center_crop_to_aspect(&gradient(200, 90), bucket);
        assert_eq!(wide.dimensions(), (120, 90));
        assert_eq!(wide.get_pixel(0, 0).0[0], 40);
        let tall = center_crop_to_aspect(&gradient(90, 200), bucket);
        assert_eq!(tall.dimensions(), (90, 67));
        assert_eq!(tall.get_pixel(0, 0).0[1], 66);
    }
}
