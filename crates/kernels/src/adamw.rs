//! One AdamW update of a flattened parameter and its two moments: burn's
//! tensor ops, or the CPU kernel (one pass in place instead of fourteen
//! single-threaded passes, each allocating its result).

use burn::prelude::*;
use ndarray::ArrayD;

use crate::cpu::adamw as kernel;
use crate::route::{self, Path};

/// The scalars of one AdamW update, as PyTorch's single-tensor AdamW forms
/// them (in f64; the update rounds each to the tensors' dtype).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWScalars {
    /// `1 − lr·weight_decay`; `None` without weight decay.
    pub decay: Option<f64>,
    /// `1 − β₁`, the first moment's interpolation weight.
    pub first_rate: f64,
    /// `β₂`.
    pub beta_2: f64,
    /// `1 − β₂`.
    pub second_rate: f64,
    /// `√(1 − β₂ᵗ)`.
    pub bias_correction_2_sqrt: f64,
    /// Added to the denominator.
    pub epsilon: f64,
    /// `lr / (1 − β₁ᵗ)`.
    pub step_size: f64,
}

/// A parameter and its moments, flattened, before or after an update.
#[derive(Debug, Clone)]
pub struct AdamWState<B: Backend> {
    pub param: Tensor<B, 1>,
    pub exp_avg: Tensor<B, 1>,
    pub exp_avg_sq: Tensor<B, 1>,
}

/// The AdamW update of `state` with `grad`, in PyTorch's order of operations:
///
/// ```text
/// p ← p·decay
/// m ← m + (g − m)·first_rate
/// v ← v·β₂ + (g·second_rate)·g
/// p ← p + (m·(−step_size)) / (√v / bias_correction_2_sqrt + ε)
/// ```
///
/// # Shapes
/// - every tensor: `[len]`
pub fn adamw_step<B: Backend>(
    state: AdamWState<B>,
    grad: Tensor<B, 1>,
    scalars: &AdamWScalars,
) -> AdamWState<B> {
    let [len] = state.param.dims();
    for (name, tensor) in [
        ("gradient", &grad),
        ("exp_avg", &state.exp_avg),
        ("exp_avg_sq", &state.exp_avg_sq),
    ] {
        assert_eq!(tensor.dims(), [len], "adamw_step: {name} differs in length");
    }
    let dtypes = [&state.param, &grad, &state.exp_avg, &state.exp_avg_sq].map(Tensor::dtype);
    match Path::of::<B>(&dtypes) {
        Path::Cpu => cpu(state, grad, scalars),
        Path::Tracked(_) | Path::Composite => composite(state, grad, scalars),
    }
}

fn cpu<B: Backend>(
    state: AdamWState<B>,
    grad: Tensor<B, 1>,
    scalars: &AdamWScalars,
) -> AdamWState<B> {
    let owned = |t: Tensor<B, 1>| -> ArrayD<f32> {
        route::row_major(route::array(route::primitive(t))).into_owned()
    };
    let [mut param, grad, mut exp_avg, mut exp_avg_sq] =
        [state.param, grad, state.exp_avg, state.exp_avg_sq].map(owned);
    kernel::step(
        param.as_slice_mut().expect("a row-major array"),
        grad.as_slice().expect("a row-major array"),
        exp_avg.as_slice_mut().expect("a row-major array"),
        exp_avg_sq.as_slice_mut().expect("a row-major array"),
        scalars,
    );
    let tensor = |a: ArrayD<f32>| route::tensor::<B, _, 1>(route::cpu_tensor(a));
    AdamWState {
        param: tensor(param),
        exp_avg: tensor(exp_avg),
        exp_avg_sq: tensor(exp_avg_sq),
    }
}

fn composite<B: Backend>(
    state: AdamWState<B>,
    grad: Tensor<B, 1>,
    scalars: &AdamWScalars,
) -> AdamWState<B> {
    let AdamWState {
        param,
        exp_avg: m,
        exp_avg_sq: v,
    } = state;
    let param = match scalars.decay {
        Some(decay) => param.mul_scalar(decay),
        None => param,
    };
    let m = m.clone() + (grad.clone() - m).mul_scalar(scalars.first_rate);
    let v = v.mul_scalar(scalars.beta_2) + grad.clone().mul_scalar(scalars.second_rate) * grad;
    let denom = v
        .clone()
        .sqrt()
        .div_scalar(scalars.bias_correction_2_sqrt)
        .add_scalar(scalars.epsilon);
    let param = param + m.clone().mul_scalar(-scalars.step_size) / denom;
    AdamWState {
        param,
        exp_avg: m,
        exp_avg_sq: v,
    }
}
