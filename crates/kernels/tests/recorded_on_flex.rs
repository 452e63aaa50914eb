//! The operations recorded with a backward pass of their own on other
//! backends' autodiff (CUDA's) against burn's recording of the same
//! composite, on burn's Flex CPU backend: values and gradients under both
//! checkpointing strategies, in f32 and computing in bf16. Attention
//! ([`attention_recomputed`]) against burn's own attention; RMSNorm
//! ([`rms_norm_recorded`]) and the SwiGLU gate ([`swiglu_recorded`])
//! against their composites written out here.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::prelude::*;
use burn::tensor::activation::silu;
use burn::tensor::module;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, Tolerance};
use burn_flex::Flex;
use ssdit_kernels::{attention_recomputed, rms_norm_recorded, swiglu_recorded};

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
fn attention_inputs() -> [Tensor<Flex, 4>; 3] {
    [
        values([2, 3, 7, 8], 0.1),
        values([2, 3, 9, 8], 1.3),
        values([2, 3, 9, 5], 2.9),
    ]
}

/// x `[2, 7, 16]` and the weight `[16]`, both as rank 4 so `run` takes them.
fn rms_norm_inputs() -> [Tensor<Flex, 4>; 2] {
    [values([1, 2, 7, 16], 0.4), values([1, 1, 1, 16], 1.7)]
}

/// The output of `op` on `inputs` cast to `dtype`, then the gradients of
/// `Σ g ⊙ output` (a fixed cotangent `g`) for each input, all in f32.
fn run<C: CheckpointStrategy, const N: usize>(
    inputs: [Tensor<Flex, 4>; N],
    dtype: DType,
    op: impl Fn([Tensor<Graph<C>, 4>; N]) -> Tensor<Graph<C>, 4>,
) -> Vec<Tensor<Flex, 4>> {
    let tracked = inputs.map(|t| Tensor::from_inner(t.cast(dtype)).require_grad());
    let output = op(tracked.clone());
    let cotangent = values::<Graph<C>>(output.dims(), 0.5).cast(dtype);
    let grads = (output.clone() * cotangent).sum().backward();
    let gradients = tracked.map(|t| t.grad(&grads).expect("every input is tracked"));
    std::iter::once(output.inner())
        .chain(gradients)
        .map(|t| t.cast(DType::F32))
        .collect()
}

/// `got` against `want`, named in order by `names`; none all zero.
fn assert_matches(
    names: &[&str],
    got: Vec<Tensor<Flex, 4>>,
    want: Vec<Tensor<Flex, 4>>,
    tolerance: Tolerance<f32>,
) {
    assert_eq!((got.len(), want.len()), (names.len(), names.len()));
    for (name, (got, want)) in names.iter().zip(got.into_iter().zip(want)) {
        assert_eq!(got.dims(), want.dims(), "{name}");
        let got = got.into_data();
        assert!(
            got.to_vec::<f32>().unwrap().iter().any(|&x| x != 0.0),
            "{name} is all zero"
        );
        got.assert_approx_eq::<f32>(&want.into_data(), tolerance);
    }
}

/// gate and up, `[2, 7, 16]` each (as rank 4).
fn swiglu_inputs() -> [Tensor<Flex, 4>; 2] {
    [values([1, 2, 7, 16], 0.8), values([1, 2, 7, 16], 2.1)]
}

const ATTENTION: [&str; 4] = ["output", "dq", "dk", "dv"];
const RMS_NORM: [&str; 3] = ["output", "dx", "dweight"];
const SWIGLU: [&str; 3] = ["output", "dgate", "dup"];
const F32_TOLERANCE: (f32, f32) = (1e-5, 1e-4);
/// Inputs of magnitude ≤ 2 rounded to 8 significant bits, products of
/// width ≤ 16: absolute errors of a few hundredths at most.
const BF16_TOLERANCE: (f32, f32) = (6e-2, 3e-2);

fn tolerance((absolute, relative): (f32, f32)) -> Tolerance<f32> {
    Tolerance::absolute(absolute).set_relative(relative)
}

fn burns<B: Backend>([q, k, v]: [Tensor<B, 4>; 3]) -> Tensor<B, 4> {
    module::attention(q, k, v, None, None, AttentionModuleOptions::default())
}

fn recomputed<C: CheckpointStrategy>([q, k, v]: [Tensor<Graph<C>, 4>; 3]) -> Tensor<Graph<C>, 4> {
    attention_recomputed(q, k, v)
}

/// RMSNorm over the last axis written out from burn's ops (eps 1e-6).
fn rms_norm_composite<B: Backend>([x, weight]: [Tensor<B, 4>; 2]) -> Tensor<B, 4> {
    let dtype = x.dtype();
    let x = x.cast(DType::F32);
    let inv_rms = x
        .clone()
        .square()
        .mean_dim(3)
        .add_scalar(1e-6)
        .sqrt()
        .recip();
    (x * inv_rms).cast(dtype) * weight
}

fn rms_norm_of<C: CheckpointStrategy>(
    [x, weight]: [Tensor<Graph<C>, 4>; 2],
) -> Tensor<Graph<C>, 4> {
    rms_norm_recorded(x, weight.reshape([16]), 1e-6)
}

fn attention_matches<C: CheckpointStrategy>() {
    assert_matches(
        &ATTENTION,
        run::<C, 3>(attention_inputs(), DType::F32, recomputed::<C>),
        run::<C, 3>(attention_inputs(), DType::F32, burns),
        tolerance(F32_TOLERANCE),
    );
}

fn rms_norm_matches<C: CheckpointStrategy>() {
    assert_matches(
        &RMS_NORM,
        run::<C, 2>(rms_norm_inputs(), DType::F32, rms_norm_of::<C>),
        run::<C, 2>(rms_norm_inputs(), DType::F32, rms_norm_composite),
        tolerance(F32_TOLERANCE),
    );
}

#[test]
fn attention_matches_burns_without_checkpointing() {
    attention_matches::<NoCheckpointing>();
}

#[test]
fn attention_matches_burns_under_balanced_checkpointing() {
    attention_matches::<BalancedCheckpointing>();
}

#[test]
fn attention_in_bf16_stays_within_bf16_precision_of_f32() {
    type C = NoCheckpointing;
    assert_matches(
        &ATTENTION,
        run::<C, 3>(attention_inputs(), DType::BF16, recomputed::<C>),
        run::<C, 3>(attention_inputs(), DType::F32, burns),
        tolerance(BF16_TOLERANCE),
    );
}

#[test]
fn rms_norm_matches_the_composite_without_checkpointing() {
    rms_norm_matches::<NoCheckpointing>();
}

#[test]
fn rms_norm_matches_the_composite_under_balanced_checkpointing() {
    rms_norm_matches::<BalancedCheckpointing>();
}

#[test]
fn rms_norm_in_bf16_stays_within_bf16_precision_of_f32() {
    type C = NoCheckpointing;
    assert_matches(
        &RMS_NORM,
        run::<C, 2>(rms_norm_inputs(), DType::BF16, rms_norm_of::<C>),
        run::<C, 2>(rms_norm_inputs(), DType::F32, rms_norm_composite),
        tolerance(BF16_TOLERANCE),
    );
}

fn swiglu_composite<B: Backend>([gate, up]: [Tensor<B, 4>; 2]) -> Tensor<B, 4> {
    silu(gate) * up
}

fn swiglu_of<C: CheckpointStrategy>([gate, up]: [Tensor<Graph<C>, 4>; 2]) -> Tensor<Graph<C>, 4> {
    swiglu_recorded(gate, up)
}

fn swiglu_matches<C: CheckpointStrategy>() {
    assert_matches(
        &SWIGLU,
        run::<C, 2>(swiglu_inputs(), DType::F32, swiglu_of::<C>),
        run::<C, 2>(swiglu_inputs(), DType::F32, swiglu_composite),
        tolerance(F32_TOLERANCE),
    );
}

#[test]
fn swiglu_matches_the_composite_without_checkpointing() {
    swiglu_matches::<NoCheckpointing>();
}

#[test]
fn swiglu_matches_the_composite_under_balanced_checkpointing() {
    swiglu_matches::<BalancedCheckpointing>();
}

#[test]
fn swiglu_in_bf16_stays_within_bf16_precision_of_f32() {
    type C = NoCheckpointing;
    assert_matches(
        &SWIGLU,
        run::<C, 2>(swiglu_inputs(), DType::BF16, swiglu_of::<C>),
        run::<C, 2>(swiglu_inputs(), DType::F32, swiglu_composite),
        tolerance(BF16_TOLERANCE),
    );
}
