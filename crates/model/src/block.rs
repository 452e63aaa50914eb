//! The transformer blocks: `VisualFusionBlock` (adaLN-modulated attention
//! with 2-D RoPE and a local spatial bias on the image tokens, SwiGLU plus
//! the global Fourier filter on the image tokens) and `ContextRefinerBlock`
//! (plain pre-norm attention + SwiGLU over the text tokens).
// Field names follow the checkpoint (`adaLN_modulation`).
#![allow(non_snake_case)]

use burn::module::Initializer;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;
use ssdit_kernels::{attention, dropout, reshape, scale_add, silu};

use crate::fourier::{DftBases, FourierFilter};
use crate::layers::{LocalSpatialBias, RmsNorm, SwiGlu, linear, normal, project};
use crate::rope::RopeTable;

/// What a fusion block needs to know about the image tokens at the end of
/// its sequence.
pub(crate) struct ImageGrid<'a, B: Backend> {
    pub h: usize,
    pub w: usize,
    /// RoPE rotations for the whole sequence (identity on text tokens).
    pub rope: &'a RopeTable<B>,
    pub dft: &'a DftBases<B>,
}

impl<B: Backend> ImageGrid<'_, B> {
    fn tokens(&self) -> usize {
        self.h * self.w
    }
}

/// Multi-head self-attention with per-head QK RMSNorm, as both block kinds
/// of the seed compute it: `softmax(QKᵀ/√d)·V` ([`ssdit_kernels::attention`]).
/// The norms and RoPE act per head vector, so they run on the projections'
/// own token-major layout, before the heads are moved to the front.
struct SelfAttention<'a, B: Backend> {
    q: &'a Linear<B>,
    k: &'a Linear<B>,
    v: &'a Linear<B>,
    norm_q: &'a RmsNorm<B>,
    norm_k: &'a RmsNorm<B>,
    heads: usize,
}

impl<B: Backend> SelfAttention<'_, B> {
    /// # Shapes
    /// - x: `[batch, tokens, dim]`
    /// - output: `[batch, tokens, dim]` (before the output projection)
    fn forward(&self, x: Tensor<B, 3>, rope: Option<&RopeTable<B>>) -> Tensor<B, 3> {
        let [batch, tokens, dim] = x.dims();
        let head_dim = dim / self.heads;
        let split = |proj: &Linear<B>, x: Tensor<B, 3>| {
            reshape(project(proj, x), [batch, tokens, self.heads, head_dim]) // [B, N, H, d]
        };
        let mut q = self.norm_q.forward(split(self.q, x.clone()));
        let mut k = self.norm_k.forward(split(self.k, x.clone()));
        let v = split(self.v, x);
        if let Some(rope) = rope {
            q = rope.apply(q);
            k = rope.apply(k);
        }
        let heads_first = |t: Tensor<B, 4>| t.swap_dims(1, 2); // [B, H, N, d]
        let attended = attention(heads_first(q), heads_first(k), heads_first(v));
        reshape(attended.swap_dims(1, 2), [batch, tokens, dim])
    }
}

/// `x + delta` on the last `delta.dims()[1]` tokens of `x` only.
fn add_to_image_tokens<B: Backend>(x: Tensor<B, 3>, delta: Tensor<B, 3>) -> Tensor<B, 3> {
    let [_, tokens, _] = x.dims();
    let [_, image, _] = delta.dims();
    let text = tokens - image;
    if text == 0 {
        return x + delta;
    }
    Tensor::cat(
        vec![
            x.clone().narrow(1, 0, text),
            x.narrow(1, text, image) + delta,
        ],
        1,
    )
}

/// `x·(1 + scale) + shift`, with `[B, 1, D]` modulation.
fn modulate<B: Backend>(x: Tensor<B, 3>, shift: Tensor<B, 3>, scale: Tensor<B, 3>) -> Tensor<B, 3> {
    scale_add(x, scale.add_scalar(1.0), shift)
}

/// `x + tanh(gate)·delta`, with a `[B, 1, D]` gate.
fn gated_residual<B: Backend>(
    x: Tensor<B, 3>,
    gate: Tensor<B, 3>,
    delta: Tensor<B, 3>,
) -> Tensor<B, 3> {
    scale_add(delta, gate.tanh(), x)
}

/// The seed's `VisualFusionBlock`, over a `[text, image]` sequence (text may
/// be empty: the noise refiner).
///
/// # Shapes
/// - x: `[batch, text + h·w, dim]`
/// - c: `[batch, dim]` (timestep embedding)
/// - output: `[batch, text + h·w, dim]`
#[derive(Module, Debug)]
pub(crate) struct VisualFusionBlock<B: Backend> {
    pub attention_norm1: RmsNorm<B>,
    pub ffn_norm1: RmsNorm<B>,
    pub attention_norm_q: RmsNorm<B>,
    pub attention_norm_k: RmsNorm<B>,
    pub attention_q: Linear<B>,
    pub attention_k: Linear<B>,
    pub attention_v: Linear<B>,
    pub attention_out: Linear<B>,
    pub feed_forward: SwiGlu<B>,
    pub fourier_filter: FourierFilter<B>,
    pub fourier_norm: RmsNorm<B>,
    pub adaLN_modulation: Linear<B>,
    pub local_bias: LocalSpatialBias<B>,
    pub dropout: Dropout,
    num_heads: usize,
}

/// The sizes a block is built from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockSizes {
    pub dim: usize,
    pub heads: usize,
    pub ffn_hidden: usize,
}

impl<B: Backend> VisualFusionBlock<B> {
    /// The seed's effective initialisation (`initialize_weights`): every >1-D
    /// parameter `normal(0.02)` (the SwiGLU's Xavier draw and the local
    /// bias' 1e-3 are overwritten by that loop), adaLN zero, norms one, the
    /// Fourier filter as in [`FourierFilter::new`], the conv bias zero.
    pub fn new(sizes: BlockSizes, dropout: f64, device: &Device<B>) -> Self {
        let BlockSizes {
            dim,
            heads,
            ffn_hidden,
        } = sizes;
        let head_dim = dim / heads;
        Self {
            attention_norm1: RmsNorm::new(dim, device),
            ffn_norm1: RmsNorm::new(dim, device),
            attention_norm_q: RmsNorm::new(head_dim, device),
            attention_norm_k: RmsNorm::new(head_dim, device),
            attention_q: linear(dim, dim, normal(), None, device),
            attention_k: linear(dim, dim, normal(), None, device),
            attention_v: linear(dim, dim, normal(), None, device),
            attention_out: linear(dim, dim, normal(), None, device),
            feed_forward: SwiGlu::new(dim, ffn_hidden, normal(), device),
            fourier_filter: FourierFilter::new(dim, device),
            fourier_norm: RmsNorm::new(dim, device),
            adaLN_modulation: linear(
                dim,
                6 * dim,
                Initializer::Zeros,
                Some(Initializer::Zeros),
                device,
            ),
            local_bias: LocalSpatialBias::new(dim, normal(), device),
            dropout: DropoutConfig::new(dropout).init(),
            num_heads: heads,
        }
    }

    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        c: Tensor<B, 2>,
        grid: &ImageGrid<'_, B>,
    ) -> Tensor<B, 3> {
        let [_, tokens, _] = x.dims();
        let image = grid.tokens();
        let text = tokens - image;
        let mut modulation = self
            .adaLN_modulation
            .forward(silu(c)) // [B, 6D]
            .unsqueeze_dim::<3>(1) // [B, 1, 6D]
            .chunk(6, 2)
            .into_iter();
        let mut next = || modulation.next().expect("adaLN yields six chunks");
        let (shift_msa, scale_msa, gate_msa) = (next(), next(), next());
        let (shift_mlp, scale_mlp, gate_mlp) = (next(), next(), next());

        let attention_in = modulate(
            self.attention_norm1.forward(x.clone()),
            shift_msa,
            scale_msa,
        );
        let attended = SelfAttention {
            q: &self.attention_q,
            k: &self.attention_k,
            v: &self.attention_v,
            norm_q: &self.attention_norm_q,
            norm_k: &self.attention_norm_k,
            heads: self.num_heads,
        }
        .forward(attention_in, Some(grid.rope));
        let x = gated_residual(
            x,
            gate_msa,
            dropout(project(&self.attention_out, attended), self.dropout.prob),
        );

        let image_tokens = x.clone().narrow(1, text, image);
        let x = add_to_image_tokens(x, self.local_bias.forward(image_tokens, grid.h, grid.w));

        let ffn_in = modulate(self.ffn_norm1.forward(x.clone()), shift_mlp, scale_mlp);
        let fourier_in = self
            .fourier_norm
            .forward(ffn_in.clone().narrow(1, text, image));
        let ffn_out = add_to_image_tokens(
            self.feed_forward.forward(ffn_in),
            self.fourier_filter.forward(fourier_in, grid.dft),
        );
        gated_residual(x, gate_mlp, dropout(ffn_out, self.dropout.prob))
    }
}

/// The seed's `ContextRefinerBlock`: pre-norm attention and SwiGLU, no
/// modulation, no position encoding, no dropout.
///
/// # Shapes
/// - x: `[batch, text, dim]`
/// - output: `[batch, text, dim]`
#[derive(Module, Debug)]
pub(crate) struct ContextRefinerBlock<B: Backend> {
    pub attention_norm1: RmsNorm<B>,
    pub ffn_norm1: RmsNorm<B>,
    pub attention_norm_q: RmsNorm<B>,
    pub attention_norm_k: RmsNorm<B>,
    pub attention_q: Linear<B>,
    pub attention_k: Linear<B>,
    pub attention_v: Linear<B>,
    pub attention_out: Linear<B>,
    pub feed_forward: SwiGlu<B>,
    num_heads: usize,
}

impl<B: Backend> ContextRefinerBlock<B> {
    /// Every >1-D parameter `normal(0.02)`, norms one (the seed's effective scheme).
    pub fn new(sizes: BlockSizes, device: &Device<B>) -> Self {
        let BlockSizes {
            dim,
            heads,
            ffn_hidden,
        } = sizes;
        let head_dim = dim / heads;
        Self {
            attention_norm1: RmsNorm::new(dim, device),
            ffn_norm1: RmsNorm::new(dim, device),
            attention_norm_q: RmsNorm::new(head_dim, device),
            attention_norm_k: RmsNorm::new(head_dim, device),
            attention_q: linear(dim, dim, normal(), None, device),
            attention_k: linear(dim, dim, normal(), None, device),
            attention_v: linear(dim, dim, normal(), None, device),
            attention_out: linear(dim, dim, normal(), None, device),
            feed_forward: SwiGlu::new(dim, ffn_hidden, normal(), device),
            num_heads: heads,
        }
    }

    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let attended = SelfAttention {
            q: &self.attention_q,
            k: &self.attention_k,
            v: &self.attention_v,
            norm_q: &self.attention_norm_q,
            norm_k: &self.attention_norm_k,
            heads: self.num_heads,
        }
        .forward(self.attention_norm1.forward(x.clone()), None);
        let x = x + project(&self.attention_out, attended);
        let ffn = self.feed_forward.forward(self.ffn_norm1.forward(x.clone()));
        x + ffn
    }
}
