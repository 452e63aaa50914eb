//! The sampler service: text to image from a trained SingleStreamDiT, over gRPC.
//!
//! - `ssdit.v1.SamplerService.Generate` ([`SamplerGrpc`]): every field checked
//!   before the request is queued; a bounded queue (`sampler.max_queue`,
//!   RESOURCE_EXHAUSTED beyond); waiting requests of one shape computed
//!   together (`sampler.max_batch`) with each caller still getting exactly the
//!   image it would get alone; one progress message per step, then the PNG.
//! - Text from the sampler's own text encoder (built as the text-encoder
//!   service builds it); classifier-free guidance against the negative
//!   prompt's embedding, or the all-zero one (the model's `cap_pad_token`);
//!   Euler or RK4 from `ssdit_flow` with both branches in one forward pass;
//!   noise seeded per request on the host; the codec decodes.
//! - The served DiT: `sampler.checkpoint` (a store checkpoint or a local
//!   `.safetensors`/`.pt`), else the newest checkpoint of `sampler.run`, else
//!   — for the `tiny` preset, or a run with no checkpoint yet — a
//!   random-initialised model (its images are not meaningful; logged loudly).
//!   Checkpoints without their own `config.json` are built as the trainer
//!   builds `models.dit` for these encoders ([`ssdit_train::model`]).
//!   Requests may name any store checkpoint, the served one included.
//!   `CheckpointSaved` events hot-reload newer checkpoints between batches.
//! - [`run`] / [`SamplingService::serve`]: dispatcher, reload consumer and
//!   gRPC server until shutdown.

mod checkpoint;
mod dispatch;
mod engine;
mod error;
mod grpc;
mod queue;
mod random;
mod reload;
mod request;

use std::future::Future;
use std::sync::{Arc, RwLock};

use ssdit_proto::v1::sampler_service_server::SamplerServiceServer;
use ssdit_server::grpc::GrpcOptions;
use ssdit_server::{ComputeWorker, ServiceContext};
use ssdit_train::model::dit_config;
use ssdit_vae::DatasetNormalization;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::Routes;

pub use checkpoint::CheckpointId;
pub use engine::EngineInfo;
pub use error::{Error, Result};
pub use grpc::SamplerGrpc;
pub use queue::SamplerStats;
pub use random::random_model;
pub use request::{GenerateParams, MIN_SIDE, SIDE_MULTIPLE};

use crate::dispatch::Dispatcher;
use crate::engine::Engine;
use crate::queue::Queue;
use crate::reload::Reloader;

/// The gRPC service name this server reports healthy.
pub const SERVICE_NAME: &str = <SamplerServiceServer<SamplerGrpc> as NamedService>::NAME;

/// The seed of random-initialised weights: the same model in every process.
pub const RANDOM_INIT_SEED: u64 = 0;

/// Batches waiting for the compute thread (the dispatcher sends one at a time).
const ENGINE_QUEUE: usize = 4;

/// A loaded sampler: models on their compute thread, the queue, the served checkpoint.
#[derive(Clone)]
pub struct SamplingService {
    dispatcher: Dispatcher,
    served: Arc<RwLock<CheckpointId>>,
    info: EngineInfo,
    instance: String,
}

impl SamplingService {
    /// Loads the text encoder, the codec and the DiT to serve (see the crate
    /// docs for the choice). `instance` names this replica's checkpoint
    /// consumer (`sampler-<instance>`); `None` picks a random name.
    pub async fn load(ctx: ServiceContext, instance: Option<String>) -> Result<Self> {
        let config = ctx.config.clone();
        let models = config.models.clone();
        let text_length = config.encode.max_text_length;
        let normalization = DatasetNormalization {
            mean: config.train.latent_mean,
            std: config.train.latent_std,
        };
        let engine = ComputeWorker::spawn("sampler", ENGINE_QUEUE, move || {
            Engine::new(&models, text_length, normalization)
        })
        .await?;
        let info = engine.run(|engine| engine.info()).await?;
        let fallback = dit_config(&config.models.dit, info.data_shape(), config.train.dropout)?;
        let initial = initial_checkpoint(&ctx).await?;
        let source = checkpoint::fetch(&ctx.store, initial.clone(), &fallback).await?;
        engine
            .run(move |engine| engine.install_served(source))
            .await??;
        if matches!(initial, CheckpointId::Random { .. }) {
            tracing::warn!(checkpoint = %initial, "SERVING A RANDOM-INITIALISED DiT: its images are NOT meaningful; train a run or set sampler.checkpoint");
        }
        tracing::info!(checkpoint = %initial, text_dim = info.text_dim, text_length = info.text_length, codec = %info.codec, "sampler loaded");
        let instance = instance.unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
        let queue = Arc::new(Queue::new(
            config.sampler.max_queue,
            config.sampler.max_batch,
        ));
        Ok(Self {
            dispatcher: Dispatcher {
                ctx,
                engine,
                queue,
                fallback,
            },
            served: Arc::new(RwLock::new(initial)),
            info,
            instance,
        })
    }

    /// The checkpoint served to requests that name none.
    pub fn served(&self) -> CheckpointId {
        self.served
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sizes of the loaded text encoder and codec.
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// What the sampler has computed so far.
    pub fn stats(&self) -> SamplerStats {
        self.dispatcher.queue.stats()
    }

    /// The gRPC service (requests are computed while [`serve`](Self::serve) runs).
    pub fn grpc(&self) -> SamplerServiceServer<SamplerGrpc> {
        let ctx = &self.dispatcher.ctx;
        SamplerGrpc::new(
            ctx.config.clone(),
            ctx.store.clone(),
            self.dispatcher.queue.clone(),
        )
        .into_server()
    }

    /// Runs the dispatcher, the checkpoint follower and the gRPC server on
    /// `listener` until `shutdown` completes (or one fails): the batch in
    /// progress finishes, waiting requests are answered UNAVAILABLE, the
    /// server drains its streams, then this returns.
    pub async fn serve(
        &self,
        listener: TcpListener,
        grpc: GrpcOptions,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        let reloader = Reloader {
            dispatcher: self.dispatcher.clone(),
            served: self.served.clone(),
            run: self.dispatcher.ctx.config.sampler.run.clone(),
            durable: format!("sampler-{}", self.instance),
        };
        ssdit_server::grpc::serve_alongside(
            Routes::new(self.grpc()),
            SERVICE_NAME,
            listener,
            grpc,
            shutdown,
            |token| async move {
                let dispatcher = async {
                    self.dispatcher.run(token.clone()).await;
                    token.cancel();
                };
                let follower = async {
                    let followed = reloader.run(token.clone()).await;
                    token.cancel();
                    followed
                };
                let ((), followed) = tokio::join!(dispatcher, follower);
                followed
            },
        )
        .await
    }
}

/// The checkpoint served at start: `sampler.checkpoint`, else the newest of
/// `sampler.run` (a random-initialised model until it has one), else a
/// random-initialised `tiny` model.
async fn initial_checkpoint(ctx: &ServiceContext) -> Result<CheckpointId> {
    let sampler = &ctx.config.sampler;
    let preset = ctx.config.models.dit.trim().to_string();
    let random = |preset: String| CheckpointId::Random {
        preset,
        seed: RANDOM_INIT_SEED,
    };
    if let Some(spec) = &sampler.checkpoint {
        let id = if spec.starts_with("runs/") {
            CheckpointId::parse_store_key(spec)?
        } else {
            CheckpointId::File(spec.into())
        };
        if !checkpoint::exists(&ctx.store, &id).await? {
            return Err(Error::NotFound(format!(
                "sampler.checkpoint {spec}: not found"
            )));
        }
        return Ok(id);
    }
    if let Some(run) = &sampler.run {
        return Ok(match checkpoint::newest(&ctx.store, run).await? {
            Some(id) => id,
            None => {
                tracing::warn!(
                    run,
                    "the run has no checkpoint yet: serving a random-initialised model until its first one"
                );
                random(preset)
            }
        });
    }
    if preset == "tiny" {
        return Ok(random(preset));
    }
    Err(Error::Model {
        what: "dit",
        spec: preset,
        reason: "no checkpoint to serve: set sampler.run or sampler.checkpoint (random weights are only served for the tiny preset)".into(),
    })
}

/// Loads the models, then serves until `shutdown` completes. The entry
/// point of the `sampler` binary and of `ssdit run` (pass the shared context
/// so the in-process bus is shared).
pub async fn run(
    ctx: ServiceContext,
    listener: TcpListener,
    grpc: GrpcOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    SamplingService::load(ctx, None)
        .await?
        .serve(listener, grpc, shutdown)
        .await
}
