//! Token embedding scaled by √hidden, with the learnt end-of-image embedding.

use burn::module::Initializer;
use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::Int;
use burn::tensor::module::embedding;

/// Reference: transformers `T5Gemma2TextScaledWordEmbedding`: rows of
/// `weight` times `embed_scale` — √hidden as an f32 scalar cast to the
/// weights' dtype (so 33.94… becomes 34 in bf16, as in the reference) — and
/// every `eoi_token_index` token replaced by `eoi_embedding`, unscaled.
///
/// # Shapes
/// - ids `[batch, len]` → embeddings `[batch, len, hidden]`.
#[derive(Module, Debug)]
pub(crate) struct ScaledWordEmbedding<B: Backend> {
    /// `[vocab, hidden]`.
    pub weight: Param<Tensor<B, 2>>,
    /// `[hidden]`.
    pub eoi_embedding: Param<Tensor<B, 1>>,
    #[module(skip)]
    eoi_token_index: usize,
}

impl<B: Backend> ScaledWordEmbedding<B> {
    /// A table with transformers' initialisation (normal, std 0.02; zero eoi).
    pub fn new(vocab: usize, hidden: usize, eoi_token_index: usize, device: &Device<B>) -> Self {
        Self {
            weight: Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([vocab, hidden], device),
            eoi_embedding: Param::from_tensor(Tensor::zeros([hidden], device)),
            eoi_token_index,
        }
    }

    /// Embeds token ids.
    pub fn forward(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let weight = self.weight.val();
        let [_, hidden] = weight.dims();
        let [batch, len] = ids.dims();
        let device = weight.device();
        let scale = Tensor::<B, 1>::from_floats([(hidden as f64).sqrt() as f32], &device)
            .cast(weight.dtype())
            .reshape([1, 1, 1]);
        let is_eoi = ids
            .clone()
            .equal_elem(self.eoi_token_index as i64)
            .reshape([batch, len, 1])
            .expand([batch, len, hidden]);
        let eoi = self
            .eoi_embedding
            .val()
            .reshape([1, 1, hidden])
            .expand([batch, len, hidden]);
        (embedding(weight, ids) * scale).mask_where(is_eoi, eoi) // [batch, len, hidden]
    }
}
