//! The straight probability path between noise and data.
//!
//! `x_t = (1−t)·x₀ + t·x₁` with `x₀` noise and `x₁` data, whose velocity is
//! the constant `x₁ − x₀` (rectified flow / flow matching with the linear
//! interpolant, as the seed's `train.py` trains it).

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::error::{Error, Result, invalid};

/// The point `x_t = (1−t)·noise + t·data` on the path, one `t` per sample.
///
/// # Shapes
/// - `noise`, `data`: `[B, C, H, W]`; `t`: `[B]` → `[B, C, H, W]`
pub fn interpolate<B: Backend>(
    noise: Tensor<B, 4>,
    data: Tensor<B, 4>,
    t: Tensor<B, 1>,
) -> Tensor<B, 4> {
    let [batch] = t.dims();
    let t = t.reshape([batch, 1, 1, 1]); // [B] -> [B, 1, 1, 1]
    let keep = t.clone().neg().add_scalar(1.0);
    keep * noise + t * data
}

/// The velocity the model learns to predict: `data − noise`.
///
/// # Shapes
/// - `noise`, `data`: `[B, C, H, W]` → `[B, C, H, W]`
pub fn velocity_target<B: Backend>(noise: Tensor<B, 4>, data: Tensor<B, 4>) -> Tensor<B, 4> {
    data - noise
}

/// Gaussian noise with offset noise: `N(0, 1)` per element plus
/// `strength · N(0, 1)` shared by every pixel of one (sample, channel).
///
/// Offset noise lets the model shift a channel's mean, which plain per-pixel
/// noise almost never asks for (the seed uses strength 0.05). Strength 0 draws
/// no offset at all.
///
/// # Shapes
/// - returns `shape` = `[B, C, H, W]`
pub fn sample_noise<B: Backend>(
    shape: [usize; 4],
    offset_strength: f64,
    device: &Device<B>,
) -> Result<Tensor<B, 4>> {
    if !(offset_strength.is_finite() && offset_strength >= 0.0) {
        return Err(invalid(
            "offset_strength",
            format!("{offset_strength} is not a non-negative number"),
        ));
    }
    let noise = Tensor::random(shape, Distribution::Normal(0.0, 1.0), device);
    if offset_strength == 0.0 {
        return Ok(noise);
    }
    let [batch, channels, _, _] = shape;
    let offset = Tensor::<B, 4>::random(
        [batch, channels, 1, 1],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    Ok(noise + offset.mul_scalar(offset_strength))
}

/// Checks that two tensors have the same shape, naming `what` when not.
pub(crate) fn same_shape<B: Backend, const D: usize>(
    what: &'static str,
    expected: &Tensor<B, D>,
    found: &Tensor<B, D>,
) -> Result<()> {
    let (expected, found) = (expected.dims(), found.dims());
    if expected == found {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            what,
            expected: expected.to_vec(),
            found: found.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    #[test]
    fn interpolation_hits_both_ends_and_the_middle() {
        let device = Default::default();
        let noise = Tensor::<B, 4>::full([3, 2, 2, 2], -1.0, &device);
        let data = Tensor::<B, 4>::full([3, 2, 2, 2], 3.0, &device);
        let t = Tensor::<B, 1>::from_floats([0.0, 0.5, 1.0], &device);
        let x = interpolate(noise.clone(), data.clone(), t);
        let per_sample: Vec<f32> = x
            .mean_dim(3)
            .mean_dim(2)
            .mean_dim(1)
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(per_sample, vec![-1.0, 1.0, 3.0]);
        let v = velocity_target(noise, data)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!(v.iter().all(|&v| v == 4.0));
    }

    #[test]
    fn offset_noise_shifts_channel_means() {
        let device = Default::default();
        let shape = [8, 4, 16, 16];
        let spread = |strength: f64| {
            let noise = sample_noise::<B>(shape, strength, &device).unwrap();
            // Variance of per-(sample, channel) means: 1/256 without offset,
            // 1/256 + strength² with it.
            let means = noise.mean_dim(3).mean_dim(2).reshape([32]);
            means.square().mean().into_scalar()
        };
        let plain = spread(0.0);
        let offset = spread(1.0);
        assert!(plain < 0.02, "plain per-channel mean power {plain}");
        assert!(offset > 0.3, "offset per-channel mean power {offset}");
        assert!(sample_noise::<B>(shape, -0.1, &device).is_err());
    }
}
