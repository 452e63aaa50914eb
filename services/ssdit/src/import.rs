//! `ssdit import seed-cache DIR --dataset NAME` and
//! `ssdit import seed-checkpoint FILE`: bringing the seed's PyTorch files
//! (its `cached_data/*.pt` samples, its `ema_weights_epoch_N.pt` and
//! `full_state_epoch_N.pt` checkpoints) into the configured store.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use ssdit_dataset::Dataset;
use ssdit_import::{SeedCacheOptions, SeedCheckpointOptions};
use ssdit_model::SingleStreamDiTConfig;

use crate::dataset::{ToolConfig, open_store, runtime};

/// Import the seed's cache or checkpoints.
#[derive(Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    command: ImportCommand,
}

#[derive(Subcommand)]
enum ImportCommand {
    /// The seed's cached samples (`cached_data/*.pt`: latents, caption
    /// embeddings, bucket size) into a dataset; unreadable files are
    /// recorded as rejects with the reason, the rest imported.
    SeedCache(SeedCacheArgs),
    /// The seed's `ema_weights_epoch_N.pt` or `full_state_epoch_N.pt` into a
    /// run checkpoint the trainer resumes and the sampler serves.
    SeedCheckpoint(SeedCheckpointArgs),
}

#[derive(Args)]
struct SeedCacheArgs {
    /// The seed's `cached_data/` folder (every `*.pt` file in it).
    dir: PathBuf,
    /// The dataset to import into (created if new).
    #[arg(long)]
    dataset: String,
    /// The seed's `dataset/` folder: `<stem>.txt` / `<stem>.caption` beside
    /// each sample's name become its caption.
    #[arg(long, value_name = "DIR")]
    captions: Option<PathBuf>,
    /// The VAE fingerprint the latents are filed under.
    #[arg(long, default_value = ssdit_import::cache::SEED_VAE)]
    vae_fingerprint: String,
    /// The text-encoder fingerprint; default: named after the embedding
    /// width (`seed-t5gemma2-1b` for 1152).
    #[arg(long)]
    text_encoder_fingerprint: Option<String>,
    #[command(flatten)]
    config: ToolConfig,
}

#[derive(Args)]
struct SeedCheckpointArgs {
    /// An `ema_weights_epoch_N.pt` or `full_state_epoch_N.pt`.
    file: PathBuf,
    /// The run the checkpoint is written to.
    #[arg(long, default_value = "seed")]
    run: String,
    /// The dataset the run trains on.
    #[arg(long, default_value = "default")]
    dataset: String,
    /// The DiT's configuration: `seed`, `small`, `tiny` or a seed
    /// `config.json`; default: the configured `models.dit`.
    #[arg(long, value_name = "SPEC")]
    dit: Option<String>,
    #[command(flatten)]
    config: ToolConfig,
}

/// Runs an import command.
pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ImportCommand::SeedCache(args) => seed_cache(args),
        ImportCommand::SeedCheckpoint(args) => seed_checkpoint(args),
    }
}

fn seed_cache(args: SeedCacheArgs) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    let options = SeedCacheOptions {
        captions: args.captions,
        vae_fingerprint: args.vae_fingerprint,
        encoder_fingerprint: args.text_encoder_fingerprint,
        ..SeedCacheOptions::default()
    };
    let summary = runtime()?.block_on(async {
        let store = open_store(&config).await?;
        let dataset = Dataset::new(store, &args.dataset)?;
        ssdit_import::import_seed_cache(&dataset, &args.dir, &options)
            .await
            .with_context(|| format!("importing {}", args.dir.display()))
    })?;
    print!("{summary}");
    let nothing = summary.imported + summary.already_present == 0;
    Ok(if nothing {
        eprintln!("no seed sample could be imported");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn seed_checkpoint(args: SeedCheckpointArgs) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    let spec = args.dit.unwrap_or_else(|| config.models.dit.clone());
    let dit = SingleStreamDiTConfig::from_spec(&spec)
        .with_context(|| format!("the DiT configuration {spec:?}"))?;
    let options = SeedCheckpointOptions {
        dit,
        train: config.train.clone(),
        dataset: args.dataset,
    };
    let summary = runtime()?.block_on(async {
        let store = open_store(&config).await?;
        ssdit_import::import_seed_checkpoint(&store, &args.file, &args.run, &options)
            .await
            .with_context(|| format!("importing {}", args.file.display()))
    })?;
    print!("{summary}");
    Ok(ExitCode::SUCCESS)
}
