//! Bidirectional grouped-query self-attention with QK-norm and RoPE.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, FloatDType};

use super::norm::RmsNorm;
use super::rope::Rotary;

/// The encoder's self-attention.
///
/// Reference: transformers `T5Gemma2SelfAttention` with `eager_attention_forward`:
/// q/k/v projections (no bias), RMSNorm of each query and key head, RoPE,
/// scores `q·kᵀ · query_pre_attn_scalar^-0.5`, softmax in f32 (cast back to
/// the activations' dtype), grouped key/value heads shared by
/// `heads / kv_heads` query heads, output projection.
///
/// # Shapes
/// - input `[batch, len, hidden]`, output the same.
#[derive(Module, Debug)]
pub(crate) struct SelfAttention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub o_proj: Linear<B>,
    pub q_norm: RmsNorm<B>,
    pub k_norm: RmsNorm<B>,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    kv_heads: usize,
    #[module(skip)]
    head_dim: usize,
    #[module(skip)]
    scaling: f64,
}

/// Sizes of one attention block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttentionSizes {
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub query_pre_attn_scalar: f64,
    pub eps: f64,
}

impl<B: Backend> SelfAttention<B> {
    /// A block with freshly initialised projections and unit norms.
    pub fn new(sizes: AttentionSizes, device: &Device<B>) -> Self {
        let linear = |inputs, outputs| {
            LinearConfig::new(inputs, outputs)
                .with_bias(false)
                .init(device)
        };
        let AttentionSizes {
            hidden,
            heads,
            kv_heads,
            head_dim,
            ..
        } = sizes;
        Self {
            q_proj: linear(hidden, heads * head_dim),
            k_proj: linear(hidden, kv_heads * head_dim),
            v_proj: linear(hidden, kv_heads * head_dim),
            o_proj: linear(heads * head_dim, hidden),
            q_norm: RmsNorm::new(head_dim, sizes.eps, device),
            k_norm: RmsNorm::new(head_dim, sizes.eps, device),
            heads,
            kv_heads,
            head_dim,
            scaling: sizes.query_pre_attn_scalar.powf(-0.5),
        }
    }

    /// Attends within `mask` (`[batch, 1, len, len]`, `true` = visible).
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rotary: &Rotary<B>,
        mask: &Tensor<B, 4, Bool>,
    ) -> Tensor<B, 3> {
        let [batch, len, _] = x.dims();
        let split = |t: Tensor<B, 3>, heads: usize| {
            t.reshape([batch, len, heads, self.head_dim])
                .swap_dims(1, 2) // [batch, heads, len, head_dim]
        };
        let q = split(self.q_proj.forward(x.clone()), self.heads);
        let k = split(self.k_proj.forward(x.clone()), self.kv_heads);
        let v = split(self.v_proj.forward(x), self.kv_heads);
        let q = rotary.apply(self.q_norm.forward(q));
        let k = rotary.apply(self.k_norm.forward(k));

        // The query heads sharing a key/value head are stacked along the
        // sequence axis, so one matmul per kv head serves the whole group.
        let group = self.heads / self.kv_heads;
        let q = q.reshape([batch, self.kv_heads, group * len, self.head_dim]);
        let scores = q.matmul(k.swap_dims(2, 3)) * self.scaling; // [batch, kv_heads, group·len, len]
        let scores = scores.reshape([batch, self.heads, len, len]);
        let weights = masked_softmax(scores, mask);
        let weights = weights.reshape([batch, self.kv_heads, group * len, len]);
        let out = weights.matmul(v); // [batch, kv_heads, group·len, head_dim]
        let out = out
            .reshape([batch, self.heads, len, self.head_dim])
            .swap_dims(1, 2)
            .reshape([batch, len, self.heads * self.head_dim]);
        self.o_proj.forward(out)
    }
}

/// Softmax over visible keys, in f32, cast back to the scores' dtype; a row
/// with no visible key is all zeros.
fn masked_softmax<B: Backend>(scores: Tensor<B, 4>, mask: &Tensor<B, 4, Bool>) -> Tensor<B, 4> {
    let dtype = scores.dtype();
    let [batch, heads, len, keys] = scores.dims();
    let hidden = mask.clone().bool_not().expand([batch, heads, len, keys]);
    let scores = scores
        .cast(FloatDType::F32)
        .mask_fill(hidden.clone(), f32::MIN);
    softmax(scores, 3).mask_fill(hidden, 0.0).cast(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::t5gemma2::config::RopeConfig;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    #[test]
    fn fully_masked_rows_are_zero_and_others_sum_to_one() {
        let device = Default::default();
        let scores = Tensor::<B, 4>::from_floats([[[[1.0, 2.0], [3.0, 4.0]]]], &device);
        let mask = Tensor::<B, 4, Bool>::from_data(
            TensorData::from([[[[true, false], [false, false]]]]),
            &device,
        );
        let weights = masked_softmax(scores, &mask)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(weights, [1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn grouped_heads_match_repeated_kv_heads() {
        // With kv_heads = 1 every query head must see the same keys as with
        // the key/value projection duplicated per head.
        let device = Default::default();
        let sizes = AttentionSizes {
            hidden: 8,
            heads: 2,
            kv_heads: 1,
            head_dim: 4,
            query_pre_attn_scalar: 4.0,
            eps: 1e-6,
        };
        let grouped = SelfAttention::<B>::new(sizes, &device);
        let mut repeated = SelfAttention::<B>::new(
            AttentionSizes {
                kv_heads: 2,
                ..sizes
            },
            &device,
        );
        // Parameters are lazy: materialise them once and share the values.
        let linear = |weight: Tensor<B, 2>| Linear {
            weight: burn::module::Param::from_tensor(weight),
            bias: None,
        };
        let dup = |w: Tensor<B, 2>| linear(Tensor::cat(vec![w.clone(), w], 1));
        let (q, k, v, o) = (
            grouped.q_proj.weight.val(),
            grouped.k_proj.weight.val(),
            grouped.v_proj.weight.val(),
            grouped.o_proj.weight.val(),
        );
        repeated.q_proj = linear(q.clone());
        repeated.o_proj = linear(o.clone());
        repeated.k_proj = dup(k.clone());
        repeated.v_proj = dup(v.clone());
        let mut grouped = grouped;
        grouped.q_proj = linear(q);
        grouped.k_proj = linear(k);
        grouped.v_proj = linear(v);
        grouped.o_proj = linear(o);
        let x = Tensor::<B, 3>::random([2, 3, 8], burn::tensor::Distribution::Default, &device);
        let rotary = Rotary::new(&RopeConfig::new(10_000.0), 4, 3, &device);
        let mask =
            Tensor::<B, 4, Bool>::from_data(TensorData::new(vec![true; 18], [2, 1, 3, 3]), &device);
        grouped
            .forward(x.clone(), &rotary, &mask)
            .into_data()
            .assert_approx_eq::<f32>(
                &repeated.forward(x, &rotary, &mask).into_data(),
                Default::default(),
            );
    }
}
