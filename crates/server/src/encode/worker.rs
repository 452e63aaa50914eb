//! The consume loop every encoding stage runs, and the steps a stage writes.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::future::join_all;
use ssdit_bus::{ConsumerConfig, Delivery};
use ssdit_core::Config;
use ssdit_proto::Event;
use ssdit_proto::v1::SampleIngested;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use super::{Replies, Sample, StatsSnapshot};
use crate::ServiceContext;
use crate::consume::{self, consume};
use crate::grpc::{self, GrpcOptions};

/// How long one fetch waits for the first message.
const FETCH_WAIT: Duration = Duration::from_millis(250);

/// What one encoding stage computes: its checks of a sample, and the
/// encoding of a batch. Every sample it is handed must be answered through
/// the [`Replies`] it is given, exactly once.
pub trait EncodeStage: Send + Sync + 'static {
    /// The durable consumer all replicas of the stage share.
    const DURABLE: &'static str;
    /// The stage named in reject records.
    const STAGE: &'static str;
    /// A sample that passed the stage's checks and has something to compute.
    type Item: Send;

    /// The file of the sample this stage reads, named in reject records.
    fn input_key(event: &SampleIngested) -> &str;

    /// What the stage encodes with, for the start-up log.
    fn describe(&self) -> String;

    /// Checks a sample; answers it and returns `None` when there is nothing
    /// to compute (a malformed event, a result already cached).
    fn admit(
        &self,
        sample: Sample,
        replies: &Replies,
    ) -> impl Future<Output = Option<Self::Item>> + Send;

    /// Reads, encodes and stores a batch of admitted items, answering each.
    fn encode(&self, items: Vec<Self::Item>, replies: &Replies) -> impl Future<Output = ()> + Send;
}

/// The bus worker of an encoding stage: one per process, any number per
/// deployment. Clones share the counters.
#[derive(Clone)]
pub struct EncodeWorker<S> {
    stage: S,
    replies: Replies,
}

impl<S: EncodeStage> EncodeWorker<S> {
    /// A worker running `stage` on `ctx`'s bus.
    pub fn new(ctx: ServiceContext, stage: S) -> Self {
        Self {
            stage,
            replies: Replies::new(ctx, S::STAGE, S::input_key),
        }
    }

    /// The consumer of `SampleIngested` every replica of the stage opens.
    pub fn consumer_config(config: &Config) -> ConsumerConfig {
        consume::consumer_config(config, S::DURABLE, SampleIngested::NAME)
    }

    /// Its stage.
    pub fn stage(&self) -> &S {
        &self.stage
    }

    /// How it answers samples (for driving a stage's steps directly).
    pub fn replies(&self) -> &Replies {
        &self.replies
    }

    /// Its counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.replies.stats()
    }

    /// Consumes `SampleIngested` until `shutdown` is cancelled. A batch
    /// being processed is finished first: every fetched message is answered.
    pub async fn run(&self, shutdown: CancellationToken) -> ssdit_bus::Result<()> {
        let ctx = &self.replies.ctx;
        let consumer = ctx.bus.consumer(Self::consumer_config(&ctx.config)).await?;
        let batch = ctx.config.encode.batch_size;
        tracing::info!(batch, model = %self.stage.describe(), "{} worker started", S::DURABLE);
        consume(&consumer, batch, FETCH_WAIT, &shutdown, |deliveries| {
            self.handle(deliveries)
        })
        .await;
        tracing::info!("{} worker stopped", S::DURABLE);
        Ok(())
    }

    /// Runs the worker and serves `routes` on `listener` (see
    /// [`grpc::serve_alongside`]) until `shutdown` completes or either
    /// fails: the batch in progress is finished and answered, the server
    /// drains its calls, then this returns.
    pub async fn serve_alongside<E>(
        &self,
        routes: Routes,
        service_name: &str,
        listener: TcpListener,
        options: GrpcOptions,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), E>
    where
        E: From<crate::Error> + From<ssdit_bus::Error>,
    {
        let work = |token: CancellationToken| async move { self.run(token).await.map_err(E::from) };
        grpc::serve_alongside(routes, service_name, listener, options, shutdown, work).await
    }

    /// Processes one fetched batch; answers every delivery.
    async fn handle(&self, deliveries: Vec<Delivery>) {
        let started = Instant::now();
        let size = deliveries.len();
        let samples = join_all(deliveries.into_iter().map(|d| self.replies.receive(d))).await;
        let items: Vec<S::Item> = join_all(
            samples
                .into_iter()
                .flatten()
                .map(|sample| self.stage.admit(sample, &self.replies)),
        )
        .await
        .into_iter()
        .flatten()
        .collect();
        if !items.is_empty() {
            self.stage.encode(items, &self.replies).await;
        }
        tracing::debug!(
            batch = size,
            ms = started.elapsed().as_millis() as u64,
            "batch done"
        );
    }
}
