//! A tensor's values under a new shape: burn's `reshape`, or, on the CPU
//! backend, the same array under the new shape without a copy. burn-ndarray
//! 0.21 copies on every reshape (it turns a borrowed view into an owned
//! array), and so does the autodiff backward of each: in the DiT's token-wise
//! layers that was a sixth of the forward pass' sequential time.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ndarray::NdArrayTensor;
use burn::prelude::*;
use ndarray::IxDyn;

use crate::route::{self, Cpu, CpuArray, Path, Strategy, TrackedTensor, row_major};

/// `x`'s values, in row-major order, under `shape`.
///
/// # Panics
/// When `shape` holds another number of elements than `x`.
pub fn reshape<B: Backend, const D1: usize, const D2: usize>(
    x: Tensor<B, D1>,
    shape: [usize; D2],
) -> Tensor<B, D2> {
    let from = x.dims();
    assert_eq!(
        from.iter().product::<usize>(),
        shape.iter().product::<usize>(),
        "reshape: {from:?} into {shape:?}"
    );
    match Path::of::<B>(&[x.dtype()]) {
        Path::Cpu => route::tensor::<B, _, D2>(reshaped(route::array(route::primitive(x)), &shape)),
        Path::Tracked(Strategy::None) => tracked::<B, NoCheckpointing, D1, D2>(x, shape),
        Path::Tracked(Strategy::Balanced) => tracked::<B, BalancedCheckpointing, D1, D2>(x, shape),
        Path::Composite => x.reshape(shape),
    }
}

/// `array` under `shape`, sharing its values when it is row-major.
fn reshaped(array: CpuArray, shape: &[usize]) -> NdArrayTensor {
    row_major(array)
        .into_shape_with_order(IxDyn(shape))
        .expect("a row-major array takes any shape of its size")
        .into()
}

/// The reshape on the autodiff graph of `B = Autodiff<Cpu, C>`.
fn tracked<B: Backend, C: CheckpointStrategy, const D1: usize, const D2: usize>(
    x: Tensor<B, D1>,
    shape: [usize; D2],
) -> Tensor<B, D2> {
    let x: TrackedTensor = route::primitive(x);
    let array = route::array(x.primitive);
    let from = array.shape().to_vec();
    let out = reshaped(array, &shape);
    let out = match ReshapeBackward
        .prepare::<C>([x.node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(from, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    route::tensor::<B, _, D2>(out)
}

#[derive(Debug)]
struct ReshapeBackward;

impl Backward<Cpu, 1> for ReshapeBackward {
    /// The input's shape.
    type State = Vec<usize>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = reshaped(route::array(grads.consume::<Cpu>(&ops.node)), &ops.state);
        route::register(&ops, grads, [grad]);
    }
}
