//! `sampler`: serves `ssdit.v1.SamplerService` — text-to-image generation
//! from trained DiT checkpoints — over gRPC.

use std::collections::HashMap;

use anyhow::Context;
use clap::Parser;
use ssdit_core::Config;
use ssdit_server::{ServiceArgs, ServiceName, Startup, shutdown};

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
    #[command(flatten)]
    service: ServiceArgs,
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

impl Args {
    /// Applies the sampler's own flags over the configuration.
    fn adjust(&self, config: &mut Config) {
        if self.tiny {
            config.models = config.models.tiny_on_same_device();
        }
        if self.run.is_some() {
            config.sampler.run.clone_from(&self.run);
        }
        if self.checkpoint.is_some() {
            config.sampler.checkpoint.clone_from(&self.checkpoint);
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ssdit_core::openblas::use_best_kernel();
    let args = Args::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let Startup {
        ctx,
        listener,
        grpc,
    } = Startup::from_args(ServiceName::Sampler, &args.service, &env, |config| {
        args.adjust(config)
    })
    .await
    .context("starting the sampler")?;
    ssdit_sampler::SamplingService::load(ctx, args.instance)
        .await
        .context("loading the sampler")?
        .serve(listener, grpc, shutdown::signal())
        .await
        .context("sampler")
}
