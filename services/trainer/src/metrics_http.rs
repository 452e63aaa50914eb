//! The Prometheus endpoint: `GET /metrics` on its own HTTP/1.1 port
//! (`train.metrics_port`), separate from gRPC so scrapers need neither
//! HTTP/2 nor the gRPC bearer token.

use std::future::Future;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use ssdit_core::Config;
use tokio::net::TcpListener;

use crate::{Error, Result, Trainer};

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds the endpoint's port `train.metrics_port` on the gRPC host;
/// `None` when the port is 0 (the endpoint is off).
pub async fn bind(config: &Config) -> Result<Option<TcpListener>> {
    match config.train.metrics_port {
        0 => Ok(None),
        port => ssdit_server::listen(&config.server.host, port)
            .await
            .map(Some)
            .map_err(|error| {
                Error::Metrics(format!(
                    "{error}; set train.metrics_port to another port, or 0 to turn the endpoint off"
                ))
            }),
    }
}

/// Serves `/metrics` of `trainer` on `listener` until `shutdown` completes.
pub async fn serve(
    trainer: Trainer,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let trainer = trainer.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, CONTENT_TYPE)],
                    trainer.metrics_text(),
                )
                    .into_response()
            }
        }),
    );
    tracing::info!(%addr, "metrics endpoint listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Metrics(format!("{addr}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_metrics_port_names_the_setting() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut config = Config::default();
        config.train.metrics_port = taken.local_addr().unwrap().port();
        let error = bind(&config).await.unwrap_err().to_string();
        assert!(error.contains("train.metrics_port"), "{error}");
        config.train.metrics_port = 0;
        assert!(bind(&config).await.unwrap().is_none());
    }
}
