//! `ssdit import seed-checkpoint`: the seed's checkpoints into a run.
//!
//! Reads an `ema_weights_epoch_N.pt` state dict or a `full_state_epoch_N.pt`
//! training state and writes a checkpoint in the trainer's format
//! (`ssdit_train::checkpoint`: `runs/<run>/checkpoints/step-<N>/` with
//! `model.safetensors`, `ema.safetensors`, `config.json`,
//! `optimizer.safetensors` + `optimizer.json`, `state.json`, and the commit
//! marker last), which the sampler serves and the trainer resumes.
//!
//! How the seed's state maps onto ours:
//!
//! | seed | ssdit |
//! |---|---|
//! | `model_state_dict` / `ema_state_dict` (`_orig_mod.` names) | `model` / `ema.safetensors`, loaded strictly into the configured DiT |
//! | an EMA state dict alone | both weight files (the seed resumes from one the same way) |
//! | `torch.optim.AdamW` state, by parameter index | AdamW moments by parameter path, indices mapped through the state dict's order |
//! | bitsandbytes `AdamW8bit` state | not imported: an empty state (moments start afresh), said so |
//! | `epoch` (finished), `global_step` | position: epoch + 1, batch 0, `global_step`; the checkpoint's step |
//! | `scheduler_state_dict` (`base_lrs`, `last_epoch`) | the cosine schedule the seed would resume with: over `steps/epoch × (epochs − start epoch)` steps, continuing at `last_epoch` |
//!
//! Steps per epoch are not in the seed's files; they are estimated as
//! `global_step / (epoch + 1)` (exact for a run that never changed its data),
//! and the trainer recomputes its plan from the dataset anyway.

use std::path::Path;

use burn::backend::NdArray;
use bytes::Bytes;
use serde::Serialize;
use ssdit_core::config::TrainConfig;
use ssdit_model::{SingleStreamDiT, SingleStreamDiTConfig};
use ssdit_optim::{
    AdamWConfig, CosineWithWarmup, OptimizerState, STATE_FORMAT as OPTIMIZER_FORMAT, StateMeta,
};
use ssdit_store::{Store, layout};
use ssdit_train::checkpoint::{
    self, CONFIG_FILE, EMA_FILE, MODEL_FILE, OPTIMIZER_FILE, OPTIMIZER_META_FILE, STATE_FILE,
};
use ssdit_train::state::{Plan, Position, STATE_FORMAT, ScheduleState, TrainingState, now_unix_ms};

use crate::error::content;
use crate::optimizer::{SeedOptimizer, classify, map_adamw, model_params};
use crate::torch::{Dict, Limits, TorchFile, Value};
use crate::{Error, Result};

type B = NdArray<f32>;

/// Prefix `torch.compile` puts on state-dict names.
const COMPILE_PREFIX: &str = "_orig_mod.";
/// A provenance note written beside the checkpoint's files.
pub const IMPORT_FILE: &str = "import.json";

/// What the run is: the model's configuration and training settings, and
/// the dataset it trains on.
#[derive(Debug, Clone)]
pub struct SeedCheckpointOptions {
    pub dit: SingleStreamDiTConfig,
    pub train: TrainConfig,
    pub dataset: String,
}

/// Which of the seed's files it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedCheckpointKind {
    /// `ema_weights_epoch_N.pt`: `ema_model.module.state_dict()`.
    EmaStateDict,
    /// `full_state_epoch_N.pt`.
    FullState,
}

/// What happened to the optimizer state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OptimizerImport {
    /// AdamW moments imported for `parameters` parameters (the others had no state).
    Imported {
        parameters: usize,
        without_state: usize,
    },
    /// Not imported: the run starts with fresh moments.
    NotImported { reason: String },
}

/// What [`import_seed_checkpoint`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckpointSummary {
    pub source: String,
    pub kind: SeedCheckpointKind,
    pub run_id: String,
    /// The checkpoint folder in the store.
    pub checkpoint: String,
    pub epoch: Option<u64>,
    pub global_step: u64,
    pub parameters: usize,
    pub optimizer: OptimizerImport,
    /// Steps per epoch as estimated from the file (0: unknown).
    pub steps_per_epoch: u64,
    pub schedule: ScheduleState,
}

impl std::fmt::Display for CheckpointSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            SeedCheckpointKind::EmaStateDict => "an EMA state dict",
            SeedCheckpointKind::FullState => "a full training state",
        };
        writeln!(f, "{}: {kind}, {} parameters", self.source, self.parameters)?;
        writeln!(
            f,
            "written: {} (run {}, step {})",
            self.checkpoint, self.run_id, self.global_step
        )?;
        if let Some(epoch) = self.epoch {
            writeln!(
                f,
                "epoch {epoch} finished; training resumes at epoch {}",
                epoch + 1
            )?;
        }
        match &self.optimizer {
            OptimizerImport::Imported {
                parameters,
                without_state,
            } => writeln!(
                f,
                "optimizer: AdamW moments of {parameters} parameters imported ({without_state} had no state yet); \
                 they are f32: resume with train.optimizer = \"adamw\""
            )?,
            OptimizerImport::NotImported { reason } => writeln!(
                f,
                "optimizer: NOT imported ({reason}); moments start afresh"
            )?,
        }
        if self.kind == SeedCheckpointKind::EmaStateDict {
            writeln!(
                f,
                "the file holds weights only: resume training with train.reset_optimizer = true"
            )?;
        }
        Ok(())
    }
}

/// Imports the seed checkpoint at `path` as a checkpoint of `run_id`.
pub async fn import_seed_checkpoint(
    store: &Store,
    path: &Path,
    run_id: &str,
    options: &SeedCheckpointOptions,
) -> Result<CheckpointSummary> {
    layout::run_root(run_id)?;
    layout::dataset_root(&options.dataset)?;
    let (path, run, opts) = (path.to_path_buf(), run_id.to_string(), options.clone());
    let (files, mut summary) = tokio::task::spawn_blocking(move || convert(&path, &run, &opts))
        .await
        .map_err(|e| Error::Worker(e.to_string()))??;
    let written = checkpoint::write(store, run_id, summary.global_step, files).await?;
    summary.checkpoint = written.dir.to_string();
    tracing::info!(run_id, step = summary.global_step, source = %summary.source, "seed checkpoint imported");
    Ok(summary)
}

/// Reads and converts everything; returns the checkpoint's files.
fn convert(
    path: &Path,
    run_id: &str,
    options: &SeedCheckpointOptions,
) -> Result<(Vec<(&'static str, Bytes)>, CheckpointSummary)> {
    let mut file = TorchFile::open(path, Limits::checkpoint())?;
    let origin = file.origin().to_string();
    let root = file.root().clone();
    let dict = root.as_dict().ok_or_else(|| {
        content(
            &origin,
            format!(
                "holds a {}, not a state dict or training state",
                root.kind()
            ),
        )
    })?;
    let kind = kind_of(dict, &origin)?;
    let (model, ema) = load_weights(path, kind, dict, options)?;
    let order = parameter_order(dict, kind, &origin)?;
    let epoch = match kind {
        SeedCheckpointKind::FullState => Some(non_negative(dict, "epoch", &origin)?),
        SeedCheckpointKind::EmaStateDict => None,
    };
    let global_step = match kind {
        SeedCheckpointKind::FullState => non_negative(dict, "global_step", &origin)?,
        SeedCheckpointKind::EmaStateDict => 0,
    };
    let (optimizer_state, optimizer) = import_optimizer(&mut file, dict, &order, &model, options)?;
    let steps_per_epoch = match epoch {
        Some(epoch) if global_step > 0 => (global_step / (epoch + 1)).max(1),
        _ => 0,
    };
    let schedule = schedule(
        dict,
        epoch,
        global_step,
        steps_per_epoch,
        &options.train,
        &origin,
    )?;
    let position = Position {
        epoch: epoch.map_or(0, |e| e + 1),
        batch: 0,
        global_step,
    };
    let plan = Plan {
        batches_per_epoch: steps_per_epoch * options.train.accum_steps as u64,
        steps_per_epoch,
        total_steps: steps_per_epoch * options.train.epochs as u64,
    };
    let state = TrainingState {
        format: STATE_FORMAT.to_string(),
        run_id: run_id.to_string(),
        dataset: options.dataset.clone(),
        position,
        plan,
        schedule,
        ema_updates: global_step,
        train_samples: 0,
        config: options.train.clone(),
        saved_unix_ms: now_unix_ms(),
    };
    let summary = CheckpointSummary {
        source: origin,
        kind,
        run_id: run_id.to_string(),
        checkpoint: layout::checkpoint_dir(run_id, global_step)?.to_string(),
        epoch,
        global_step,
        parameters: model.parameter_count(),
        optimizer,
        steps_per_epoch,
        schedule,
    };
    let files = vec![
        (MODEL_FILE, Bytes::from(model.to_safetensors()?)),
        (EMA_FILE, Bytes::from(ema.to_safetensors()?)),
        (
            CONFIG_FILE,
            Bytes::from(ssdit_train::model::seed_json(&options.dit)),
        ),
        (
            OPTIMIZER_FILE,
            Bytes::from(optimizer_state.to_safetensors()?),
        ),
        (
            OPTIMIZER_META_FILE,
            Bytes::from(optimizer_state.meta_json()?),
        ),
        (STATE_FILE, json(&state)),
        (IMPORT_FILE, json(&summary)),
    ];
    Ok((files, summary))
}

fn json<T: Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(value).expect("import records serialise"))
}

fn kind_of(dict: &Dict, origin: &str) -> Result<SeedCheckpointKind> {
    if dict.get("model_state_dict").is_some() || dict.get("ema_state_dict").is_some() {
        return Ok(SeedCheckpointKind::FullState);
    }
    let all_tensors = !dict.is_empty()
        && dict
            .iter()
            .all(|(k, v)| k.as_str().is_some() && v.as_tensor().is_some());
    if all_tensors {
        return Ok(SeedCheckpointKind::EmaStateDict);
    }
    Err(content(
        origin,
        format!(
            "neither a state dict nor the seed's full training state (keys: {})",
            dict.key_list()
        ),
    ))
}

/// Model and EMA weights, loaded strictly into the configured DiT (through
/// `ssdit_model`'s loader, which reads the tensors with burn-store).
fn load_weights(
    path: &Path,
    kind: SeedCheckpointKind,
    dict: &Dict,
    options: &SeedCheckpointOptions,
) -> Result<(SingleStreamDiT<B>, SingleStreamDiT<B>)> {
    let device = Default::default();
    let load = |key: Option<&str>| -> Result<SingleStreamDiT<B>> {
        Ok(options.dit.init::<B>(&device)?.load_file(path, key)?)
    };
    Ok(match kind {
        SeedCheckpointKind::EmaStateDict => {
            let ema = load(None)?;
            (ema.clone(), ema)
        }
        SeedCheckpointKind::FullState => {
            let has = |key| dict.get(key).is_some();
            match (has("model_state_dict"), has("ema_state_dict")) {
                (true, true) => (
                    load(Some("model_state_dict"))?,
                    load(Some("ema_state_dict"))?,
                ),
                (true, false) => {
                    let model = load(Some("model_state_dict"))?;
                    (model.clone(), model)
                }
                _ => {
                    let ema = load(Some("ema_state_dict"))?;
                    (ema.clone(), ema)
                }
            }
        }
    })
}

/// The seed's parameter order: its state dict's names, compile prefix removed.
fn parameter_order(dict: &Dict, kind: SeedCheckpointKind, origin: &str) -> Result<Vec<String>> {
    let state_dict = match kind {
        SeedCheckpointKind::EmaStateDict => dict,
        SeedCheckpointKind::FullState => dict
            .get("model_state_dict")
            .or_else(|| dict.get("ema_state_dict"))
            .and_then(Value::as_dict)
            .ok_or_else(|| content(origin, "its model state dict is not a dict"))?,
    };
    Ok(state_dict
        .iter()
        .filter_map(|(k, _)| k.as_str())
        .map(|name| {
            name.strip_prefix(COMPILE_PREFIX)
                .unwrap_or(name)
                .to_string()
        })
        .collect())
}

fn non_negative(dict: &Dict, key: &str, origin: &str) -> Result<u64> {
    dict.get(key)
        .and_then(Value::as_int)
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| {
            content(
                origin,
                format!("{key} is missing or not a non-negative int"),
            )
        })
}

/// The optimizer state to write, and what became of the seed's.
fn import_optimizer(
    file: &mut TorchFile,
    dict: &Dict,
    order: &[String],
    model: &SingleStreamDiT<B>,
    options: &SeedCheckpointOptions,
) -> Result<(OptimizerState, OptimizerImport)> {
    let fresh = |reason: String, config: AdamWConfig| {
        let state = OptimizerState {
            meta: StateMeta {
                format: OPTIMIZER_FORMAT.to_string(),
                config,
                params: Default::default(),
            },
            tensors: Default::default(),
        };
        (state, OptimizerImport::NotImported { reason })
    };
    let default_config = AdamWConfig::new().with_weight_decay(options.train.weight_decay);
    let Some(saved) = dict.get("optimizer_state_dict") else {
        let reason = "the file has no optimizer state".to_string();
        return Ok(fresh(reason, default_config));
    };
    Ok(match classify(saved) {
        SeedOptimizer::AdamW(adamw) => {
            let params = model_params(model);
            let state = map_adamw(file, &adamw, order, &params)?;
            let imported = state.meta.params.len();
            let outcome = OptimizerImport::Imported {
                parameters: imported,
                without_state: adamw.parameters - imported,
            };
            (state, outcome)
        }
        SeedOptimizer::Quantized8Bit { parameters } => fresh(
            format!(
                "bitsandbytes AdamW8bit state of {parameters} parameters is quantised in bitsandbytes' own block layout; it is not converted"
            ),
            default_config,
        ),
        SeedOptimizer::Empty => fresh("the optimizer never stepped".into(), default_config),
        SeedOptimizer::Unrecognised(reason) => fresh(
            format!("unrecognised optimizer state: {reason}"),
            default_config,
        ),
    })
}

/// The schedule the seed resumes with: transformers' cosine with warmup over
/// the remaining epochs' steps, its `LambdaLR` continuing at `last_epoch`.
fn schedule(
    dict: &Dict,
    epoch: Option<u64>,
    global_step: u64,
    steps_per_epoch: u64,
    train: &TrainConfig,
    origin: &str,
) -> Result<ScheduleState> {
    let scheduler = dict.get("scheduler_state_dict").and_then(Value::as_dict);
    let base_lr = scheduler
        .and_then(|s| s.get("base_lrs"))
        .and_then(Value::as_seq)
        .and_then(|lrs| lrs.first())
        .and_then(Value::as_f64)
        .unwrap_or(train.learning_rate);
    let last_epoch = scheduler
        .and_then(|s| s.get("last_epoch"))
        .and_then(Value::as_int)
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(global_step)
        .min(global_step);
    let start_epoch = epoch.map_or(0, |e| e + 1);
    let remaining = (train.epochs as u64).saturating_sub(start_epoch);
    let total = steps_per_epoch * remaining;
    let schedule = CosineWithWarmup::with_warmup_fraction(base_lr, total, train.warmup)
        .map_err(|e| content(origin, format!("its schedule: {e}")))?;
    Ok(ScheduleState {
        schedule,
        start_step: global_step - last_epoch,
    })
}
