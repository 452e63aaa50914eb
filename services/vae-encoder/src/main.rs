//! `vae-encoder`: encodes ingested sample images to cached latents (bus
//! worker) and serves `ssdit.v1.VaeService` over gRPC.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ssdit_core::Config;
use ssdit_server::{ServiceName, Startup, shutdown, telemetry};

/// Encodes every ingested sample's image to a FLUX.1-VAE latent in the
/// object store, and serves VAE Encode/Decode over gRPC.
///
/// Settings come from the configuration file and the SSDIT_* environment
/// overrides (SSDIT_STORE_URL, SSDIT_BUS, SSDIT_NATS_URL, SSDIT_VAE,
/// SSDIT_DEVICE, SSDIT_HOST…). Logging follows RUST_LOG. Stops cleanly on
/// SIGINT or SIGTERM: the batch in progress is finished first.
#[derive(Parser)]
#[command(name = "vae-encoder", version)]
struct Args {
    /// The ssdit TOML configuration file; without it, the seed defaults
    /// (local store ./ssdit-data, in-process bus, FLUX.1-VAE from the hub).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The gRPC port, instead of `server.ports.vae` (0 picks a free port).
    #[arg(long)]
    port: Option<u16>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ssdit_core::openblas::use_best_kernel();
    let args = Args::parse();
    telemetry::init(std::env::var("RUST_LOG").ok().as_deref(), "info");
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = Config::load(args.config.as_deref(), &env).context("loading the configuration")?;
    let Startup {
        ctx,
        listener,
        grpc,
    } = Startup::prepare(config, &env, ServiceName::VaeEncoder, args.port)
        .await
        .context("starting vae-encoder")?;
    ssdit_vae_encoder::run(ctx, listener, grpc, shutdown::signal())
        .await
        .context("vae-encoder")
}
