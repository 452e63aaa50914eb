//! 8-bit RGB images ↔ `[B, 3, H, W]` tensors in [-1, 1], with the seed's
//! exact arithmetic (torchvision `to_tensor` + `normalize([0.5], [0.5])` on
//! the way in; `(x / 2 + 0.5).clamp(0, 1) · 255` rounded half-to-even, as
//! numpy's `round`, on the way out — all in f32).

use burn::prelude::*;
use image::RgbImage;

use crate::{Error, Result};

/// Stacks equally sized RGB images into `[B, 3, H, W]` with values in [-1, 1].
pub fn images_to_tensor<B: Backend>(
    images: &[RgbImage],
    device: &Device<B>,
) -> Result<Tensor<B, 4>> {
    let first = images.first().ok_or_else(|| Error::Input {
        what: "images",
        expected: "at least one image".into(),
        found: "none".into(),
    })?;
    let (width, height) = first.dimensions();
    let (w, h) = (width as usize, height as usize);
    let mut values = Vec::with_capacity(images.len() * 3 * h * w);
    for (index, image) in images.iter().enumerate() {
        if image.dimensions() != (width, height) {
            return Err(Error::Input {
                what: "images",
                expected: format!("every image {width}×{height} like the first"),
                found: format!("image {index} is {}×{}", image.width(), image.height()),
            });
        }
        let raw = image.as_raw();
        for channel in 0..3 {
            values.extend(
                raw.iter()
                    .skip(channel)
                    .step_by(3)
                    .map(|&v| (f32::from(v) / 255.0 - 0.5) / 0.5),
            );
        }
    }
    let shape = [images.len(), 3, h, w];
    Ok(Tensor::from_data(TensorData::new(values, shape), device))
}

/// Converts `[B, 3, H, W]` tensors (roughly in [-1, 1]) to 8-bit RGB images.
pub fn tensor_to_images<B: Backend>(images: Tensor<B, 4>) -> Result<Vec<RgbImage>> {
    let [batch, channels, h, w] = images.dims();
    if channels != 3 {
        return Err(Error::shape(
            "images to convert",
            "[batch, 3, H, W]",
            &images.dims(),
        ));
    }
    let values = images
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| Error::Input {
            what: "images to convert",
            expected: "float values".into(),
            found: format!("{e:?}"),
        })?;
    let plane = h * w;
    let to_u8 = |x: f32| ((x / 2.0 + 0.5).clamp(0.0, 1.0) * 255.0).round_ties_even() as u8;
    let mut out = Vec::with_capacity(batch);
    for b in 0..batch {
        let planes = &values[b * 3 * plane..(b + 1) * 3 * plane];
        let pixels = (0..plane)
            .flat_map(|p| (0..3).map(move |c| to_u8(planes[c * plane + p])))
            .collect();
        let image = RgbImage::from_raw(w as u32, h as u32, pixels)
            .expect("buffer holds exactly width·height·3 values");
        out.push(image);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    #[test]
    fn every_byte_round_trips() {
        let device = Default::default();
        let pixels: Vec<u8> = (0..=255u8).flat_map(|v| [v, 255 - v, v / 2]).collect();
        let image = RgbImage::from_raw(16, 16, pixels).unwrap();
        let tensor = images_to_tensor::<B>(&[image.clone(), image.clone()], &device).unwrap();
        assert_eq!(tensor.dims(), [2, 3, 16, 16]);
        let values = tensor.to_data().to_vec::<f32>().unwrap();
        assert_eq!(values[0], -1.0);
        assert_eq!(values[255], 1.0);
        let back = tensor_to_images(tensor).unwrap();
        assert_eq!(back, vec![image.clone(), image]);
    }

    #[test]
    fn rounds_half_to_even_and_clamps() {
        let device = Default::default();
        // This f32 maps to exactly 126.5 before rounding: numpy gives 126
        // (half to even), round-half-away would give 127.
        let half = f32::from_bits(0xbc00_8060);
        // 0.0 maps to exactly 127.5 → 128 either way; ±3 clamp.
        let values = [half, 0.0, -3.0, 3.0, -1.0, 1.0];
        let tensor = Tensor::<B, 1>::from_floats(values, &device).reshape([1, 3, 1, 2]);
        let image = &tensor_to_images(tensor).unwrap()[0];
        // Pixel 0 takes values 0, 2, 4 (R, G, B planes); pixel 1 takes 1, 3, 5.
        let got: Vec<u8> = image.pixels().flat_map(|p| p.0).collect();
        assert_eq!(got, vec![126, 0, 0, 128, 255, 255]);
    }

    #[test]
    fn mismatched_sizes_and_channels_are_errors() {
        let device = Default::default();
        let a = RgbImage::new(8, 8);
        let b = RgbImage::new(8, 16);
        let err = images_to_tensor::<B>(&[a, b], &device).unwrap_err();
        assert!(err.to_string().contains("image 1 is 8×16"), "{err}");
        assert!(images_to_tensor::<B>(&[], &device).is_err());
        let err = tensor_to_images(Tensor::<B, 4>::zeros([1, 4, 2, 2], &device)).unwrap_err();
        assert!(err.to_string().contains("[batch, 3, H, W]"), "{err}");
    }
}
