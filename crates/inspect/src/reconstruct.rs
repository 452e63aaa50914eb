//! `ssdit vae reconstruct`: image → codec → image in f32, the seed's
//! `scripts/debug_vae_pipeline.py` made measurable: PSNR and SSIM (see
//! [`crate::metrics`]) between the input and its reconstruction, and a
//! side-by-side picture of input, reconstruction and amplified error.

use std::path::Path;

use burn::prelude::*;
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use ssdit_data::validate::{ValidationConfig, read_limited, validate};
use ssdit_data::{DecodeConfig, decode};
use ssdit_render::{Panel, side_by_side};
use ssdit_vae::{LatentCodec, Sampling, images_to_tensor, tensor_to_images};

use crate::metrics::{RgbF32, psnr, ssim};
use crate::{Error, Result};

/// How much the error panel amplifies |original − reconstruction|.
pub const ERROR_GAIN: f32 = 4.0;

/// One image through the codec and back.
#[derive(Debug, Clone)]
pub struct Reconstruction {
    /// The input, as encoded (resized and cropped to the codec's multiple).
    pub original: RgbImage,
    /// The decoded image.
    pub decoded: RgbImage,
    /// In dB, over RGB in [0, 1], from the f32 decoder output (clamped).
    pub psnr: f64,
    /// Mean SSIM on luma.
    pub ssim: f64,
    /// Latent shape `[C, h, w]`.
    pub latent_shape: [usize; 3],
}

/// Reads an image file (any format the pipeline accepts), downscales it so
/// its longer side is at most `max_side` (Lanczos3), and centre-crops it to
/// multiples of `multiple`.
pub fn load_image(path: &Path, max_side: u32, multiple: u32) -> Result<RgbImage> {
    let fail = |reason: String| Error::Image {
        path: path.to_path_buf(),
        reason,
    };
    let validation = ValidationConfig {
        min_side: multiple.max(1),
        ..ValidationConfig::default()
    };
    let bytes = read_limited(path, validation.max_bytes).map_err(|r| fail(r.to_string()))?;
    let header = validate(&bytes, &validation).map_err(|r| fail(r.to_string()))?;
    let image = decode(&bytes, &header, &validation, &DecodeConfig::default())
        .map_err(|r| fail(r.to_string()))?;
    let (width, height) = image.dimensions();
    let longer = width.max(height);
    let image = if longer > max_side {
        let scale = f64::from(max_side) / f64::from(longer);
        let w = ((f64::from(width) * scale).round() as u32).max(1);
        let h = ((f64::from(height) * scale).round() as u32).max(1);
        imageops::resize(&image, w, h, FilterType::Lanczos3)
    } else {
        image
    };
    let multiple = multiple.max(1);
    let (w, h) = (
        image.width() / multiple * multiple,
        image.height() / multiple * multiple,
    );
    if w == 0 || h == 0 {
        return Err(fail(format!(
            "{}x{} is smaller than one {multiple}x{multiple} latent cell",
            image.width(),
            image.height()
        )));
    }
    let (x, y) = ((image.width() - w) / 2, (image.height() - h) / 2);
    Ok(imageops::crop_imm(&image, x, y, w, h).to_image())
}

/// Encodes `image` with the posterior mean, decodes it, and measures.
pub fn reconstruct<B: Backend>(
    codec: &dyn LatentCodec<B>,
    image: &RgbImage,
    device: &Device<B>,
) -> Result<Reconstruction> {
    let input = images_to_tensor::<B>(std::slice::from_ref(image), device)?;
    let latent = codec.encode(input.clone(), &Sampling::Mean)?;
    let [_, c, h, w] = latent.dims();
    let output = codec.decode(latent)?;
    let [_, _, out_h, out_w] = output.dims();
    if (out_w as u32, out_h as u32) != image.dimensions() {
        return Err(Error::Input(format!(
            "the codec decoded {}x{} pixels to {out_w}x{out_h}",
            image.width(),
            image.height()
        )));
    }
    let values = |t: Tensor<B, 4>| -> Result<Vec<f32>> {
        t.into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| Error::Input(format!("codec output: {e:?}")))
    };
    let (height, width) = (out_h, out_w);
    let original = RgbF32::from_planar_signed(&values(input)?, height, width);
    let decoded = RgbF32::from_planar_signed(&values(output.clone())?, height, width);
    let psnr = psnr(&original, &decoded).map_err(Error::Input)?;
    let ssim = ssim(&original, &decoded).map_err(Error::Input)?;
    let decoded_image = tensor_to_images(output)?.remove(0);
    Ok(Reconstruction {
        original: image.clone(),
        decoded: decoded_image,
        psnr,
        ssim,
        latent_shape: [c, h, w],
    })
}

/// `|original − decoded| × gain`, per channel, clamped to 255.
pub fn error_map(original: &RgbImage, decoded: &RgbImage, gain: f32) -> RgbImage {
    RgbImage::from_fn(original.width(), original.height(), |x, y| {
        let (a, b) = (original.get_pixel(x, y), decoded.get_pixel(x, y));
        Rgb(std::array::from_fn(|c| {
            let diff = (f32::from(a.0[c]) - f32::from(b.0[c])).abs() * gain;
            diff.min(255.0) as u8
        }))
    })
}

/// Input | reconstruction | amplified error, titled with the figures.
pub fn comparison(name: &str, codec: &str, result: &Reconstruction) -> Result<RgbImage> {
    let title = format!(
        "{name} via {codec}: PSNR {:.2} dB, SSIM {:.4} (latent {:?})",
        result.psnr, result.ssim, result.latent_shape
    );
    Ok(side_by_side(
        &[
            Panel::new(result.original.clone(), "input"),
            Panel::new(result.decoded.clone(), "reconstruction"),
            Panel::new(
                error_map(&result.original, &result.decoded, ERROR_GAIN),
                format!("|error| x{ERROR_GAIN}"),
            ),
        ],
        Some(&title),
    )?)
}
