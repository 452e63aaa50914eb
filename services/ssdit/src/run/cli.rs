//! The `ssdit run` command: its flags, and what it prints while the job runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use ssdit_core::Config;
use ssdit_dataset::DatasetStatus;
use ssdit_ingest::{FileStatus, IngestReport};
use ssdit_train::TrainEvent;

use super::error::{Error, Result};
use super::job::{JobOutcome, JobSpec, Observer, SampleResult, run_job};
use super::models::{self, Fidelity, ModelChoice, ModelFlags};
use super::pipeline::{Pipeline, TrainingStop};
use super::settings::{DEFAULT_DATASET, demo_config};
use super::sheet;

/// The repository's demo photos, relative to the working directory.
const DEMO_PHOTOS: &str = "demo/photos";

/// The demo photos of the checkout this binary was built from.
const BUILT_DEMO_PHOTOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo/photos");

/// The contact sheet's file name in the output folder.
pub const SHEET_FILE: &str = "sheet.png";

/// The folder of generated images in the output folder.
pub const GENERATED_DIR: &str = "generated";

/// Run the whole pipeline in this process: ingest a folder of captioned
/// images, encode, train a small DiT on the CPU, generate one image per
/// caption over gRPC, and write a contact sheet (original, codec
/// reconstruction, generated).
///
/// Without a configuration file it uses the demo settings: 128 px buckets,
/// a tiny DiT, one image per batch, 1000 epochs. Without FLUX.1-VAE and
/// T5Gemma2 weights on this machine it runs on the weight-free preview codec
/// and a tiny random text encoder, and says so.
///
/// Ctrl-C while the DiT trains stops training at the next step (with a
/// checkpoint) and goes on to generate from it; a second Ctrl-C quits.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Configuration file (TOML; see the README's reference). Without one,
    /// the demo settings; `SSDIT_*` environment overrides apply either way.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Folder of images with `.txt` caption sidecars [default: the
    /// repository's demo/photos].
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// Name of the dataset in the store.
    #[arg(long, default_value = DEFAULT_DATASET)]
    pub dataset: String,
    /// Small random VAE, text encoder and DiT: shows the pipeline working,
    /// needs no weights; the images are not meaningful.
    #[arg(long, conflicts_with = "vae")]
    pub tiny: bool,
    /// The latent codec: `preview` (the weight-free DCT stand-in), `tiny` (a
    /// small random VAE), or a FLUX.1-VAE model directory or hub id. Weights
    /// asked for here must load: the preview codec never replaces them.
    #[arg(long, value_name = "preview|tiny|DIR")]
    pub vae: Option<String>,
    /// Stop training after this many minutes (a checkpoint is saved first).
    #[arg(long, value_name = "N", conflicts_with = "steps", value_parser = parse_minutes)]
    pub minutes: Option<Duration>,
    /// Train this many optimizer steps (rounded up to whole epochs) instead
    /// of the configured epochs.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Where the contact sheet and the generated images are written.
    #[arg(long, value_name = "DIR", default_value = "ssdit-out")]
    pub out: PathBuf,
    /// Noise seed of the generated images.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seconds the encoders may take before the job gives up.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub encode_timeout: u64,
}

/// Runs `ssdit run`; `env` is the process environment (config overrides,
/// the hub cache location, `RUST_LOG`).
pub fn execute(args: RunArgs, env: HashMap<String, String>) -> Result<ExitCode> {
    ssdit_server::telemetry::init(env.get("RUST_LOG").map(String::as_str), "warn");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Config(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(run(args, env))
}

async fn run(args: RunArgs, env: HashMap<String, String>) -> Result<ExitCode> {
    let started = Instant::now();
    let mut config = load_config(args.config.as_deref(), &env)?;
    let hub = hf_hub::Cache::from_env();
    let choice = models::choose(
        &config.models,
        &ModelFlags {
            tiny: args.tiny,
            vae: args.vae.clone(),
        },
        &|repo| models::hub_cached(&hub, repo),
    );
    config.models = choice.models.clone();
    let spec = JobSpec {
        dataset: args.dataset.clone(),
        images: images_folder(args.images.as_deref())?,
        run_id: format!("{}-{}", args.dataset, unix_seconds()),
        steps: args.steps,
        time_limit: args.minutes,
        encode_timeout: Duration::from_secs(args.encode_timeout),
        seed: args.seed,
    };
    print_plan(&config, &choice, &spec);
    let mut pipeline = Pipeline::start(config, &env).await?;
    tokio::spawn(stop_on_interrupt(pipeline.training_stop()));
    for (service, addr) in pipeline.addresses() {
        println!("  {service:<18} grpc://{addr}");
    }
    let mut observer = Printer::default();
    let outcome = run_job(&mut pipeline, &spec, &mut observer).await;
    let shutdown = pipeline.shutdown().await;
    let outcome = outcome?;
    shutdown?;
    let sheet_path = write_outputs(&outcome, &choice, &spec, &args.out)?;
    print_summary(&outcome, &choice, &sheet_path, started.elapsed());
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C while the DiT trains stops training at the next step (a checkpoint
/// is saved) and the job goes on to generate from it; Ctrl-C at any other
/// moment, or a second one, quits at once.
async fn stop_on_interrupt(stop: TrainingStop) {
    const INTERRUPTED: i32 = 130;
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    if !stop.request() {
        std::process::exit(INTERRUPTED);
    }
    eprintln!(
        "\ninterrupted: training stops at the next step with a checkpoint, then the images \
         are generated from it (Ctrl-C again quits now)"
    );
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(INTERRUPTED);
    }
}

/// The configuration file, or the demo settings; environment overrides on top.
fn load_config(path: Option<&Path>, env: &HashMap<String, String>) -> Result<Config> {
    let config = match path {
        Some(path) => Config::load(Some(path), env),
        None => {
            let text = toml::to_string(&demo_config())
                .map_err(|e| Error::Config(format!("the demo settings: {e}")))?;
            Config::parse(&text, "the demo settings", env)
        }
    };
    config.map_err(|e| Error::Config(e.to_string()))
}

/// `--images`, else the demo photos here, else those of the build's checkout.
fn images_folder(images: Option<&Path>) -> Result<PathBuf> {
    if let Some(folder) = images {
        return Ok(folder.to_path_buf());
    }
    [Path::new(DEMO_PHOTOS), Path::new(BUILT_DEMO_PHOTOS)]
        .into_iter()
        .find(|folder| folder.is_dir())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            Error::Config(format!(
                "no --images folder given and no {DEMO_PHOTOS} here: run from the repository root or pass --images DIR"
            ))
        })
}

/// `--minutes`: a number of minutes above zero (fractions allowed), at most
/// a year.
fn parse_minutes(text: &str) -> std::result::Result<Duration, String> {
    const YEAR: f64 = 365.0 * 24.0 * 60.0;
    match text.trim().parse::<f64>() {
        Ok(minutes) if minutes > 0.0 && minutes <= YEAR => {
            Ok(Duration::from_secs_f64(minutes * 60.0))
        }
        _ => Err(format!(
            "{text:?} is not a number of minutes above 0 and at most {YEAR}"
        )),
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn print_plan(config: &Config, choice: &ModelChoice, spec: &JobSpec) {
    println!(
        "ssdit run: {} → ingest → latents + embeddings → train → generate over gRPC → contact sheet",
        spec.images.display()
    );
    println!(
        "  store {}  dataset {}  run {}",
        config.store.url, spec.dataset, spec.run_id
    );
    let models = &config.models;
    println!(
        "  models: vae {}, text encoder {}, DiT {} (device {})",
        models.vae, models.text_encoder, models.dit, models.device
    );
    for notice in &choice.notices {
        println!("  NOTE: {notice}");
    }
}

/// Draws the job's progress on the terminal.
#[derive(Default)]
struct Printer {
    bar: Option<ProgressBar>,
    loss: Option<f64>,
}

impl Observer for Printer {
    fn ingested(&mut self, report: &IngestReport) {
        println!(
            "ingested {} files in {:.1} s: {} new, {} already present, {} rejected",
            report.files.len(),
            report.elapsed.as_secs_f64(),
            report.accepted(),
            report.already_present(),
            report.rejected()
        );
        for file in &report.files {
            if let FileStatus::Rejected { reason } = &file.status {
                println!("  rejected {}: {reason}", file.file);
            }
        }
    }

    fn encoding(&mut self, status: &DatasetStatus) {
        println!(
            "encoding: {}/{} latents, {}/{} caption embeddings",
            status.latents, status.ingested, status.embeddings, status.captioned
        );
    }

    fn training_planned(&mut self, epochs: usize, steps_per_epoch: u64) {
        let total = epochs as u64 * steps_per_epoch;
        println!("training: {epochs} epochs × {steps_per_epoch} steps = {total} steps");
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "  {elapsed_precise} [{bar:40}] {pos}/{len} steps, {per_sec}, ETA {eta}  {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        self.bar = Some(bar);
    }

    fn training(&mut self, event: &TrainEvent) {
        let Some(bar) = &self.bar else { return };
        match event {
            TrainEvent::Started { step, .. } => bar.set_position(*step),
            TrainEvent::Step(step) => {
                let loss = self.loss.map_or(step.loss, |l| 0.98 * l + 0.02 * step.loss);
                self.loss = Some(loss);
                bar.set_position(step.step);
                bar.set_message(format!("loss {loss:.4}"));
            }
            TrainEvent::CheckpointSaved { step, key } => {
                bar.println(format!("  checkpoint at step {step}: {key}"));
            }
            TrainEvent::Validated { step, sheet, .. } => {
                bar.println(format!("  validation samples at step {step}: {sheet}"));
            }
        }
    }

    fn generated(&mut self, index: usize, total: usize, result: &SampleResult) {
        if index == 0
            && let Some(bar) = self.bar.take()
        {
            bar.finish();
        }
        println!(
            "generated {}/{total} {:<16} PSNR {:5.1} dB vs codec reconstruction",
            index + 1,
            photo_name(result),
            result.generated_psnr
        );
    }
}

/// Writes the contact sheet and the generated images; returns the sheet's path.
fn write_outputs(
    outcome: &JobOutcome,
    choice: &ModelChoice,
    spec: &JobSpec,
    out: &Path,
) -> Result<PathBuf> {
    let generated_dir = out.join(GENERATED_DIR);
    std::fs::create_dir_all(&generated_dir).map_err(|source| Error::Output {
        path: generated_dir.clone(),
        source,
    })?;
    for result in &outcome.results {
        let stem = Path::new(&result.reference.record.source)
            .file_stem()
            .map_or_else(
                || result.reference.record.id.clone(),
                |s| s.to_string_lossy().into_owned(),
            );
        let path = generated_dir.join(format!("{stem}.png"));
        std::fs::write(&path, &result.png).map_err(|source| Error::Output { path, source })?;
    }
    let title = format!(
        "ssdit run: {} trained {} steps in {:.0} s. {}",
        spec.dataset,
        outcome.trained.steps,
        outcome.trained.elapsed.as_secs_f64(),
        fidelity_statement(choice.fidelity)
    );
    let sheet = sheet::draw(&outcome.results, &title)?;
    let path = out.join(SHEET_FILE);
    ssdit_render::save_png(&sheet, &path)?;
    Ok(path)
}

/// The file name of the photo behind `result` (its full source path when it has none).
fn photo_name(result: &SampleResult) -> String {
    let source = &result.reference.record.source;
    Path::new(source).file_name().map_or_else(
        || source.clone(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// What the images are, in plain words.
fn fidelity_statement(fidelity: Fidelity) -> &'static str {
    match fidelity {
        Fidelity::Real => "Real VAE and text encoder.",
        Fidelity::StandIn => {
            "Images are from a stand-in codec / random text encoder: they show the DiT learning these photos, not a text-to-image model."
        }
        Fidelity::Tiny => "--tiny: all models are small and random; the images are NOT meaningful.",
    }
}

fn print_summary(outcome: &JobOutcome, choice: &ModelChoice, sheet: &Path, elapsed: Duration) {
    let status = &outcome.status;
    println!(
        "dataset: {} ingested, {} captioned, {} latents, {} embeddings, {} rejected",
        status.ingested, status.captioned, status.latents, status.embeddings, status.rejected
    );
    println!(
        "trained {} steps in {:.0} s; served checkpoint {}",
        outcome.trained.steps,
        outcome.trained.elapsed.as_secs_f64(),
        outcome.trained.checkpoint
    );
    println!(
        "{:<18} {:>9} {:>12} {:>16}",
        "photo", "bucket", "codec PSNR", "generated PSNR"
    );
    for result in &outcome.results {
        println!(
            "{:<18} {:>9} {:>9.1} dB {:>13.1} dB",
            photo_name(result),
            result.reference.record.bucket.to_string(),
            result.codec_psnr,
            result.generated_psnr
        );
    }
    println!("contact sheet: {}", sheet.display());
    println!("{}", fidelity_statement(choice.fidelity));
    println!("done in {:.0} s", elapsed.as_secs_f64());
}
