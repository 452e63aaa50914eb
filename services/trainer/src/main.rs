//! `trainer`: the trainer service on its own.
//!
//! Reads the configuration, connects to the object store and the event bus,
//! serves `TrainerService` over gRPC and Prometheus metrics over HTTP until
//! SIGINT or SIGTERM; then stops the running training at a step boundary,
//! saves its checkpoint, and exits.

use std::collections::HashMap;

use anyhow::Context;
use clap::Parser;
use ssdit_server::{ServiceArgs, ServiceName, Startup, shutdown};
use ssdit_trainer::{Trainer, metrics_http, run};

/// trainer: trains the SingleStreamDiT on encoded datasets (StartRun,
/// GetRun, StopRun, WatchRun over gRPC), writing checkpoints, metrics,
/// plots and validation samples to the object store.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
    /// Port of the Prometheus `/metrics` endpoint, instead of
    /// `train.metrics_port` (0 turns it off).
    #[arg(long)]
    metrics_port: Option<u16>,
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
    } = Startup::from_args(ServiceName::Trainer, &args.service, &env, |config| {
        if let Some(port) = args.metrics_port {
            config.train.metrics_port = port;
        }
    })
    .await
    .context("starting the trainer")?;
    let metrics = metrics_http::bind(&ctx.config).await?;
    run(
        Trainer::new(ctx),
        listener,
        metrics,
        grpc,
        shutdown::signal(),
    )
    .await
    .context("serving the trainer")?;
    Ok(())
}
