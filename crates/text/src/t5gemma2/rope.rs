//! Rotary position embeddings, one table per layer type.

use burn::prelude::*;

use super::config::RopeConfig;

/// The cos/sin tables of one layer type for positions `0..len`.
///
/// Reference: transformers `T5Gemma2RotaryEmbedding` with the `default` and
/// `linear` rope types: `inv_freq[i] = 1 / theta^(2i/d)` (÷ factor for
/// `linear`), angles `pos · inv_freq` duplicated over both halves. The
/// reference computes the tables in f32 whatever the model dtype and casts
/// them to it; so do we (on the host, then cast with the activations).
///
/// # Shapes
/// - tables `[1, 1, len, head_dim]`, broadcast over batch and heads.
#[derive(Debug, Clone)]
pub(crate) struct Rotary<B: Backend> {
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
}

impl<B: Backend> Rotary<B> {
    /// Tables for `len` positions of heads `head_dim` wide.
    pub fn new(config: &RopeConfig, head_dim: usize, len: usize, device: &Device<B>) -> Self {
        let half = head_dim / 2;
        let theta = config.theta as f32;
        let factor = config.factor as f32;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| 1.0 / theta.powf((2 * i) as f32 / head_dim as f32) / factor)
            .collect();
        let mut cos = Vec::with_capacity(len * head_dim);
        let mut sin = Vec::with_capacity(len * head_dim);
        for pos in 0..len {
            let angles: Vec<f32> = inv_freq.iter().map(|f| pos as f32 * f).collect();
            for _ in 0..2 {
                cos.extend(angles.iter().map(|a| a.cos()));
                sin.extend(angles.iter().map(|a| a.sin()));
            }
        }
        let table =
            |values| Tensor::from_data(TensorData::new(values, [1, 1, len, head_dim]), device);
        Self {
            cos: table(cos),
            sin: table(sin),
        }
    }

    /// Rotates queries or keys: `x·cos + rotate_half(x)·sin`.
    ///
    /// # Shapes
    /// - x `[batch, heads, len, head_dim]`, output the same.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let dtype = x.dtype();
        let cos = self.cos.clone().cast(dtype);
        let sin = self.sin.clone().cast(dtype);
        x.clone() * cos + rotate_half(x) * sin
    }
}

/// `[x1, x2] → [-x2, x1]` over the last dimension's halves.
fn rotate_half<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let mut halves = x.chunk(2, 3);
    let second = halves.pop().expect("two halves");
    let first = halves.pop().expect("two halves");
    Tensor::cat(vec![second.neg(), first], 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    #[test]
    fn position_zero_is_identity_and_rotation_keeps_norm() {
        let device = Default::default();
        let rope = Rotary::<B>::new(&RopeConfig::new(10_000.0), 4, 3, &device);
        let x = Tensor::<B, 4>::from_floats([[[[1.0, 2.0, 3.0, 4.0]; 3]]], &device);
        let y = rope.apply(x.clone());
        y.clone()
            .slice([0..1, 0..1, 0..1, 0..4])
            .into_data()
            .assert_approx_eq::<f32>(
                &TensorData::from([[[[1.0, 2.0, 3.0, 4.0]]]]),
                Default::default(),
            );
        // Position 1, first pair (dims 0 and 2) rotated by angle 1 (inv_freq 1).
        let (c, s) = (1f32.cos(), 1f32.sin());
        let got = y
            .slice([0..1, 0..1, 1..2, 0..4])
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!((got[0] - (1.0 * c - 3.0 * s)).abs() < 1e-6, "{got:?}");
        assert!((got[2] - (3.0 * c + 1.0 * s)).abs() < 1e-6, "{got:?}");
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>();
        assert!((norm(&got) - 30.0).abs() < 1e-4);
    }

    #[test]
    fn linear_factor_divides_frequencies() {
        let device = Default::default();
        let plain = Rotary::<B>::new(&RopeConfig::new(100.0), 2, 9, &device);
        let linear = Rotary::<B>::new(&RopeConfig::new(100.0).with_factor(4.0), 2, 9, &device);
        // Position 8 under factor 4 is position 2 unscaled.
        let at = |r: &Rotary<B>, p: usize| {
            r.cos
                .clone()
                .slice([0..1, 0..1, p..p + 1, 0..2])
                .into_data()
        };
        at(&linear, 8).assert_approx_eq::<f32>(&at(&plain, 2), Default::default());
    }
}
