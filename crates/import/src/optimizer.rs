//! The seed's `optimizer_state_dict`, recognised and — for `torch.optim.AdamW`
//! — mapped onto ssdit's [`OptimizerState`].
//!
//! PyTorch keys an optimizer's state by parameter index: the order in which
//! the parameters were given to it, group after group. The seed builds its
//! optimizer from `model.parameters()` in one group, which is the order of
//! its `model.state_dict()` (the model has no buffers); [`map_adamw`] is
//! given that order and checks every moment's shape against its parameter.
//! bitsandbytes' `AdamW8bit` (what the seed trains with) keeps quantised
//! moments (`state1`/`state2` codes with `qmap`/`absmax` tables in its own
//! block layout); that is recognised and reported, never converted by guess.

use std::collections::BTreeMap;

use burn::prelude::*;
use burn::tensor::TensorData;
use ssdit_model::{NamedParam, SingleStreamDiT};
use ssdit_optim::{
    AdamWConfig, MomentPrecision, OptimizerState, ParamMeta, STATE_FORMAT, StateMeta, StoredMoments,
};

use crate::Result;
use crate::error::content;
use crate::torch::{Dict, TensorRef, TorchFile, Value};

/// Keys by which bitsandbytes' 8-bit optimizers' per-parameter state is known.
const BNB_KEYS: [&str; 4] = ["state1", "qmap1", "absmax1", "state2"];

/// What the file's optimizer state is.
#[derive(Debug, Clone, PartialEq)]
pub enum SeedOptimizer {
    /// `torch.optim.AdamW` (or `Adam`) with f32 moments: importable.
    AdamW(SeedAdamW),
    /// bitsandbytes' 8-bit optimizer state: recognised, not imported.
    Quantized8Bit { parameters: usize },
    /// An optimizer that never stepped: nothing to import.
    Empty,
    /// Anything else, with the reason it is not imported.
    Unrecognised(String),
}

/// A `torch.optim.AdamW` state dict.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedAdamW {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    /// Parameters the optimizer was built with.
    pub parameters: usize,
    /// Per parameter index that has state: its step count and moments.
    pub states: BTreeMap<usize, AdamMoments>,
}

/// One parameter's AdamW state.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamMoments {
    pub step: Step,
    pub exp_avg: TensorRef,
    pub exp_avg_sq: TensorRef,
}

/// An AdamW step count: a number, or (PyTorch ≥ 1.12) a one-element tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Count(u64),
    Tensor(TensorRef),
}

/// Recognises an `optimizer.state_dict()`.
pub fn classify(value: &Value) -> SeedOptimizer {
    match classify_dict(value) {
        Ok(optimizer) => optimizer,
        Err(reason) => SeedOptimizer::Unrecognised(reason),
    }
}

fn classify_dict(value: &Value) -> std::result::Result<SeedOptimizer, String> {
    let dict = value.as_dict().ok_or("it is not a dict")?;
    let state = dict
        .get("state")
        .and_then(Value::as_dict)
        .ok_or("it has no \"state\" dict")?;
    let groups = dict
        .get("param_groups")
        .and_then(Value::as_seq)
        .ok_or("it has no \"param_groups\" list")?;
    let parameters = check_groups(groups)?;
    if state.is_empty() {
        return Ok(SeedOptimizer::Empty);
    }
    let is_bnb = state.iter().any(|(_, entry)| {
        entry
            .as_dict()
            .is_some_and(|d| BNB_KEYS.iter().any(|k| d.get(k).is_some()))
    });
    if is_bnb {
        return Ok(SeedOptimizer::Quantized8Bit { parameters });
    }
    let group = groups[0].as_dict().expect("groups were checked");
    if group.get("amsgrad") == Some(&Value::Bool(true)) {
        return Err("AMSGrad state (max_exp_avg_sq) is not supported".into());
    }
    let number = |key: &str| {
        group
            .get(key)
            .and_then(Value::as_f64)
            .ok_or(format!("param group has no number {key:?}"))
    };
    let betas = group
        .get("betas")
        .and_then(Value::as_seq)
        .and_then(|b| Some((b.first()?.as_f64()?, b.get(1)?.as_f64()?)))
        .ok_or("param group has no betas pair")?;
    let mut states = BTreeMap::new();
    for (key, entry) in state.iter() {
        let index = key
            .as_int()
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < parameters)
            .ok_or_else(|| {
                format!("state key {key} is not a parameter index below {parameters}")
            })?;
        states.insert(
            index,
            adam_moments(entry).map_err(|e| format!("state of parameter {index}: {e}"))?,
        );
    }
    Ok(SeedOptimizer::AdamW(SeedAdamW {
        lr: number("lr")?,
        betas,
        eps: number("eps")?,
        weight_decay: number("weight_decay")?,
        parameters,
        states,
    }))
}

/// The parameter count of the groups: indices 0..N in order (how PyTorch
/// numbers them), and one set of hyper-parameters for all.
fn check_groups(groups: &[Value]) -> std::result::Result<usize, String> {
    if groups.is_empty() {
        return Err("it has no param groups".into());
    }
    let mut next = 0i64;
    let mut settings: Option<Vec<(String, String)>> = None;
    for group in groups {
        let group = group.as_dict().ok_or("a param group is not a dict")?;
        let params = group
            .get("params")
            .and_then(Value::as_seq)
            .ok_or("a param group has no params list")?;
        for param in params {
            if param.as_int() != Some(next) {
                return Err(format!(
                    "param group indices are not 0, 1, 2, … in order (found {param} at {next})"
                ));
            }
            next += 1;
        }
        let these: Vec<(String, String)> = group
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), Some("params" | "initial_lr" | "lr")))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match &settings {
            Some(first) if *first != these => {
                return Err("param groups have different settings (e.g. weight decay), which one optimizer state cannot hold".into());
            }
            _ => settings = Some(these),
        }
    }
    Ok(next as usize)
}

fn adam_moments(entry: &Value) -> std::result::Result<AdamMoments, String> {
    let dict: &Dict = entry.as_dict().ok_or("not a dict")?;
    let tensor = |key: &str| {
        dict.get(key)
            .and_then(Value::as_tensor)
            .cloned()
            .ok_or(format!("no {key} tensor (has {})", dict.key_list()))
    };
    let step = match dict.get("step") {
        Some(Value::Int(i)) => {
            Step::Count(u64::try_from(*i).map_err(|_| format!("step {i} is negative"))?)
        }
        Some(Value::Float(f)) => Step::Count(whole(*f)?),
        Some(Value::Tensor(t)) if t.numel() == 1 => Step::Tensor(t.clone()),
        other => {
            return Err(format!(
                "step is {}",
                other.map_or("missing".into(), Value::to_string)
            ));
        }
    };
    Ok(AdamMoments {
        step,
        exp_avg: tensor("exp_avg")?,
        exp_avg_sq: tensor("exp_avg_sq")?,
    })
}

fn whole(value: f64) -> std::result::Result<u64, String> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value < 2f64.powi(53) {
        Ok(value as u64)
    } else {
        Err(format!("step {value} is not a whole number"))
    }
}

/// Every float parameter of `model`, by seed checkpoint name.
pub(crate) fn model_params<B: Backend>(model: &SingleStreamDiT<B>) -> BTreeMap<String, NamedParam> {
    model
        .named_params()
        .into_iter()
        .map(|param| (param.name.clone(), param))
        .collect()
}

/// The AdamW state as ssdit's optimizer keeps it: moments in the burn
/// layout (linear weights transposed), flattened, named by module path.
/// `order` is the seed's parameter order (its state dict's names).
pub(crate) fn map_adamw(
    file: &mut TorchFile,
    adamw: &SeedAdamW,
    order: &[String],
    params: &BTreeMap<String, NamedParam>,
) -> Result<OptimizerState> {
    let origin = file.origin().to_string();
    if order.len() != adamw.parameters || order.len() != params.len() {
        return Err(content(
            &origin,
            format!(
                "the optimizer holds {} parameters, the state dict {} and the model {}",
                adamw.parameters,
                order.len(),
                params.len()
            ),
        ));
    }
    let mut metas = BTreeMap::new();
    let mut tensors = BTreeMap::new();
    for (&index, moments) in &adamw.states {
        let name = &order[index];
        let param = params.get(name).ok_or_else(|| {
            content(
                &origin,
                format!("optimizer parameter {index} ({name}) is not a model parameter"),
            )
        })?;
        let step = match &moments.step {
            Step::Count(step) => *step,
            Step::Tensor(tensor) => {
                let value = file.read_f32(tensor)?[0];
                whole(f64::from(value))
                    .map_err(|reason| content(&origin, format!("{name}: {reason}")))?
            }
        };
        for (suffix, tensor) in [
            ("exp_avg", &moments.exp_avg),
            ("exp_avg_sq", &moments.exp_avg_sq),
        ] {
            let values = burn_layout(file, tensor, param, name, suffix)?;
            let len = values.len();
            tensors.insert(
                format!("{}.{suffix}", param.path),
                TensorData::new(values, [len]),
            );
        }
        metas.insert(
            param.path.clone(),
            ParamMeta {
                step,
                shape: param.shape.clone(),
                moments: StoredMoments::Fp32,
            },
        );
    }
    Ok(OptimizerState {
        meta: StateMeta {
            format: STATE_FORMAT.to_string(),
            config: adamw_config(adamw),
            params: metas,
        },
        tensors,
    })
}

/// The hyper-parameters of the seed's AdamW, with f32 moments.
pub(crate) fn adamw_config(adamw: &SeedAdamW) -> AdamWConfig {
    AdamWConfig::new()
        .with_beta_1(adamw.betas.0)
        .with_beta_2(adamw.betas.1)
        .with_epsilon(adamw.eps)
        .with_weight_decay(adamw.weight_decay)
        .with_moments(MomentPrecision::Fp32)
}

/// A moment tensor in the layout of the burn parameter, flattened.
fn burn_layout(
    file: &mut TorchFile,
    tensor: &TensorRef,
    param: &NamedParam,
    name: &str,
    what: &str,
) -> Result<Vec<f32>> {
    let origin = file.origin().to_string();
    let torch_shape = param.torch_shape();
    if tensor.shape != torch_shape {
        return Err(content(
            &origin,
            format!(
                "{what} of {name} has shape {:?}, the parameter has {torch_shape:?}",
                tensor.shape
            ),
        ));
    }
    let values = file.read_f32(tensor)?;
    if !param.transposed {
        return Ok(values);
    }
    // PyTorch [out, in] → burn [in, out].
    let (out, inp) = (torch_shape[0], torch_shape[1]);
    let mut transposed = vec![0.0; values.len()];
    for o in 0..out {
        for i in 0..inp {
            transposed[i * out + o] = values[o * inp + i];
        }
    }
    Ok(transposed)
}
