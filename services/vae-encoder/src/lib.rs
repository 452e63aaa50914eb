//! The vae-encoder service: bucket-sized sample images to cached latents.
//!
//! - [`LatentWorker`]: the durable bus consumer `vae-encoder` on
//!   `SampleIngested`. It batches messages by bucket, encodes each batch in
//!   one forward pass on the codec's compute thread ([`CodecWorker`]) with
//!   the seed's conventions (a posterior sample seeded from the sample id, or
//!   the mean; × the scaling factor), writes `[16, h/8, w/8]` latents at
//!   their cache keys, publishes `LatentEncoded` and acks.
//! - [`VaeGrpc`]: `ssdit.v1.VaeService` (`Encode`, `Decode`), validated.
//! - [`run`]: both, until shutdown — what the `vae-encoder` binary and the
//!   all-in-one `ssdit run` call.
//!
//! The codec is `models.vae`: a FLUX.1-VAE model directory or hub id,
//! `preview` (the weight-free DCT stand-in) or `tiny` (a small seeded VAE).

mod codec;
mod error;
mod grpc;
pub mod images;
mod worker;

use std::future::Future;

use ssdit_proto::v1::vae_service_server::VaeServiceServer;
use ssdit_server::ServiceContext;
use ssdit_server::grpc::GrpcOptions;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::Routes;

pub use codec::{CodecInfo, CodecWorker, ImageBatch, Latent};
pub use error::{Error, Result};
pub use grpc::VaeGrpc;
pub use worker::{DURABLE, LATENT_TENSOR, LatentStage, LatentWorker, STAGE, posterior_seed};

/// The gRPC service name this server reports healthy.
pub const SERVICE_NAME: &str = <VaeServiceServer<VaeGrpc> as NamedService>::NAME;

/// A loaded vae-encoder: the codec, its bus worker and its gRPC service.
#[derive(Clone)]
pub struct VaeEncoder {
    ctx: ServiceContext,
    codec: CodecWorker,
    worker: LatentWorker,
}

impl VaeEncoder {
    /// Loads the configured codec on its compute thread.
    pub async fn load(ctx: ServiceContext) -> Result<Self> {
        let codec = CodecWorker::load(&ctx.config.models).await?;
        let stage = LatentStage::new(ctx.clone(), codec.clone());
        let worker = LatentWorker::new(ctx.clone(), stage);
        Ok(Self { ctx, codec, worker })
    }

    /// The codec, for in-process callers.
    pub fn codec(&self) -> &CodecWorker {
        &self.codec
    }

    /// The bus worker (its [`LatentWorker::run`] and counters).
    pub fn worker(&self) -> &LatentWorker {
        &self.worker
    }

    /// The gRPC service.
    pub fn grpc(&self) -> VaeServiceServer<VaeGrpc> {
        VaeGrpc::new(self.codec.clone(), &self.ctx.config).into_server()
    }

    /// Runs the bus worker and serves gRPC on `listener` until `shutdown`
    /// completes (or either fails): the batch in progress is finished and
    /// answered, the server drains its calls, then this returns.
    pub async fn serve(
        &self,
        listener: TcpListener,
        grpc: GrpcOptions,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        self.worker
            .serve_alongside(
                Routes::new(self.grpc()),
                SERVICE_NAME,
                listener,
                grpc,
                shutdown,
            )
            .await
    }
}

/// Loads the codec, then runs the bus worker and the gRPC server until
/// `shutdown` completes. The entry point of the `vae-encoder` binary and of
/// `ssdit run` (pass the shared context so the in-process bus is shared).
pub async fn run(
    ctx: ServiceContext,
    listener: TcpListener,
    grpc: GrpcOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    VaeEncoder::load(ctx)
        .await?
        .serve(listener, grpc, shutdown)
        .await
}
