//! The CPU kernels against the same operations composed from burn's tensor
//! ops (the depthwise convolution's composite is itself checked against
//! burn's `conv2d` in the model's tests): values and gradients, on the plain backend and under both autodiff
//! strategies. The reference runs in f64 (which the kernels leave to the
//! composite path), so it is also the more accurate of the two.

use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use burn::tensor::{DType, Distribution, Tolerance};
use ssdit_kernels::{
    AdamWScalars, AdamWState, adamw_step, apply_basis, attention, depthwise_conv3x3, dropout,
    linear, reshape, rms_norm, rope, scale_add, silu, swiglu, transpose_last,
};

type Cpu = NdArray<f32>;

fn random<B: Backend, const D: usize>(shape: [usize; D], device: &B::Device) -> Tensor<B, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

fn assert_close<B: Backend, const D: usize>(got: Tensor<B, D>, want: Tensor<B, D>, what: &str) {
    assert_eq!(got.dtype(), DType::F32, "{what}: the kernels return f32");
    let want = want.cast(DType::F32).into_data();
    got.into_data()
        .assert_approx_eq::<f32>(&want, Tolerance::absolute(2e-5).set_relative(1e-4));
}

/// `[batch, tokens, heads, head_dim]` moved to heads-first, as the DiT
/// passes its projections (strided, not contiguous).
fn heads_first<B: Backend>(t: Tensor<B, 4>) -> Tensor<B, 4> {
    t.swap_dims(1, 2)
}

#[test]
fn attention_matches_the_composite_forward() {
    let device = Default::default();
    let [q, k, v] =
        [[2, 9, 3, 8], [2, 11, 3, 8], [2, 11, 3, 5]].map(|s| random::<Cpu, 4>(s, &device));
    let got = attention(
        heads_first(q.clone()),
        heads_first(k.clone()),
        heads_first(v.clone()),
    );
    let [q, k, v] = [q, k, v].map(|t| heads_first(t.cast(DType::F64)));
    let want = attention(q, k, v);
    assert_eq!(want.dtype(), DType::F64);
    assert_close(got, want, "attention");
}

#[test]
fn rms_norm_matches_the_composite_forward() {
    let device = Default::default();
    let x = heads_first(random::<Cpu, 4>([2, 7, 3, 16], &device));
    let weight = random::<Cpu, 1>([16], &device);
    let got = rms_norm(x.clone(), weight.clone(), 1e-6);
    let want = rms_norm(x.cast(DType::F64), weight.cast(DType::F64), 1e-6);
    assert_close(got, want, "rms_norm");
}

/// Gradients of `Σ g ⊙ op(inputs)` for every input, the inputs in `dtype`.
fn gradients<C: CheckpointStrategy, const N: usize>(
    inputs: &[Tensor<Cpu, 3>; N],
    dtype: DType,
    op: impl Fn([Tensor<Autodiff<Cpu, C>, 3>; N]) -> Tensor<Autodiff<Cpu, C>, 3>,
) -> (Tensor<Cpu, 3>, [Tensor<Cpu, 3>; N]) {
    let tracked = inputs
        .clone()
        .map(|t| Tensor::from_inner(t.cast(dtype)).require_grad());
    let output = op(tracked.clone());
    let g = cotangent::<Autodiff<Cpu, C>>(output.dims(), dtype);
    let grads = (output.clone() * g).sum().backward();
    let grads = tracked.map(|t| t.grad(&grads).expect("every input is tracked"));
    (output.inner(), grads)
}

/// A fixed, irregular cotangent (not drawn from the backend's RNG, which
/// tests running in parallel share).
fn cotangent<B: Backend>(shape: [usize; 3], dtype: DType) -> Tensor<B, 3> {
    let count = shape.iter().product::<usize>() as i64;
    Tensor::<B, 1, Int>::arange(0..count, &Default::default())
        .float()
        .mul_scalar(0.71)
        .sin()
        .reshape(shape)
        .cast(dtype)
}

fn gradients_match<C: CheckpointStrategy, const N: usize>(
    inputs: [Tensor<Cpu, 3>; N],
    op: impl Fn([Tensor<Autodiff<Cpu, C>, 3>; N]) -> Tensor<Autodiff<Cpu, C>, 3>,
) {
    let (got, got_grads) = gradients(&inputs, DType::F32, &op);
    let (want, want_grads) = gradients(&inputs, DType::F64, &op);
    assert_close(got, want, "value");
    for (i, (got, want)) in got_grads.into_iter().zip(want_grads).enumerate() {
        assert_close(got, want, &format!("gradient {i}"));
    }
}

/// Attention over `[batch, tokens, 2·head_dim]` inputs split into two
/// heads and moved heads-first (strided), as the DiT does.
fn attention_3d<B: Backend>([q, k, v]: [Tensor<B, 3>; 3]) -> Tensor<B, 3> {
    let split = |t: Tensor<B, 3>| {
        let [batch, tokens, features] = t.dims();
        heads_first(t.reshape([batch, tokens, 2, features / 2]))
    };
    let out = attention(split(q), split(k), split(v)); // [B, 2, N, dv]
    let [batch, heads, tokens, dim] = out.dims();
    out.swap_dims(1, 2).reshape([batch, tokens, heads * dim])
}

fn rms_norm_3d<B: Backend>([x, weight]: [Tensor<B, 3>; 2]) -> Tensor<B, 3> {
    let dim = weight.dims()[2];
    rms_norm(x, weight.reshape([dim]), 1e-6)
}

fn attention_inputs() -> [Tensor<Cpu, 3>; 3] {
    let device = Default::default();
    [[2, 10, 16], [2, 13, 16], [2, 13, 12]].map(|s| random(s, &device))
}

fn rms_norm_inputs() -> [Tensor<Cpu, 3>; 2] {
    let device = Default::default();
    [random([3, 70, 12], &device), random([1, 1, 12], &device)]
}

#[test]
fn attention_gradients_match_the_composite() {
    gradients_match::<NoCheckpointing, 3>(attention_inputs(), attention_3d);
}

#[test]
fn attention_gradients_match_the_composite_under_checkpointing() {
    gradients_match::<BalancedCheckpointing, 3>(attention_inputs(), attention_3d);
}

#[test]
fn rms_norm_gradients_match_the_composite() {
    gradients_match::<NoCheckpointing, 2>(rms_norm_inputs(), rms_norm_3d);
}

#[test]
fn rms_norm_gradients_match_the_composite_under_checkpointing() {
    gradients_match::<BalancedCheckpointing, 2>(rms_norm_inputs(), rms_norm_3d);
}

#[test]
fn untracked_inputs_on_an_autodiff_backend_give_the_same_values() {
    let inputs = attention_inputs();
    let plain = attention_3d(inputs.clone());
    let [q, k, v] = inputs.map(Tensor::<Autodiff<Cpu>, 3>::from_inner);
    assert_close(
        attention_3d([q, k, v]).inner(),
        plain,
        "untracked attention",
    );
}

/// The grid the depthwise convolution's tokens form: odd and not square.
const GRID: [usize; 2] = [3, 5];

fn depthwise_3d<B: Backend>([tokens, weight, bias]: [Tensor<B, 3>; 3]) -> Tensor<B, 3> {
    let channels = bias.dims()[2];
    depthwise_conv3x3(
        tokens,
        weight.reshape([channels, 1, 3, 3]),
        bias.reshape([channels]),
        GRID,
    )
}

fn depthwise_inputs() -> [Tensor<Cpu, 3>; 3] {
    let device = Default::default();
    [[2, 15, 6], [6, 1, 9], [1, 1, 6]].map(|s| random(s, &device))
}

fn swiglu_3d<B: Backend>([gate, up]: [Tensor<B, 3>; 2]) -> Tensor<B, 3> {
    swiglu(gate, up)
}

fn swiglu_inputs() -> [Tensor<Cpu, 3>; 2] {
    let device = Default::default();
    [[2, 5, 40], [2, 5, 40]].map(|s| random::<Cpu, 3>(s, &device) * 3.0)
}

#[test]
fn depthwise_convolution_values_and_gradients_match_the_composite() {
    gradients_match::<NoCheckpointing, 3>(depthwise_inputs(), depthwise_3d);
    gradients_match::<BalancedCheckpointing, 3>(depthwise_inputs(), depthwise_3d);
}

#[test]
fn swiglu_values_and_gradients_match_the_composite() {
    gradients_match::<NoCheckpointing, 2>(swiglu_inputs(), swiglu_3d);
    gradients_match::<BalancedCheckpointing, 2>(swiglu_inputs(), swiglu_3d);
}

/// The value of a constant basis applied to `x` in `dtype`, and `x`'s
/// gradient under `Σ g ⊙ output`.
fn basis_gradient<C: CheckpointStrategy>(
    basis: &Tensor<Cpu, 2>,
    x: &Tensor<Cpu, 3>,
    dtype: DType,
) -> (Tensor<Cpu, 3>, Tensor<Cpu, 3>) {
    let basis = Tensor::<Autodiff<Cpu, C>, 2>::from_inner(basis.clone().cast(dtype));
    let x = Tensor::<Autodiff<Cpu, C>, 3>::from_inner(x.clone().cast(dtype)).require_grad();
    let output = apply_basis(basis, x.clone());
    let g = cotangent::<Autodiff<Cpu, C>>(output.dims(), dtype);
    let grads = (output.clone() * g).sum().backward();
    (output.inner(), x.grad(&grads).expect("x is tracked"))
}

#[test]
fn a_basis_applied_matches_the_composite_in_value_and_gradient() {
    let device = Default::default();
    let basis = random::<Cpu, 2>([7, 5], &device);
    let x = random::<Cpu, 3>([3, 5, 11], &device);
    for strategy in 0..2 {
        let gradient = match strategy {
            0 => basis_gradient::<NoCheckpointing>,
            _ => basis_gradient::<BalancedCheckpointing>,
        };
        let (got, got_grad) = gradient(&basis, &x, DType::F32);
        let (want, want_grad) = gradient(&basis, &x, DType::F64);
        assert_close(got.clone(), want, "value");
        assert_close(got_grad, want_grad, "gradient");
        assert_close(apply_basis(basis.clone(), x.clone()), got, "plain backend");
    }
}

/// Dropout's output on `x` under autodiff with the generator seeded, and
/// `x`'s gradient under `Σ g ⊙ output`.
fn dropout_pass<C: CheckpointStrategy>(x: &Tensor<Cpu, 3>, seed: u64) -> [Vec<f32>; 2] {
    let device = Default::default();
    Autodiff::<Cpu, C>::seed(&device, seed);
    let x = Tensor::<Autodiff<Cpu, C>, 3>::from_inner(x.clone()).require_grad();
    let output = dropout(x.clone(), 0.25);
    let g = cotangent::<Autodiff<Cpu, C>>(output.dims(), DType::F32);
    let grads = (output.clone() * g).sum().backward();
    let grad = x.grad(&grads).expect("x is tracked");
    [output.inner(), grad].map(|t| t.into_data().to_vec::<f32>().expect("f32 values"))
}

#[test]
fn dropout_keeps_three_quarters_scaled_and_its_gradient_follows_the_mask() {
    let x = random::<Cpu, 3>([2, 64, 130], &Default::default());
    let values = x.to_data().to_vec::<f32>().expect("f32 values");
    let g = cotangent::<Cpu>([2, 64, 130], DType::F32)
        .into_data()
        .to_vec::<f32>()
        .expect("f32 values");
    for strategy in 0..2 {
        let pass = match strategy {
            0 => dropout_pass::<NoCheckpointing>,
            _ => dropout_pass::<BalancedCheckpointing>,
        };
        let [output, grad] = pass(&x, 3);
        let kept = output.iter().filter(|&&v| v != 0.0).count() as f64 / output.len() as f64;
        assert!((kept - 0.75).abs() < 0.02, "kept {kept}");
        for i in 0..values.len() {
            let scale = if output[i] == 0.0 { 0.0 } else { 1.0 / 0.75 };
            assert!((output[i] - values[i] * scale).abs() < 1e-6, "output[{i}]");
            assert!((grad[i] - g[i] * scale).abs() < 1e-6, "grad[{i}]");
        }
        assert_eq!(pass(&x, 3), [output, grad], "the same seed, the same mask");
        assert_ne!(pass(&x, 4)[0], pass(&x, 3)[0], "another seed, another mask");
    }
    let plain = dropout(x.clone(), 0.25);
    assert_eq!(plain.into_data(), x.to_data(), "no autodiff: the identity");
}

fn silu_inputs() -> [Tensor<Cpu, 3>; 1] {
    [random::<Cpu, 3>([2, 5, 40], &Default::default()) * 3.0]
}

fn silu_3d<B: Backend>([x]: [Tensor<B, 3>; 1]) -> Tensor<B, 3> {
    silu(x)
}

#[test]
fn silu_values_and_gradients_match_the_composite() {
    gradients_match::<NoCheckpointing, 1>(silu_inputs(), silu_3d);
    gradients_match::<BalancedCheckpointing, 1>(silu_inputs(), silu_3d);
}

#[test]
fn the_plain_backend_gives_the_autodiff_values() {
    let depthwise = depthwise_inputs();
    assert_close(
        depthwise_3d(depthwise.clone()),
        depthwise_3d(depthwise.map(Tensor::<Autodiff<Cpu>, 3>::from_inner)).inner(),
        "depthwise",
    );
    let gates = swiglu_inputs();
    assert_close(
        swiglu_3d(gates.clone()),
        swiglu_3d(gates.map(Tensor::<Autodiff<Cpu>, 3>::from_inner)).inner(),
        "swiglu",
    );
    let x = silu_inputs();
    assert_close(
        silu_3d(x.clone()),
        silu_3d(x.map(Tensor::<Autodiff<Cpu>, 3>::from_inner)).inner(),
        "silu",
    );
}

/// RoPE over `[batch, tokens, 3·8]` inputs split into three heads of 8,
/// with fixed tables (constants, as the model's are).
fn rope_3d<B: Backend>([x]: [Tensor<B, 3>; 1]) -> Tensor<B, 3> {
    let [batch, tokens, features] = x.dims();
    let (device, dtype) = (x.device(), x.dtype());
    let table = |phase: f64| {
        Tensor::<B, 1, Int>::arange(0..(tokens * 8) as i64, &device)
            .float()
            .mul_scalar(0.37)
            .add_scalar(phase)
            .cos()
            .reshape([tokens, 8])
            .cast(dtype)
    };
    rope(x.reshape([batch, tokens, 3, 8]), table(0.0), table(1.3))
        .reshape([batch, tokens, features])
}

#[test]
fn rope_values_and_gradients_match_the_composite() {
    let x = || [random::<Cpu, 3>([2, 37, 24], &Default::default())];
    gradients_match::<NoCheckpointing, 1>(x(), rope_3d);
    gradients_match::<BalancedCheckpointing, 1>(x(), rope_3d);
    let x = x();
    assert_close(
        rope_3d(x.clone()),
        rope_3d(x.map(Tensor::<Autodiff<Cpu>, 3>::from_inner)).inner(),
        "rope",
    );
}

/// A linear layer over `[1, d_in, rows]` inputs transposed to `[rows, d_in]`
/// (strided, as a view), with the weight and bias reshaped from `[1, d_in,
/// d_out]` and `[1, 1, d_out]`.
fn linear_3d<B: Backend>([x, weight, bias]: [Tensor<B, 3>; 3]) -> Tensor<B, 3> {
    let [_, d_in, rows] = x.dims();
    let [_, _, d_out] = weight.dims();
    let x = x.reshape([d_in, rows]).transpose();
    linear(
        x,
        weight.reshape([d_in, d_out]),
        Some(bias.reshape([d_out])),
    )
    .reshape([1, rows, d_out])
}

fn linear_inputs() -> [Tensor<Cpu, 3>; 3] {
    let device = Default::default();
    [[1, 24, 37], [1, 24, 19], [1, 1, 19]].map(|s| random(s, &device))
}

#[test]
fn linear_values_and_gradients_match_the_composite() {
    gradients_match::<NoCheckpointing, 3>(linear_inputs(), linear_3d);
    gradients_match::<BalancedCheckpointing, 3>(linear_inputs(), linear_3d);
    let inputs = linear_inputs();
    assert_close(
        linear_3d(inputs.clone()),
        linear_3d(inputs.map(Tensor::<Autodiff<Cpu>, 3>::from_inner)).inner(),
        "linear",
    );
}

#[test]
fn adamw_step_matches_the_composite_and_leaves_shared_tensors_alone() {
    let device = Default::default();
    let len = 40_000; // several of the kernel's blocks
    let [param, grad, exp_avg, v] = [0; 4].map(|_| random::<Cpu, 1>([len], &device));
    let state = AdamWState {
        param,
        exp_avg,
        exp_avg_sq: v.abs(),
    };
    let step = 4;
    let scalars = AdamWScalars {
        decay: Some(1.0 - 2e-4 * 0.05),
        first_rate: 0.1,
        beta_2: 0.999,
        second_rate: 1.0 - 0.999,
        bias_correction_2_sqrt: (1.0 - 0.999f64.powi(step)).sqrt(),
        epsilon: 1e-8,
        step_size: 2e-4 / (1.0 - 0.9f64.powi(step)),
    };
    let wide = |t: &Tensor<Cpu, 1>| t.clone().cast(DType::F64);
    let want = adamw_step(
        AdamWState {
            param: wide(&state.param),
            exp_avg: wide(&state.exp_avg),
            exp_avg_sq: wide(&state.exp_avg_sq),
        },
        wide(&grad),
        &scalars,
    );
    let before = state.param.clone().into_data();
    let shared = state.clone(); // the kernel must copy, not overwrite, these
    let got = adamw_step(state, grad, &scalars);
    assert_close(got.param, want.param, "param");
    assert_close(got.exp_avg, want.exp_avg, "exp_avg");
    assert_close(got.exp_avg_sq, want.exp_avg_sq, "exp_avg_sq");
    assert_eq!(
        shared.param.into_data(),
        before,
        "a shared parameter changed"
    );
}

fn scale_add_3d<B: Backend>([y, scale, offset]: [Tensor<B, 3>; 3]) -> Tensor<B, 3> {
    scale_add(y, scale, offset)
}

/// `y`, a per-batch scale and an offset of `offset_tokens` tokens (1: per batch).
fn scale_add_inputs(offset_tokens: usize) -> [Tensor<Cpu, 3>; 3] {
    let device = Default::default();
    [[3, 45, 7], [3, 1, 7], [3, offset_tokens, 7]].map(|s| random(s, &device))
}

#[test]
fn scale_add_values_and_gradients_match_the_composite() {
    for offset_tokens in [1, 45] {
        gradients_match::<NoCheckpointing, 3>(scale_add_inputs(offset_tokens), scale_add_3d);
        gradients_match::<BalancedCheckpointing, 3>(scale_add_inputs(offset_tokens), scale_add_3d);
        let inputs = scale_add_inputs(offset_tokens);
        assert_close(
            scale_add_3d(inputs.clone()),
            scale_add_3d(inputs.map(Tensor::<Autodiff<Cpu>, 3>::from_inner)).inner(),
            "scale_add",
        );
    }
}

fn transpose_3d<B: Backend>([x]: [Tensor<B, 3>; 1]) -> Tensor<B, 3> {
    transpose_last(x)
}

#[test]
fn transpose_values_and_gradients_match_the_composite() {
    let x = || [random::<Cpu, 3>([3, 2, 41], &Default::default())];
    gradients_match::<NoCheckpointing, 1>(x(), transpose_3d);
    gradients_match::<BalancedCheckpointing, 1>(x(), transpose_3d);
    let x = x();
    assert_close(
        transpose_last(x[0].clone()),
        transpose_last(Tensor::<Autodiff<Cpu>, 3>::from_inner(x[0].clone())).inner(),
        "transpose",
    );
}

/// Reshapes of a row-major input and of a strided one (axes swapped first).
fn reshape_3d<B: Backend>([x]: [Tensor<B, 3>; 1]) -> Tensor<B, 3> {
    let flat: Tensor<B, 2> = reshape(x.clone(), [6, 10]);
    let strided = reshape(x.swap_dims(1, 2), [3, 4, 5]);
    reshape(flat, [3, 4, 5]) * 2.0 + strided
}

#[test]
fn reshape_values_and_gradients_match_the_composite() {
    let x = || [random::<Cpu, 3>([2, 6, 5], &Default::default())];
    gradients_match::<NoCheckpointing, 1>(x(), reshape_3d);
    gradients_match::<BalancedCheckpointing, 1>(x(), reshape_3d);
    let x = x();
    assert_close(
        reshape_3d(x.clone()),
        reshape_3d(x.map(Tensor::<Autodiff<Cpu>, 3>::from_inner)).inner(),
        "reshape",
    );
}
