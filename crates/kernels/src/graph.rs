//! The autodiff backends of other inner backends on which some operations
//! record a backward pass of their own, generic over the inner backend
//! (CUDA's; Flex's with the `flex` feature, for tests), instead of burn's
//! composite recording.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use burn::tensor::ops::FloatTensor;

/// The tensor of a recorded operation's inner backend `I` holding `primitive`.
pub(crate) fn inner<I: Backend, const D: usize>(primitive: FloatTensor<I>) -> Tensor<I, D> {
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
}

/// An operation on backend `B` with a recorded form for any `Autodiff<I, C>`.
pub(crate) trait Recorded<B: Backend>: Sized {
    type Output;

    /// The operation recorded on `B`, which is `Autodiff<I, C>`.
    // Called only where a backend is known: builds with `flex` or `cuda`.
    #[cfg_attr(not(any(feature = "flex", feature = "cuda")), allow(dead_code))]
    fn on<I: Backend, C: CheckpointStrategy>(self) -> Self::Output;
}

/// `op` recorded when `B` is a known autodiff backend under either
/// checkpointing strategy; `op` back otherwise.
pub(crate) fn on_known_graph<B: Backend, Op: Recorded<B>>(op: Op) -> Result<Op::Output, Op> {
    #[cfg(feature = "flex")]
    let op = match over::<B, burn_flex::Flex, Op>(op) {
        Ok(output) => return Ok(output),
        Err(op) => op,
    };
    #[cfg(feature = "cuda")]
    let op = match over::<B, burn::backend::Cuda<f32>, Op>(op) {
        Ok(output) => return Ok(output),
        Err(op) => op,
    };
    Err(op)
}

/// `op` recorded when `B` is `Autodiff<I, C>`.
#[cfg(any(feature = "flex", feature = "cuda"))]
fn over<B: Backend, I: Backend, Op: Recorded<B>>(op: Op) -> Result<Op::Output, Op> {
    use std::any::TypeId;

    use burn::backend::Autodiff;
    use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, NoCheckpointing};

    let backend = TypeId::of::<B>();
    if backend == TypeId::of::<Autodiff<I, NoCheckpointing>>() {
        Ok(op.on::<I, NoCheckpointing>())
    } else if backend == TypeId::of::<Autodiff<I, BalancedCheckpointing>>() {
        Ok(op.on::<I, BalancedCheckpointing>())
    } else {
        Err(op)
    }
}
