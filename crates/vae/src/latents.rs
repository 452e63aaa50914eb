//! The latent conventions of the seed (`latents.py`, `preprocess.py`):
//! the VAE's latent is multiplied by `scaling_factor` (optionally after
//! subtracting diffusers' `shift_factor`) before it is cached, and the
//! dataset loader normalises cached latents by a dataset mean and std
//! (0 and 1 by default). Decoding applies the exact inverses in reverse order.

use burn::prelude::*;

use crate::AutoencoderKlConfig;

/// VAE space ↔ cache space: `(z − shift) · scale` and its inverse.
///
/// The seed multiplies by `scaling_factor` only ([`VaeScaling::seed`]);
/// diffusers' FLUX pipelines also subtract `shift_factor` first
/// ([`VaeScaling::with_shift`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VaeScaling {
    /// Multiplies the (shifted) VAE latent.
    pub scaling_factor: f64,
    /// Subtracted from the VAE latent before scaling (0 for none).
    pub shift_factor: f64,
}

impl VaeScaling {
    /// The seed's convention: `z · scaling_factor`, no shift.
    pub fn seed(config: &AutoencoderKlConfig) -> Self {
        Self {
            scaling_factor: config.scaling_factor,
            shift_factor: 0.0,
        }
    }

    /// diffusers' FLUX convention: `(z − shift_factor) · scaling_factor`
    /// (no shift when the config has none).
    pub fn with_shift(config: &AutoencoderKlConfig) -> Self {
        Self {
            scaling_factor: config.scaling_factor,
            shift_factor: config.shift_factor.unwrap_or(0.0),
        }
    }

    /// Whether a shift is applied.
    pub fn is_shifted(&self) -> bool {
        self.shift_factor != 0.0
    }

    /// VAE latent → cached latent.
    pub fn scale<B: Backend, const D: usize>(&self, z: Tensor<B, D>) -> Tensor<B, D> {
        (z - self.shift_factor) * self.scaling_factor
    }

    /// Cached latent → VAE latent (the inverse of [`VaeScaling::scale`]).
    pub fn unscale<B: Backend, const D: usize>(&self, z: Tensor<B, D>) -> Tensor<B, D> {
        z / self.scaling_factor + self.shift_factor
    }
}

/// Cache space ↔ model space: `(z − mean) / std` and its inverse (the seed's
/// `normalize_latents` / `denormalize_latents`, `Config.dataset_mean/std`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DatasetNormalization {
    /// Dataset latent mean (seed default 0).
    pub mean: f64,
    /// Dataset latent std (seed default 1).
    pub std: f64,
}

impl Default for DatasetNormalization {
    fn default() -> Self {
        Self {
            mean: 0.0,
            std: 1.0,
        }
    }
}

impl DatasetNormalization {
    /// Cached latent → what the diffusion model trains on.
    pub fn normalize<B: Backend, const D: usize>(&self, z: Tensor<B, D>) -> Tensor<B, D> {
        (z - self.mean) / self.std
    }

    /// Model output → cached latent (the inverse of [`DatasetNormalization::normalize`]).
    pub fn denormalize<B: Backend, const D: usize>(&self, z: Tensor<B, D>) -> Tensor<B, D> {
        z * self.std + self.mean
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    // f32: NdArray<f32> and NdArray<f64> share a device whose default float
    // type is set by the first test to run, so one test binary uses one.
    type B = NdArray<f32>;

    #[test]
    fn conventions_invert_exactly_in_reverse_order() {
        let device = Default::default();
        let z = Tensor::<B, 4>::random(
            [1, 16, 3, 4],
            burn::tensor::Distribution::Normal(0.0, 2.0),
            &device,
        );
        let config = AutoencoderKlConfig::flux_vae();
        let scaling = VaeScaling::with_shift(&config);
        assert!(scaling.is_shifted() && !VaeScaling::seed(&config).is_shifted());
        let norm = DatasetNormalization {
            mean: 0.1,
            std: 0.9,
        };
        let model_space = norm.normalize(scaling.scale(z.clone()));
        let back = scaling.unscale(norm.denormalize(model_space));
        back.into_data()
            .assert_approx_eq::<f32>(&z.to_data(), burn::tensor::Tolerance::absolute(1e-6));
    }

    #[test]
    fn seed_scaling_multiplies_only() {
        let device = Default::default();
        let z = Tensor::<B, 1>::from_floats([1.0, -2.0], &device);
        let config = AutoencoderKlConfig::flux_vae();
        let scaled = VaeScaling::seed(&config).scale(z).to_data();
        scaled.assert_approx_eq::<f32>(
            &TensorData::from([0.3611f32, -0.7222]),
            burn::tensor::Tolerance::absolute(1e-7),
        );
        let shifted = VaeScaling::with_shift(&config)
            .scale(Tensor::<B, 1>::from_floats([1.0], &device))
            .into_scalar();
        assert!((shifted - (1.0 - 0.1159) * 0.3611).abs() < 1e-7);
    }
}
