//! An element-wise operation of one input on the autodiff graph of the CPU
//! backend: the kernel's output, recorded with a backward pass that maps the
//! incoming gradient through a state the forward pass kept (SiLU keeps its
//! input, dropout its mask's seed).

use std::fmt::Debug;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;

use crate::route::{self, Cpu, CpuArray, TrackedTensor, row_major, shaped, values};

/// The operation on `x` of `B = Autodiff<Cpu, C>`: `forward` takes `x`'s
/// row-major values and gives the output's and the state that `gradient`
/// reads to turn the output's gradient into `x`'s.
pub(crate) fn tracked<B, C, S, const D: usize>(
    x: Tensor<B, D>,
    forward: impl FnOnce(CpuArray) -> (Vec<f32>, S),
    gradient: fn(&S, &[f32]) -> Vec<f32>,
) -> Tensor<B, D>
where
    B: Backend,
    C: CheckpointStrategy,
    S: Clone + Send + Debug + 'static,
{
    let shape = x.dims();
    let x: TrackedTensor = route::primitive(x);
    let (out, state) = forward(row_major(route::array(x.primitive)));
    let out = shaped(out, &shape);
    let backward = ElementwiseBackward { gradient };
    let out = match backward.prepare::<C>([x.node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    route::tensor::<B, _, D>(out)
}

#[derive(Debug)]
struct ElementwiseBackward<S> {
    gradient: fn(&S, &[f32]) -> Vec<f32>,
}

impl<S: Clone + Send + Debug + 'static> Backward<Cpu, 1> for ElementwiseBackward<S> {
    type State = S;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = row_major(route::array(grads.consume::<Cpu>(&ops.node)));
        let shape = grad.shape().to_vec();
        let grad = (self.gradient)(&ops.state, values(&grad));
        route::register(&ops, grads, [shaped(grad, &shape)]);
    }
}
