//! `text-encoder`: encodes ingested sample captions to cached embeddings (bus
//! worker) and serves `ssdit.v1.TextEncoderService` over gRPC.

use std::collections::HashMap;

use anyhow::Context;
use clap::Parser;
use ssdit_server::{ServiceArgs, ServiceName, Startup, shutdown};

/// Encodes every ingested sample's caption to a T5Gemma2 embedding in the
/// object store, and serves text Encode over gRPC.
///
/// Settings come from the configuration file and the SSDIT_* environment
/// overrides (SSDIT_STORE_URL, SSDIT_BUS, SSDIT_NATS_URL, SSDIT_TEXT_ENCODER,
/// SSDIT_DEVICE, SSDIT_HOST…). Logging follows RUST_LOG. Stops cleanly on
/// SIGINT or SIGTERM: the batch in progress is finished first.
#[derive(Parser)]
#[command(name = "text-encoder", version)]
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
    } = Startup::from_args(ServiceName::TextEncoder, &args.service, &env, |_| {})
        .await
        .context("starting text-encoder")?;
    ssdit_text_encoder::run(ctx, listener, grpc, shutdown::signal())
        .await
        .context("text-encoder")
}
