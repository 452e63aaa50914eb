//! What every service process does before it serves: set up logging, read
//! its configuration, pick its port, read the gRPC settings, bind, and open
//! the store and the bus — written once for the five service binaries and
//! `ssdit serve`.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use ssdit_core::Config;
use ssdit_core::config::Ports;
use tokio::net::TcpListener;

use crate::grpc::GrpcOptions;
use crate::{Error, Result, ServiceContext, listen, telemetry};

/// A service's log filter when `RUST_LOG` is unset: our events at info, the
/// NATS client's own at warn (it logs every connection event at info, which
/// the bus logs again with the server's URL).
const SERVICE_LOG_FILTER: &str = "info,async_nats=warn";

/// The five services of the pipeline, by the names the deployment uses
/// (`ssdit serve <name>`, docker-compose, NATS client names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceName {
    Ingest,
    VaeEncoder,
    TextEncoder,
    Trainer,
    Sampler,
}

impl ServiceName {
    /// Every service, in pipeline order.
    pub const ALL: [ServiceName; 5] = [
        ServiceName::Ingest,
        ServiceName::VaeEncoder,
        ServiceName::TextEncoder,
        ServiceName::Trainer,
        ServiceName::Sampler,
    ];

    /// The service's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Ingest => "captioning-ingest",
            ServiceName::VaeEncoder => "vae-encoder",
            ServiceName::TextEncoder => "text-encoder",
            ServiceName::Trainer => "trainer",
            ServiceName::Sampler => "sampler",
        }
    }

    /// The service's configured gRPC port.
    pub fn port(self, ports: &Ports) -> u16 {
        match self {
            ServiceName::Ingest => ports.ingest,
            ServiceName::VaeEncoder => ports.vae,
            ServiceName::TextEncoder => ports.text,
            ServiceName::Trainer => ports.trainer,
            ServiceName::Sampler => ports.sampler,
        }
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceName {
    type Err = Error;

    /// Accepts the service names, and `ingest` for `captioning-ingest`.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "ingest" => Ok(ServiceName::Ingest),
            _ => ServiceName::ALL
                .into_iter()
                .find(|service| service.as_str() == name)
                .ok_or_else(|| {
                    let known: Vec<_> = ServiceName::ALL.iter().map(|s| s.as_str()).collect();
                    Error::Deployment(format!(
                        "unknown service {name:?}: expected one of {}",
                        known.join(", ")
                    ))
                }),
        }
    }
}

/// The options every service binary takes (flattened into its own
/// arguments, and into `ssdit serve`'s).
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// The ssdit configuration file (TOML); without it, the seed defaults.
    /// SSDIT_* environment variables override keys either way (see README).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The gRPC port, instead of the configured `server.ports.<service>`
    /// (0 picks a free port; the bound address is logged).
    #[arg(long)]
    pub port: Option<u16>,
}

/// A service ready to serve: its context, its bound gRPC listener and its
/// gRPC settings.
pub struct Startup {
    pub ctx: ServiceContext,
    pub listener: TcpListener,
    pub grpc: GrpcOptions,
}

impl Startup {
    /// Binds `service`'s port (`port`, else the configured one; 0 picks a
    /// free port), reads the gRPC settings (the bearer token from `env`) and
    /// connects to the store and the bus.
    pub async fn prepare(
        config: Config,
        env: &HashMap<String, String>,
        service: ServiceName,
        port: Option<u16>,
    ) -> Result<Self> {
        let grpc = GrpcOptions::from_config(&config.server, env)?;
        let port = port.unwrap_or_else(|| service.port(&config.server.ports));
        let listener = listen(&config.server.host, port).await?;
        let ctx = ServiceContext::connect(config, service.as_str()).await?;
        Ok(Self {
            ctx,
            listener,
            grpc,
        })
    }

    /// What a service binary does before it serves: logging (filtered by
    /// `RUST_LOG` in `env`), the configuration (`args.config` with `env`'s
    /// overrides, then `adjust` — the binary's own flags — validated again),
    /// then [`prepare`](Self::prepare).
    pub async fn from_args(
        service: ServiceName,
        args: &ServiceArgs,
        env: &HashMap<String, String>,
        adjust: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        telemetry::init(env.get("RUST_LOG").map(String::as_str), SERVICE_LOG_FILTER);
        let mut config = Config::load(args.config.as_deref(), env)?;
        adjust(&mut config);
        config.validate()?;
        Self::prepare(config, env, service, args.port).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_round_trip_and_unknown_names_are_listed() {
        for service in ServiceName::ALL {
            assert_eq!(service.as_str().parse::<ServiceName>().unwrap(), service);
        }
        assert_eq!(
            "ingest".parse::<ServiceName>().unwrap(),
            ServiceName::Ingest
        );
        let error = "vae".parse::<ServiceName>().unwrap_err().to_string();
        assert!(error.contains("unknown service \"vae\""), "{error}");
        assert!(error.contains("text-encoder"), "{error}");
    }

    #[test]
    fn each_service_has_its_own_default_port() {
        let ports = Ports::default();
        let mut seen: Vec<u16> = ServiceName::ALL.iter().map(|s| s.port(&ports)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), ServiceName::ALL.len());
    }

    #[tokio::test]
    async fn prepare_binds_the_requested_port_on_the_configured_host() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.store.url = dir.path().to_str().unwrap().to_string();
        let startup = Startup::prepare(config, &HashMap::new(), ServiceName::Sampler, Some(0))
            .await
            .unwrap();
        let addr = startup.listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);
        assert!(startup.grpc.auth_token.is_none());
    }

    #[tokio::test]
    async fn from_args_applies_the_binary_flags_and_validates_them() {
        let dir = tempfile::tempdir().unwrap();
        let args = ServiceArgs {
            config: None,
            port: Some(0),
        };
        let env = HashMap::from([(
            "SSDIT_STORE_URL".to_string(),
            dir.path().to_str().unwrap().to_string(),
        )]);
        let startup = Startup::from_args(ServiceName::Sampler, &args, &env, |config| {
            config.sampler.run = Some("run-1".into());
        })
        .await
        .unwrap();
        assert_eq!(startup.ctx.config.sampler.run.as_deref(), Some("run-1"));

        let error = Startup::from_args(ServiceName::Sampler, &args, &env, |config| {
            config.ingest.target_resolution = 1;
        })
        .await
        .err()
        .unwrap()
        .to_string();
        assert!(error.contains("ingest.target_resolution"), "{error}");
    }

    #[tokio::test]
    async fn prepare_fails_when_the_token_variable_is_unset() {
        let mut config = Config::default();
        config.server.auth_token_env = Some("SSDIT_TEST_TOKEN".into());
        let error = Startup::prepare(config, &HashMap::new(), ServiceName::Trainer, Some(0))
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("SSDIT_TEST_TOKEN"), "{error}");
    }
}
