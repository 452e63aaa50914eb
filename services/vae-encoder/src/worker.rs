//! The bus worker: `SampleIngested` → the sample's latent in the cache →
//! `LatentEncoded`, then ack.
//!
//! A fetched batch is grouped by bucket and each group is encoded in one
//! forward pass. The latent is written at its deterministic key before the
//! event is published and the message acked; a latent already there is not
//! computed again (the event is published again, so a crash between write
//! and publish never loses it). A missing or corrupt image, or a latent that
//! is not finite, is recorded as a reject of stage `vae` and acked; a store
//! or bus failure naks the message for a later retry with backoff.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::join_all;
use image::RgbImage;
use ssdit_bus::{BusExt, ConsumerConfig, Delivery};
use ssdit_core::Config;
use ssdit_dataset::{Bucket, Dataset, RejectRecord};
use ssdit_proto::Event;
use ssdit_proto::v1::{LatentEncoded, SampleIngested, SampleRejected};
use ssdit_server::ServiceContext;
use ssdit_store::{F32Tensor, Key, TensorFile, layout};
use ssdit_vae::Sampling;
use tokio_util::sync::CancellationToken;

use crate::codec::{CodecWorker, ImageBatch, Latent};
use crate::images::{decode_rgb, header, limits};
use crate::{Error, Result};

/// The durable consumer all vae-encoder replicas share.
pub const DURABLE: &str = "vae-encoder";
/// The stage named in reject records.
pub const STAGE: &str = "vae";
/// Name of the latent tensor in a cache file (the seed's cache key).
pub const LATENT_TENSOR: &str = "latents";

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
    /// Latents computed and written.
    pub written: u64,
    /// Messages whose latent was already in the store.
    pub skipped: u64,
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

/// The seed of a sample's posterior draw: derived from its id, so that a
/// redelivered message writes the identical latent.
pub fn posterior_seed(sample_id: &str) -> u64 {
    let hash = blake3::Hasher::new_derive_key("ssdit vae-encoder posterior seed v1")
        .update(sample_id.as_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(bytes)
}

/// One sample of a fetched batch.
struct Item {
    delivery: Delivery,
    event: SampleIngested,
    bucket: Bucket,
    image_key: Key,
    latent_key: Key,
}

/// An item whose image is decoded and ready to encode.
struct Ready {
    item: Item,
    image: RgbImage,
}

/// The worker: one per process, any number per deployment.
#[derive(Clone)]
pub struct LatentWorker {
    ctx: ServiceContext,
    codec: CodecWorker,
    stats: Arc<WorkerStats>,
}

impl LatentWorker {
    /// A worker encoding with `codec`.
    pub fn new(ctx: ServiceContext, codec: CodecWorker) -> Self {
        Self {
            ctx,
            codec,
            stats: Arc::default(),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
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
        tracing::info!(durable = DURABLE, batch, vae = %self.codec.info().fingerprint, "vae-encoder worker started");
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
        tracing::info!(durable = DURABLE, "vae-encoder worker stopped");
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
        let ready = join_all(items.into_iter().map(|item| self.read_image(item)))
            .await
            .into_iter()
            .flatten();
        let mut groups: BTreeMap<Bucket, Vec<Ready>> = BTreeMap::new();
        for ready in ready {
            groups.entry(ready.item.bucket).or_default().push(ready);
        }
        for (bucket, group) in groups {
            self.encode_group(bucket, group).await;
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
        let bucket = Bucket {
            width: event.bucket_width,
            height: event.bucket_height,
        };
        let (image_key, latent_key) = match self.check_event(&event, bucket) {
            Ok(keys) => keys,
            Err(reason) => {
                tracing::warn!(sample_id = %event.sample_id, %reason, "malformed sample_ingested event");
                answer(delivery.term(&reason).await);
                return None;
            }
        };
        match self.ctx.store.exists(&latent_key).await {
            Ok(false) => Some(Item {
                delivery,
                event,
                bucket,
                image_key,
                latent_key,
            }),
            Ok(true) => {
                tracing::debug!(sample_id = %event.sample_id, key = %latent_key, "latent already cached");
                let item = Item {
                    delivery,
                    event,
                    bucket,
                    image_key,
                    latent_key,
                };
                if self.finish(item).await {
                    WorkerStats::add(&self.stats.skipped);
                }
                None
            }
            Err(error) => {
                self.retry(delivery, &error.to_string()).await;
                None
            }
        }
    }

    /// The image and latent keys of an event, or why the event cannot be
    /// processed at all.
    fn check_event(&self, event: &SampleIngested, bucket: Bucket) -> Result<(Key, Key), String> {
        Dataset::new(self.ctx.store.clone(), &event.dataset).map_err(|e| e.to_string())?;
        let factor = self.codec.info().factor as u32;
        if bucket.width == 0
            || bucket.height == 0
            || !bucket.width.is_multiple_of(factor)
            || !bucket.height.is_multiple_of(factor)
        {
            return Err(format!(
                "bucket {bucket} is not a positive multiple of {factor} pixels"
            ));
        }
        let image_key = Key::parse(&event.image_key).map_err(|e| e.to_string())?;
        let latent_key = layout::latent(
            &event.sample_id,
            &self.codec.info().fingerprint,
            bucket.width,
            bucket.height,
        )
        .map_err(|e| e.to_string())?;
        Ok((image_key, latent_key))
    }

    /// Reads and decodes the bucket-sized image; rejects or retries on failure.
    async fn read_image(&self, item: Item) -> Option<Ready> {
        let max_bytes = self.ctx.config.ingest.max_bytes;
        let bytes = match self.ctx.store.get_bounded(&item.image_key, max_bytes).await {
            Ok(bytes) => bytes,
            Err(ssdit_store::Error::NotFound { .. }) => {
                self.reject(item, "image is missing from the store".into())
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
        let bucket = item.bucket;
        let limits = limits(
            max_bytes,
            u64::from(bucket.width) * u64::from(bucket.height),
        );
        let background = self.ctx.config.ingest.background;
        // Decoding takes milliseconds: off the executor.
        let decoded = tokio::task::spawn_blocking(move || {
            let head = header(&bytes, &limits).map_err(|e| e.to_string())?;
            if (head.width, head.height) != (bucket.width, bucket.height) {
                return Err(format!(
                    "image is {}×{}, not its bucket's {bucket}",
                    head.width, head.height
                ));
            }
            decode_rgb(&bytes, &head, &limits, background).map_err(|e| e.to_string())
        })
        .await;
        let image = match decoded {
            Ok(image) => image,
            Err(error) => {
                self.retry(item.delivery, &format!("image decoding task: {error}"))
                    .await;
                return None;
            }
        };
        match image {
            Ok(image) => Some(Ready { item, image }),
            Err(reason) => {
                self.reject(item, reason).await;
                None
            }
        }
    }

    /// Encodes one bucket's images in one forward pass and stores each latent.
    async fn encode_group(&self, bucket: Bucket, group: Vec<Ready>) {
        let sampling = if self.ctx.config.encode.sample_latents {
            Sampling::Seeds(
                group
                    .iter()
                    .map(|r| posterior_seed(&r.item.event.sample_id))
                    .collect(),
            )
        } else {
            Sampling::Mean
        };
        let (items, images): (Vec<Item>, Vec<RgbImage>) =
            group.into_iter().map(|r| (r.item, r.image)).unzip();
        let started = std::time::Instant::now();
        let count = items.len();
        match self.codec.encode(ImageBatch::Rgb(images), sampling).await {
            Ok(latents) => {
                tracing::info!(%bucket, batch = count, ms = started.elapsed().as_millis() as u64, "encoded latents");
                for (item, latent) in items.into_iter().zip(latents) {
                    self.store_latent(item, latent).await;
                }
            }
            Err(error) => {
                tracing::error!(%bucket, batch = count, %error, "encoding failed");
                for item in items {
                    self.retry(item.delivery, &error.to_string()).await;
                }
            }
        }
    }

    /// Writes one latent (unless it is not finite), publishes, acks.
    async fn store_latent(&self, item: Item, latent: Latent) {
        if !latent.is_finite() {
            self.reject(item, "the VAE produced non-finite latents".into())
                .await;
            return;
        }
        let file = match self.latent_file(&item, latent) {
            Ok(file) => file,
            Err(error) => {
                self.retry(item.delivery, &error.to_string()).await;
                return;
            }
        };
        if let Err(error) = self.ctx.store.put_tensors(&item.latent_key, file).await {
            self.retry(item.delivery, &error.to_string()).await;
            return;
        }
        WorkerStats::add(&self.stats.written);
        self.finish(item).await;
    }

    fn latent_file(&self, item: &Item, latent: Latent) -> Result<TensorFile> {
        let posterior = if self.ctx.config.encode.sample_latents {
            "sample"
        } else {
            "mean"
        };
        let mut file = TensorFile::new();
        file.insert(
            LATENT_TENSOR,
            F32Tensor::new(latent.values, latent.shape.to_vec())?,
        )
        .set_metadata("vae_fingerprint", self.codec.info().fingerprint.clone())
        .set_metadata("bucket", item.bucket.to_string())
        .set_metadata("sample_id", item.event.sample_id.clone())
        .set_metadata("posterior", posterior);
        Ok(file)
    }

    /// Publishes `LatentEncoded` and acks; naks when the bus fails. Returns
    /// whether the message was acked.
    async fn finish(&self, item: Item) -> bool {
        let event = LatentEncoded {
            dataset: item.event.dataset.clone(),
            sample_id: item.event.sample_id.clone(),
            latent_key: item.latent_key.to_string(),
            vae_fingerprint: self.codec.info().fingerprint.clone(),
            bucket_width: item.bucket.width,
            bucket_height: item.bucket.height,
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
        tracing::warn!(dataset = %event.dataset, sample_id = %event.sample_id, file = %event.image_key, %reason, "sample rejected");
        let record = RejectRecord {
            file: event.image_key.clone(),
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
            file: event.image_key.clone(),
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

/// Logs a failed ack/nak/term: the message will be redelivered after the ack wait.
fn answer(result: ssdit_bus::Result<()>) {
    if let Err(error) = result {
        tracing::warn!(%error, "answering the bus failed; the message will be redelivered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssdit_bus::{InProcessBus, StreamConfig};
    use ssdit_store::Store;

    #[test]
    fn posterior_seeds_are_stable_and_distinct() {
        assert_eq!(posterior_seed("abc"), posterior_seed("abc"));
        assert_ne!(posterior_seed("abc"), posterior_seed("abd"));
    }

    #[tokio::test]
    async fn non_finite_latents_are_rejected_not_stored() {
        let mut config = Config::default();
        config.models.vae = "preview".into();
        let ctx = ServiceContext {
            config: Arc::new(config),
            store: Store::open("memory://").await.unwrap(),
            bus: Arc::new(InProcessBus::new(StreamConfig::default()).unwrap()),
        };
        let codec = CodecWorker::load(&ctx.config.models).await.unwrap();
        let worker = LatentWorker::new(ctx.clone(), codec);
        let event = SampleIngested {
            dataset: "flowers".into(),
            sample_id: "abc".into(),
            image_key: "datasets/flowers/images/abc.png".into(),
            caption_key: String::new(),
            bucket_width: 8,
            bucket_height: 8,
        };
        let bucket = Bucket {
            width: 8,
            height: 8,
        };
        ctx.bus.publish_event(&event).await.unwrap();
        let consumer = ctx
            .bus
            .consumer(consumer_config(&ctx.config))
            .await
            .unwrap();
        let delivery = consumer
            .fetch(1, Duration::from_secs(1))
            .await
            .unwrap()
            .pop()
            .unwrap();
        let (image_key, latent_key) = worker.check_event(&event, bucket).unwrap();
        let item = Item {
            delivery,
            event,
            bucket,
            image_key,
            latent_key: latent_key.clone(),
        };
        let latent = Latent {
            values: vec![f32::NAN; 16],
            shape: [16, 1, 1],
        };
        worker.store_latent(item, latent).await;
        assert!(!ctx.store.exists(&latent_key).await.unwrap());
        let rejects = Dataset::new(ctx.store.clone(), "flowers")
            .unwrap()
            .rejects()
            .await
            .unwrap();
        assert_eq!(rejects.len(), 1);
        assert!(rejects[0].reason.contains("non-finite"), "{:?}", rejects[0]);
        assert_eq!(worker.stats().rejected, 1);
    }
}
