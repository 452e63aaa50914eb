//! One training run from start to end, on the calling thread: manifest
//! check, data, model, the step loop with its metrics, validations and
//! checkpoints, and a final checkpoint when it completes or is stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use image::{Rgb, RgbImage};
use ssdit_bus::{Bus, BusExt};
use ssdit_core::Config;
use ssdit_core::config::{ModelsConfig, TrainConfig};
use ssdit_dataset::{Dataset, Encodings};
use ssdit_proto::v1::CheckpointSaved;
use ssdit_render::{LinePlot, Series, animate, encode_png, ewm};
use ssdit_store::{Key, Store, layout};
use ssdit_vae::{CodecChoice, LatentCodec, load_codec};
use tokio::runtime::Handle;

use crate::checkpoint::{self, CheckpointFiles, CheckpointRef, EMA_FILE};
use crate::data::TrainingSet;
use crate::metrics::{HoldoutLoss, MetricsLog, MetricsRow, RunMetrics};
use crate::model::{DataShape, dit_config};
use crate::trainer::{StepReport, Trainer, TrainerParts};
use crate::validate::{Prompts, holdout_loss, sample_images, sampler, validation_sheet};
use crate::{Error, Result, config_error, encodings};

/// How often the metrics CSV is rewritten to the store, at most.
const METRICS_FLUSH: Duration = Duration::from_secs(30);
/// Size of the metric plots.
const PLOT_SIZE: (u32, u32) = (1000, 600);
/// Time per frame of the training animation.
const FRAME_MS: u32 = 400;
/// Background of the animation (the sheets' own).
const FRAME_BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
/// Plot names under `runs/<run>/plots/`.
pub const LOSS_PLOT: &str = "loss.png";
pub const LR_PLOT: &str = "lr.png";
pub const GATE_PLOT: &str = "fourier_gate.png";
pub const ANIMATION: &str = "progress.gif";
const SHEET_PREFIX: &str = "samples-step-";
/// Index offset of the raw weights' samples: prompt `p`'s EMA sample is
/// `runs/<run>/samples/step-<step>-<p>.png`, its raw one `…-<100 + p>.png`.
pub const RAW_SAMPLE_OFFSET: u32 = 100;

/// What to train.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    /// The run's id: its folder `runs/<run>/` in the store.
    pub run_id: String,
    pub dataset: String,
    pub train: TrainConfig,
    /// The DiT (`models.dit`), the codec decoding validation samples
    /// (`models.vae`) and the text encoder whose embeddings to read.
    pub models: ModelsConfig,
    /// Caption length of the embeddings (`encode.max_text_length`).
    pub max_text_length: usize,
    /// The cache identities to read, when the caller knows them; otherwise
    /// they are derived from `models` and the store.
    pub encodings: Option<Encodings>,
    pub resume: Resume,
}

impl RunRequest {
    /// A request for `dataset` under `run_id` with the settings of `config`.
    pub fn from_config(run_id: &str, dataset: &str, config: &Config) -> Self {
        Self {
            run_id: run_id.to_string(),
            dataset: dataset.to_string(),
            train: config.train.clone(),
            models: config.models.clone(),
            max_text_length: config.encode.max_text_length,
            encodings: None,
            resume: Resume::Auto,
        }
    }

    /// Checks the ids (they become store keys) before anything runs.
    pub fn validate(&self) -> Result<()> {
        layout::run_root(&self.run_id)?;
        layout::dataset_root(&self.dataset)?;
        if let Resume::From(key) = &self.resume {
            CheckpointRef::parse(key)?;
        }
        Ok(())
    }
}

/// Where a run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// From the run's newest committed checkpoint when it has one, else fresh.
    Auto,
    /// Fresh; an error if the run already has checkpoints.
    Fresh,
    /// From this checkpoint (its folder key or a file in it), possibly
    /// another run's.
    From(String),
}

/// The store, the bus to announce checkpoints on, and the async runtime the
/// training thread performs its I/O through.
#[derive(Clone)]
pub struct TrainContext {
    pub store: Store,
    pub bus: Option<Arc<dyn Bus>>,
    pub runtime: Handle,
}

/// Stop requests and live metrics shared with the controlling side.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    stop: Arc<AtomicBool>,
    pub metrics: Arc<RunMetrics>,
}

impl RunControl {
    /// Asks the run to stop at the next step boundary (it saves a checkpoint).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// The metrics of one optimizer step, as broadcast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepEvent {
    pub step: u64,
    pub epoch: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub gate: f64,
    pub samples_per_second: f64,
    /// Memory the run holds after the step ([`ssdit_core::memory_in_use`]).
    pub memory_bytes: Option<u64>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every epoch trained.
    Completed,
    /// Stopped on request, after saving a checkpoint.
    Stopped,
}

/// What the run reports while it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// Training begins (or resumes) at `step` of `total_steps`.
    Started {
        step: u64,
        epoch: u64,
        total_steps: u64,
    },
    Step(StepEvent),
    /// A checkpoint was committed; `key` is its EMA weights file.
    CheckpointSaved {
        step: u64,
        key: String,
    },
    /// Validation samples were drawn; `sheet` is the contact sheet's key.
    Validated {
        step: u64,
        epoch: u64,
        sheet: String,
        holdout_loss_raw: Option<f64>,
        holdout_loss_ema: Option<f64>,
    },
}

/// The end of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub outcome: Outcome,
    pub step: u64,
    pub epoch: u64,
    pub total_steps: u64,
    /// The last committed checkpoint.
    pub checkpoint: Option<CheckpointRef>,
    /// Steps trained in this session and their mean time.
    pub steps_trained: u64,
    pub mean_step_seconds: f64,
}

/// Runs `request` to its end on this thread, on `device`.
pub fn run<AB: AutodiffBackend>(
    ctx: &TrainContext,
    request: &RunRequest,
    device: Device<AB>,
    control: &RunControl,
    observer: &mut dyn FnMut(TrainEvent),
) -> Result<RunSummary> {
    request.validate()?;
    let mut session = Session::<AB>::open(ctx, request, device, control)?;
    let result = session.train(observer);
    if let Err(error) = &result {
        tracing::error!(run_id = %request.run_id, %error, "training failed");
        session.flush_metrics(true);
    }
    control.metrics.update(|v| v.running = false);
    result
}

/// A run in progress and everything it writes.
struct Session<'a, AB: AutodiffBackend> {
    ctx: &'a TrainContext,
    request: &'a RunRequest,
    control: &'a RunControl,
    trainer: Trainer<AB>,
    codec: Box<dyn LatentCodec<AB::InnerBackend>>,
    prompts: Prompts,
    log: MetricsLog,
    sheets: Vec<RgbImage>,
    last_flush: Instant,
    saved_step: Option<u64>,
    validated_step: Option<u64>,
    checkpoint: Option<CheckpointRef>,
}

impl<'a, AB: AutodiffBackend> Session<'a, AB> {
    fn open(
        ctx: &'a TrainContext,
        request: &'a RunRequest,
        device: Device<AB>,
        control: &'a RunControl,
    ) -> Result<Self> {
        let rt = &ctx.runtime;
        let config = &request.train;
        let choice: CodecChoice = request.models.vae.parse()?;
        let codec = load_codec::<AB::InnerBackend>(&choice, &device)?;
        let encodings = match &request.encodings {
            Some(encodings) => encodings.clone(),
            None => rt.block_on(encodings::resolve(
                &ctx.store,
                codec.fingerprint(),
                &request.models.text_encoder,
                request.max_text_length,
            ))?,
        };
        let dataset = Dataset::new(ctx.store.clone(), &request.dataset)?;
        let manifest = rt.block_on(dataset.training_manifest(&encodings))?;
        let data = TrainingSet::load(&ctx.store, rt, &manifest, config.load_entire_dataset)?;
        let [text_tokens, text_dim] = data.text_shape();
        let shape = DataShape {
            channels: data.latent_channels(),
            text_tokens,
            text_dim,
        };
        let dit = dit_config(&request.models.dit, shape, config.dropout)?;
        let resume = rt.block_on(resume_checkpoint(&ctx.store, request))?;
        let prompts = Prompts::first(&data, config.validate_prompts)?;
        let trainer = Trainer::new(TrainerParts {
            run_id: &request.run_id,
            dataset: &request.dataset,
            config: config.clone(),
            dit,
            data,
            device,
            compute_dtype: request.models.precision.compute_dtype(),
            resume: resume.as_ref(),
        })?;
        let step = trainer.position().global_step;
        let (log, sheets) = match &resume {
            Some(_) => rt.block_on(previous_outputs(&ctx.store, &request.run_id, step))?,
            None => (MetricsLog::default(), Vec::new()),
        };
        let total = trainer.plan().total_steps;
        control.metrics.update(|v| {
            v.step = step;
            v.epoch = trainer.position().epoch;
            v.total_steps = total;
            v.running = true;
        });
        Ok(Self {
            ctx,
            request,
            control,
            codec,
            prompts,
            log,
            sheets,
            last_flush: Instant::now(),
            saved_step: resume.as_ref().map(|_| step),
            validated_step: None,
            checkpoint: resume.map(|files| files.checkpoint),
            trainer,
        })
    }

    fn train(&mut self, observer: &mut dyn FnMut(TrainEvent)) -> Result<RunSummary> {
        let config = self.request.train.clone();
        let started = Instant::now();
        let mut steps_trained = 0u64;
        let position = self.trainer.position();
        observer(TrainEvent::Started {
            step: position.global_step,
            epoch: position.epoch,
            total_steps: self.trainer.plan().total_steps,
        });
        tracing::info!(run_id = %self.request.run_id, step = position.global_step, epoch = position.epoch, plan = ?self.trainer.plan(), "training");
        let outcome = loop {
            if self.trainer.finished() {
                break Outcome::Completed;
            }
            if self.control.stop_requested() {
                break Outcome::Stopped;
            }
            let step_started = Instant::now();
            let report = self.trainer.step()?;
            steps_trained += 1;
            let seconds = step_started.elapsed().as_secs_f64();
            self.record(&report, seconds, started.elapsed().as_secs_f64(), observer);
            if report.epoch_finished {
                let completed = report.epoch as usize + 1;
                let last = completed >= config.epochs;
                if completed.is_multiple_of(config.validate_every) && !last {
                    self.validate(observer)?;
                }
                if completed.is_multiple_of(config.save_every) && !last {
                    self.save(observer)?;
                }
            }
        };
        if outcome == Outcome::Completed && steps_trained > 0 {
            self.validate(observer)?;
        }
        self.save(observer)?;
        self.flush_metrics(true);
        let position = self.trainer.position();
        tracing::info!(run_id = %self.request.run_id, ?outcome, step = position.global_step, steps_trained, "training ended");
        Ok(RunSummary {
            outcome,
            step: position.global_step,
            epoch: position.epoch,
            total_steps: self.trainer.plan().total_steps,
            checkpoint: self.checkpoint.clone(),
            steps_trained,
            mean_step_seconds: if steps_trained > 0 {
                started.elapsed().as_secs_f64() / steps_trained as f64
            } else {
                0.0
            },
        })
    }

    fn record(
        &mut self,
        report: &StepReport,
        seconds: f64,
        elapsed: f64,
        observer: &mut dyn FnMut(TrainEvent),
    ) {
        let samples_per_second = report.samples as f64 / seconds.max(1e-9);
        let memory = ssdit_core::memory_in_use::<AB>(self.trainer.device());
        let row = MetricsRow::of(report, samples_per_second, elapsed, memory);
        self.control.metrics.record_step(&row, report.samples);
        self.log.push(row);
        tracing::debug!(
            run_id = %self.request.run_id,
            step = report.step,
            epoch = report.epoch,
            loss = report.loss,
            lr = report.lr,
            grad_norm = report.grad_norm,
            gate = report.gate,
            samples_per_second,
            memory_bytes = memory,
            self_eval = report.self_eval,
            "step"
        );
        observer(TrainEvent::Step(StepEvent {
            step: report.step,
            epoch: report.epoch,
            loss: report.loss,
            lr: report.lr,
            grad_norm: report.grad_norm,
            gate: report.gate,
            samples_per_second,
            memory_bytes: memory,
        }));
        self.flush_metrics(false);
    }

    /// Rewrites the metrics CSV when forced or when it is due; a failure is
    /// logged, never fatal (the CSV is rebuilt from the next flush).
    fn flush_metrics(&mut self, force: bool) {
        if !force && self.last_flush.elapsed() < METRICS_FLUSH {
            return;
        }
        self.last_flush = Instant::now();
        let result = layout::metrics(&self.request.run_id)
            .map_err(Error::from)
            .and_then(|key| {
                let csv = self.log.to_csv();
                Ok(self
                    .ctx
                    .runtime
                    .block_on(self.ctx.store.put(&key, csv.into()))?)
            });
        if let Err(error) = result {
            tracing::warn!(run_id = %self.request.run_id, %error, "could not write the metrics CSV");
        }
    }

    /// Commits a checkpoint at the current step (once per step), cleans up,
    /// announces it, and redraws the plots.
    fn save(&mut self, observer: &mut dyn FnMut(TrainEvent)) -> Result<()> {
        let step = self.trainer.position().global_step;
        if self.saved_step == Some(step) {
            return Ok(());
        }
        let started = Instant::now();
        let files = self.trainer.checkpoint_files()?;
        let store = &self.ctx.store;
        let run_id = &self.request.run_id;
        let checkpoint = self
            .ctx
            .runtime
            .block_on(checkpoint::write(store, run_id, step, files))?;
        self.saved_step = Some(step);
        self.checkpoint = Some(checkpoint.clone());
        let removed = self.ctx.runtime.block_on(checkpoint::cleanup(
            store,
            run_id,
            self.request.train.keep_last,
        ))?;
        let key = checkpoint.file(EMA_FILE)?.to_string();
        tracing::info!(
            run_id,
            step,
            key,
            removed,
            ms = started.elapsed().as_millis() as u64,
            "checkpoint committed"
        );
        if let Some(bus) = &self.ctx.bus {
            let event = CheckpointSaved {
                run_id: run_id.clone(),
                step,
                key: key.clone(),
            };
            self.ctx.runtime.block_on(bus.publish_event(&event))?;
        }
        self.control.metrics.update(|v| v.checkpoints_total += 1);
        observer(TrainEvent::CheckpointSaved { step, key });
        self.flush_metrics(true);
        self.write_plots();
        Ok(())
    }

    /// Samples the prompts from the EMA and the raw weights, stores the
    /// images, the contact sheet and the animation; reports the held-out loss.
    fn validate(&mut self, observer: &mut dyn FnMut(TrainEvent)) -> Result<()> {
        let position = self.trainer.position();
        let step = position.global_step;
        if self.validated_step == Some(step) {
            return Ok(());
        }
        let started = Instant::now();
        let config = &self.request.train;
        let device = self.trainer.device().clone();
        let sampler = sampler(config)?;
        let dtype = self.trainer.compute_dtype();
        let ema = self.trainer.ema_model()?.with_dtype(dtype);
        let raw = self.trainer.model()?.valid().with_dtype(dtype);
        let codec = self.codec.as_ref();
        let ema_images = sample_images(&ema, &self.prompts, &sampler, codec, config, &device)?;
        let raw_images = sample_images(&raw, &self.prompts, &sampler, codec, config, &device)?;
        let data = self.trainer.data();
        let holdout = self.trainer.holdout();
        let holdout_loss_ema = holdout_loss(&ema, data, holdout, config, &device)?;
        let holdout_loss_raw = holdout_loss(&raw, data, holdout, config, &device)?;
        if let (Some(raw), Some(ema)) = (holdout_loss_raw, holdout_loss_ema) {
            let loss = HoldoutLoss { raw, ema };
            self.log.record_holdout(step, loss);
            self.control.metrics.update(|v| v.holdout_loss = Some(loss));
        }

        let run_id = &self.request.run_id;
        let mut files: Vec<(Key, Vec<u8>)> = Vec::new();
        for (offset, images) in [(0, &ema_images), (RAW_SAMPLE_OFFSET, &raw_images)] {
            for (p, image) in images.iter().enumerate() {
                let key = layout::training_sample(run_id, step, offset + p as u32)?;
                files.push((key, encode_png(image)?));
            }
        }
        let header = format!(
            "{run_id}  step {step}  epoch {}  {} steps {:?} cfg {}",
            position.epoch, config.validate_steps, config.validate_sampler, config.validate_cfg
        );
        let sheet = validation_sheet(&header, ema_images, raw_images)?;
        let sheet_key = layout::plot(run_id, &sheet_name(step))?;
        files.push((sheet_key.clone(), encode_png(&sheet)?));
        self.sheets.push(sheet);
        files.push((
            layout::plot(run_id, ANIMATION)?,
            animate(&self.sheets, FRAME_MS, FRAME_BACKGROUND)?,
        ));
        let store = &self.ctx.store;
        self.ctx.runtime.block_on(async {
            for (key, bytes) in files {
                store.put(&key, bytes.into()).await?;
            }
            Ok::<_, Error>(())
        })?;
        self.validated_step = Some(step);
        self.control.metrics.update(|v| v.validations_total += 1);
        tracing::info!(
            run_id,
            step,
            prompts = self.prompts.len(),
            ?holdout_loss_raw,
            ?holdout_loss_ema,
            ms = started.elapsed().as_millis() as u64,
            "validated"
        );
        observer(TrainEvent::Validated {
            step,
            epoch: position.epoch,
            sheet: sheet_key.to_string(),
            holdout_loss_raw,
            holdout_loss_ema,
        });
        self.write_plots();
        Ok(())
    }

    /// Redraws the loss, learning-rate and gate plots; failures are logged.
    fn write_plots(&self) {
        let run_id = &self.request.run_id;
        let result = plots(&self.log).and_then(|plots| {
            self.ctx.runtime.block_on(async {
                for (name, bytes) in plots {
                    self.ctx
                        .store
                        .put(&layout::plot(run_id, name)?, bytes.into())
                        .await?;
                }
                Ok(())
            })
        });
        if let Err(error) = result {
            tracing::warn!(run_id, %error, "could not write the plots");
        }
    }
}

fn sheet_name(step: u64) -> String {
    format!("{SHEET_PREFIX}{step:010}.png")
}

/// The plots of the seed's `generate_graph.py` — loss (raw and smoothed)
/// and Fourier gate (raw and trend) — plus the learning rate, as PNG bytes
/// by name.
pub fn plots(log: &MetricsLog) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let rows = log.rows();
    let column = |read: fn(&MetricsRow) -> f64| -> Vec<f64> { rows.iter().map(read).collect() };
    let series = |label: &str, values: &[f64], color: [u8; 3], width, alpha| Series {
        label: label.into(),
        points: rows
            .iter()
            .map(|r| r.step as f64)
            .zip(values.iter().copied())
            .collect(),
        color: Rgb(color),
        width,
        alpha,
    };
    let (w, h) = PLOT_SIZE;
    let loss = column(|r| r.loss);
    let gate = column(|r| r.gate);
    let lr = column(|r| r.lr);
    let blue = [102, 179, 255];
    let red = [255, 153, 153];
    let loss_plot = LinePlot::new("Training Loss", "Global Step", "Loss Value")
        .size(w, h)
        .series(series("Raw", &loss, blue, 1.0, 0.3))
        .series(series("Smoothed Loss", &ewm(&loss, 10.0), blue, 2.5, 1.0));
    let gate_plot = LinePlot::new(
        "Fourier Filter Gate Evolution",
        "Global Step",
        "Avg Gate Value",
    )
    .size(w, h)
    .series(series("Raw", &gate, red, 1.0, 0.3))
    .series(series("Gate Trend", &ewm(&gate, 20.0), red, 2.5, 1.0));
    let lr_plot = LinePlot::new("Learning Rate", "Global Step", "LR")
        .size(w, h)
        .series(series("Cosine with warmup", &lr, [153, 230, 153], 2.5, 1.0));
    Ok(vec![
        (LOSS_PLOT, encode_png(&loss_plot.render()?)?),
        (GATE_PLOT, encode_png(&gate_plot.render()?)?),
        (LR_PLOT, encode_png(&lr_plot.render()?)?),
    ])
}

/// The checkpoint a request starts from.
async fn resume_checkpoint(store: &Store, request: &RunRequest) -> Result<Option<CheckpointFiles>> {
    let run_id = &request.run_id;
    match &request.resume {
        Resume::Auto => checkpoint::latest(store, run_id).await,
        Resume::Fresh => {
            if checkpoint::committed(store, run_id).await?.is_empty() {
                Ok(None)
            } else {
                Err(config_error(
                    "run_id",
                    format!(
                        "run {run_id} already has checkpoints: resume it or choose another run id"
                    ),
                ))
            }
        }
        Resume::From(key) => Ok(Some(
            checkpoint::read(store, &CheckpointRef::parse(key)?).await?,
        )),
    }
}

/// The metrics rows (up to `step`) and contact sheets a resumed run continues.
async fn previous_outputs(
    store: &Store,
    run_id: &str,
    step: u64,
) -> Result<(MetricsLog, Vec<RgbImage>)> {
    let log = match store.get_opt(&layout::metrics(run_id)?).await? {
        Some(bytes) => MetricsLog::parse(&String::from_utf8_lossy(&bytes), step),
        None => MetricsLog::default(),
    };
    let plots = store
        .list(&layout::run_root(run_id)?.child("plots")?)
        .await?;
    let mut sheets = Vec::new();
    for object in plots {
        let name = object.key.file_name();
        let sheet_step = name
            .strip_prefix(SHEET_PREFIX)
            .and_then(|rest| rest.strip_suffix(".png"))
            .and_then(|digits| digits.parse::<u64>().ok());
        if sheet_step.is_some_and(|s| s <= step) {
            let bytes = store.get(&object.key).await?;
            match image::load_from_memory(&bytes) {
                Ok(image) => sheets.push(image.into_rgb8()),
                Err(error) => {
                    tracing::warn!(key = %object.key, %error, "skipping an unreadable contact sheet")
                }
            }
        }
    }
    Ok((log, sheets))
}
