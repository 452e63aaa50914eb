//! The preview codec on real photos (`shared/data/photos`, each at its own
//! size cropped to multiples of 8) and on synthetic images made only of the
//! frequencies it keeps.

use std::path::PathBuf;

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::Distribution;
use image::RgbImage;
use ssdit_testkit::shared_data;
use ssdit_vae::{
    LatentCodec, PREVIEW_CHANNELS, PreviewCodec, Sampling, images_to_tensor, tensor_to_images,
};

type B = NdArray<f32>;

/// Every photo, cropped (top-left) to multiples of 8, by file name.
fn photos() -> Vec<(String, RgbImage)> {
    let dir = shared_data("photos");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("sample photos missing at {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 6,
        "expected the six sample photos in {}",
        dir.display()
    );
    paths
        .into_iter()
        .map(|path| {
            let image = image::open(&path).unwrap().to_rgb8();
            let (w, h) = (image.width() / 8 * 8, image.height() / 8 * 8);
            let cropped = image::imageops::crop_imm(&image, 0, 0, w, h).to_image();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                cropped,
            )
        })
        .collect()
}

fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    let squared: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    let mse = squared / a.as_raw().len() as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

#[test]
fn photos_round_trip_with_usable_quality() {
    let device = Default::default();
    let codec = PreviewCodec::<B>::new(&device);
    let mut flower = None;
    for (name, photo) in photos() {
        let images = images_to_tensor::<B>(std::slice::from_ref(&photo), &device).unwrap();
        let latents = LatentCodec::encode(&codec, images, &Sampling::Mean).unwrap();
        assert_eq!(
            latents.dims(),
            [
                1,
                16,
                photo.height() as usize / 8,
                photo.width() as usize / 8
            ]
        );
        let decoded = tensor_to_images(LatentCodec::decode(&codec, latents).unwrap()).unwrap();
        let quality = psnr(&photo, &decoded[0]);
        println!(
            "preview round trip {name:<16} {}×{}  PSNR {quality:.2} dB",
            photo.width(),
            photo.height()
        );
        assert!(quality >= 20.0, "{name}: {quality:.2} dB");
        if name == "flower.jpg" {
            flower = Some(quality);
        }
    }
    let flower = flower.expect("flower.jpg among the photos");
    assert!(flower >= 24.0, "flower.jpg: {flower:.2} dB");
}

#[test]
fn latents_have_roughly_unit_std() {
    let device = Default::default();
    let codec = PreviewCodec::<B>::new(&device);
    let mut sums = [0f64; PREVIEW_CHANNELS];
    let mut squares = [0f64; PREVIEW_CHANNELS];
    let mut count = 0f64;
    for (_, photo) in photos() {
        let images = images_to_tensor::<B>(&[photo], &device).unwrap();
        let latents = codec.encode(images).unwrap();
        let [_, c, h, w] = latents.dims();
        let values = latents.into_data().to_vec::<f32>().unwrap();
        for (channel, plane) in values.chunks_exact(h * w).enumerate().take(c) {
            for &v in plane {
                sums[channel] += f64::from(v);
                squares[channel] += f64::from(v).powi(2);
            }
        }
        count += (h * w) as f64;
    }
    let stds: Vec<f64> = (0..PREVIEW_CHANNELS)
        .map(|c| {
            let mean = sums[c] / count;
            (squares[c] / count - mean * mean).sqrt()
        })
        .collect();
    let means: Vec<String> = sums.iter().map(|s| format!("{:.2}", s / count)).collect();
    let shown: Vec<String> = stds.iter().map(|s| format!("{s:.3}")).collect();
    println!("preview latent std per channel: {}", shown.join(" "));
    println!("preview latent mean per channel: {}", means.join(" "));
    for (channel, std) in stds.iter().enumerate() {
        assert!((0.3..=3.0).contains(std), "channel {channel}: std {std}");
    }
}

#[test]
fn kept_frequencies_round_trip_exactly() {
    let device = Default::default();
    let codec = PreviewCodec::<B>::new(&device);
    // Any latent decodes to an image made only of the kept frequencies;
    // encoding that image must give the latent back, batched or not.
    let latents = Tensor::<B, 4>::random([2, 16, 5, 7], Distribution::Normal(0.0, 1.0), &device);
    let images = codec.decode(latents.clone()).unwrap();
    assert_eq!(images.dims(), [2, 3, 40, 56]);
    let again = codec.encode(images.clone()).unwrap();
    again
        .into_data()
        .assert_approx_eq::<f32>(&latents.to_data(), burn::tensor::Tolerance::absolute(1e-4));
    let second = codec
        .encode(images.clone().slice([1..2, 0..3, 0..40, 0..56]))
        .unwrap();
    second.into_data().assert_approx_eq::<f32>(
        &latents.slice([1..2, 0..16, 0..5, 0..7]).into_data(),
        burn::tensor::Tolerance::absolute(1e-4),
    );
    let redecoded = codec.decode(codec.encode(images.clone()).unwrap()).unwrap();
    redecoded
        .into_data()
        .assert_approx_eq::<f32>(&images.into_data(), burn::tensor::Tolerance::absolute(1e-4));
}

#[test]
fn dropped_frequencies_encode_to_zero() {
    let device = Default::default();
    let codec = PreviewCodec::<B>::new(&device);
    // Every 8×8 block of every channel holds the DCT basis function of
    // frequency (u, v) = (4, 3), zig-zag index 32: far past the 10 luma and
    // 3 chroma coefficients kept.
    let basis = |f: usize, p: usize| {
        let alpha = if f == 0 { (1.0f64 / 8.0).sqrt() } else { 0.5 };
        alpha * ((2 * p + 1) as f64 * f as f64 * std::f64::consts::PI / 16.0).cos()
    };
    let values: Vec<f32> = (0..3 * 16 * 16)
        .map(|i| {
            let (y, x) = ((i / 16) % 16, i % 16);
            (basis(4, y % 8) * basis(3, x % 8)) as f32
        })
        .collect();
    let image = Tensor::<B, 4>::from_data(TensorData::new(values, [1, 3, 16, 16]), &device);
    let latents = codec.encode(image).unwrap();
    let largest = latents.abs().max().into_scalar();
    assert!(largest < 1e-5, "{largest}");
}

#[test]
fn describes_itself_as_a_stand_in() {
    let codec = PreviewCodec::<B>::new(&Default::default());
    let text = codec.to_string();
    assert!(
        text.contains("stand-in") && text.contains("NOT the FLUX VAE"),
        "{text}"
    );
    assert_eq!(codec.fingerprint(), ssdit_vae::PREVIEW_FINGERPRINT);
}
