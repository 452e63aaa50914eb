//! The memory-lean attention ([`attention_recomputed`]) against burn's own
//! attention under autodiff (decomposed into recorded products and a
//! softmax), on burn's Flex CPU backend: values and gradients under both
//! checkpointing strategies, in f32 and computing in bf16.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::prelude::*;
use burn::tensor::module;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, Tolerance};
use burn_flex::Flex;
use ssdit_kernels::attention_recomputed;

type Graph<C> = Autodiff<Flex, C>;

/// Fixed, irregular values of `shape` (not drawn from the backend's RNG,
/// which tests running in parallel share).
fn values<B: Backend>(shape: [usize; 4], phase: f32) -> Tensor<B, 4> {
    let count = shape.iter().product::<usize>() as i64;
    Tensor::<B, 1, Int>::arange(0..count, &Default::default())
        .float()
        .mul_scalar(0.37)
        .add_scalar(phase)
        .sin()
        .mul_scalar(2.0)
        .reshape(shape)
}

/// q, k, v of 2 batches, 3 heads, 7 queries, 9 keys, head width 8, value width 5.
fn inputs() -> [Tensor<Flex, 4>; 3] {
    [
        values([2, 3, 7, 8], 0.1),
        values([2, 3, 9, 8], 1.3),
        values([2, 3, 9, 5], 2.9),
    ]
}

/// The output of `op` on the inputs cast to `dtype`, and the gradients of
/// `Σ g ⊙ output` with a fixed cotangent `g`, all back in f32.
fn run<C: CheckpointStrategy>(
    dtype: DType,
    op: impl Fn([Tensor<Graph<C>, 4>; 3]) -> Tensor<Graph<C>, 4>,
) -> [Tensor<Flex, 4>; 4] {
    let tracked = inputs().map(|t| Tensor::from_inner(t.cast(dtype)).require_grad());
    let output = op(tracked.clone());
    let cotangent = values::<Graph<C>>(output.dims(), 0.5).cast(dtype);
    let grads = (output.clone() * cotangent).sum().backward();
    let [dq, dk, dv] = tracked.map(|t| t.grad(&grads).expect("every input is tracked"));
    [output.inner(), dq, dk, dv].map(|t| t.cast(DType::F32))
}

fn burns<B: Backend>([q, k, v]: [Tensor<B, 4>; 3]) -> Tensor<B, 4> {
    module::attention(q, k, v, None, None, AttentionModuleOptions::default())
}

fn recomputed<C: CheckpointStrategy>([q, k, v]: [Tensor<Graph<C>, 4>; 3]) -> Tensor<Graph<C>, 4> {
    attention_recomputed(q, k, v)
}

fn assert_matches(
    got: [Tensor<Flex, 4>; 4],
    want: [Tensor<Flex, 4>; 4],
    tolerance: Tolerance<f32>,
) {
    for (name, (got, want)) in ["output", "dq", "dk", "dv"]
        .iter()
        .zip(got.into_iter().zip(want))
    {
        assert_eq!(got.dims(), want.dims(), "{name}");
        let want = want.into_data();
        let got = got.into_data();
        assert!(
            got.to_vec::<f32>().unwrap().iter().any(|&x| x != 0.0),
            "{name} is all zero"
        );
        got.assert_approx_eq::<f32>(&want, tolerance);
    }
}

fn matches_burns_attention<C: CheckpointStrategy>() {
    let tolerance = Tolerance::absolute(1e-5).set_relative(1e-4);
    assert_matches(
        run::<C>(DType::F32, recomputed::<C>),
        run::<C>(DType::F32, burns),
        tolerance,
    );
}

#[test]
fn matches_burns_attention_without_checkpointing() {
    matches_burns_attention::<NoCheckpointing>();
}

#[test]
fn matches_burns_attention_under_balanced_checkpointing() {
    matches_burns_attention::<BalancedCheckpointing>();
}

#[test]
fn computing_in_bf16_stays_within_bf16_precision_of_f32() {
    // Inputs of magnitude ≤ 2 rounded to 8 significant bits, products of
    // width 8 and 9: absolute errors of a few hundredths at most.
    let tolerance = Tolerance::absolute(6e-2).set_relative(3e-2);
    assert_matches(
        run::<NoCheckpointing>(DType::BF16, recomputed::<NoCheckpointing>),
        run::<NoCheckpointing>(DType::F32, burns),
        tolerance,
    );
}
