//! One encoder layer: attention and MLP, each wrapped in pre- and post-norms.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Bool;

use super::attention::{AttentionSizes, SelfAttention};
use super::config::LayerType;
use super::mlp::Mlp;
use super::norm::RmsNorm;
use super::rope::Rotary;

/// Reference: transformers `T5Gemma2EncoderLayer`:
/// `x + post_attn_norm(attn(pre_attn_norm(x)))`, then
/// `x + post_ff_norm(mlp(pre_ff_norm(x)))` (dropout is the identity at inference).
///
/// # Shapes
/// - input `[batch, len, hidden]`, output the same.
#[derive(Module, Debug)]
pub(crate) struct EncoderLayer<B: Backend> {
    pub self_attn: SelfAttention<B>,
    pub pre_self_attn_layernorm: RmsNorm<B>,
    pub post_self_attn_layernorm: RmsNorm<B>,
    pub mlp: Mlp<B>,
    pub pre_feedforward_layernorm: RmsNorm<B>,
    pub post_feedforward_layernorm: RmsNorm<B>,
    #[module(skip)]
    pub layer_type: LayerType,
}

impl<B: Backend> EncoderLayer<B> {
    /// A layer of the given attention type with fresh weights.
    pub fn new(
        sizes: AttentionSizes,
        intermediate: usize,
        layer_type: LayerType,
        device: &Device<B>,
    ) -> Self {
        let norm = || RmsNorm::new(sizes.hidden, sizes.eps, device);
        Self {
            self_attn: SelfAttention::new(sizes, device),
            pre_self_attn_layernorm: norm(),
            post_self_attn_layernorm: norm(),
            mlp: Mlp::new(sizes.hidden, intermediate, device),
            pre_feedforward_layernorm: norm(),
            post_feedforward_layernorm: norm(),
            layer_type,
        }
    }

    /// Applies the layer with its type's rotary tables and mask.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rotary: &Rotary<B>,
        mask: &Tensor<B, 4, Bool>,
    ) -> Tensor<B, 3> {
        let attended = self.self_attn.forward(
            self.pre_self_attn_layernorm.forward(x.clone()),
            rotary,
            mask,
        );
        let x = x + self.post_self_attn_layernorm.forward(attended);
        let fed = self
            .mlp
            .forward(self.pre_feedforward_layernorm.forward(x.clone()));
        x + self.post_feedforward_layernorm.forward(fed)
    }
}
