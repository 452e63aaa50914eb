//! The trainer service: `ssdit.v1.TrainerService` over gRPC, training on a
//! dedicated thread (`ssdit-train`), and a Prometheus `/metrics` endpoint.
//!
//! - [`Trainer`]: the runs of this process and the gRPC methods
//!   (`StartRun`, `GetRun`, `StopRun`, `WatchRun`) as plain async functions,
//!   for in-process callers too, and [`Trainer::train`] for a run an
//!   in-process caller prepared itself (`ssdit run`). One run trains at a
//!   time: a second `StartRun` while one trains is RESOURCE_EXHAUSTED.
//! - [`run`]: serves gRPC (health, reflection, auth, TLS through
//!   `ssdit_server::grpc::serve`) and, when given a listener, `/metrics` over
//!   HTTP/1.1 on its own port; on shutdown every run is stopped at a step
//!   boundary, saves its checkpoint, and only then do the servers stop —
//!   what the `trainer` binary and `ssdit serve trainer` call.
//!
//! `RunSpec.config_toml` holds `[train]` keys (`epochs = 10`,
//! `[self_eval]\nenabled = true`) applied over the configured section.

mod error;
pub mod metrics_http;
pub mod overrides;
pub mod runs;
mod service;

use std::future::Future;

use ssdit_proto::v1::trainer_service_server::TrainerServiceServer;
use ssdit_server::grpc::{GrpcOptions, serve};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic::service::Routes;

pub use error::{Error, Result};
pub use service::Trainer;

/// The gRPC service name this server reports healthy.
pub const SERVICE_NAME: &str = <TrainerServiceServer<Trainer> as NamedService>::NAME;

/// Serves `trainer` on `listener` (gRPC) and `metrics` (HTTP `/metrics`, if
/// given) until `shutdown` completes; then stops the runs, waits for their
/// checkpoints, and stops the servers.
pub async fn run(
    trainer: Trainer,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    grpc: GrpcOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let routes = Routes::new(trainer.grpc());
    let grpc_stopped = stopped();
    let mut server = tokio::spawn(async move {
        serve(
            routes,
            &[SERVICE_NAME],
            ssdit_proto::FILE_DESCRIPTOR_SET,
            listener,
            grpc,
            grpc_stopped,
        )
        .await
    });
    let http = metrics
        .map(|listener| tokio::spawn(metrics_http::serve(trainer.clone(), listener, stopped())));
    let early = tokio::select! {
        _ = shutdown => None,
        result = &mut server => Some(result),
    };
    tracing::info!("trainer shutting down: stopping runs");
    trainer.shutdown().await;
    let _ = stop_tx.send(true);
    let grpc_result = match early {
        Some(result) => result,
        None => server.await,
    };
    if let Some(http) = http {
        http.await.map_err(|e| Error::Metrics(e.to_string()))??;
    }
    grpc_result.map_err(|e| Error::Metrics(format!("gRPC task: {e}")))??;
    Ok(())
}
