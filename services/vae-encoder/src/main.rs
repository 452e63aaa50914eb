//! `vae-encoder`: encodes ingested sample images to cached latents (bus
//! worker) and serves `ssdit.v1.VaeService` over gRPC.

use std::collections::HashMap;

use anyhow::Context;
use clap::Parser;
use ssdit_server::{ServiceArgs, ServiceName, Startup, shutdown};

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
    #[command(flatten)]
    service: ServiceArgs,
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
    } = Startup::from_args(ServiceName::VaeEncoder, &args.service, &env, |_| {})
        .await
        .context("starting vae-encoder")?;
    ssdit_vae_encoder::run(ctx, listener, grpc, shutdown::signal())
        .await
        .context("vae-encoder")
}
