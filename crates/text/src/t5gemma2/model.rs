//! The T5Gemma2 text encoder.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::{Bool, Int};

use super::attention::AttentionSizes;
use super::config::{LayerType, RopeConfig, T5Gemma2EncoderConfig};
use super::embedding::ScaledWordEmbedding;
use super::layer::EncoderLayer;
use super::mask::AttentionMasks;
use super::norm::RmsNorm;
use super::rope::Rotary;

/// The text half of T5Gemma2's encoder: `last_hidden_state` for token ids.
///
/// Reference: transformers `T5Gemma2Encoder.forward` without pixel values —
/// scaled embedding (with the eoi embedding), positions `0..len` for every
/// row, bidirectional attention (sliding-window or full per layer), final
/// RMSNorm. Padded positions are computed too, exactly as the reference
/// computes them; they never influence real tokens.
///
/// Field names are the checkpoint's keys under `model.encoder.`.
///
/// # Shapes
/// - ids `[batch, len]`, mask `[batch, len]` (`true` = real token)
///   → hidden states `[batch, len, hidden]`.
#[derive(Module, Debug)]
pub struct T5Gemma2Encoder<B: Backend> {
    pub(crate) embed_tokens: ScaledWordEmbedding<B>,
    pub(crate) layers: Vec<EncoderLayer<B>>,
    pub(crate) norm: RmsNorm<B>,
    #[module(skip)]
    config: T5Gemma2EncoderConfig,
}

impl T5Gemma2EncoderConfig {
    /// An encoder with transformers' initialisation (random projections and
    /// embeddings from the backend's RNG, unit norms). Parameters are lazy:
    /// loading a checkpoint over them never materialises the random values.
    pub fn init<B: Backend>(&self, device: &Device<B>) -> T5Gemma2Encoder<B> {
        let sizes = AttentionSizes {
            hidden: self.hidden_size,
            heads: self.num_attention_heads,
            kv_heads: self.num_key_value_heads,
            head_dim: self.head_dim,
            query_pre_attn_scalar: self.query_pre_attn_scalar,
            eps: self.rms_norm_eps,
        };
        T5Gemma2Encoder {
            embed_tokens: ScaledWordEmbedding::new(
                self.vocab_size,
                self.hidden_size,
                self.eoi_token_index,
                device,
            ),
            layers: self
                .layer_types
                .iter()
                .map(|&layer_type| {
                    EncoderLayer::new(sizes, self.intermediate_size, layer_type, device)
                })
                .collect(),
            norm: RmsNorm::new(self.hidden_size, self.rms_norm_eps, device),
            config: self.clone(),
        }
    }
}

impl<B: Backend> T5Gemma2Encoder<B> {
    /// The configuration this encoder was built from.
    pub fn config(&self) -> &T5Gemma2EncoderConfig {
        &self.config
    }

    /// Width of the output embeddings.
    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// Encodes token ids (all `< vocab_size`) under `attention_mask`.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Bool>,
    ) -> Tensor<B, 3> {
        let [_, len] = input_ids.dims();
        let device = input_ids.device();
        let masks = AttentionMasks::new(attention_mask, self.config.sliding_window);
        let rotary = |rope: &RopeConfig| Rotary::new(rope, self.config.head_dim, len, &device);
        let (rotary_sliding, rotary_full) = (
            rotary(&self.config.rope_sliding),
            rotary(&self.config.rope_full),
        );
        let mut x = self.embed_tokens.forward(input_ids); // [batch, len, hidden]
        for layer in &self.layers {
            x = match layer.layer_type {
                LayerType::Sliding => layer.forward(x, &rotary_sliding, &masks.sliding),
                LayerType::Full => layer.forward(x, &rotary_full, &masks.full),
            };
        }
        self.norm.forward(x)
    }
}
