//! Attention on the autodiff graph of any backend, holding only its inputs
//! until the backward pass.
//!
//! burn 0.21's autodiff decomposes attention into a product, a scale and a
//! softmax, and records each: several `tokens × tokens` tensors per head
//! stay alive from every block's forward to its backward (under balanced
//! checkpointing still the scores). That is most of a training step's
//! activation memory at the seed's 912 tokens. Here the forward is the
//! backend's own attention op (fused on CUDA, nothing recorded inside), and
//! the backward recomputes the probabilities from `q` and `k`, one block at
//! a time, at the cost of one more `q·kᵀ` product.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use burn::tensor::activation::softmax;
use burn::tensor::module;
use burn::tensor::ops::{AttentionModuleOptions, FloatTensor};

use crate::graph::{Recorded, inner};
use crate::rms_norm::widened;
use crate::route::{cast, register_on};

/// Scaled dot-product attention without mask, scale `1/√head_dim`, on
/// `Autodiff<I, C>`, with the memory-lean backward pass described above.
/// [`attention`](crate::attention) takes it on the autodiff backends it
/// knows (CUDA; Flex with the `flex` feature); callable on any other.
///
/// # Shapes
/// - q: `[batch, heads, queries, head_dim]`
/// - k: `[batch, heads, keys, head_dim]`
/// - v: `[batch, heads, keys, value_dim]`
/// - output: `[batch, heads, queries, value_dim]`
pub fn attention_recomputed<I: Backend, C: CheckpointStrategy>(
    q: Tensor<Autodiff<I, C>, 4>,
    k: Tensor<Autodiff<I, C>, 4>,
    v: Tensor<Autodiff<I, C>, 4>,
) -> Tensor<Autodiff<I, C>, 4> {
    let [q, k, v] = [q, k, v].map(|t| t.into_primitive().tensor());
    let nodes = [q.node.clone(), k.node.clone(), v.node.clone()];
    let [q, k, v] = [q.primitive, k.primitive, v.primitive];
    let output = match RecomputedBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let output = forward::<I>(q.clone(), k.clone(), v.clone());
            prep.finish(Inputs { q, k, v }, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward::<I>(q, k, v)),
    };
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

/// The backend's own attention on the inner tensors.
fn forward<I: Backend>(q: FloatTensor<I>, k: FloatTensor<I>, v: FloatTensor<I>) -> FloatTensor<I> {
    let [q, k, v] = [q, k, v].map(inner::<I, 4>);
    module::attention(q, k, v, None, None, AttentionModuleOptions::default())
        .into_primitive()
        .tensor()
}

#[derive(Debug)]
struct RecomputedBackward;

/// What the backward pass reads: the inputs only.
#[derive(Debug, Clone)]
struct Inputs<I: Backend> {
    q: FloatTensor<I>,
    k: FloatTensor<I>,
    v: FloatTensor<I>,
}

impl<I: Backend> Backward<I, 3> for RecomputedBackward {
    type State = Inputs<I>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad_output = inner::<I, 4>(grads.consume::<I>(&ops.node));
        let Inputs { q, k, v } = ops.state.clone();
        let gradients = gradients(inner(q), inner(k), inner(v), grad_output);
        register_on::<I, _, 3>(&ops, grads, gradients.map(|t| t.into_primitive().tensor()));
    }
}

/// `[dq, dk, dv]` of `o = softmax(s·q·kᵀ)·v` given `do`: the probabilities
/// `p` recomputed, `dv = pᵀ·do`, `ds = p ⊙ (dp − Σ_row dp ⊙ p)` with
/// `dp = do·vᵀ`, `dq = s·ds·k`, `dk = s·dsᵀ·q`. The softmax and `ds` in f32
/// at least (bf16 scores lose the row's small probabilities), the products
/// in the inputs' dtype.
fn gradients<I: Backend>(
    q: Tensor<I, 4>,
    k: Tensor<I, 4>,
    v: Tensor<I, 4>,
    grad_output: Tensor<I, 4>,
) -> [Tensor<I, 4>; 3] {
    let dtype = q.dtype();
    let wide = widened(dtype);
    let [_, _, _, head_dim] = q.dims();
    let scale = (head_dim as f64).sqrt().recip();
    let scores = q.clone().matmul(k.clone().swap_dims(2, 3)).cast(wide) * scale;
    let probs = softmax(scores, 3); // [B, H, Nq, Nk]
    let grad_v = probs
        .clone()
        .cast(dtype)
        .swap_dims(2, 3)
        .matmul(grad_output.clone());
    let grad_probs = grad_output.matmul(v.swap_dims(2, 3)).cast(wide);
    let row = (grad_probs.clone() * probs.clone()).sum_dim(3);
    let grad_scores = (probs * (grad_probs - row) * scale).cast(dtype);
    let grad_q = grad_scores.clone().matmul(k);
    let grad_k = grad_scores.swap_dims(2, 3).matmul(q);
    [grad_q, grad_k, grad_v]
}

/// Attention's inputs on a backend `B` that
/// [`on_known_graph`](crate::graph::on_known_graph) may find to be a known
/// autodiff backend.
pub(crate) struct AttentionInputs<B: Backend> {
    pub q: Tensor<B, 4>,
    pub k: Tensor<B, 4>,
    pub v: Tensor<B, 4>,
}

impl<B: Backend> Recorded<B> for AttentionInputs<B> {
    type Output = Tensor<B, 4>;

    fn on<I: Backend, C: CheckpointStrategy>(self) -> Tensor<B, 4> {
        let Self { q, k, v } = self;
        cast(attention_recomputed::<I, C>(cast(q), cast(k), cast(v)))
    }
}
