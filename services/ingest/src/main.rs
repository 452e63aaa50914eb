//! `captioning-ingest`: the ingest service on its own.
//!
//! Reads the configuration, connects to the object store and the event bus,
//! and serves `IngestService` over gRPC until SIGINT or SIGTERM.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ssdit_core::Config;
use ssdit_ingest::{Ingester, run};
use ssdit_server::{ServiceName, Startup, shutdown, telemetry};

/// captioning-ingest: images from folders, object-store prefixes or gRPC
/// uploads become validated, bucketed, captioned samples in the object store,
/// each announced on the event bus.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// The ssdit configuration file (TOML). Without it every setting has its
    /// default; SSDIT_* environment variables override some keys either way.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Port to serve gRPC on, instead of `server.ports.ingest` (0 picks a free port).
    #[arg(long)]
    port: Option<u16>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    telemetry::init(env.get("RUST_LOG").map(String::as_str), "info");
    let config = Config::load(args.config.as_deref(), &env).context("loading the configuration")?;
    let Startup {
        ctx,
        listener,
        grpc,
    } = Startup::prepare(config, &env, ServiceName::Ingest, args.port)
        .await
        .context("starting captioning-ingest")?;
    let ingester = Ingester::new(&ctx, &env).context("starting the ingest pipeline")?;
    run(ingester, listener, grpc, shutdown::signal())
        .await
        .context("serving captioning-ingest")?;
    Ok(())
}
