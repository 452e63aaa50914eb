//! Global gradient-norm clipping, as `torch.nn.utils.clip_grad_norm_`.
//!
//! The total norm is the 2-norm of the per-parameter 2-norms (= the 2-norm
//! of all gradients together); every gradient is scaled by
//! `min(1, max_norm / (total + 1e-6))`, computed in f32 as PyTorch does for
//! f32 gradients.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;

use crate::error::{Result, invalid};

/// Added to the total norm before dividing (PyTorch's constant).
const NORM_EPSILON: f32 = 1e-6;

/// Scales the gradients of `module`'s parameters in `grads` so their global
/// 2-norm is at most `max_norm`; returns the norm before clipping.
///
/// A non-finite norm is returned as is (and the gradients scaled by a
/// non-finite factor, as PyTorch does with `error_if_nonfinite=False`); the
/// caller decides whether to skip the step.
pub fn clip_grad_norm<AB: AutodiffBackend, M: AutodiffModule<AB>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> Result<f64> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(invalid(
            "max_norm",
            format!("{max_norm} is not a positive number"),
        ));
    }
    let mut collector = NormCollector::<AB> {
        grads,
        norms: Vec::new(),
    };
    module.visit(&mut collector);
    let NormCollector { grads, norms } = collector;
    if norms.is_empty() {
        return Ok(0.0);
    }
    let total: f32 = Tensor::cat(norms, 0)
        .square()
        .sum()
        .sqrt()
        .into_scalar()
        .elem();
    let coefficient = (max_norm as f32 / (total + NORM_EPSILON)).min(1.0);
    tracing::trace!(total, coefficient, "gradient norm");
    if coefficient != 1.0 {
        module.visit(&mut Scaler::<AB> {
            grads,
            factor: coefficient,
            backend: std::marker::PhantomData,
        });
    }
    Ok(total as f64)
}

/// Collects the 2-norm of each parameter's gradient (`[1]` each).
struct NormCollector<'a, AB: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    norms: Vec<Tensor<AB::InnerBackend, 1>>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for NormCollector<'_, AB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        if let Some(grad) = self.grads.get::<AB::InnerBackend, D>(param.id) {
            self.norms.push(grad.square().sum().sqrt());
        }
    }
}

/// Multiplies each parameter's gradient by the clip coefficient.
struct Scaler<'a, AB: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    factor: f32,
    backend: std::marker::PhantomData<AB>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for Scaler<'_, AB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        if let Some(grad) = self.grads.remove::<AB::InnerBackend, D>(param.id) {
            self.grads.register(param.id, grad.mul_scalar(self.factor));
        }
    }
}
