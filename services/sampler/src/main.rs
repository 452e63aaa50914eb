//! `sampler`: serves `ssdit.v1.SamplerService` — text-to-image generation
//! from trained DiT checkpoints — over gRPC.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ssdit_core::Config;
use ssdit_core::config::ModelsConfig;
use ssdit_server::{ServiceName, Startup, shutdown, telemetry};

/// Generates images from prompts with a trained SingleStreamDiT, streaming
/// one progress message per sampling step and then the PNG.
///
/// Serves the newest checkpoint of `sampler.run` (hot-reloading new ones as
/// the trainer saves them), or `sampler.checkpoint`. Settings come from the
/// configuration file and the SSDIT_* environment overrides (SSDIT_STORE_URL,
/// SSDIT_BUS, SSDIT_NATS_URL, SSDIT_VAE, SSDIT_TEXT_ENCODER, SSDIT_DIT,
/// SSDIT_DEVICE, SSDIT_HOST…). Logging follows RUST_LOG. Stops cleanly on
/// SIGINT or SIGTERM.
#[derive(Parser)]
#[command(name = "sampler", version)]
struct Args {
    /// The ssdit TOML configuration file; without it, the seed defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The gRPC port, instead of `server.ports.sampler` (0 picks a free port).
    #[arg(long)]
    port: Option<u16>,
    /// Use the tiny models (tiny VAE, tiny text encoder, tiny DiT): no
    /// downloads; without a checkpoint the DiT is random and its images are
    /// not meaningful.
    #[arg(long)]
    tiny: bool,
    /// Serve the newest checkpoint of this training run, and follow it
    /// (instead of `sampler.run`).
    #[arg(long, value_name = "RUN")]
    run: Option<String>,
    /// Serve this checkpoint at start (instead of `sampler.checkpoint`): a
    /// store key `runs/<run>/checkpoints/step-<N>` or a local
    /// `.safetensors` / seed `.pt` file.
    #[arg(long, value_name = "KEY_OR_FILE")]
    checkpoint: Option<String>,
    /// This replica's name: its checkpoint-event consumer is
    /// `sampler-<NAME>`, kept across restarts (a random name otherwise).
    #[arg(long, value_name = "NAME")]
    instance: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ssdit_core::openblas::use_best_kernel();
    let args = Args::parse();
    telemetry::init(std::env::var("RUST_LOG").ok().as_deref(), "info");
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut config =
        Config::load(args.config.as_deref(), &env).context("loading the configuration")?;
    if args.tiny {
        config.models = ModelsConfig {
            device: config.models.device.clone(),
            ..ModelsConfig::tiny()
        };
    }
    if args.run.is_some() {
        config.sampler.run = args.run;
    }
    if args.checkpoint.is_some() {
        config.sampler.checkpoint = args.checkpoint;
    }
    config
        .validate()
        .context("the configuration with the command-line options")?;
    let Startup {
        ctx,
        listener,
        grpc,
    } = Startup::prepare(config, &env, ServiceName::Sampler, args.port)
        .await
        .context("starting the sampler")?;
    ssdit_sampler::SamplingService::load(ctx, args.instance)
        .await
        .context("loading the sampler")?
        .serve(listener, grpc, shutdown::signal())
        .await
        .context("sampler")
}
