//! Dropout while training: burn's (a Bernoulli tensor drawn one element at a
//! time from the backend's generator, then two recorded products), or, on
//! the CPU backend's autodiff, a mask drawn in parallel from one seed that
//! the backward pass redraws, so nothing of the size of `x` is held.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::Distribution;

use crate::cpu::dropout::Mask;
use crate::route::{self, Cpu, Path, Strategy, TrackedTensor, row_major, shaped, values};

/// `x` with each element zeroed with probability `prob` and the others
/// divided by `1 − prob`, on backends that record gradients; `x` itself
/// elsewhere (inference) or when `prob` is 0. The mask comes from the
/// backend's generator, so seeding it (`B::seed`) repeats the mask.
///
/// # Panics
/// When `prob` is not in `[0, 1)`.
pub fn dropout<B: Backend, const D: usize>(x: Tensor<B, D>, prob: f64) -> Tensor<B, D> {
    assert!((0.0..1.0).contains(&prob), "dropout: probability {prob}");
    if prob == 0.0 || !B::ad_enabled(&x.device()) {
        return x;
    }
    let keep = 1.0 - prob;
    match Path::of::<B>(&[x.dtype()]) {
        Path::Tracked(Strategy::None) => tracked::<B, NoCheckpointing, D>(x, keep),
        Path::Tracked(Strategy::Balanced) => tracked::<B, BalancedCheckpointing, D>(x, keep),
        Path::Cpu | Path::Composite => {
            let mask = x.random_like(Distribution::Bernoulli(keep));
            x * mask * (1.0 / keep)
        }
    }
}

/// A seed for the mask, drawn from the CPU backend's generator.
fn draw_seed() -> u64 {
    let draws = Tensor::<Cpu, 1>::random([2], Distribution::Default, &Default::default())
        .into_data()
        .to_vec::<f32>()
        .expect("f32 draws");
    draws.iter().fold(0, |seed, &u| {
        (seed << 32) | (u * (1u64 << 24) as f32) as u64
    })
}

/// Dropout on the autodiff graph of `B = Autodiff<Cpu, C>`.
fn tracked<B: Backend, C: CheckpointStrategy, const D: usize>(
    x: Tensor<B, D>,
    keep: f64,
) -> Tensor<B, D> {
    let shape = x.dims();
    let mask = Mask::new(draw_seed(), keep);
    let x: TrackedTensor = route::primitive(x);
    let input = row_major(route::array(x.primitive));
    let out = shaped(mask.apply(values(&input)), &shape);
    let out = match DropoutBackward
        .prepare::<C>([x.node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(mask, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    route::tensor::<B, _, D>(out)
}

#[derive(Debug)]
struct DropoutBackward;

impl Backward<Cpu, 1> for DropoutBackward {
    /// The mask, redrawn from its seed.
    type State = Mask;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = row_major(route::array(grads.consume::<Cpu>(&ops.node)));
        let shape = grad.shape().to_vec();
        let grad = ops.state.apply(values(&grad));
        route::register(&ops, grads, [shaped(grad, &shape)]);
    }
}
