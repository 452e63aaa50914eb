//! The conditioning embedders: timestep (sinusoidal features + MLP) and
//! caption (RMSNorm + Linear).

use burn::nn::Linear;
use burn::prelude::*;

use crate::layers::{RmsNorm, project};
use ssdit_kernels::{silu, widened};

/// Width of the sinusoidal timestep features (the seed's `timestep_embedding(t, 256)`).
pub(crate) const TIMESTEP_FEATURES: usize = 256;

/// The seed's frequency table `exp(−ln(10000)·i/half)`, `i < half`, computed
/// in f32 the way torch evaluates it.
fn timestep_frequencies(half: usize) -> Vec<f32> {
    let factor = -(10_000f64.ln()) as f32;
    (0..half)
        .map(|i| (factor * i as f32 / half as f32).exp())
        .collect()
}

/// `[cos(t·f), sin(t·f)]` over the 128 frequencies. `t` is used as given
/// (flow-matching time in [0, 1]; the seed does not scale it by 1000).
///
/// # Shapes
/// - t: `[batch]`
/// - output: `[batch, 256]`
pub(crate) fn timestep_features<B: Backend>(t: Tensor<B, 1>) -> Tensor<B, 2> {
    let half = TIMESTEP_FEATURES / 2;
    let freqs = Tensor::<B, 1>::from_data(
        TensorData::new(timestep_frequencies(half), [half]),
        (&t.device(), t.dtype()),
    );
    let args = t.unsqueeze_dim::<2>(1) * freqs.unsqueeze_dim(0); // [B, half]
    Tensor::cat(vec![args.clone().cos(), args.sin()], 1)
}

/// `nn.Sequential(Linear(256, D), SiLU, Linear(D, D))`: the seed's indices
/// 0 and 2 are `linear_in` and `linear_out` (see `loader::key_map`).
///
/// # Shapes
/// - t: `[batch]`
/// - output: `[batch, hidden]`
#[derive(Module, Debug)]
pub(crate) struct TimestepEmbedder<B: Backend> {
    pub linear_in: Linear<B>,
    pub linear_out: Linear<B>,
}

impl<B: Backend> TimestepEmbedder<B> {
    /// The sinusoidal features are computed in at least f32 whatever the
    /// model's dtype (see [`widened`]).
    pub fn forward(&self, t: Tensor<B, 1>) -> Tensor<B, 2> {
        let dtype = self.linear_in.weight.val().dtype();
        let features = timestep_features(t.cast(widened(dtype))).cast(dtype); // [B, 256]
        let hidden = silu(self.linear_in.forward(features)); // [B, D]
        self.linear_out.forward(hidden)
    }
}

/// `nn.Sequential(RMSNorm(text_dim), Linear(text_dim, D))`: indices 0 and 1
/// are `norm` and `linear`.
///
/// # Shapes
/// - text: `[batch, tokens, text_dim]`
/// - output: `[batch, tokens, hidden]`
#[derive(Module, Debug)]
pub(crate) struct CaptionEmbedder<B: Backend> {
    pub norm: RmsNorm<B>,
    pub linear: Linear<B>,
}

impl<B: Backend> CaptionEmbedder<B> {
    pub fn forward(&self, text: Tensor<B, 3>) -> Tensor<B, 3> {
        project(&self.linear, self.norm.forward(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    #[test]
    fn features_are_cos_then_sin_of_unscaled_t() {
        let device = Default::default();
        let t = Tensor::<NdArray<f32>, 1>::from_floats([0.0, 0.25], &device);
        let out = timestep_features(t).into_data().to_vec::<f32>().unwrap();
        assert_eq!(out.len(), 2 * TIMESTEP_FEATURES);
        let half = TIMESTEP_FEATURES / 2;
        for i in 0..half {
            let f = (-(10_000f64.ln()) * i as f64 / half as f64).exp();
            assert_eq!(out[i], 1.0, "cos(0)");
            assert_eq!(out[half + i], 0.0, "sin(0)");
            let row = &out[TIMESTEP_FEATURES..];
            assert!(((row[i] as f64) - (0.25 * f).cos()).abs() < 1e-6);
            assert!(((row[half + i] as f64) - (0.25 * f).sin()).abs() < 1e-6);
        }
    }
}
