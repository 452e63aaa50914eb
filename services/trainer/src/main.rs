//! `trainer`: the trainer service on its own.
//!
//! Reads the configuration, connects to the object store and the event bus,
//! serves `TrainerService` over gRPC and Prometheus metrics over HTTP until
//! SIGINT or SIGTERM; then stops the running training at a step boundary,
//! saves its checkpoint, and exits.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ssdit_core::Config;
use ssdit_server::{ServiceName, Startup, listen, shutdown, telemetry};
use ssdit_trainer::{Trainer, run};

/// trainer: trains the SingleStreamDiT on encoded datasets (StartRun,
/// GetRun, StopRun, WatchRun over gRPC), writing checkpoints, metrics,
/// plots and validation samples to the object store.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// The ssdit configuration file (TOML). Without it every setting has its
    /// default; SSDIT_* environment variables override some keys either way.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Port to serve gRPC on, instead of `server.ports.trainer` (0 picks a free port).
    #[arg(long)]
    port: Option<u16>,
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
    telemetry::init(env.get("RUST_LOG").map(String::as_str), "info");
    let config = Config::load(args.config.as_deref(), &env).context("loading the configuration")?;
    let metrics_port = args.metrics_port.unwrap_or(config.train.metrics_port);
    let Startup {
        ctx,
        listener,
        grpc,
    } = Startup::prepare(config, &env, ServiceName::Trainer, args.port)
        .await
        .context("starting the trainer")?;
    let metrics = match metrics_port {
        0 => None,
        port => Some(
            listen(&ctx.config.server.host, port)
                .await
                .context("binding the metrics port")?,
        ),
    };
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
