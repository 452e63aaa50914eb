//! One function wiring a service's gRPC routes with health, reflection,
//! authentication and TLS, and one serving them alongside the service's
//! background work.

use std::future::Future;
use std::path::{Path, PathBuf};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;

use crate::{BearerAuthLayer, Error, Result};

/// How a gRPC server is exposed.
#[derive(Debug, Clone, Default)]
pub struct GrpcOptions {
    /// When set, every call but health checks must carry this bearer token.
    pub auth_token: Option<String>,
    /// PEM certificate and private key; when set, the server speaks TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Serves `routes` on `listener` until `shutdown` completes, with gRPC
/// health (each of `service_names` reported SERVING, then NOT_SERVING on
/// shutdown) and reflection over `descriptor_set` (v1 and v1alpha, so
/// `grpcurl` works out of the box).
pub async fn serve(
    routes: Routes,
    service_names: &[&str],
    descriptor_set: &[u8],
    listener: TcpListener,
    options: GrpcOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "<unknown>".into());
    let mut builder = Server::builder();
    if let Some((cert, key)) = &options.tls {
        builder = builder.tls_config(tls_config(cert, key)?).map_err(|e| {
            Error::Tls(format!(
                "certificate {} with key {}: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    }
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in service_names {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let reflection = |e: tonic_reflection::server::Error| Error::Reflection(e.to_string());
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(descriptor_set)
        .build_v1()
        .map_err(reflection)?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(descriptor_set)
        .build_v1alpha()
        .map_err(reflection)?;
    let routes = routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    tracing::info!(%addr, services = ?service_names, tls = options.tls.is_some(), auth = options.auth_token.is_some(), "gRPC server listening");
    let names: Vec<String> = service_names.iter().map(|s| s.to_string()).collect();
    let shutdown = async move {
        shutdown.await;
        for name in names {
            health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        tracing::info!("gRPC server shutting down");
    };
    builder
        .layer(BearerAuthLayer::new(options.auth_token))
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
        .map_err(|e| Error::Transport {
            addr,
            reason: e.to_string(),
        })
}

/// Serves `routes` on `listener` (see [`serve`]: `service_name` reported
/// healthy, reflection over the ssdit protos) while `work` runs with a token
/// that is cancelled when either ends or `shutdown` completes; returns once
/// both have finished — the server's error first, else the work's. The
/// start-up every service with a background task (a bus worker, a
/// dispatcher) shares.
pub async fn serve_alongside<W, E>(
    routes: Routes,
    service_name: &str,
    listener: TcpListener,
    options: GrpcOptions,
    shutdown: impl Future<Output = ()>,
    work: impl FnOnce(CancellationToken) -> W,
) -> std::result::Result<(), E>
where
    W: Future<Output = std::result::Result<(), E>>,
    E: From<Error>,
{
    let token = CancellationToken::new();
    let trigger = async {
        tokio::select! {
            _ = shutdown => tracing::info!(service = service_name, "shutting down"),
            _ = token.cancelled() => {}
        }
        token.cancel();
    };
    let server = async {
        let served = serve(
            routes,
            &[service_name],
            ssdit_proto::FILE_DESCRIPTOR_SET,
            listener,
            options,
            token.clone().cancelled_owned(),
        )
        .await;
        token.cancel();
        served.map_err(E::from)
    };
    let work = work(token.clone());
    let worker = async {
        let worked = work.await;
        token.cancel();
        worked
    };
    let ((), served, worked) = tokio::join!(trigger, server, worker);
    served.and(worked)
}

/// The server identity from PEM files; a file that cannot be read is an
/// error naming it (parsing happens when the builder takes the config).
fn tls_config(cert: &Path, key: &Path) -> Result<ServerTlsConfig> {
    let read = |what: &str, path: &Path| {
        std::fs::read(path)
            .map_err(|e| Error::Tls(format!("reading {what} {}: {e}", path.display())))
    };
    let identity = Identity::from_pem(read("certificate", cert)?, read("private key", key)?);
    Ok(ServerTlsConfig::new().identity(identity))
}
