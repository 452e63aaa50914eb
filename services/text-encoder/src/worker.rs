//! The bus worker: `SampleIngested` → the caption's embedding in the cache →
//! `TextEncoded`, then ack.
//!
//! The captions of a fetched batch are encoded in one forward pass. Each
//! embedding is written at its deterministic key — the encoding and the hash
//! of the caption's text ([`CaptionHash`]), not the sample — before the event
//! is published and the message acked; an embedding already there is not
//! computed again (its event is published again, so a crash between write
//! and publish never loses it). So samples with the same caption share one
//! embedding, and a sample announced again after its caption was edited gets
//! a new one. A sample without a caption is acked and skipped. A missing or non-UTF-8 caption file, or a non-finite embedding,
//! is recorded as a reject of stage `text` and acked; a store or bus failure
//! naks the message for a retry with backoff. Overlong captions are
//! truncated by the tokenizer, not rejected.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::join_all;
use ssdit_bus::{BusExt, ConsumerConfig, Delivery};
use ssdit_core::Config;
use ssdit_dataset::{CaptionHash, Dataset, RejectRecord, TextEncoding};
use ssdit_proto::Event;
use ssdit_proto::v1::{SampleIngested, SampleRejected, TextEncoded};
use ssdit_server::ServiceContext;
use ssdit_store::{F32Tensor, Key, TensorFile};
use tokio_util::sync::CancellationToken;

use crate::model::{Embeddings, TextWorker};
use crate::{Error, Result};

/// The durable consumer all text-encoder replicas share.
pub const DURABLE: &str = "text-encoder";
/// The stage named in reject records.
pub const STAGE: &str = "text";
/// Name of the `[max_length, dim]` embedding tensor (the seed's cache key).
pub const EMBEDDING_TENSOR: &str = "text_embeds";
/// Name of the `[max_length]` attention mask tensor (1 real token, 0 padding).
pub const MASK_TENSOR: &str = "attention_mask";

/// Largest caption file read.
const MAX_CAPTION_BYTES: u64 = 1 << 20;
/// How long one fetch waits for the first message.
const FETCH_WAIT: Duration = Duration::from_millis(250);
/// Pause after the bus fails to deliver, before trying again.
const BUS_RETRY: Duration = Duration::from_secs(1);

/// What a worker has done since it started.
#[derive(Debug, Default)]
pub struct WorkerStats {
    delivered: AtomicU64,
    redelivered: AtomicU64,
    written: AtomicU64,
    skipped: AtomicU64,
    uncaptioned: AtomicU64,
    rejected: AtomicU64,
    retried: AtomicU64,
}

/// A copy of [`WorkerStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Messages received (first deliveries and redeliveries).
    pub delivered: u64,
    /// Messages received that had been delivered before (to this worker or another).
    pub redelivered: u64,
    /// Embeddings computed and written (one per distinct caption of a batch).
    pub written: u64,
    /// Messages whose caption's embedding was already in the store.
    pub skipped: u64,
    /// Samples without a caption (acked, nothing to do).
    pub uncaptioned: u64,
    /// Samples recorded as rejects.
    pub rejected: u64,
    /// Messages nak'd for a retry.
    pub retried: u64,
}

impl WorkerStats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            delivered: self.delivered.load(Ordering::Relaxed),
            redelivered: self.redelivered.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            uncaptioned: self.uncaptioned.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
        }
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The consumer of `SampleIngested` every replica opens.
pub fn consumer_config(config: &Config) -> ConsumerConfig {
    ConsumerConfig {
        ack_wait: config.bus.ack_wait,
        max_deliver: u32::try_from(config.bus.max_deliver).unwrap_or(u32::MAX),
        ..ConsumerConfig::new(DURABLE, SampleIngested::NAME)
    }
}

/// One captioned sample of a fetched batch.
struct Item {
    delivery: Delivery,
    event: SampleIngested,
    caption_key: Key,
}

/// The samples of a batch with the same caption text: one embedding.
struct Group {
    caption: String,
    embedding_key: Key,
    items: Vec<Item>,
}

/// The worker: one per process, any number per deployment.
#[derive(Clone)]
pub struct EmbeddingWorker {
    ctx: ServiceContext,
    model: TextWorker,
    encoding: TextEncoding,
    stats: Arc<WorkerStats>,
}

impl EmbeddingWorker {
    /// A worker encoding with `model` at its default length.
    pub fn new(ctx: ServiceContext, model: TextWorker) -> Self {
        Self {
            ctx,
            encoding: model.encoding(),
            model,
            stats: Arc::default(),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The cache identity of what it writes.
    pub fn encoding(&self) -> &TextEncoding {
        &self.encoding
    }

    /// Consumes `SampleIngested` until `shutdown` is cancelled. A batch
    /// being processed is finished first: every fetched message is answered.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        let consumer = self
            .ctx
            .bus
            .consumer(consumer_config(&self.ctx.config))
            .await?;
        let batch = self.ctx.config.encode.batch_size;
        tracing::info!(durable = DURABLE, batch, encoder = %self.encoding.encoder, tokenizer = %self.encoding.tokenizer, max_length = self.encoding.max_length, "text-encoder worker started");
        loop {
            let fetched = tokio::select! {
                _ = shutdown.cancelled() => break,
                fetched = consumer.fetch(batch, FETCH_WAIT) => fetched,
            };
            match fetched {
                Ok(deliveries) if deliveries.is_empty() => {}
                Ok(deliveries) => self.handle(deliveries).await,
                Err(error) => {
                    tracing::warn!(%error, "fetching from the bus failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(BUS_RETRY) => {}
                    }
                }
            }
        }
        tracing::info!(durable = DURABLE, "text-encoder worker stopped");
        Ok(())
    }

    /// Processes one fetched batch; answers every delivery.
    async fn handle(&self, deliveries: Vec<Delivery>) {
        let started = std::time::Instant::now();
        let size = deliveries.len();
        for delivery in &deliveries {
            WorkerStats::add(&self.stats.delivered);
            if delivery.delivered() > 1 {
                WorkerStats::add(&self.stats.redelivered);
            }
        }
        let items: Vec<Item> = join_all(deliveries.into_iter().map(|d| self.admit(d)))
            .await
            .into_iter()
            .flatten()
            .collect();
        let read: Vec<(Item, String)> =
            join_all(items.into_iter().map(|item| self.read_caption(item)))
                .await
                .into_iter()
                .flatten()
                .collect();
        let groups = self.group(read).await;
        let todo: Vec<Group> = join_all(groups.into_iter().map(|group| self.uncached(group)))
            .await
            .into_iter()
            .flatten()
            .collect();
        if !todo.is_empty() {
            self.encode_batch(todo).await;
        }
        tracing::debug!(
            batch = size,
            ms = started.elapsed().as_millis() as u64,
            "batch done"
        );
    }

    /// Decodes and checks a delivery; answers it when there is nothing to compute.
    async fn admit(&self, delivery: Delivery) -> Option<Item> {
        let event = match delivery.decode::<SampleIngested>() {
            Ok(event) => event,
            Err(error) => {
                answer(delivery.term(&error.to_string()).await);
                return None;
            }
        };
        if event.caption_key.is_empty() {
            tracing::debug!(sample_id = %event.sample_id, "sample has no caption; nothing to encode");
            WorkerStats::add(&self.stats.uncaptioned);
            answer(delivery.ack().await);
            return None;
        }
        match check_event(&self.ctx, &event) {
            Ok(caption_key) => Some(Item {
                delivery,
                event,
                caption_key,
            }),
            Err(reason) => {
                tracing::warn!(sample_id = %event.sample_id, %reason, "malformed sample_ingested event");
                answer(delivery.term(&reason).await);
                None
            }
        }
    }

    /// Groups read captions by their embedding key (identical texts share one).
    async fn group(&self, read: Vec<(Item, String)>) -> Vec<Group> {
        let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
        for (item, caption) in read {
            let embedding_key = match self.encoding.embedding_key(&CaptionHash::of(&caption)) {
                Ok(key) => key,
                Err(error) => {
                    self.retry(item.delivery, &error.to_string()).await;
                    continue;
                }
            };
            groups
                .entry(embedding_key.clone())
                .or_insert_with(|| Group {
                    caption,
                    embedding_key,
                    items: Vec::new(),
                })
                .items
                .push(item);
        }
        groups.into_values().collect()
    }

    /// The group, unless its embedding is already cached (then its messages
    /// are answered) or the store cannot tell (then they are retried).
    async fn uncached(&self, group: Group) -> Option<Group> {
        match self.ctx.store.exists(&group.embedding_key).await {
            Ok(false) => Some(group),
            Ok(true) => {
                tracing::debug!(key = %group.embedding_key, samples = group.items.len(), "embedding already cached");
                for item in group.items {
                    if self.finish(item, &group.embedding_key).await {
                        WorkerStats::add(&self.stats.skipped);
                    }
                }
                None
            }
            Err(error) => {
                for item in group.items {
                    self.retry(item.delivery, &error.to_string()).await;
                }
                None
            }
        }
    }

    /// Reads the caption text (trimmed, as the seed does); rejects or retries on failure.
    async fn read_caption(&self, item: Item) -> Option<(Item, String)> {
        let bytes = match self
            .ctx
            .store
            .get_bounded(&item.caption_key, MAX_CAPTION_BYTES)
            .await
        {
            Ok(bytes) => bytes,
            Err(ssdit_store::Error::NotFound { .. }) => {
                self.reject(item, "caption is missing from the store".into())
                    .await;
                return None;
            }
            Err(error @ ssdit_store::Error::TooLarge { .. }) => {
                self.reject(item, error.to_string()).await;
                return None;
            }
            Err(error) => {
                self.retry(item.delivery, &error.to_string()).await;
                return None;
            }
        };
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Some((item, text.trim().to_string())),
            Err(_) => {
                self.reject(item, "caption is not UTF-8 text".into()).await;
                None
            }
        }
    }

    /// Encodes the batch's distinct captions in one forward pass and stores each embedding.
    async fn encode_batch(&self, groups: Vec<Group>) {
        let captions: Vec<String> = groups.iter().map(|g| g.caption.clone()).collect();
        let started = std::time::Instant::now();
        let count = groups.len();
        let length = self.encoding.max_length as usize;
        match self.model.encode(captions, length).await {
            Ok(embeddings) => {
                tracing::info!(
                    batch = count,
                    ms = started.elapsed().as_millis() as u64,
                    "encoded captions"
                );
                for (i, group) in groups.into_iter().enumerate() {
                    self.store_embedding(group, &embeddings, i).await;
                }
            }
            Err(error) => {
                tracing::error!(batch = count, %error, "encoding failed");
                for item in groups.into_iter().flat_map(|g| g.items) {
                    self.retry(item.delivery, &error.to_string()).await;
                }
            }
        }
    }

    /// Writes row `i` (unless it is not finite), then publishes and acks for
    /// every sample of the group.
    async fn store_embedding(&self, group: Group, embeddings: &Embeddings, i: usize) {
        let (values, _) = embeddings.row(i);
        if values.iter().any(|v| !v.is_finite()) {
            for item in group.items {
                self.reject(
                    item,
                    "the text encoder produced non-finite embeddings".into(),
                )
                .await;
            }
            return;
        }
        let written = match self.embedding_file(&group, embeddings, i) {
            Ok(file) => self.ctx.store.put_tensors(&group.embedding_key, file).await,
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            for item in group.items {
                self.retry(item.delivery, &error.to_string()).await;
            }
            return;
        }
        WorkerStats::add(&self.stats.written);
        for item in group.items {
            self.finish(item, &group.embedding_key).await;
        }
    }

    fn embedding_file(
        &self,
        group: &Group,
        embeddings: &Embeddings,
        i: usize,
    ) -> ssdit_store::Result<TensorFile> {
        let (values, mask) = embeddings.row(i);
        let mut file = TensorFile::new();
        file.insert(
            EMBEDDING_TENSOR,
            F32Tensor::new(values.to_vec(), vec![embeddings.len, embeddings.dim])?,
        )
        .insert(
            MASK_TENSOR,
            F32Tensor::new(
                mask.iter().map(|&m| f32::from(m)).collect(),
                vec![embeddings.len],
            )?,
        )
        .set_metadata("encoder_fingerprint", self.encoding.encoder.clone())
        .set_metadata("tokenizer_fingerprint", self.encoding.tokenizer.clone())
        .set_metadata("max_length", self.encoding.max_length.to_string())
        .set_metadata("caption", group.caption.clone());
        Ok(file)
    }

    /// Publishes `TextEncoded` (the sample's embedding is at `embedding_key`)
    /// and acks; naks when the bus fails. Returns whether the message was acked.
    async fn finish(&self, item: Item, embedding_key: &Key) -> bool {
        let event = TextEncoded {
            dataset: item.event.dataset.clone(),
            sample_id: item.event.sample_id.clone(),
            embedding_key: embedding_key.to_string(),
            encoder_fingerprint: self.encoding.encoder.clone(),
            tokenizer_fingerprint: self.encoding.tokenizer.clone(),
            max_length: self.encoding.max_length,
        };
        match self.ctx.bus.publish_event(&event).await {
            Ok(()) => {
                answer(item.delivery.ack().await);
                true
            }
            Err(error) => {
                self.retry(item.delivery, &error.to_string()).await;
                false
            }
        }
    }

    /// Records the sample as rejected by this stage, publishes it, acks.
    async fn reject(&self, item: Item, reason: String) {
        let event = &item.event;
        tracing::warn!(dataset = %event.dataset, sample_id = %event.sample_id, file = %event.caption_key, %reason, "sample rejected");
        let record = RejectRecord {
            file: event.caption_key.clone(),
            reason: reason.clone(),
            stage: STAGE.into(),
            sample_id: Some(event.sample_id.clone()),
        };
        let recorded = match Dataset::new(self.ctx.store.clone(), &event.dataset) {
            Ok(dataset) => dataset.add_reject(&record).await.map_err(Error::from),
            Err(error) => Err(error.into()),
        };
        if let Err(error) = recorded {
            self.retry(item.delivery, &error.to_string()).await;
            return;
        }
        let rejected = SampleRejected {
            dataset: event.dataset.clone(),
            file: event.caption_key.clone(),
            reason,
            stage: STAGE.into(),
            sample_id: Some(event.sample_id.clone()),
        };
        if let Err(error) = self.ctx.bus.publish_event(&rejected).await {
            self.retry(item.delivery, &error.to_string()).await;
            return;
        }
        WorkerStats::add(&self.stats.rejected);
        answer(item.delivery.ack().await);
    }

    /// Naks for a retry after the consumer's backoff.
    async fn retry(&self, delivery: Delivery, reason: &str) {
        tracing::warn!(delivered = delivery.delivered(), reason, "retrying later");
        WorkerStats::add(&self.stats.retried);
        answer(delivery.nak(reason).await);
    }
}

/// The caption key of an event, or why the event cannot be processed at all
/// (its dataset, sample id or caption key is not a valid one).
fn check_event(ctx: &ServiceContext, event: &SampleIngested) -> Result<Key, String> {
    Dataset::new(ctx.store.clone(), &event.dataset).map_err(|e| e.to_string())?;
    ssdit_store::key::validate_id("sample id", &event.sample_id).map_err(|e| e.to_string())?;
    Key::parse(&event.caption_key).map_err(|e| e.to_string())
}

/// Logs a failed ack/nak/term: the message will be redelivered after the ack wait.
fn answer(result: ssdit_bus::Result<()>) {
    if let Err(error) = result {
        tracing::warn!(%error, "answering the bus failed; the message will be redelivered");
    }
}
