//! Image quality: PSNR over RGB and SSIM on luma.
//!
//! Both take images as `f32` values in [0, 1] (data range 1).
//!
//! - PSNR = 10·log₁₀(1 / MSE), the MSE over every R, G and B value.
//! - SSIM is Wang et al. (2004)'s index with their standard parameters, on
//!   the luma Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601): local means,
//!   variances and covariance under an 11×11 Gaussian window of σ = 1.5
//!   (normalised to sum 1), population (biased) moments, K₁ = 0.01,
//!   K₂ = 0.03, C₁ = (K₁·1)², C₂ = (K₂·1)², the SSIM map evaluated where the
//!   window fits entirely inside the image ("valid"), then averaged. This is
//!   scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
//!   use_sample_covariance=False, data_range=1)` on the luma channel, up to
//!   its border handling (it pads, then crops the border).

/// An RGB image as `f32` values in [0, 1], row-major, channels interleaved.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbF32 {
    pub width: usize,
    pub height: usize,
    /// `height × width × 3` values.
    pub values: Vec<f32>,
}

/// Side of the SSIM window.
pub const SSIM_WINDOW: usize = 11;
/// Standard deviation of the SSIM window's Gaussian.
pub const SSIM_SIGMA: f64 = 1.5;
const K1: f64 = 0.01;
const K2: f64 = 0.03;

impl RgbF32 {
    /// From 8-bit RGB.
    pub fn from_image(image: &image::RgbImage) -> Self {
        Self {
            width: image.width() as usize,
            height: image.height() as usize,
            values: image
                .as_raw()
                .iter()
                .map(|&v| f32::from(v) / 255.0)
                .collect(),
        }
    }

    /// From planar `[3, H, W]` values in [-1, 1] (the codecs' pixel space),
    /// clamped to that range first.
    pub fn from_planar_signed(planes: &[f32], height: usize, width: usize) -> Self {
        let plane = height * width;
        let values = (0..plane)
            .flat_map(|p| (0..3).map(move |c| p + c * plane))
            .map(|i| (planes[i].clamp(-1.0, 1.0) + 1.0) / 2.0)
            .collect();
        Self {
            width,
            height,
            values,
        }
    }

    /// The luma plane, in f64.
    fn luma(&self) -> Vec<f64> {
        self.values
            .chunks_exact(3)
            .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
            .collect()
    }

    fn same_size(&self, other: &Self) -> Result<(), String> {
        if (self.width, self.height) != (other.width, other.height)
            || self.values.len() != other.values.len()
            || self.values.len() != self.width * self.height * 3
        {
            return Err(format!(
                "images of {}x{} and {}x{} cannot be compared",
                self.width, self.height, other.width, other.height
            ));
        }
        Ok(())
    }
}

/// Peak signal-to-noise ratio in dB (infinite for identical images).
pub fn psnr(a: &RgbF32, b: &RgbF32) -> Result<f64, String> {
    a.same_size(b)?;
    let count = a.values.len().max(1) as f64;
    let mse = a
        .values
        .iter()
        .zip(&b.values)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / count;
    Ok(10.0 * (1.0 / mse).log10())
}

/// Mean SSIM of the luma of `a` and `b` (see the module docs). Needs images
/// of at least 11×11 pixels.
pub fn ssim(a: &RgbF32, b: &RgbF32) -> Result<f64, String> {
    a.same_size(b)?;
    if a.width < SSIM_WINDOW || a.height < SSIM_WINDOW {
        return Err(format!(
            "SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, the images are {}x{}",
            a.width, a.height
        ));
    }
    let (x, y) = (a.luma(), b.luma());
    let window = gaussian_window();
    let (w, h) = (a.width, a.height);
    let products = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
        x.iter().zip(&y).map(|(&p, &q)| f(p, q)).collect()
    };
    let mean_x = filter_valid(&x, w, h, &window);
    let mean_y = filter_valid(&y, w, h, &window);
    let xx = filter_valid(&products(&|p, _| p * p), w, h, &window);
    let yy = filter_valid(&products(&|_, q| q * q), w, h, &window);
    let xy = filter_valid(&products(&|p, q| p * q), w, h, &window);
    let (c1, c2) = (K1 * K1, K2 * K2);
    let count = mean_x.len();
    let total: f64 = (0..count)
        .map(|i| {
            let (mx, my) = (mean_x[i], mean_y[i]);
            let (vx, vy, cov) = (xx[i] - mx * mx, yy[i] - my * my, xy[i] - mx * my);
            ((2.0 * mx * my + c1) * (2.0 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        })
        .sum();
    Ok(total / count as f64)
}

/// The normalised 1-D Gaussian of the SSIM window.
fn gaussian_window() -> Vec<f64> {
    let centre = (SSIM_WINDOW - 1) as f64 / 2.0;
    let raw: Vec<f64> = (0..SSIM_WINDOW)
        .map(|i| (-(i as f64 - centre).powi(2) / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp())
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.into_iter().map(|v| v / sum).collect()
}

/// Separable correlation with `window` along rows then columns, keeping
/// only positions where it fits: `(h − k + 1) × (w − k + 1)` values.
fn filter_valid(plane: &[f64], width: usize, height: usize, window: &[f64]) -> Vec<f64> {
    let k = window.len();
    let out_w = width - k + 1;
    let out_h = height - k + 1;
    let mut rows = vec![0.0; height * out_w];
    for y in 0..height {
        for x in 0..out_w {
            rows[y * out_w + x] = (0..k).map(|i| window[i] * plane[y * width + x + i]).sum();
        }
    }
    let mut out = vec![0.0; out_h * out_w];
    for y in 0..out_h {
        for x in 0..out_w {
            out[y * out_w + x] = (0..k).map(|i| window[i] * rows[(y + i) * out_w + x]).sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(width: usize, height: usize, f: impl Fn(usize, usize, usize) -> f32) -> RgbF32 {
        let values = (0..height)
            .flat_map(|y| (0..width).flat_map(move |x| (0..3).map(move |c| (x, y, c))))
            .map(|(x, y, c)| f(x, y, c))
            .collect();
        RgbF32 {
            width,
            height,
            values,
        }
    }

    #[test]
    fn identical_images_are_perfect() {
        let a = image(16, 12, |x, y, c| ((x * 7 + y * 3 + c) % 11) as f32 / 10.0);
        assert_eq!(psnr(&a, &a).unwrap(), f64::INFINITY);
        assert!((ssim(&a, &a).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn psnr_of_a_uniform_error() {
        let a = image(4, 4, |_, _, _| 0.5);
        let b = image(4, 4, |_, _, _| 0.6);
        // MSE 0.01 → 20 dB.
        assert!((psnr(&a, &b).unwrap() - 20.0).abs() < 1e-5);
    }

    #[test]
    fn ssim_falls_with_distortion_and_checks_sizes() {
        let a = image(20, 20, |x, y, _| ((x / 4 + y / 4) % 2) as f32);
        let blurred = image(20, 20, |x, y, _| 0.25 + 0.5 * ((x / 4 + y / 4) % 2) as f32);
        let flat = image(20, 20, |_, _, _| 0.5);
        let s_blur = ssim(&a, &blurred).unwrap();
        let s_flat = ssim(&a, &flat).unwrap();
        assert!(s_blur < 1.0 && s_flat < s_blur, "{s_blur} {s_flat}");
        assert!(ssim(&image(10, 20, |_, _, _| 0.0), &image(10, 20, |_, _, _| 0.0)).is_err());
        assert!(psnr(&a, &image(20, 21, |_, _, _| 0.0)).is_err());
    }

    #[test]
    fn planar_signed_values_are_interleaved_and_clamped() {
        let planes = [-1.0, 1.0, 0.0, 2.0, -3.0, 0.5];
        let rgb = RgbF32::from_planar_signed(&planes, 1, 2);
        assert_eq!(rgb.values, vec![0.0, 0.5, 0.0, 1.0, 1.0, 0.75]);
        let window = gaussian_window();
        assert!((window.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    }
}
