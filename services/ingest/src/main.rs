//! `captioning-ingest`: the ingest service on its own.
//!
//! Reads the configuration, connects to the object store and the event bus,
//! and serves `IngestService` over gRPC until SIGINT or SIGTERM.

use std::collections::HashMap;

use anyhow::Context;
use clap::Parser;
use ssdit_ingest::{Ingester, run};
use ssdit_server::{ServiceArgs, ServiceName, Startup, shutdown};

/// captioning-ingest: images from folders, object-store prefixes or gRPC
/// uploads become validated, bucketed, captioned samples in the object store,
/// each announced on the event bus.
///
/// Settings come from the configuration file and the SSDIT_* environment
/// overrides (SSDIT_STORE_URL, SSDIT_BUS, SSDIT_NATS_URL, SSDIT_VLM_ENDPOINT,
/// SSDIT_VLM_MODEL, SSDIT_HOST…). Logging follows RUST_LOG. Stops cleanly on
/// SIGINT or SIGTERM.
#[derive(Parser)]
#[command(name = "captioning-ingest", version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let Startup {
        ctx,
        listener,
        grpc,
    } = Startup::from_args(ServiceName::Ingest, &args.service, &env, |_| {})
        .await
        .context("starting captioning-ingest")?;
    let ingester = Ingester::new(&ctx, &env).context("starting the ingest pipeline")?;
    run(ingester, listener, grpc, shutdown::signal())
        .await
        .context("serving captioning-ingest")
}
