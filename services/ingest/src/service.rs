//! The gRPC face of the pipeline: `IngestService` (`Ingest`, `IngestUri`)
//! and [`run`], which serves it with health and reflection until shutdown.

use std::future::Future;

use ssdit_proto::v1::ingest_service_server::{IngestService, IngestServiceServer};
use ssdit_proto::v1::{IngestReply, IngestUriRequest, UploadChunk};
use ssdit_server::grpc::{GrpcOptions, serve};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::{Request, Response, Status, Streaming};

use crate::error::Result;
use crate::ingester::{IngestOptions, Ingester};
use crate::settings::CaptionMode;

/// The gRPC service name reported by health checks.
pub const SERVICE_NAME: &str = ssdit_proto::v1::ingest_service_server::SERVICE_NAME;

/// `IngestService` over an [`Ingester`].
#[derive(Clone)]
pub struct IngestGrpc {
    ingester: Ingester,
}

impl IngestGrpc {
    /// The service over `ingester`.
    pub fn new(ingester: Ingester) -> Self {
        Self { ingester }
    }
}

#[tonic::async_trait]
impl IngestService for IngestGrpc {
    async fn ingest(
        &self,
        request: Request<Streaming<UploadChunk>>,
    ) -> Result<Response<IngestReply>, Status> {
        let report = self.ingester.ingest_upload(request.into_inner()).await?;
        Ok(Response::new(report.to_reply()))
    }

    async fn ingest_uri(
        &self,
        request: Request<IngestUriRequest>,
    ) -> Result<Response<IngestReply>, Status> {
        let request = request.into_inner();
        let options = IngestOptions {
            recursive: request.recursive,
            captions: CaptionMode::from_proto(request.caption_source)?,
        };
        let report = self
            .ingester
            .ingest_uri(&request.dataset, &request.uri, options)
            .await?;
        Ok(Response::new(report.to_reply()))
    }
}

/// Serves `IngestService` (with gRPC health and reflection, bearer auth and
/// TLS as `grpc` says) on `listener` until `shutdown` completes; calls in
/// progress finish before it returns. Ingest publishes events but consumes
/// none, so there is no bus worker to stop.
pub async fn run(
    ingester: Ingester,
    listener: TcpListener,
    grpc: GrpcOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let routes = Routes::new(IngestServiceServer::new(IngestGrpc::new(ingester)));
    serve(
        routes,
        &[SERVICE_NAME],
        ssdit_proto::FILE_DESCRIPTOR_SET,
        listener,
        grpc,
        shutdown,
    )
    .await?;
    Ok(())
}
