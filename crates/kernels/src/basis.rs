//! A constant basis applied to every matrix of a batch (the Fourier filters'
//! DFT): burn's broadcasting `matmul`, or, on the CPU backend, the attention
//! kernels' product over the batch in parallel. burn-ndarray 0.21's `matmul`
//! copies both operands and its result through reshapes and zero-fills the
//! result first; at the DFT's sizes that was nine tenths of its time.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ndarray::NdArrayTensor;
use burn::prelude::*;
use ndarray::{ArrayViewD, Ix2, Ix3};

use crate::cpu::basis as kernel;
use crate::route::{self, Cpu, CpuArray, Path, Strategy, TrackedTensor, cpu_tensor};

/// `basis·x[b]` for every batch entry `b`. The basis is meant as a constant:
/// the CPU kernels' backward pass gives only `x` a gradient.
///
/// # Shapes
/// - basis: `[m, k]`
/// - x: `[batch, k, n]`
/// - output: `[batch, m, n]`
///
/// # Panics
/// When the basis' columns are not the matrices' rows.
pub fn apply_basis<B: Backend>(basis: Tensor<B, 2>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let ([_, k], [_, rows, _]) = (basis.dims(), x.dims());
    assert_eq!(
        k, rows,
        "apply_basis: a [_, {k}] basis on [_, {rows}, _] matrices"
    );
    match Path::of::<B>(&[basis.dtype(), x.dtype()]) {
        Path::Cpu => {
            let [basis, x] = [route::primitive(basis), route::primitive(x)].map(route::array);
            route::tensor::<B, _, 3>(applied(basis.view(), &x))
        }
        Path::Tracked(Strategy::None) => tracked::<B, NoCheckpointing>(basis, x),
        Path::Tracked(Strategy::Balanced) => tracked::<B, BalancedCheckpointing>(basis, x),
        Path::Composite => basis.unsqueeze::<3>().matmul(x),
    }
}

/// `basis·x[b]` on the CPU arrays, any layout.
fn applied(basis: ArrayViewD<'_, f32>, x: &CpuArray) -> NdArrayTensor {
    let basis = basis.into_dimensionality::<Ix2>().expect("a matrix");
    let x = x
        .view()
        .into_dimensionality::<Ix3>()
        .expect("a batch of matrices");
    cpu_tensor(kernel::apply(basis, x))
}

/// The product on the autodiff graph of `B = Autodiff<Cpu, C>`, recorded
/// for `x` only.
fn tracked<B: Backend, C: CheckpointStrategy>(
    basis: Tensor<B, 2>,
    x: Tensor<B, 3>,
) -> Tensor<B, 3> {
    let basis = route::array(route::primitive::<TrackedTensor, _, 2>(basis).primitive);
    let x: TrackedTensor = route::primitive(x);
    let out = applied(basis.view(), &route::array(x.primitive));
    let out = match BasisBackward
        .prepare::<C>([x.node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(basis, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    route::tensor::<B, _, 3>(out)
}

#[derive(Debug)]
struct BasisBackward;

impl Backward<Cpu, 1> for BasisBackward {
    /// The basis.
    type State = CpuArray;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = route::array(grads.consume::<Cpu>(&ops.node));
        route::register(&ops, grads, [applied(ops.state.t(), &grad)]);
    }
}
