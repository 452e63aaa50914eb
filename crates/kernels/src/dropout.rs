//! Dropout while training: burn's (a Bernoulli tensor drawn one element at a
//! time from the backend's generator, then two recorded products), or, on
//! the CPU backend's autodiff, a mask drawn in parallel from one seed that
//! the backward pass redraws, so nothing of the size of `x` is held.

use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::prelude::*;
use burn::tensor::Distribution;

use crate::cpu::dropout::Mask;
use crate::elementwise;
use crate::route::{Cpu, Path, Strategy, values};

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

/// Dropout on the autodiff graph of `B = Autodiff<Cpu, C>`, holding the
/// mask's seed: the backward pass redraws the mask.
fn tracked<B: Backend, C: CheckpointStrategy, const D: usize>(
    x: Tensor<B, D>,
    keep: f64,
) -> Tensor<B, D> {
    let mask = Mask::new(draw_seed(), keep);
    elementwise::tracked::<B, C, Mask, D>(
        x,
        |input| (mask.apply(values(&input)), mask),
        |mask, grad| mask.apply(grad),
    )
}
