//! AdamW exactly as `torch.optim.AdamW` computes it (single-tensor path):
//!
//! ```text
//! step += 1
//! p  ← p·(1 − lr·wd)                          decoupled weight decay, first
//! m  ← m + (1 − β₁)·(g − m)                   torch's lerp
//! v  ← v·β₂ + (1 − β₂)·g·g                    torch's addcmul
//! p  ← p − (lr / (1 − β₁ᵗ))·m / (√v / √(1 − β₂ᵗ) + ε)
//! ```
//!
//! with the bias corrections in f64 and the tensor arithmetic in the order
//! PyTorch evaluates it. burn 0.21's own `AdamW` is the same update in
//! exact arithmetic but not in floating point: it divides by
//! `√(v/(1−β₂ᵗ)) + ε`, computes `βᵗ` in f32 (`powi`), and updates the first
//! moment as `β₁·m + (1−β₁)·g` instead of PyTorch's lerp, so it rounds
//! differently; its state is also keyed by parameter id only, where a
//! checkpoint needs stable names.
//!
//! The moments can be kept in f32 or block-wise 8-bit ([`MomentPrecision`],
//! see [`crate::quant`] for the code); the update itself is always f32,
//! computed by [`ssdit_kernels::adamw_step`] (one in-place pass on the CPU).

use std::collections::HashMap;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use ssdit_kernels::{AdamWScalars, AdamWState, adamw_step};

use crate::error::{Error, Result, invalid};
use crate::quant::{QuantizedBlocks, Signedness};

/// How the two moments of each parameter are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MomentPrecision {
    /// f32 moments: 8 bytes of state per parameter, PyTorch's AdamW exactly.
    #[default]
    Fp32,
    /// Block-wise 8-bit moments (≈ 2 bytes per parameter) for tensors of at
    /// least `min_numel` elements; smaller ones (biases, norms, gates) keep
    /// f32 moments, as bitsandbytes' `min_8bit_size` does.
    Blockwise8Bit {
        /// Elements per quantization block (bitsandbytes uses 256).
        block_size: usize,
        /// Smallest tensor that gets 8-bit moments (bitsandbytes: 4096).
        min_numel: usize,
    },
}

impl MomentPrecision {
    /// bitsandbytes' `AdamW8bit` defaults: blocks of 256, 8-bit from 4096 elements.
    pub fn blockwise_8bit() -> Self {
        Self::Blockwise8Bit {
            block_size: 256,
            min_numel: 4096,
        }
    }

    /// The block size used for a tensor of `numel` elements, `None` for f32.
    pub fn block_size_for(&self, numel: usize) -> Option<usize> {
        match *self {
            Self::Fp32 => None,
            Self::Blockwise8Bit {
                block_size,
                min_numel,
            } => (numel >= min_numel).then_some(block_size),
        }
    }
}

/// AdamW hyper-parameters (the learning rate is given per step).
#[derive(Config, Debug)]
pub struct AdamWConfig {
    /// First-moment decay.
    #[config(default = 0.9)]
    pub beta_1: f64,
    /// Second-moment decay.
    #[config(default = 0.999)]
    pub beta_2: f64,
    /// Added to the denominator.
    #[config(default = 1e-8)]
    pub epsilon: f64,
    /// Decoupled weight decay (PyTorch's default 0.01).
    #[config(default = 0.01)]
    pub weight_decay: f64,
    /// Storage of the moments.
    #[config(default = "MomentPrecision::Fp32")]
    pub moments: MomentPrecision,
}

impl AdamWConfig {
    /// The seed's optimizer: `bnb.optim.AdamW8bit(lr, weight_decay=0.05)`
    /// (`Config.weight_decay`), betas (0.9, 0.999), eps 1e-8.
    pub fn seed() -> Self {
        Self::new()
            .with_weight_decay(0.05)
            .with_moments(MomentPrecision::blockwise_8bit())
    }

    /// Checks every field's domain.
    pub fn validate(&self) -> Result<()> {
        for (field, beta) in [("beta_1", self.beta_1), ("beta_2", self.beta_2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(invalid(field, format!("{beta} is outside [0, 1)")));
            }
        }
        if !(self.epsilon.is_finite() && self.epsilon >= 0.0) {
            return Err(invalid(
                "epsilon",
                format!("{} is not a non-negative number", self.epsilon),
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(invalid(
                "weight_decay",
                format!("{} is not a non-negative number", self.weight_decay),
            ));
        }
        if let MomentPrecision::Blockwise8Bit { block_size: 0, .. } = self.moments {
            return Err(invalid("block_size", "blocks need at least one element"));
        }
        Ok(())
    }

    /// An optimizer with empty state, for modules on the autodiff backend `AB`.
    pub fn init<AB: AutodiffBackend>(&self) -> Result<AdamW<AB>> {
        self.validate()?;
        Ok(AdamW {
            config: self.clone(),
            states: HashMap::new(),
        })
    }
}

/// One moment of one parameter, flattened.
#[derive(Debug, Clone)]
pub(crate) enum Moment<B: Backend> {
    Fp32(Tensor<B, 1>),
    Blockwise(QuantizedBlocks<B>),
}

impl<B: Backend> Moment<B> {
    fn zeros(
        len: usize,
        block_size: Option<usize>,
        signedness: Signedness,
        device: &Device<B>,
    ) -> Self {
        match block_size {
            None => Self::Fp32(Tensor::zeros([len], device)),
            Some(block) => Self::Blockwise(QuantizedBlocks::zeros(len, block, signedness, device)),
        }
    }

    /// The moment's f32 values, moved out of an f32 moment (so that the
    /// update can work in place) until [`store`](Self::store) puts them back.
    fn take_value(&mut self) -> Tensor<B, 1> {
        match self {
            Self::Fp32(t) => {
                let empty = Tensor::empty([0], &t.device());
                std::mem::replace(t, empty)
            }
            Self::Blockwise(q) => q.dequantize(),
        }
    }

    fn store(&mut self, value: Tensor<B, 1>) {
        *self = match self {
            Self::Fp32(_) => Self::Fp32(value),
            Self::Blockwise(q) => {
                Self::Blockwise(QuantizedBlocks::quantize(value, q.block_size, q.signedness))
            }
        };
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Fp32(t) => t.dims()[0],
            Self::Blockwise(q) => q.len,
        }
    }

    pub(crate) fn block_size(&self) -> Option<usize> {
        match self {
            Self::Fp32(_) => None,
            Self::Blockwise(q) => Some(q.block_size),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Self::Fp32(t) => 4 * t.dims()[0],
            Self::Blockwise(q) => q.bytes(),
        }
    }
}

/// The state of one parameter: its step count and two moments.
#[derive(Debug, Clone)]
pub(crate) struct ParamState<B: Backend> {
    pub(crate) step: u64,
    pub(crate) exp_avg: Moment<B>,
    pub(crate) exp_avg_sq: Moment<B>,
}

impl<B: Backend> ParamState<B> {
    fn new(len: usize, precision: &MomentPrecision, device: &Device<B>) -> Self {
        let block = precision.block_size_for(len);
        Self {
            step: 0,
            exp_avg: Moment::zeros(len, block, Signedness::Signed, device),
            exp_avg_sq: Moment::zeros(len, block, Signedness::Unsigned, device),
        }
    }
}

/// PyTorch-exact AdamW over the parameters of a burn module on the autodiff
/// backend `AB`.
///
/// State lives on the inner (non-autodiff) backend, one entry per parameter
/// id; [`state`](Self::state) / [`load_state`](Self::load_state) name it by
/// module path for checkpoints.
#[derive(Debug, Clone)]
pub struct AdamW<AB: AutodiffBackend> {
    pub(crate) config: AdamWConfig,
    pub(crate) states: HashMap<ParamId, ParamState<AB::InnerBackend>>,
}

impl<AB: AutodiffBackend> AdamW<AB> {
    /// The hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// Bytes of moment state held (codes, block maxima and f32 moments).
    pub fn state_bytes(&self) -> usize {
        self.states
            .values()
            .map(|s| s.exp_avg.bytes() + s.exp_avg_sq.bytes())
            .sum()
    }

    /// Number of optimizer steps taken by the parameter updated most often.
    pub fn steps(&self) -> u64 {
        self.states.values().map(|s| s.step).max().unwrap_or(0)
    }

    /// One optimizer step with learning rate `lr`: every parameter of
    /// `module` that has a gradient in `grads` is updated.
    ///
    /// Fails, before touching anything, when a gradient's shape or a stored
    /// state's size does not match its parameter.
    pub fn step<M: AutodiffModule<AB>>(
        &mut self,
        lr: f64,
        module: M,
        mut grads: GradientsParams,
    ) -> Result<M> {
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(invalid("lr", format!("{lr} is not a non-negative number")));
        }
        let mut check = Checker::<AB> {
            grads: &grads,
            states: &self.states,
            path: Vec::new(),
            error: None,
        };
        module.visit(&mut check);
        if let Some(error) = check.error {
            return Err(error);
        }
        let mut mapper = Stepper::<AB> {
            optim: self,
            grads: &mut grads,
            lr,
        };
        Ok(module.map(&mut mapper))
    }

    /// The PyTorch update of one flattened parameter; returns the new value.
    fn update(
        &mut self,
        id: ParamId,
        param: Tensor<AB::InnerBackend, 1>,
        grad: Tensor<AB::InnerBackend, 1>,
        lr: f64,
    ) -> Tensor<AB::InnerBackend, 1> {
        let Self { config, states } = self;
        let [len] = param.dims();
        let state = states
            .entry(id)
            .or_insert_with(|| ParamState::new(len, &config.moments, &param.device()));
        state.step += 1;
        let step = state.step as f64;
        let scalars = AdamWScalars {
            decay: (config.weight_decay != 0.0).then_some(1.0 - lr * config.weight_decay),
            first_rate: 1.0 - config.beta_1,
            beta_2: config.beta_2,
            second_rate: 1.0 - config.beta_2,
            bias_correction_2_sqrt: (1.0 - config.beta_2.powf(step)).sqrt(),
            epsilon: config.epsilon,
            step_size: lr / (1.0 - config.beta_1.powf(step)),
        };
        let before = AdamWState {
            param,
            exp_avg: state.exp_avg.take_value(),
            exp_avg_sq: state.exp_avg_sq.take_value(),
        };
        let after = adamw_step(before, grad, &scalars);
        state.exp_avg.store(after.exp_avg);
        state.exp_avg_sq.store(after.exp_avg_sq);
        after.param
    }
}

/// Validates gradients and states against the module before a step.
struct Checker<'a, AB: AutodiffBackend> {
    grads: &'a GradientsParams,
    states: &'a HashMap<ParamId, ParamState<AB::InnerBackend>>,
    path: Vec<String>,
    error: Option<Error>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for Checker<'_, AB> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        if self.error.is_some() {
            return;
        }
        let Some(grad) = self.grads.get::<AB::InnerBackend, D>(param.id) else {
            return;
        };
        let shape = param.lazy_shape();
        let reason = if grad.dims().as_slice() != shape.as_slice() {
            Some(format!(
                "gradient shape {:?}, parameter shape {:?}",
                grad.dims(),
                shape.as_slice()
            ))
        } else {
            self.states.get(&param.id).and_then(|state| {
                (state.exp_avg.len() != shape.num_elements()).then(|| {
                    format!(
                        "optimizer state for {} elements, parameter has {}",
                        state.exp_avg.len(),
                        shape.num_elements()
                    )
                })
            })
        };
        if let Some(reason) = reason {
            self.error = Some(Error::Param {
                param: self.path.join("."),
                reason,
            });
        }
    }
}

/// Applies the update to every parameter that has a gradient.
struct Stepper<'a, AB: AutodiffBackend> {
    optim: &'a mut AdamW<AB>,
    grads: &'a mut GradientsParams,
    lr: f64,
}

impl<AB: AutodiffBackend> ModuleMapper<AB> for Stepper<'_, AB> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<AB, D>>) -> Param<Tensor<AB, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<AB::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let dims = tensor.dims();
        let len = dims.iter().product::<usize>();
        let param = tensor.inner().reshape([len]); // [..] -> [N]
        let updated = self
            .optim
            .update(id, param, grad.reshape([len]), self.lr)
            .reshape(dims); // [N] -> [..]
        let mut tensor = Tensor::from_inner(updated);
        if require_grad {
            tensor = tensor.require_grad();
        }
        Param::from_mapped_value(id, tensor, mapper)
    }
}
