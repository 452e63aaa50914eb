//! The training step of the seed's `train.py`, on any burn autodiff backend.
//!
//! One optimizer step is `accum_steps` micro-batches: each draws `t = shift(u)`,
//! noise with offset noise, forms `x_t = (1−t)·x₀ + t·x₁`, predicts the
//! velocity (block dropout on), takes the MSE/L1/Huber loss against `x₁ − x₀`
//! (plus `λ·` the Self-E loss with the EMA teacher late in training), divides
//! by `accum_steps` and back-propagates (block by block, running each
//! noise-refiner and fusion block again, with
//! `train.gradient_checkpointing = "blocks"`: the model's
//! [`TrainingPass`]); the summed gradients are clipped to a
//! global norm, AdamW steps with the cosine-warmup learning rate, and the EMA
//! folds in the new weights (its first update copies them).

use std::collections::BTreeMap;

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, ElementConversion};
use bytes::Bytes;
use ssdit_core::config::{GradientCheckpointing, LossKind, OptimizerKind, TrainConfig};
use ssdit_dataset::Bucket;
use ssdit_flow::{
    Ema, Loss, SelfEvalConfig, SelfEvalDraws, interpolate, self_eval_loss, shift_times,
    velocity_target,
};
use ssdit_model::{ActivationCheckpointing, SingleStreamDiT, SingleStreamDiTConfig, TrainingPass};
use ssdit_optim::{
    AdamW, AdamWConfig, CosineWithWarmup, MomentPrecision, OptimizerState, clip_grad_norm,
};
use ssdit_weights::Checkpoint;

use crate::checkpoint::{
    CONFIG_FILE, CheckpointFiles, EMA_FILE, MODEL_FILE, OPTIMIZER_FILE, OPTIMIZER_META_FILE,
    STATE_FILE,
};
use crate::data::{BatchOptions, TrainingSet, assemble, batches_per_epoch, epoch_batches};
use crate::model::seed_json;
use crate::rng::{self, Purpose, Streams};
use crate::state::{Plan, Position, STATE_FORMAT, ScheduleState, TrainingState, now_unix_ms};
use crate::{Error, Result, config_error};

/// The inner (non-autodiff) model: what the EMA, sampling and export use.
pub type InnerDiT<AB> = SingleStreamDiT<<AB as AutodiffBackend>::InnerBackend>;

/// What one optimizer step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Optimizer steps taken, this one included.
    pub step: u64,
    /// The epoch the step belongs to (0-based).
    pub epoch: u64,
    /// Mean loss over the step's micro-batches (before the 1/accum scaling).
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Mean raw Fourier gate after the step.
    pub gate: f64,
    /// Samples trained on.
    pub samples: usize,
    /// Whether the Self-E loss was on.
    pub self_eval: bool,
    /// Whether this step finished its epoch.
    pub epoch_finished: bool,
}

/// A run's model, EMA, optimizer, schedule and data position.
pub struct Trainer<AB: AutodiffBackend> {
    config: TrainConfig,
    dit: SingleStreamDiTConfig,
    run_id: String,
    dataset: String,
    device: Device<AB>,
    compute_dtype: DType,
    model: Option<SingleStreamDiT<AB>>,
    ema: Ema<AB::InnerBackend, InnerDiT<AB>>,
    optim: AdamW<AB>,
    schedule: ScheduleState,
    streams: Streams,
    position: Position,
    plan: Plan,
    data: TrainingSet,
    buckets: BTreeMap<Bucket, Vec<usize>>,
    holdout: Vec<usize>,
    order: Option<(u64, Vec<Vec<usize>>)>,
}

/// What a trainer is built from.
pub struct TrainerParts<'a, AB: AutodiffBackend> {
    pub run_id: &'a str,
    pub dataset: &'a str,
    pub config: TrainConfig,
    pub dit: SingleStreamDiTConfig,
    pub data: TrainingSet,
    pub device: Device<AB>,
    /// What the forward computes in (`models.precision` on this build): the
    /// parameters are cast to it in the graph, gradients and weights stay f32.
    pub compute_dtype: DType,
    /// A checkpoint to continue from.
    pub resume: Option<&'a CheckpointFiles>,
}

impl<AB: AutodiffBackend> Trainer<AB> {
    /// A fresh run (seeded initialisation) or one continuing `parts.resume`.
    pub fn new(parts: TrainerParts<'_, AB>) -> Result<Self> {
        let TrainerParts {
            run_id,
            dataset,
            config,
            dit,
            data,
            device,
            compute_dtype,
            resume,
        } = parts;
        let streams = Streams::new(config.seed);
        let holdout = holdout(&data, config.validation_holdout, &streams)?;
        let train: Vec<usize> = (0..data.len()).filter(|i| !holdout.contains(i)).collect();
        let buckets = data.buckets(train.iter().copied());
        let plan = plan(dataset, &buckets, &config)?;
        let optim = optimizer_config(&config).init::<AB>()?;
        let mut trainer = Self {
            model: None,
            ema: Ema::new(config.ema_decay)?,
            optim,
            schedule: new_schedule(&config, plan.total_steps, 0)?,
            streams,
            position: Position::default(),
            plan,
            data,
            buckets,
            holdout,
            order: None,
            run_id: run_id.to_string(),
            dataset: dataset.to_string(),
            device,
            compute_dtype,
            dit,
            config,
        };
        match resume {
            None => {
                trainer.model = Some(
                    trainer
                        .dit
                        .init_seeded(&trainer.device, trainer.config.seed)?,
                );
                let params = trainer.model()?.parameter_count();
                tracing::info!(run_id, params, ?plan, ?compute_dtype, "fresh model");
            }
            Some(files) => trainer.restore(files)?,
        }
        Ok(trainer)
    }

    fn restore(&mut self, files: &CheckpointFiles) -> Result<()> {
        let key = files.checkpoint.dir.to_string();
        let fail = |reason: String| Error::Checkpoint {
            key: key.clone(),
            reason,
        };
        let state: TrainingState = serde_json::from_str(files.text(STATE_FILE)?)
            .map_err(|e| fail(format!("state.json: {e}")))?;
        if state.format != STATE_FORMAT {
            return Err(fail(format!(
                "state.json format {}, expected {STATE_FORMAT}",
                state.format
            )));
        }
        let saved_dit = SingleStreamDiTConfig::from_seed_json(files.text(CONFIG_FILE)?)?;
        if saved_dit.clone().with_dropout(self.dit.dropout) != self.dit {
            return Err(fail(format!(
                "its model ({}) differs from this run's ({})",
                seed_json(&saved_dit),
                seed_json(&self.dit)
            )));
        }
        let weights = |name: &str| -> Result<Checkpoint> {
            Ok(Checkpoint::from_safetensors_bytes(
                files.get(name)?.to_vec(),
                format!("{key}/{name}"),
            )?)
        };
        let model = self
            .dit
            .init(&self.device)?
            .load_checkpoint(&weights(MODEL_FILE)?)?;
        let ema_model = self
            .dit
            .init::<AB::InnerBackend>(&self.device)?
            .load_checkpoint(&weights(EMA_FILE)?)?;
        self.ema = Ema::restore(ema_model, self.config.ema_decay, state.ema_updates)?;
        self.position = state.position;
        if self.config.reset_optimizer {
            let remaining = self
                .config
                .epochs
                .saturating_sub(state.position.epoch as usize) as u64;
            let total = self.plan.steps_per_epoch * remaining;
            self.schedule = new_schedule(&self.config, total, state.position.global_step)?;
            tracing::info!(run_id = %self.run_id, total, "optimizer and schedule reset on resume");
        } else {
            let optimizer = OptimizerState::from_parts(
                files.get(OPTIMIZER_FILE)?,
                files.text(OPTIMIZER_META_FILE)?,
            )?;
            self.optim.load_state(&model, &optimizer, &self.device)?;
            self.schedule = state.schedule;
        }
        if state.plan != self.plan && !self.config.reset_optimizer {
            tracing::warn!(saved = ?state.plan, now = ?self.plan, "the data changed since the checkpoint: the plan differs");
        }
        tracing::info!(run_id = %self.run_id, from = %key, step = state.position.global_step, epoch = state.position.epoch, compute_dtype = ?self.compute_dtype, "resumed");
        self.model = Some(model);
        Ok(())
    }

    /// The trained model.
    pub fn model(&self) -> Result<&SingleStreamDiT<AB>> {
        self.model
            .as_ref()
            .ok_or_else(|| Error::Thread("the model was lost in a failed optimizer step".into()))
    }

    fn live_model(&mut self) -> Result<SingleStreamDiT<AB>> {
        self.model
            .take()
            .ok_or_else(|| Error::Thread("the model was lost in a failed optimizer step".into()))
    }

    /// The EMA model (the trained model until the first update).
    pub fn ema_model(&self) -> Result<InnerDiT<AB>> {
        match self.ema.module() {
            Some(ema) => Ok(ema.clone()),
            None => Ok(self.model()?.valid()),
        }
    }

    /// What the forward computes in.
    pub fn compute_dtype(&self) -> DType {
        self.compute_dtype
    }

    /// The DiT configuration.
    pub fn dit_config(&self) -> &SingleStreamDiTConfig {
        &self.dit
    }

    /// The training settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The data.
    pub fn data(&self) -> &TrainingSet {
        &self.data
    }

    /// Samples held out for the validation loss.
    pub fn holdout(&self) -> &[usize] {
        &self.holdout
    }

    /// The run's random streams.
    pub fn streams(&self) -> &Streams {
        &self.streams
    }

    /// Where the run stands.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The step plan.
    pub fn plan(&self) -> Plan {
        self.plan
    }

    /// The device it trains on.
    pub fn device(&self) -> &Device<AB> {
        &self.device
    }

    /// Whether every epoch is done.
    pub fn finished(&self) -> bool {
        self.position.epoch >= self.config.epochs as u64
    }

    /// Whether the Self-E loss is on in `epoch` (the seed: `epoch > epochs · start`).
    pub fn self_eval_active(&self, epoch: u64) -> bool {
        let se = &self.config.self_eval;
        se.enabled && epoch as f64 > self.config.epochs as f64 * se.start
    }

    /// One optimizer step: `accum_steps` micro-batches, clip, AdamW, EMA.
    pub fn step(&mut self) -> Result<StepReport> {
        let Position {
            epoch,
            batch,
            global_step,
        } = self.position;
        let accum = self.config.accum_steps as u64;
        let batches = self.epoch_order(epoch);
        let self_eval = self.self_eval_active(epoch);
        let model = self.live_model()?;
        let mut accumulator = GradientsAccumulator::<SingleStreamDiT<AB>>::new();
        let mut loss_sum = 0.0;
        let mut samples = 0;
        for index in batch..batch + accum {
            let indices = &batches[index as usize];
            let outcome = self.micro_step(&model, indices, epoch, index, self_eval);
            let (grads, value) = match outcome {
                Ok(result) => result,
                Err(error) => {
                    self.model = Some(model);
                    return Err(error);
                }
            };
            accumulator.accumulate(&model, grads);
            loss_sum += value;
            samples += indices.len();
        }
        let mut grads = accumulator.grads();
        let lr = self.schedule.lr(global_step);
        let grad_norm = match clip_grad_norm(&model, &mut grads, self.config.grad_clip) {
            Ok(norm) => norm,
            Err(error) => {
                self.model = Some(model);
                return Err(error.into());
            }
        };
        // A failed optimizer step loses the model: the run cannot go on.
        let model = self.optim.step(lr, model, grads)?;
        self.ema.update(&model.valid())?;
        let gate = f64::from(model.mean_fourier_gate());
        self.model = Some(model);

        self.position.global_step += 1;
        self.position.batch += accum;
        let epoch_finished = self.position.batch / accum >= self.plan.steps_per_epoch;
        if epoch_finished {
            self.position.epoch += 1;
            self.position.batch = 0;
        }
        Ok(StepReport {
            step: self.position.global_step,
            epoch,
            loss: loss_sum / accum as f64,
            lr,
            grad_norm,
            gate,
            samples,
            self_eval,
            epoch_finished,
        })
    }

    /// The batches of `epoch`, computed once per epoch.
    fn epoch_order(&mut self, epoch: u64) -> Vec<Vec<usize>> {
        match &self.order {
            Some((cached, batches)) if *cached == epoch => batches.clone(),
            _ => {
                let batches =
                    epoch_batches(&self.buckets, self.config.batch_size, &self.streams, epoch);
                self.order = Some((epoch, batches.clone()));
                batches
            }
        }
    }

    /// Forward, loss and backward of micro-batch `index` of `epoch`; returns
    /// the gradients of the loss scaled by `1/accum_steps`, and the loss.
    fn micro_step(
        &self,
        model: &SingleStreamDiT<AB>,
        indices: &[usize],
        epoch: u64,
        index: u64,
        self_eval: bool,
    ) -> Result<(GradientsParams, f64)> {
        let device = &self.device;
        let tensors = self.data.tensors(indices)?;
        let mut rng = self.streams.rng(Purpose::Batch, epoch, index);
        let batch = assemble(&tensors, &self.batch_options(), &mut rng);
        let shape = batch.latent_shape;
        let [b, c, _, _] = shape;
        let x1 = Tensor::<AB, 4>::from_data(TensorData::new(batch.latents, shape), device);
        let text =
            Tensor::<AB, 3>::from_data(TensorData::new(batch.text, batch.text_shape), device);
        let u = Tensor::<AB, 1>::from_data(TensorData::new(rng::uniform(&mut rng, b), [b]), device);
        let t = shift_times(u, self.config.shift);
        let x0 = noise::<AB>(&mut rng, shape, self.config.offset_noise, device);
        let x_t = interpolate(x0.clone(), x1.clone(), t.clone());

        let pass = TrainingPass {
            dtype: self.compute_dtype,
            dropout_seed: self.streams.seed(Purpose::Dropout, epoch, index),
            checkpointing: activation_checkpointing(self.config.gradient_checkpointing),
        };
        let mut value = f64::NAN;
        let inputs = (x_t.clone(), t.clone(), text.clone());
        let grads = model.loss_gradients(inputs, pass, |v_pred| -> Result<Tensor<AB, 1>> {
            let mut loss = loss_kind(self.config.loss)
                .compute(v_pred.clone(), velocity_target(x0, x1.clone()));
            if self_eval {
                let self_loss = self.self_eval_loss(x_t, t, v_pred, x1, text, (epoch, index))?;
                loss = loss + self_loss.mul_scalar(self.config.self_eval.lambda);
            }
            value = loss.clone().into_scalar().elem();
            if !value.is_finite() {
                return Err(config_error(
                    "train.learning_rate",
                    format!(
                        "the loss became {value} at epoch {epoch}, micro-batch {index} ({c} channels); lower the learning rate"
                    ),
                ));
            }
            Ok(loss.div_scalar(self.config.accum_steps as f64))
        })?;
        Ok((grads, value))
    }

    /// The Self-E consistency loss of micro-batch `index` of `epoch`, with
    /// the EMA model as the teacher.
    fn self_eval_loss(
        &self,
        x_t: Tensor<AB, 4>,
        t: Tensor<AB, 1>,
        v_pred: Tensor<AB, 4>,
        x1: Tensor<AB, 4>,
        text: Tensor<AB, 3>,
        (epoch, index): (u64, u64),
    ) -> Result<Tensor<AB, 1>> {
        let shape = x1.dims();
        let b = shape[0];
        let device = &self.device;
        let mut draws_rng = self.streams.rng(Purpose::SelfEval, epoch, index);
        let draws = SelfEvalDraws {
            u: Tensor::from_data(
                TensorData::new(rng::uniform(&mut draws_rng, b), [b]),
                device,
            ),
            noise: Tensor::from_data(
                TensorData::new(rng::normal(&mut draws_rng, shape.iter().product()), shape),
                device,
            ),
        };
        let teacher = self.ema_model()?.with_dtype(self.compute_dtype);
        let velocity = |x, t, text| teacher.forward(x, t, text);
        let settings = SelfEvalConfig::new().with_teacher_cfg(self.config.self_eval.cfg);
        Ok(self_eval_loss(
            &velocity, x_t, t, v_pred, x1, text, draws, &settings,
        )?)
    }

    fn batch_options(&self) -> BatchOptions {
        BatchOptions {
            latent_mean: self.config.latent_mean as f32,
            latent_std: self.config.latent_std as f32,
            flip: self.config.flip,
            text_dropout: self.config.text_dropout,
        }
    }

    /// The files of a checkpoint at the current position.
    pub fn checkpoint_files(&self) -> Result<Vec<(&'static str, Bytes)>> {
        let model = self.model()?;
        let optimizer = self.optim.state(model)?;
        let state = TrainingState {
            format: STATE_FORMAT.to_string(),
            run_id: self.run_id.clone(),
            dataset: self.dataset.clone(),
            position: self.position,
            plan: self.plan,
            schedule: self.schedule,
            ema_updates: self.ema.updates(),
            train_samples: self.buckets.values().map(Vec::len).sum(),
            config: self.config.clone(),
            saved_unix_ms: now_unix_ms(),
        };
        Ok(vec![
            (MODEL_FILE, model.valid().to_safetensors()?.into()),
            (EMA_FILE, self.ema_model()?.to_safetensors()?.into()),
            (CONFIG_FILE, seed_json(&self.dit).into()),
            (OPTIMIZER_FILE, optimizer.to_safetensors()?.into()),
            (OPTIMIZER_META_FILE, optimizer.meta_json()?.into()),
            (
                STATE_FILE,
                serde_json::to_vec_pretty(&state)
                    .expect("states serialise")
                    .into(),
            ),
        ])
    }
}

/// Noise `N(0, 1)` plus `strength · N(0, 1)` per (sample, channel), drawn
/// from `rng` (the seed's offset noise).
fn noise<AB: AutodiffBackend>(
    rng: &mut rand_chacha::ChaCha8Rng,
    shape: [usize; 4],
    strength: f64,
    device: &Device<AB>,
) -> Tensor<AB, 4> {
    let [b, c, _, _] = shape;
    let base = Tensor::<AB, 4>::from_data(
        TensorData::new(rng::normal(rng, shape.iter().product()), shape),
        device,
    );
    if strength == 0.0 {
        return base;
    }
    let offset = Tensor::<AB, 4>::from_data(
        TensorData::new(rng::normal(rng, b * c), [b, c, 1, 1]),
        device,
    );
    base + offset.mul_scalar(strength)
}

/// The model's activation checkpointing for `train.gradient_checkpointing`
/// (burn's, `operations`, is the backend's: the model keeps what it records).
pub fn activation_checkpointing(setting: GradientCheckpointing) -> ActivationCheckpointing {
    match setting {
        GradientCheckpointing::Blocks => ActivationCheckpointing::Blocks,
        GradientCheckpointing::Off | GradientCheckpointing::Operations => {
            ActivationCheckpointing::Off
        }
    }
}

/// The flow crate's loss for the configured kind.
pub fn loss_kind(kind: LossKind) -> Loss {
    match kind {
        LossKind::Mse => Loss::Mse,
        LossKind::L1 => Loss::L1,
        LossKind::Huber => Loss::huber(),
    }
}

/// AdamW as configured: PyTorch's f32 moments or bitsandbytes-style 8-bit.
fn optimizer_config(config: &TrainConfig) -> AdamWConfig {
    let moments = match config.optimizer {
        OptimizerKind::Adamw => MomentPrecision::Fp32,
        OptimizerKind::Adamw8bit => MomentPrecision::blockwise_8bit(),
    };
    AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .with_moments(moments)
}

/// A cosine schedule with warmup over `total_steps` from `start_step`.
fn new_schedule(config: &TrainConfig, total_steps: u64, start_step: u64) -> Result<ScheduleState> {
    Ok(ScheduleState {
        schedule: CosineWithWarmup::with_warmup_fraction(
            config.learning_rate,
            total_steps,
            config.warmup,
        )?,
        start_step,
    })
}

/// The seed's arithmetic: `steps_per_epoch = len(dataloader) // accum_steps`,
/// `total = steps_per_epoch × epochs`.
fn plan(
    dataset: &str,
    buckets: &BTreeMap<Bucket, Vec<usize>>,
    config: &TrainConfig,
) -> Result<Plan> {
    let batches = batches_per_epoch(buckets, config.batch_size);
    let steps_per_epoch = (batches / config.accum_steps) as u64;
    if steps_per_epoch == 0 {
        return Err(Error::TooSmall {
            dataset: dataset.to_string(),
            batches,
            batch_size: config.batch_size,
            accum_steps: config.accum_steps,
        });
    }
    Ok(Plan {
        batches_per_epoch: batches as u64,
        steps_per_epoch,
        total_steps: steps_per_epoch * config.epochs as u64,
    })
}

/// The samples held out of training: `count` indices drawn from the run's
/// holdout stream (never all of them).
fn holdout(data: &TrainingSet, count: usize, streams: &Streams) -> Result<Vec<usize>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if count >= data.len() {
        return Err(config_error(
            "train.validation_holdout",
            format!(
                "{count} held-out samples leave none of the {} to train on",
                data.len()
            ),
        ));
    }
    use rand::seq::SliceRandom;
    let mut indices: Vec<usize> = (0..data.len()).collect();
    indices.shuffle(&mut streams.rng(Purpose::Holdout, 0, 0));
    indices.truncate(count);
    indices.sort_unstable();
    Ok(indices)
}
