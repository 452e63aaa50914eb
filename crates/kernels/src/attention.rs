//! `softmax(QKᵀ/√d)·V`: the CPU kernel with its backward pass, burn's
//! attention op with a memory-lean backward pass on CUDA's autodiff
//! ([`attention_recomputed`](crate::attention_recomputed)), or burn's
//! attention op.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::module;
use burn::tensor::ops::AttentionModuleOptions;
use ndarray::{ArrayView4, Ix4};

use crate::cpu::attention as kernel;
use crate::graph;
use crate::recomputed::AttentionInputs;
use crate::route::{self, Cpu, CpuArray, Path, Strategy, TrackedTensor};

/// Scaled dot-product attention without mask, scale `1/√head_dim`.
///
/// # Shapes
/// - q: `[batch, heads, queries, head_dim]`
/// - k: `[batch, heads, keys, head_dim]`
/// - v: `[batch, heads, keys, value_dim]`
/// - output: `[batch, heads, queries, value_dim]`
pub fn attention<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>) -> Tensor<B, 4> {
    let [_, _, _, head_dim] = q.dims();
    let scale = (head_dim as f64).sqrt().recip() as f32;
    match Path::of::<B>(&[q.dtype(), k.dtype(), v.dtype()]) {
        Path::Cpu => {
            let [q, k, v] = [q, k, v].map(|t| route::array(route::primitive(t)));
            let forward = kernel::forward(inputs(&q, &k, &v, scale), false);
            route::tensor::<B, _, 4>(route::cpu_tensor(forward.output))
        }
        Path::Tracked(Strategy::None) => tracked::<B, NoCheckpointing>(q, k, v, scale),
        Path::Tracked(Strategy::Balanced) => tracked::<B, BalancedCheckpointing>(q, k, v, scale),
        Path::Composite => match graph::on_known_graph(AttentionInputs { q, k, v }) {
            Ok(output) => output,
            Err(AttentionInputs { q, k, v }) => {
                module::attention(q, k, v, None, None, AttentionModuleOptions::default())
            }
        },
    }
}

fn inputs<'a>(q: &'a CpuArray, k: &'a CpuArray, v: &'a CpuArray, scale: f32) -> kernel::Inputs<'a> {
    kernel::Inputs {
        q: view4(q),
        k: view4(k),
        v: view4(v),
        scale,
    }
}

fn view4(array: &CpuArray) -> ArrayView4<'_, f32> {
    array
        .view()
        .into_dimensionality::<Ix4>()
        .expect("attention tensors have rank 4")
}

/// The attention on the autodiff graph of `B = Autodiff<Cpu, C>`.
fn tracked<B: Backend, C: CheckpointStrategy>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    scale: f32,
) -> Tensor<B, 4> {
    let [q, k, v]: [TrackedTensor; 3] = [q, k, v].map(route::primitive);
    let nodes = [q.node.clone(), k.node.clone(), v.node.clone()];
    let [q, k, v] = [q, k, v].map(|t| route::array(t.primitive));
    let output = match AttentionBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let forward = kernel::forward(inputs(&q, &k, &v, scale), true);
            let probs = forward.probs.expect("asked for").into_dyn().into_shared();
            let state = AttentionState {
                q,
                k,
                v,
                probs,
                scale,
            };
            prep.finish(state, route::cpu_tensor(forward.output))
        }
        OpsKind::UnTracked(prep) => {
            let forward = kernel::forward(inputs(&q, &k, &v, scale), false);
            prep.finish(route::cpu_tensor(forward.output))
        }
    };
    route::tensor::<B, _, 4>(output)
}

#[derive(Debug)]
struct AttentionBackward;

/// What the backward pass reads: the inputs and the probabilities.
#[derive(Debug, Clone)]
struct AttentionState {
    q: CpuArray,
    k: CpuArray,
    v: CpuArray,
    probs: CpuArray,
    scale: f32,
}

impl Backward<Cpu, 3> for AttentionBackward {
    type State = AttentionState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad_output = route::array(grads.consume::<Cpu>(&ops.node));
        let AttentionState {
            q,
            k,
            v,
            probs,
            scale,
        } = &ops.state;
        let kernel::Gradients {
            q: dq,
            k: dk,
            v: dv,
        } = kernel::backward(inputs(q, k, v, *scale), view4(probs), view4(&grad_output));
        route::register(&ops, grads, [dq, dk, dv].map(route::cpu_tensor));
    }
}
