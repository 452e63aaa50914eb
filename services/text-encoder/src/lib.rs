//! The text-encoder service: sample captions to cached caption embeddings.
//!
//! - [`EmbeddingWorker`]: the durable bus consumer `text-encoder` on
//!   `SampleIngested`. It reads each sample's caption (samples without one
//!   are skipped), encodes a fetched batch in one forward pass on the
//!   encoder's compute thread ([`TextWorker`]), writes `[max_length, dim]`
//!   embeddings and their mask at their cache keys, publishes `TextEncoded`
//!   and acks.
//! - [`TextGrpc`]: `ssdit.v1.TextEncoderService.Encode`, validated.
//! - [`run`]: both, until shutdown — what the `text-encoder` binary and the
//!   all-in-one `ssdit run` call.
//! - [`load_text_encoder`]: how `models.text_encoder` becomes an encoder
//!   (`tiny`, a T5Gemma2 model directory or hub id); the sampler uses it too.

mod error;
mod grpc;
mod model;
mod worker;

use std::future::Future;

use ssdit_proto::v1::text_encoder_service_server::TextEncoderServiceServer;
use ssdit_server::ServiceContext;
use ssdit_server::grpc::GrpcOptions;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::Routes;

pub use error::{Error, Result};
pub use grpc::{TextGrpc, max_length_limit};
pub use model::{Embeddings, TINY, TextInfo, TextWorker, load_text_encoder};
pub use worker::{DURABLE, EMBEDDING_TENSOR, EmbeddingStage, EmbeddingWorker, MASK_TENSOR, STAGE};

/// The gRPC service name this server reports healthy.
pub const SERVICE_NAME: &str = <TextEncoderServiceServer<TextGrpc> as NamedService>::NAME;

/// A loaded text-encoder: the model, its bus worker and its gRPC service.
#[derive(Clone)]
pub struct TextEncoderService {
    ctx: ServiceContext,
    model: TextWorker,
    worker: EmbeddingWorker,
}

impl TextEncoderService {
    /// Loads the configured encoder on its compute thread, at
    /// `encode.max_text_length` tokens.
    pub async fn load(ctx: ServiceContext) -> Result<Self> {
        let model = TextWorker::load(&ctx.config.models, ctx.config.encode.max_text_length).await?;
        let stage = EmbeddingStage::new(ctx.clone(), model.clone());
        let worker = EmbeddingWorker::new(ctx.clone(), stage);
        Ok(Self { ctx, model, worker })
    }

    /// The encoder, for in-process callers.
    pub fn model(&self) -> &TextWorker {
        &self.model
    }

    /// The bus worker (its [`EmbeddingWorker::run`] and counters).
    pub fn worker(&self) -> &EmbeddingWorker {
        &self.worker
    }

    /// The gRPC service.
    pub fn grpc(&self) -> TextEncoderServiceServer<TextGrpc> {
        TextGrpc::new(self.model.clone(), &self.ctx.config).into_server()
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

/// Loads the encoder, then runs the bus worker and the gRPC server until
/// `shutdown` completes. The entry point of the `text-encoder` binary and of
/// `ssdit run` (pass the shared context so the in-process bus is shared).
pub async fn run(
    ctx: ServiceContext,
    listener: TcpListener,
    grpc: GrpcOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    TextEncoderService::load(ctx)
        .await?
        .serve(listener, grpc, shutdown)
        .await
}
