//! `ssdit serve SERVICE`: one service of the pipeline on its own, for a
//! distributed deployment (NATS + an S3-compatible store, set in the config).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use ssdit_core::Config;
use ssdit_core::config::ModelsConfig;
use ssdit_server::{ServiceName, Startup, listen, shutdown, telemetry};

/// Serve one service until SIGINT or SIGTERM (work in flight is finished or
/// handed back to the bus first).
#[derive(Args)]
pub struct ServeArgs {
    /// The service: captioning-ingest (or ingest), vae-encoder, text-encoder,
    /// trainer, sampler.
    #[arg(value_parser = parse_service)]
    service: ServiceName,
    /// The ssdit configuration file (TOML); without it, the seed defaults.
    /// SSDIT_* environment variables override keys either way (see README).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The gRPC port, instead of the configured `server.ports.<service>`
    /// (0 picks a free port; the bound address is logged).
    #[arg(long)]
    port: Option<u16>,
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
    telemetry::init(env.get("RUST_LOG").map(String::as_str), "info");
    let mut config =
        Config::load(args.config.as_deref(), &env).context("loading the configuration")?;
    if args.tiny {
        config.models = ModelsConfig {
            device: config.models.device.clone(),
            ..ModelsConfig::tiny()
        };
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(serve(args.service, args.port, config, env))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    service: ServiceName,
    port: Option<u16>,
    config: Config,
    env: HashMap<String, String>,
) -> anyhow::Result<()> {
    let metrics_port = config.train.metrics_port;
    let Startup {
        ctx,
        listener,
        grpc,
    } = Startup::prepare(config, &env, service, port)
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
            let metrics = match metrics_port {
                0 => None,
                port => Some(
                    listen(&ctx.config.server.host, port)
                        .await
                        .context("binding the metrics port")?,
                ),
            };
            let trainer = ssdit_trainer::Trainer::new(ctx);
            ssdit_trainer::run(trainer, listener, metrics, grpc, stop).await?;
        }
        ServiceName::Sampler => ssdit_sampler::run(ctx, listener, grpc, stop).await?,
    }
    tracing::info!(%service, "stopped");
    Ok(())
}
