//! The SwiGLU gate `silu(gate) ⊙ up`: burn's tensor ops, or the CPU kernel
//! with its backward pass.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::cpu::swiglu as kernel;
use crate::route::{self, Cpu, CpuArray, Path, Strategy, TrackedTensor, row_major, shaped, values};

/// `silu(gate) ⊙ up`, element-wise.
///
/// # Shapes
/// - gate, up, output: the same shape
pub fn swiglu<B: Backend, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    assert_eq!(
        gate.dims(),
        up.dims(),
        "swiglu: gate and up differ in shape"
    );
    match Path::of::<B>(&[gate.dtype(), up.dtype()]) {
        Path::Cpu => {
            let shape = gate.dims();
            let [gate, up] = [gate, up].map(|t| row_major(route::array(route::primitive(t))));
            route::tensor::<B, _, D>(shaped(kernel::forward(values(&gate), values(&up)), &shape))
        }
        Path::Tracked(Strategy::None) => tracked::<B, NoCheckpointing, D>(gate, up),
        Path::Tracked(Strategy::Balanced) => tracked::<B, BalancedCheckpointing, D>(gate, up),
        Path::Composite => silu(gate) * up,
    }
}

/// The gate on the autodiff graph of `B = Autodiff<Cpu, C>`.
fn tracked<B: Backend, C: CheckpointStrategy, const D: usize>(
    gate: Tensor<B, D>,
    up: Tensor<B, D>,
) -> Tensor<B, D> {
    let shape = gate.dims();
    let [gate, up]: [TrackedTensor; 2] = [gate, up].map(route::primitive);
    let nodes = [gate.node.clone(), up.node.clone()];
    let [gate, up] = [gate, up].map(|t| row_major(route::array(t.primitive)));
    let out = shaped(kernel::forward(values(&gate), values(&up)), &shape);
    let out = match SwigluBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(SwigluState { gate, up }, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    route::tensor::<B, _, D>(out)
}

#[derive(Debug)]
struct SwigluBackward;

/// What the backward pass reads: both inputs.
#[derive(Debug, Clone)]
struct SwigluState {
    gate: CpuArray,
    up: CpuArray,
}

impl Backward<Cpu, 2> for SwigluBackward {
    type State = SwigluState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = row_major(route::array(grads.consume::<Cpu>(&ops.node)));
        let shape = grad.shape().to_vec();
        let SwigluState { gate, up } = &ops.state;
        let kernel::Gradients { a, b } = kernel::backward(values(&grad), values(gate), values(up));
        route::register(&ops, grads, [shaped(a, &shape), shaped(b, &shape)]);
    }
}
