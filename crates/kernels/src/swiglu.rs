//! The SwiGLU gate `silu(gate) ⊙ up`: the CPU kernel with its backward
//! pass, burn's tensor ops recorded with a lean backward pass on CUDA's
//! autodiff ([`swiglu_recorded`]), or burn's tensor ops.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::ops::FloatTensor;

use crate::cpu::swiglu as kernel;
use crate::graph::{self, Recorded, inner};
use crate::route::{
    self, Cpu, CpuArray, Path, Strategy, TrackedTensor, cast, register_on, row_major, shaped,
    values,
};

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
        Path::Composite => match graph::on_known_graph(SwigluInputs { gate, up }) {
            Ok(output) => output,
            Err(SwigluInputs { gate, up }) => silu(gate) * up,
        },
    }
}

/// The gate on `Autodiff<I, C>` with a backward pass of its own that holds
/// `gate` and `up` only, where burn's recording of `silu(gate) ⊙ up` also
/// holds `sigmoid(gate)` and `silu(gate)` (two 2048-wide tensors per block
/// and sample at the seed's sizes). [`swiglu`] takes it on the autodiff
/// backends it knows (CUDA; Flex with the `flex` feature); callable on any
/// other. Same forward as the composite; shapes as [`swiglu`].
pub fn swiglu_recorded<I: Backend, C: CheckpointStrategy, const D: usize>(
    gate: Tensor<Autodiff<I, C>, D>,
    up: Tensor<Autodiff<I, C>, D>,
) -> Tensor<Autodiff<I, C>, D> {
    let [gate, up] = [gate, up].map(|t| t.into_primitive().tensor());
    let nodes = [gate.node.clone(), up.node.clone()];
    let [gate, up] = [gate.primitive, up.primitive];
    let output = (silu(inner::<I, D>(gate.clone())) * inner::<I, D>(up.clone()))
        .into_primitive()
        .tensor();
    let output = match RecordedBackward::<D>
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((gate, up), output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

/// The gate's inputs on a backend `B` that
/// [`on_known_graph`](crate::graph::on_known_graph) may find to be a known
/// autodiff backend.
struct SwigluInputs<B: Backend, const D: usize> {
    gate: Tensor<B, D>,
    up: Tensor<B, D>,
}

impl<B: Backend, const D: usize> Recorded<B> for SwigluInputs<B, D> {
    type Output = Tensor<B, D>;

    fn on<I: Backend, C: CheckpointStrategy>(self) -> Tensor<B, D> {
        cast(swiglu_recorded::<I, C, D>(cast(self.gate), cast(self.up)))
    }
}

#[derive(Debug)]
struct RecordedBackward<const D: usize>;

impl<I: Backend, const D: usize> Backward<I, 2> for RecordedBackward<D> {
    /// `gate` and `up`.
    type State = (FloatTensor<I>, FloatTensor<I>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = inner::<I, D>(grads.consume::<I>(&ops.node));
        let (gate, up) = ops.state.clone();
        let (gate, up) = (inner::<I, D>(gate), inner::<I, D>(up));
        // silu'(g) = σ(g)·(1 + g·(1 − σ(g)))
        let sig = sigmoid(gate.clone());
        let silu_grad = sig.clone() * (gate.clone() * (sig.clone().neg() + 1.0) + 1.0);
        let grad_up = grad.clone() * gate * sig;
        let grad_gate = grad * up * silu_grad;
        let gradients = [grad_gate, grad_up].map(|t| t.into_primitive().tensor());
        register_on::<I, _, 2>(&ops, grads, gradients);
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
