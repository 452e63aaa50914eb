//! The vae-encoder's encoding stage: `SampleIngested` → the sample's latent
//! in the cache → `LatentEncoded`, then ack (the consume loop and the
//! answers are [`ssdit_server::encode`]'s).
//!
//! A fetched batch is grouped by bucket and each group is encoded in one
//! forward pass. The latent is written at its deterministic key before the
//! event is published and the message acked; a latent already there is not
//! computed again (the event is published again, so a crash between write
//! and publish never loses it). A missing or corrupt image, or a latent that
//! is not finite, is recorded as a reject of stage `vae` and acked; a store
//! or bus failure naks the message for a later retry with backoff.

use std::collections::BTreeMap;

use futures::future::join_all;
use image::RgbImage;
use ssdit_dataset::{Bucket, Dataset};
use ssdit_proto::v1::{LatentEncoded, SampleIngested};
use ssdit_server::ServiceContext;
use ssdit_server::encode::{EncodeStage, EncodeWorker, Replies, Sample};
use ssdit_store::{F32Tensor, Key, TensorFile, layout};
use ssdit_vae::Sampling;

use crate::codec::{CodecWorker, ImageBatch, Latent};
use crate::images::{decode_rgb, header, limits};

/// The durable consumer all vae-encoder replicas share.
pub const DURABLE: &str = "vae-encoder";
/// The stage named in reject records.
pub const STAGE: &str = "vae";
/// Name of the latent tensor in a cache file (the seed's cache key).
pub const LATENT_TENSOR: &str = "latents";

/// The vae-encoder's bus worker: one per process, any number per deployment.
pub type LatentWorker = EncodeWorker<LatentStage>;

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

/// One sample of a fetched batch whose latent is not cached yet.
pub struct BucketedSample {
    sample: Sample,
    bucket: Bucket,
    image_key: Key,
    latent_key: Key,
}

/// A sample whose image is decoded and ready to encode.
struct Ready {
    item: BucketedSample,
    image: RgbImage,
}

/// Bucket-sized images to latents with one codec.
#[derive(Clone)]
pub struct LatentStage {
    ctx: ServiceContext,
    codec: CodecWorker,
}

impl EncodeStage for LatentStage {
    const DURABLE: &'static str = DURABLE;
    const STAGE: &'static str = STAGE;
    type Item = BucketedSample;

    fn input_key(event: &SampleIngested) -> &str {
        &event.image_key
    }

    fn describe(&self) -> String {
        format!("vae {}", self.codec.info().fingerprint)
    }

    async fn admit(&self, sample: Sample, replies: &Replies) -> Option<BucketedSample> {
        let bucket = Bucket {
            width: sample.event.bucket_width,
            height: sample.event.bucket_height,
        };
        let (image_key, latent_key) = match self.check_event(&sample.event, bucket) {
            Ok(keys) => keys,
            Err(reason) => {
                replies.terminate(sample, &reason).await;
                return None;
            }
        };
        let exists = self.ctx.store.exists(&latent_key).await;
        let item = BucketedSample {
            sample,
            bucket,
            image_key,
            latent_key,
        };
        match exists {
            Ok(false) => Some(item),
            Ok(true) => {
                tracing::debug!(sample_id = %item.sample.event.sample_id, key = %item.latent_key, "latent already cached");
                let event = self.encoded(&item);
                replies.finish_cached(item.sample, &event).await;
                None
            }
            Err(error) => {
                replies.retry(item.sample, &error.to_string()).await;
                None
            }
        }
    }

    async fn encode(&self, items: Vec<BucketedSample>, replies: &Replies) {
        let ready = join_all(items.into_iter().map(|item| self.read_image(item, replies)))
            .await
            .into_iter()
            .flatten();
        let mut groups: BTreeMap<Bucket, Vec<Ready>> = BTreeMap::new();
        for ready in ready {
            groups.entry(ready.item.bucket).or_default().push(ready);
        }
        for (bucket, group) in groups {
            self.encode_group(bucket, group, replies).await;
        }
    }
}

impl LatentStage {
    /// The stage encoding with `codec`.
    pub fn new(ctx: ServiceContext, codec: CodecWorker) -> Self {
        Self { ctx, codec }
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
    async fn read_image(&self, item: BucketedSample, replies: &Replies) -> Option<Ready> {
        let max_bytes = self.ctx.config.ingest.max_bytes;
        let (sample, bytes) = replies
            .read_input(item.sample, &item.image_key, max_bytes, "image")
            .await?;
        let item = BucketedSample { sample, ..item };
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
                let reason = format!("image decoding task: {error}");
                replies.retry(item.sample, &reason).await;
                return None;
            }
        };
        match image {
            Ok(image) => Some(Ready { item, image }),
            Err(reason) => {
                replies.reject(item.sample, reason).await;
                None
            }
        }
    }

    /// Encodes one bucket's images in one forward pass and stores each latent.
    async fn encode_group(&self, bucket: Bucket, group: Vec<Ready>, replies: &Replies) {
        let sampling = if self.ctx.config.encode.sample_latents {
            Sampling::Seeds(
                group
                    .iter()
                    .map(|r| posterior_seed(&r.item.sample.event.sample_id))
                    .collect(),
            )
        } else {
            Sampling::Mean
        };
        let (items, images): (Vec<BucketedSample>, Vec<RgbImage>) =
            group.into_iter().map(|r| (r.item, r.image)).unzip();
        let started = std::time::Instant::now();
        let count = items.len();
        match self.codec.encode(ImageBatch::Rgb(images), sampling).await {
            Ok(latents) => {
                tracing::info!(%bucket, batch = count, ms = started.elapsed().as_millis() as u64, "encoded latents");
                for (item, latent) in items.into_iter().zip(latents) {
                    self.store_latent(item, latent, replies).await;
                }
            }
            Err(error) => {
                tracing::error!(%bucket, batch = count, %error, "encoding failed");
                let samples = items.into_iter().map(|item| item.sample);
                replies.retry_all(samples, &error.to_string()).await;
            }
        }
    }

    /// Writes one latent (unless it is not finite), publishes, acks.
    async fn store_latent(&self, item: BucketedSample, latent: Latent, replies: &Replies) {
        if !latent.is_finite() {
            let reason = "the VAE produced non-finite latents";
            replies.reject(item.sample, reason.into()).await;
            return;
        }
        let file = self.latent_file(&item, latent);
        let event = self.encoded(&item);
        replies
            .store(&item.latent_key, file, vec![(item.sample, event)])
            .await;
    }

    fn latent_file(
        &self,
        item: &BucketedSample,
        latent: Latent,
    ) -> ssdit_store::Result<TensorFile> {
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
        .set_metadata("sample_id", item.sample.event.sample_id.clone())
        .set_metadata("posterior", posterior);
        Ok(file)
    }

    /// The `LatentEncoded` event of a sample whose latent is at its key.
    fn encoded(&self, item: &BucketedSample) -> LatentEncoded {
        LatentEncoded {
            dataset: item.sample.event.dataset.clone(),
            sample_id: item.sample.event.sample_id.clone(),
            latent_key: item.latent_key.to_string(),
            vae_fingerprint: self.codec.info().fingerprint.clone(),
            bucket_width: item.bucket.width,
            bucket_height: item.bucket.height,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use ssdit_bus::{BusExt, InProcessBus, StreamConfig};
    use ssdit_core::Config;
    use ssdit_store::Store;

    use super::*;

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
        let worker = LatentWorker::new(ctx.clone(), LatentStage::new(ctx.clone(), codec));
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
            .consumer(LatentWorker::consumer_config(&ctx.config))
            .await
            .unwrap();
        let delivery = consumer
            .fetch(1, Duration::from_secs(1))
            .await
            .unwrap()
            .pop()
            .unwrap();
        let (image_key, latent_key) = worker.stage().check_event(&event, bucket).unwrap();
        let item = BucketedSample {
            sample: Sample { delivery, event },
            bucket,
            image_key,
            latent_key: latent_key.clone(),
        };
        let latent = Latent {
            values: vec![f32::NAN; 16],
            shape: [16, 1, 1],
        };
        worker
            .stage()
            .store_latent(item, latent, worker.replies())
            .await;
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
