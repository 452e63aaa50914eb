//! A linear layer's `x·W + b` on token rows: burn's `linear`, or the CPU
//! products with a backward pass that hands BLAS the transposed operands as
//! views (burn's own backward copies `xᵀ` and `Wᵀ` into new arrays, and its
//! batched matmul copies them once more: ~5 % of a CPU training step).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use ndarray::{ArrayView2, Ix2};

use crate::cpu::linear as kernel;
use crate::route::{self, Cpu, CpuArray, Path, Strategy, TrackedTensor, cpu_tensor, row_major};

/// `x·weight + bias`.
///
/// # Shapes
/// - x: `[rows, d_in]`
/// - weight: `[d_in, d_out]` (burn's `Linear` layout)
/// - bias: `[d_out]`
/// - output: `[rows, d_out]`
pub fn linear<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, 2> {
    let [_, d_in] = x.dims();
    assert_eq!(
        weight.dims()[0],
        d_in,
        "linear: x has {d_in} features, the weight another number"
    );
    let product = match Path::of::<B>(&[x.dtype(), weight.dtype()]) {
        Path::Cpu => {
            let [x, weight] = [x, weight].map(|t| route::array(route::primitive(t)));
            let out = kernel::forward(view(&row_major(x)), view(&weight));
            route::tensor::<B, _, 2>(cpu_tensor(out))
        }
        Path::Tracked(Strategy::None) => tracked::<B, NoCheckpointing>(x, weight),
        Path::Tracked(Strategy::Balanced) => tracked::<B, BalancedCheckpointing>(x, weight),
        Path::Composite => return burn::tensor::module::linear(x, weight, bias),
    };
    match bias {
        Some(bias) => product + bias.unsqueeze(),
        None => product,
    }
}

/// A 2-D view of an array known to have two axes.
fn view(array: &CpuArray) -> ArrayView2<'_, f32> {
    array
        .view()
        .into_dimensionality::<Ix2>()
        .expect("a two-axis tensor")
}

/// The product on the autodiff graph of `B = Autodiff<Cpu, C>`.
fn tracked<B: Backend, C: CheckpointStrategy>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let [x, weight]: [TrackedTensor; 2] = [x, weight].map(route::primitive);
    let nodes = [x.node.clone(), weight.node.clone()];
    let x = row_major(route::array(x.primitive));
    let weight = route::array(weight.primitive);
    let out = cpu_tensor(kernel::forward(view(&x), view(&weight)));
    let out = match LinearBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(LinearState { x, weight }, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    route::tensor::<B, _, 2>(out)
}

#[derive(Debug)]
struct LinearBackward;

/// What the backward pass reads: both operands.
#[derive(Debug, Clone)]
struct LinearState {
    x: CpuArray,
    weight: CpuArray,
}

impl Backward<Cpu, 2> for LinearBackward {
    type State = LinearState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = route::array(grads.consume::<Cpu>(&ops.node));
        let LinearState { x, weight } = &ops.state;
        let (dx, dw) = kernel::backward(view(&grad), view(x), view(weight));
        route::register(&ops, grads, [cpu_tensor(dx), cpu_tensor(dw)]);
    }
}
