//! Connecting the client commands (`ssdit train`, `ssdit generate`, …) to a
//! running service: the address, and the bearer token the servers require
//! when `server.auth_token_env` is set.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use ssdit_core::Config;
use ssdit_server::ServiceName;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// Where a client command finds its service.
#[derive(Args, Clone)]
pub struct ClientArgs {
    /// The service's address (`http://host:port`); default: `server.host`
    /// and the service's port from the configuration.
    #[arg(long, value_name = "URL")]
    pub addr: Option<String>,
    /// The ssdit configuration file (TOML): ports, and the name of the
    /// environment variable holding the bearer token (`server.auth_token_env`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A gRPC channel that sends the bearer token, when there is one, on every call.
pub type AuthChannel = InterceptedService<Channel, BearerToken>;

/// Adds `authorization: Bearer <token>` to requests.
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

impl ClientArgs {
    /// Connects to `service`, reading the configuration for its default
    /// address and the token.
    pub async fn connect(&self, service: ServiceName) -> anyhow::Result<AuthChannel> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let config =
            Config::load(self.config.as_deref(), &env).context("loading the configuration")?;
        let addr = self.addr.clone().unwrap_or_else(|| {
            let port = service.port(&config.server.ports);
            format!("http://{}:{port}", config.server.host)
        });
        let token = bearer_token(&config, &env)?;
        let channel = Endpoint::from_shared(addr.clone())
            .with_context(|| format!("invalid {service} address {addr:?}"))?
            .connect()
            .await
            .with_context(|| format!("cannot reach {service} at {addr}"))?;
        Ok(InterceptedService::new(channel, BearerToken(token)))
    }
}

fn bearer_token(
    config: &Config,
    env: &HashMap<String, String>,
) -> anyhow::Result<Option<MetadataValue<tonic::metadata::Ascii>>> {
    let Some(var) = &config.server.auth_token_env else {
        return Ok(None);
    };
    let Some(token) = env.get(var).filter(|t| !t.is_empty()) else {
        bail!("server.auth_token_env names {var}, which is not set");
    };
    let value = format!("Bearer {token}")
        .parse()
        .with_context(|| format!("the token in {var} is not a valid header value"))?;
    Ok(Some(value))
}
