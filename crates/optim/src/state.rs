//! Saving and restoring AdamW state: named tensors (a safetensors file) plus
//! a small JSON of step counts, shapes and the configuration.
//!
//! Tensor names are the parameter's module path with a suffix:
//! `<path>.exp_avg` / `<path>.exp_avg_sq` (f32, flattened) for f32 moments,
//! `<path>.exp_avg.codes` (u8) and `<path>.exp_avg.absmax` (f32) — and the
//! same for `exp_avg_sq` — for 8-bit ones. Values round-trip bit for bit, so
//! a resumed run continues exactly where the saved one stopped.

use std::collections::{BTreeMap, HashMap};

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, IntDType, TensorData};
use serde::{Deserialize, Serialize};

use crate::adamw::{AdamW, AdamWConfig, Moment, ParamState};
use crate::error::{Error, Result};
use crate::params::float_params;
use crate::quant::{QuantizedBlocks, Signedness};

/// Format tag of [`StateMeta`].
pub const STATE_FORMAT: &str = "ssdit.adamw.v1";

/// How one parameter's moments are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoredMoments {
    /// f32 moments.
    Fp32,
    /// 8-bit codes in blocks of `block_size`.
    Blockwise8Bit { block_size: usize },
}

/// The JSON half of a saved state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateMeta {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    /// The hyper-parameters the state was made with.
    pub config: AdamWConfig,
    /// Per parameter path: step count, shape and storage.
    pub params: BTreeMap<String, ParamMeta>,
}

/// What the JSON records about one parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamMeta {
    /// Optimizer steps applied to this parameter.
    pub step: u64,
    /// The parameter's shape (its moments are stored flattened).
    pub shape: Vec<usize>,
    /// How its moments are stored.
    pub moments: StoredMoments,
}

/// A saved AdamW state: [`StateMeta`] and the named moment tensors.
#[derive(Debug, Clone)]
pub struct OptimizerState {
    pub meta: StateMeta,
    pub tensors: BTreeMap<String, TensorData>,
}

const MOMENTS: [(&str, Signedness); 2] = [
    ("exp_avg", Signedness::Signed),
    ("exp_avg_sq", Signedness::Unsigned),
];

impl<AB: AutodiffBackend> AdamW<AB> {
    /// The state of every parameter of `module` that has one, named by path.
    pub fn state<MB: Backend, M: Module<MB>>(&self, module: &M) -> Result<OptimizerState> {
        let mut params = BTreeMap::new();
        let mut tensors = BTreeMap::new();
        for info in float_params(module) {
            let Some(state) = self.states.get(&info.id) else {
                continue;
            };
            let moments = match state.exp_avg.block_size() {
                None => StoredMoments::Fp32,
                Some(block_size) => StoredMoments::Blockwise8Bit { block_size },
            };
            for ((name, _), moment) in MOMENTS.iter().zip([&state.exp_avg, &state.exp_avg_sq]) {
                let key = format!("{}.{name}", info.path);
                match moment {
                    Moment::Fp32(t) => {
                        tensors.insert(key, t.to_data().convert_dtype(DType::F32));
                    }
                    Moment::Blockwise(q) => {
                        tensors.insert(
                            format!("{key}.codes"),
                            q.codes.to_data().convert_dtype(DType::U8),
                        );
                        tensors.insert(
                            format!("{key}.absmax"),
                            q.absmax.to_data().convert_dtype(DType::F32),
                        );
                    }
                }
            }
            let meta = ParamMeta {
                step: state.step,
                shape: info.shape,
                moments,
            };
            params.insert(info.path, meta);
        }
        Ok(OptimizerState {
            meta: StateMeta {
                format: STATE_FORMAT.to_string(),
                config: self.config.clone(),
                params,
            },
            tensors,
        })
    }

    /// Replaces the optimizer's state with `state`, pairing parameters of
    /// `module` by path. Fails when a saved parameter is missing from the
    /// module, its shape differs, its storage differs from what this
    /// optimizer's configuration would use, or a tensor is missing or
    /// malformed.
    pub fn load_state<MB: Backend, M: Module<MB>>(
        &mut self,
        module: &M,
        state: &OptimizerState,
        device: &Device<AB>,
    ) -> Result<()> {
        if state.meta.format != STATE_FORMAT {
            return Err(Error::State(format!(
                "format {:?}, expected {STATE_FORMAT:?}",
                state.meta.format
            )));
        }
        let by_path: HashMap<String, _> = float_params(module)
            .into_iter()
            .map(|info| (info.path.clone(), info))
            .collect();
        let mut states = HashMap::new();
        for (path, meta) in &state.meta.params {
            let info = by_path
                .get(path)
                .ok_or_else(|| Error::State(format!("{path}: no such parameter in the model")))?;
            if info.shape != meta.shape {
                return Err(Error::State(format!(
                    "{path}: saved for shape {:?}, the model has {:?}",
                    meta.shape, info.shape
                )));
            }
            let expected = match self.config.moments.block_size_for(info.numel()) {
                None => StoredMoments::Fp32,
                Some(block_size) => StoredMoments::Blockwise8Bit { block_size },
            };
            if expected != meta.moments {
                return Err(Error::State(format!(
                    "{path}: saved as {:?}, this optimizer keeps {:?}",
                    meta.moments, expected
                )));
            }
            let [exp_avg, exp_avg_sq] = MOMENTS
                .map(|(name, signedness)| read_moment(state, path, name, signedness, meta, device));
            states.insert(
                info.id,
                ParamState {
                    step: meta.step,
                    exp_avg: exp_avg?,
                    exp_avg_sq: exp_avg_sq?,
                },
            );
        }
        tracing::debug!(params = states.len(), "optimizer state restored");
        self.states = states;
        Ok(())
    }
}

fn read_moment<B: Backend>(
    state: &OptimizerState,
    path: &str,
    name: &str,
    signedness: Signedness,
    meta: &ParamMeta,
    device: &Device<B>,
) -> Result<Moment<B>> {
    let len: usize = meta.shape.iter().product();
    let key = format!("{path}.{name}");
    let tensor = |key: &str, dtype: DType, want: usize| -> Result<TensorData> {
        let data = state
            .tensors
            .get(key)
            .ok_or_else(|| Error::State(format!("tensor {key} is missing")))?;
        if data.dtype != dtype || data.shape.as_slice() != [want] {
            return Err(Error::State(format!(
                "tensor {key}: {:?} {:?}, expected {dtype:?} [{want}]",
                data.dtype,
                data.shape.as_slice()
            )));
        }
        Ok(data.clone())
    };
    Ok(match meta.moments {
        StoredMoments::Fp32 => {
            Moment::Fp32(Tensor::from_data(tensor(&key, DType::F32, len)?, device))
        }
        StoredMoments::Blockwise8Bit { block_size } => {
            let blocks = len.div_ceil(block_size).max(1);
            let codes = tensor(&format!("{key}.codes"), DType::U8, blocks * block_size)?;
            let absmax = tensor(&format!("{key}.absmax"), DType::F32, blocks)?;
            Moment::Blockwise(QuantizedBlocks {
                codes: Tensor::<B, 1, Int>::from_data(codes, device).cast(IntDType::U8),
                absmax: Tensor::from_data(absmax, device),
                len,
                block_size,
                signedness,
            })
        }
    })
}

impl OptimizerState {
    /// The JSON half.
    pub fn meta_json(&self) -> Result<String> {
        serde_json::to_string_pretty(&self.meta).map_err(|e| Error::State(e.to_string()))
    }

    /// The tensors as a safetensors file.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let views = self
            .tensors
            .iter()
            .map(|(name, data)| Ok((name.clone(), View::new(name, data)?)))
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, None).map_err(|e| Error::State(e.to_string()))
    }

    /// Reads a state written by [`to_safetensors`](Self::to_safetensors) and
    /// [`meta_json`](Self::meta_json).
    pub fn from_parts(safetensors_bytes: &[u8], meta_json: &str) -> Result<Self> {
        let meta: StateMeta =
            serde_json::from_str(meta_json).map_err(|e| Error::State(format!("meta json: {e}")))?;
        let file = safetensors::SafeTensors::deserialize(safetensors_bytes)
            .map_err(|e| Error::State(format!("safetensors: {e}")))?;
        let tensors = file
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let dtype = match view.dtype() {
                    safetensors::Dtype::F32 => DType::F32,
                    safetensors::Dtype::U8 => DType::U8,
                    other => {
                        return Err(Error::State(format!(
                            "tensor {name}: unsupported dtype {other:?}"
                        )));
                    }
                };
                let data =
                    TensorData::from_bytes_vec(view.data().to_vec(), view.shape().to_vec(), dtype);
                Ok((name, data))
            })
            .collect::<Result<_>>()?;
        Ok(Self { meta, tensors })
    }
}

/// One tensor as the safetensors writer takes it.
struct View<'a> {
    dtype: safetensors::Dtype,
    data: &'a TensorData,
}

impl<'a> View<'a> {
    fn new(name: &str, data: &'a TensorData) -> Result<Self> {
        let dtype = match data.dtype {
            DType::F32 => safetensors::Dtype::F32,
            DType::U8 => safetensors::Dtype::U8,
            other => {
                return Err(Error::State(format!(
                    "tensor {name}: cannot store {other:?}"
                )));
            }
        };
        Ok(Self { dtype, data })
    }
}

impl safetensors::View for View<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        self.data.shape.as_slice()
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(self.data.as_bytes())
    }

    fn data_len(&self) -> usize {
        self.data.as_bytes().len()
    }
}
