//! Timesteps: the resolution-dependent time shift and training-time sampling.
//!
//! Time runs from `t = 0` (pure noise) to `t = 1` (data). The shift
//! `t·s / (1 + (s−1)·t)` (SD3 / the seed's `get_1d_shifted_time`) moves mass
//! towards the data end for `s > 1`; `s = 1` is the identity.

use burn::prelude::*;
use burn::tensor::Distribution;

use crate::error::{Result, invalid};

/// Checks that a shift value is usable (finite and positive).
pub fn validate_shift(shift: f64) -> Result<()> {
    if shift.is_finite() && shift > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            "shift",
            format!("{shift} is not a positive number"),
        ))
    }
}

/// The shifted time `t·s / (1 + (s−1)·t)` of one scalar; `t` itself when `s == 1`.
pub fn shift_time(t: f64, shift: f64) -> f64 {
    if shift == 1.0 {
        t
    } else {
        t * shift / (1.0 + (shift - 1.0) * t)
    }
}

/// [`shift_time`] element-wise over a tensor of times, in the tensor's precision.
///
/// # Shapes
/// - `t`: `[B]` → `[B]`
pub fn shift_times<B: Backend>(t: Tensor<B, 1>, shift: f64) -> Tensor<B, 1> {
    if shift == 1.0 {
        return t;
    }
    let numerator = t.clone().mul_scalar(shift);
    let denominator = t.mul_scalar(shift - 1.0).add_scalar(1.0);
    numerator / denominator
}

/// Training timesteps: `u ~ U(0, 1)` per sample, then shifted.
///
/// # Shapes
/// - returns `[batch]`
pub fn sample_timesteps<B: Backend>(
    batch: usize,
    shift: f64,
    device: &Device<B>,
) -> Result<Tensor<B, 1>> {
    validate_shift(shift)?;
    let u = Tensor::random([batch], Distribution::Uniform(0.0, 1.0), device);
    Ok(shift_times(u, shift))
}

/// The sampling grid `shift(i / steps)` for `i = 0..=steps`, from noise to data.
pub fn schedule(steps: usize, shift: f64) -> Vec<f64> {
    (0..=steps)
        .map(|i| shift_time(i as f64 / steps as f64, shift))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    #[test]
    fn shift_one_is_identity_and_endpoints_are_fixed() {
        for t in [0.0, 0.1, 0.5, 0.93, 1.0] {
            assert_eq!(shift_time(t, 1.0), t);
        }
        for s in [0.5, 3.0] {
            assert_eq!(shift_time(0.0, s), 0.0);
            assert!((shift_time(1.0, s) - 1.0).abs() < 1e-15);
        }
        // s = 3 at t = 0.5: 1.5 / 2 = 0.75.
        assert!((shift_time(0.5, 3.0) - 0.75).abs() < 1e-15);
    }

    #[test]
    fn tensor_shift_matches_scalar_shift() {
        let device = Default::default();
        let ts = [0.0f32, 0.2, 0.5, 0.8, 1.0];
        let got = shift_times(Tensor::<B, 1>::from_floats(ts, &device), 3.0)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        for (g, t) in got.iter().zip(ts) {
            assert!((*g as f64 - shift_time(t as f64, 3.0)).abs() < 1e-6);
        }
    }

    #[test]
    fn sampled_timesteps_lie_in_the_unit_interval() {
        let device = Default::default();
        let t = sample_timesteps::<B>(256, 2.0, &device).unwrap();
        let values = t.into_data().to_vec::<f32>().unwrap();
        assert_eq!(values.len(), 256);
        assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(sample_timesteps::<B>(4, 0.0, &device).is_err());
        assert!(sample_timesteps::<B>(4, f64::NAN, &device).is_err());
    }

    #[test]
    fn schedule_spans_noise_to_data() {
        let grid = schedule(4, 1.0);
        assert_eq!(grid, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let shifted = schedule(4, 3.0);
        assert!(shifted.windows(2).all(|w| w[1] > w[0]));
        assert!(shifted[1] > grid[1]);
    }
}
