//! `ssdit dataset status|stats|preview|export`: looking at a dataset in the
//! configured store — how far each stage got, its latent statistics and
//! histograms, its cached latents decoded on a contact sheet, and an export
//! of its latents and embeddings for Python. Also the configuration and
//! store plumbing the tool commands (`import`, `dataset`, `vae`) share.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use burn::backend::NdArray;
use clap::{Args, Subcommand};
use ssdit_core::Config;
use ssdit_dataset::{Dataset, Encodings};
use ssdit_inspect::encodings::{choose_text, choose_vae, latent_fingerprints, text_encodings};
use ssdit_inspect::{export, preview, stats};
use ssdit_store::Store;
use ssdit_vae::{CodecChoice, LatentCodec, load_codec};

/// The backend the tools' VAE runs on: the CPU, in f32.
pub type ToolBackend = NdArray<f32>;

/// The configuration a tool command reads.
#[derive(Args)]
pub struct ToolConfig {
    /// The ssdit configuration file (TOML): the store (`store.url`) and the
    /// models; without it, the defaults. SSDIT_* environment variables
    /// override keys either way.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ToolConfig {
    /// Starts logging (`RUST_LOG`, warnings by default) and loads the configuration.
    pub fn load(&self) -> anyhow::Result<Config> {
        let env: HashMap<String, String> = std::env::vars().collect();
        ssdit_server::telemetry::init(env.get("RUST_LOG").map(String::as_str), "warn");
        Config::load(self.config.as_deref(), &env).context("loading the configuration")
    }
}

/// The async runtime a tool command runs its store I/O on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

/// The VAE a tool decodes or encodes with, on the CPU in f32: `spec` (the
/// command's `--vae`) or else the configured `models.vae`; with the spec it
/// came from, for messages.
pub fn tool_codec(
    config: &Config,
    spec: Option<String>,
) -> anyhow::Result<(Box<dyn LatentCodec<ToolBackend>>, String)> {
    let spec = spec.unwrap_or_else(|| config.models.vae.clone());
    let choice: CodecChoice = spec.parse()?;
    let codec = load_codec::<ToolBackend>(&choice, &Default::default())
        .with_context(|| format!("loading the VAE {spec}"))?;
    Ok((codec, spec))
}

/// Opens the configured object store.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    ssdit_server::open_store(&config.store)
        .await
        .with_context(|| format!("opening the store {}", config.store.url))
}

/// Inspect a dataset.
#[derive(Args)]
pub struct DatasetArgs {
    #[command(subcommand)]
    command: DatasetCommand,
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Samples ingested, captioned, encoded and ready to train on; rejects.
    Status(StatusArgs),
    /// Per-channel latent mean/std (the seed's cache statistics), bucket and
    /// caption-length histograms: a table, and a PNG.
    Stats(StatsArgs),
    /// Cached latents decoded back to images through the VAE, on a contact
    /// sheet with captions (the seed's cache check).
    Preview(PreviewArgs),
    /// One safetensors file per sample (latents, text_embeds) and a JSON
    /// manifest, readable from Python with `safetensors` alone.
    Export(ExportArgs),
}

/// Which of a dataset's cached encodings to use, when it has several.
#[derive(Args)]
struct EncodingChoice {
    /// The VAE fingerprint of the latents to use.
    #[arg(long, value_name = "FINGERPRINT")]
    latents: Option<String>,
    /// The text-encoder fingerprint of the caption embeddings to use.
    #[arg(long, value_name = "FINGERPRINT")]
    text_encoder: Option<String>,
}

#[derive(Args)]
struct StatusArgs {
    /// The dataset.
    name: String,
    #[command(flatten)]
    encodings: EncodingChoice,
    /// Also list every reject and its reason.
    #[arg(long)]
    rejects: bool,
    #[command(flatten)]
    config: ToolConfig,
}

#[derive(Args)]
struct StatsArgs {
    /// The dataset.
    name: String,
    #[command(flatten)]
    encodings: EncodingChoice,
    /// Where to write the charts; default `<NAME>-stats.png`.
    #[arg(long, value_name = "PNG")]
    out: Option<PathBuf>,
    #[command(flatten)]
    config: ToolConfig,
}

#[derive(Args)]
struct PreviewArgs {
    /// The dataset.
    name: String,
    /// Sample ids (or unambiguous prefixes); default: the first `--limit`.
    ids: Vec<String>,
    #[command(flatten)]
    encodings: EncodingChoice,
    /// The decoder: a VAE model directory or hub id, `tiny` or `preview`;
    /// default: the codec that made the latents when it is `preview` or
    /// `tiny`, else the configured `models.vae`.
    #[arg(long, value_name = "SPEC")]
    vae: Option<String>,
    /// Samples shown when no ids are given.
    #[arg(long, default_value_t = 16)]
    limit: usize,
    /// Images per row.
    #[arg(long, default_value_t = 4)]
    columns: usize,
    /// Where to write the sheet; default `<NAME>-preview.png`.
    #[arg(long, value_name = "PNG")]
    out: Option<PathBuf>,
    #[command(flatten)]
    config: ToolConfig,
}

#[derive(Args)]
struct ExportArgs {
    /// The dataset.
    name: String,
    /// The folder to write (created if needed).
    dir: PathBuf,
    #[command(flatten)]
    encodings: EncodingChoice,
    #[command(flatten)]
    config: ToolConfig,
}

/// Runs a dataset command.
pub fn run(args: DatasetArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DatasetCommand::Status(args) => show_status(args),
        DatasetCommand::Stats(args) => show_stats(args),
        DatasetCommand::Preview(args) => write_preview(args),
        DatasetCommand::Export(args) => write_export(args),
    }?;
    Ok(ExitCode::SUCCESS)
}

/// The dataset `name` in the configured store.
async fn open_dataset(config: &Config, name: &str) -> anyhow::Result<Dataset> {
    let dataset = Dataset::new(open_store(config).await?, name)?;
    if dataset.samples().await?.is_empty() && dataset.rejects().await?.is_empty() {
        anyhow::bail!(
            "dataset {name} is empty or does not exist in {}",
            config.store.url
        );
    }
    Ok(dataset)
}

/// The VAE fingerprint whose latents to use: the chosen one, or the only one.
async fn latents_of(dataset: &Dataset, choice: &EncodingChoice) -> anyhow::Result<String> {
    let samples = dataset.samples().await?;
    let found = latent_fingerprints(dataset.store(), &samples).await?;
    Ok(choose_vae(&found, choice.latents.as_deref())?)
}

/// The latents and embeddings to use: the chosen ones, or the only ones.
async fn encodings_of(dataset: &Dataset, choice: &EncodingChoice) -> anyhow::Result<Encodings> {
    let samples = dataset.samples().await?;
    let vae = latents_of(dataset, choice).await?;
    let texts = text_encodings(dataset, &samples).await?;
    let text = choose_text(&texts, choice.text_encoder.as_deref())?;
    Ok(Encodings { vae, text })
}

fn show_status(args: StatusArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    runtime()?.block_on(async {
        let dataset = open_dataset(&config, &args.name).await?;
        let samples = dataset.samples().await?;
        let rejects = dataset.rejects().await?;
        let captioned = samples.iter().filter(|s| s.caption_key.is_some()).count();
        println!("dataset {} in {}", args.name, config.store.url);
        println!("  ingested    {}", samples.len());
        println!("  captioned   {captioned}");
        match encodings_of(&dataset, &args.encodings).await {
            Ok(encodings) => {
                let status = dataset.status(&encodings).await?;
                println!("  latents     {} (VAE {})", status.latents, encodings.vae);
                println!(
                    "  embeddings  {} (text encoder {}, tokenizer {}, {} tokens)",
                    status.embeddings,
                    encodings.text.encoder,
                    encodings.text.tokenizer,
                    encodings.text.max_length
                );
                println!("  ready       {}", status.ready);
            }
            Err(reason) => println!("  encodings   {reason}"),
        }
        println!("  rejected    {}", rejects.len());
        if args.rejects {
            for reject in &rejects {
                println!("    {} ({}): {}", reject.file, reject.stage, reject.reason);
            }
        }
        Ok(())
    })
}

fn show_stats(args: StatsArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let stats = runtime()?.block_on(async {
        let dataset = open_dataset(&config, &args.name).await?;
        let vae = latents_of(&dataset, &args.encodings).await?;
        anyhow::Ok(stats::dataset_stats(&dataset, &vae).await?)
    })?;
    print!("{}", stats.table());
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{}-stats.png", args.name)));
    ssdit_render::save_png(&stats.render()?, &out)?;
    println!("charts: {}", out.display());
    Ok(())
}

fn write_preview(args: PreviewArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let (samples, vae) = runtime()?.block_on(async {
        let dataset = open_dataset(&config, &args.name).await?;
        let vae = latents_of(&dataset, &args.encodings).await?;
        let samples = preview::load_samples(&dataset, &vae, &args.ids, args.limit).await?;
        anyhow::Ok((samples, vae))
    })?;
    let decoder = args
        .vae
        .or_else(|| CodecChoice::weight_free(&vae).map(|choice| choice.to_string()));
    let (codec, _) = tool_codec(&config, decoder)?;
    let tiles = preview::decode_tiles(codec.as_ref(), &samples, &Default::default())?;
    let sheet = preview::sheet(
        &args.name,
        &format!("{codec} (latents of VAE {vae})"),
        &tiles,
        args.columns,
    )?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{}-preview.png", args.name)));
    ssdit_render::save_png(&sheet, &out)?;
    for sample in &samples {
        println!(
            "{}  {}  {}",
            sample.record.id, sample.record.bucket, sample.record.source
        );
    }
    println!(
        "contact sheet of {} samples: {}",
        samples.len(),
        out.display()
    );
    Ok(())
}

fn write_export(args: ExportArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let manifest = runtime()?.block_on(async {
        let dataset = open_dataset(&config, &args.name).await?;
        let encodings = encodings_of(&dataset, &args.encodings).await?;
        anyhow::Ok(export::export_dataset(&dataset, &encodings, &args.dir).await?)
    })?;
    println!(
        "exported {} samples of dataset {} to {} ({} left out)",
        manifest.samples.len(),
        manifest.dataset,
        args.dir.display(),
        manifest.missing.len()
    );
    for left_out in &manifest.missing {
        println!(
            "  left out {} ({}): {}",
            left_out.id, left_out.source, left_out.reason
        );
    }
    println!(
        "manifest: {}",
        Path::new(&args.dir).join(export::MANIFEST_FILE).display()
    );
    Ok(())
}
