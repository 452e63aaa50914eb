//! SiLU `x·σ(x)`: the CPU kernel with its backward pass, or burn's
//! `silu`. burn's sigmoid on NdArray is six single-threaded passes with
//! libm's `expf` and `logf` (`exp(−log(1 + exp(−x)))`), and its autodiff
//! records each; the kernel is one parallel pass each way.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::activation;

use crate::cpu::silu as kernel;
use crate::route::{self, Cpu, CpuArray, Path, Strategy, TrackedTensor, row_major, shaped, values};

/// `x·σ(x)`, element-wise.
pub fn silu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    match Path::of::<B>(&[x.dtype()]) {
        Path::Cpu => {
            let shape = x.dims();
            let x = row_major(route::array(route::primitive(x)));
            route::tensor::<B, _, D>(shaped(kernel::forward(values(&x)), &shape))
        }
        Path::Tracked(Strategy::None) => tracked::<B, NoCheckpointing, D>(x),
        Path::Tracked(Strategy::Balanced) => tracked::<B, BalancedCheckpointing, D>(x),
        Path::Composite => activation::silu(x),
    }
}

/// SiLU on the autodiff graph of `B = Autodiff<Cpu, C>`.
fn tracked<B: Backend, C: CheckpointStrategy, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let shape = x.dims();
    let x: TrackedTensor = route::primitive(x);
    let input = row_major(route::array(x.primitive));
    let out = shaped(kernel::forward(values(&input)), &shape);
    let out = match SiluBackward
        .prepare::<C>([x.node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(input, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    route::tensor::<B, _, D>(out)
}

#[derive(Debug)]
struct SiluBackward;

impl Backward<Cpu, 1> for SiluBackward {
    /// The input.
    type State = CpuArray;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = row_major(route::array(grads.consume::<Cpu>(&ops.node)));
        let shape = grad.shape().to_vec();
        let da = kernel::backward(values(&grad), values(&ops.state));
        route::register(&ops, grads, [shaped(da, &shape)]);
    }
}
