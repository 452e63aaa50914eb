//! Gemma's RMSNorm: `x / sqrt(mean(x²) + eps) · (1 + w)`, computed in f32.

use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::FloatDType;

/// RMS normalisation over the last dimension with a zero-centred gain.
///
/// Reference: transformers `T5Gemma2RMSNorm`. The input is upcast to f32,
/// normalised, multiplied by `1 + weight` (in f32) and cast back to the
/// input's dtype, so bf16/f16 models normalise exactly as the reference does.
///
/// # Shapes
/// - input `[..., dim]`, output the same.
#[derive(Module, Debug)]
pub(crate) struct RmsNorm<B: Backend> {
    /// The gain minus one (checkpoint `*.weight`); zeros is the identity gain.
    pub weight: Param<Tensor<B, 1>>,
    #[module(skip)]
    eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    /// A norm of width `dim` with zero weight (unit gain), as transformers initialises it.
    pub fn new(dim: usize, eps: f64, device: &Device<B>) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::zeros([dim], device)),
            eps,
        }
    }

    /// Normalises the last dimension.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let x = x.cast(FloatDType::F32);
        let mean_square = x.clone().square().mean_dim(D - 1); // [..., 1]
        let normed = x * (mean_square + self.eps).sqrt().recip();
        let gain = self.weight.val().cast(FloatDType::F32) + 1.0;
        let mut shape = [1; D];
        shape[D - 1] = gain.dims()[0];
        (normed * gain.reshape(shape)).cast(dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    #[test]
    fn normalises_with_one_plus_weight() {
        let device = Default::default();
        let mut norm = RmsNorm::<B>::new(2, 0.0, &device);
        norm.weight = Param::from_tensor(Tensor::from_floats([0.0, 1.0], &device));
        let x = Tensor::<B, 2>::from_floats([[3.0, 4.0]], &device);
        // rms = sqrt((9 + 16) / 2) = 3.5355…; gains 1 and 2.
        let rms = (12.5f32).sqrt();
        norm.forward(x).into_data().assert_approx_eq::<f32>(
            &TensorData::from([[3.0 / rms, 8.0 / rms]]),
            Default::default(),
        );
    }
}
