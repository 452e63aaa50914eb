//! `ssdit serve SERVICE`: one service of the pipeline on its own, for a
//! distributed deployment (NATS + an S3-compatible store, set in the config).

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use ssdit_server::{ServiceArgs, ServiceName, Startup, shutdown};

/// Serve one service until SIGINT or SIGTERM (work in flight is finished or
/// handed back to the bus first).
#[derive(Args)]
pub struct ServeArgs {
    /// The service: captioning-ingest (or ingest), vae-encoder, text-encoder,
    /// trainer, sampler.
    #[arg(value_parser = parse_service)]
    service: ServiceName,
    #[command(flatten)]
    options: ServiceArgs,
    /// Use the tiny random models (VAE, text encoder, DiT): no downloads,
    /// images not meaningful. For trying the deployment out.
    #[arg(long)]
    tiny: bool,
}

fn parse_service(name: &str) -> Result<ServiceName, String> {
    name.parse().map_err(|e: ssdit_server::Error| e.to_string())
}

/// Loads the configuration and serves the chosen service.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(serve(args, env))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs, env: HashMap<String, String>) -> anyhow::Result<()> {
    let service = args.service;
    let Startup {
        ctx,
        listener,
        grpc,
    } = Startup::from_args(service, &args.options, &env, |config| {
        if args.tiny {
            config.models = config.models.tiny_on_same_device();
        }
    })
    .await
    .with_context(|| format!("starting {service}"))?;
    tracing::info!(%service, addr = %listener.local_addr()?, "serving");
    let stop = shutdown::signal();
    match service {
        ServiceName::Ingest => {
            let ingester =
                ssdit_ingest::Ingester::new(&ctx, &env).context("starting the ingest pipeline")?;
            ssdit_ingest::run(ingester, listener, grpc, stop).await?;
        }
        ServiceName::VaeEncoder => ssdit_vae_encoder::run(ctx, listener, grpc, stop).await?,
        ServiceName::TextEncoder => ssdit_text_encoder::run(ctx, listener, grpc, stop).await?,
        ServiceName::Trainer => {
            let metrics = ssdit_trainer::metrics_http::bind(&ctx.config).await?;
            let trainer = ssdit_trainer::Trainer::new(ctx);
            ssdit_trainer::run(trainer, listener, metrics, grpc, stop).await?;
        }
        ServiceName::Sampler => ssdit_sampler::run(ctx, listener, grpc, stop).await?,
    }
    tracing::info!(%service, "stopped");
    Ok(())
}
