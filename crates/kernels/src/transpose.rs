//! The last two axes of a 3-D tensor swapped, in row-major memory: burn's
//! `swap_dims` (a strided view, which the next reshape copies one element at
//! a time through ndarray's n-dimensional iterator) or the CPU kernel's
//! tiled copy, whose backward pass is the same copy of the gradient.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::ndarray::NdArrayTensor;
use burn::prelude::*;

use crate::cpu::transpose as kernel;
use crate::route::{self, Cpu, CpuArray, Path, Strategy, TrackedTensor, row_major, shaped, values};

/// `x` with its last two axes swapped.
///
/// # Shapes
/// - x: `[count, rows, cols]`
/// - output: `[count, cols, rows]`
pub fn transpose_last<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    match Path::of::<B>(&[x.dtype()]) {
        Path::Cpu => route::tensor::<B, _, 3>(transposed(route::array(route::primitive(x)))),
        Path::Tracked(Strategy::None) => tracked::<B, NoCheckpointing>(x),
        Path::Tracked(Strategy::Balanced) => tracked::<B, BalancedCheckpointing>(x),
        Path::Composite => x.swap_dims(1, 2),
    }
}

fn transposed(x: CpuArray) -> NdArrayTensor {
    let x = row_major(x);
    let [count, rows, cols] = <[usize; 3]>::try_from(x.shape()).expect("a three-axis tensor");
    shaped(
        kernel::transpose(values(&x), rows, cols),
        &[count, cols, rows],
    )
}

/// The copy on the autodiff graph of `B = Autodiff<Cpu, C>`.
fn tracked<B: Backend, C: CheckpointStrategy>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    let x: TrackedTensor = route::primitive(x);
    let out = transposed(route::array(x.primitive));
    let out = TransposeBackward
        .prepare::<C>([x.node])
        .compute_bound()
        .stateless(out);
    route::tensor::<B, _, 3>(out)
}

#[derive(Debug)]
struct TransposeBackward;

impl Backward<Cpu, 1> for TransposeBackward {
    type State = ();

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = transposed(route::array(grads.consume::<Cpu>(&ops.node)));
        route::register(&ops, grads, [grad]);
    }
}
