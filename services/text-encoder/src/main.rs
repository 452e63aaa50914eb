//! `text-encoder`: encodes ingested sample captions to cached embeddings (bus
//! worker) and serves `ssdit.v1.TextEncoderService` over gRPC.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ssdit_core::Config;
use ssdit_server::{ServiceName, Startup, shutdown, telemetry};

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
    /// The ssdit TOML configuration file; without it, the seed defaults
    /// (local store ./ssdit-data, in-process bus, T5Gemma2 from the hub).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The gRPC port, instead of `server.ports.text` (0 picks a free port).
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
    } = Startup::prepare(config, &env, ServiceName::TextEncoder, args.port)
        .await
        .context("starting text-encoder")?;
    ssdit_text_encoder::run(ctx, listener, grpc, shutdown::signal())
        .await
        .context("text-encoder")
}
