//! What a service needs from its deployment: the configuration, the object
//! store and the event bus, opened once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use ssdit_bus::{Bus, InProcessBus, NatsBus, NatsConfig, StreamConfig};
use ssdit_core::Config;
use ssdit_core::config::{BusKind, ServerConfig, StoreConfig};
use ssdit_store::{RetryPolicy, Store, StoreOptions};
use tokio::net::TcpListener;

use crate::grpc::GrpcOptions;
use crate::{Error, Result};

/// A service's view of the deployment. Clones share the store and the bus.
#[derive(Clone)]
pub struct ServiceContext {
    pub config: Arc<Config>,
    pub store: Store,
    pub bus: Arc<dyn Bus>,
}

impl ServiceContext {
    /// Opens the configured store and bus. With `bus.kind = "embedded"` this
    /// creates a fresh in-process bus: services sharing one process must share
    /// one context (clone it) so that they see each other's events.
    pub async fn connect(config: Config, client_name: &str) -> Result<Self> {
        let store = open_store(&config.store).await?;
        let bus: Arc<dyn Bus> = match config.bus.kind {
            BusKind::Embedded => Arc::new(
                InProcessBus::new(stream_config(&config)).map_err(|e| bus_error(&config, e))?,
            ),
            BusKind::Nats => Arc::new(
                NatsBus::connect(NatsConfig {
                    url: config.bus.url.clone(),
                    stream: stream_config(&config),
                    client_name: client_name.to_string(),
                    ..NatsConfig::default()
                })
                .await
                .map_err(|e| bus_error(&config, e))?,
            ),
        };
        Ok(Self {
            config: Arc::new(config),
            store,
            bus,
        })
    }
}

/// Opens the configured object store, with its retry policy.
pub async fn open_store(config: &StoreConfig) -> Result<Store> {
    let mut options = StoreOptions {
        retry: RetryPolicy {
            max_attempts: config.retries.max(1),
            ..RetryPolicy::default()
        },
        ..StoreOptions::default()
    };
    if let Some(endpoint) = &config.endpoint {
        options
            .options
            .push(("aws_endpoint".into(), endpoint.clone()));
    }
    if let Some(region) = &config.region {
        options.options.push(("aws_region".into(), region.clone()));
    }
    Store::open_with(&config.url, &options)
        .await
        .map_err(|e| Error::Deployment(format!("object store {}: {e}", config.url)))
}

/// The deployment's event stream: its name, and subjects under its lowercased name.
fn stream_config(config: &Config) -> StreamConfig {
    StreamConfig {
        name: config.bus.stream.clone(),
        prefix: config.bus.stream.to_lowercase(),
        ..StreamConfig::default()
    }
}

fn bus_error(config: &Config, error: ssdit_bus::Error) -> Error {
    Error::Deployment(format!("event bus {}: {error}", config.bus.url))
}

/// Binds a service's gRPC listener on `host:port` (port 0 picks a free one).
pub async fn listen(host: &str, port: u16) -> Result<TcpListener> {
    let addr = format!("{host}:{port}");
    let parsed: SocketAddr = tokio::net::lookup_host(&addr)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| Error::Deployment(format!("cannot resolve listen address {addr}")))?;
    TcpListener::bind(parsed)
        .await
        .map_err(|e| Error::Deployment(format!("cannot listen on {addr}: {e}")))
}

impl GrpcOptions {
    /// Reads the server settings; the bearer token comes from the environment
    /// variable the configuration names, looked up in `env` (passed in by the
    /// binary: libraries never read the process environment).
    pub fn from_config(server: &ServerConfig, env: &HashMap<String, String>) -> Result<Self> {
        let auth_token = match &server.auth_token_env {
            Some(var) => match env.get(var) {
                Some(token) if !token.is_empty() => Some(token.clone()),
                _ => {
                    return Err(Error::Deployment(format!(
                        "server.auth_token_env names {var}, which is not set"
                    )));
                }
            },
            None => None,
        };
        Ok(Self {
            auth_token,
            tls: server.tls.as_ref().map(|t| (t.cert.clone(), t.key.clone())),
        })
    }
}
