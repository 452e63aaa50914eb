//! The text-encoder's encoding stage: `SampleIngested` → the caption's
//! embedding in the cache → `TextEncoded`, then ack (the consume loop and
//! the answers are [`ssdit_server::encode`]'s).
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

use futures::future::join_all;
use ssdit_dataset::{CaptionHash, Dataset, TextEncoding};
use ssdit_proto::v1::{SampleIngested, TextEncoded};
use ssdit_server::ServiceContext;
use ssdit_server::encode::{EncodeStage, EncodeWorker, Replies, Sample};
use ssdit_store::{F32Tensor, Key, TensorFile};

use crate::model::{Embeddings, TextWorker};

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

/// The text-encoder's bus worker: one per process, any number per deployment.
pub type EmbeddingWorker = EncodeWorker<EmbeddingStage>;

/// One captioned sample of a fetched batch.
pub struct CaptionedSample {
    sample: Sample,
    caption_key: Key,
}

/// The samples of a batch with the same caption text: one embedding.
struct Group {
    caption: String,
    embedding_key: Key,
    samples: Vec<Sample>,
}

/// Captions to embeddings with one encoder at its default length.
#[derive(Clone)]
pub struct EmbeddingStage {
    ctx: ServiceContext,
    model: TextWorker,
    encoding: TextEncoding,
}

impl EncodeStage for EmbeddingStage {
    const DURABLE: &'static str = DURABLE;
    const STAGE: &'static str = STAGE;
    type Item = CaptionedSample;

    fn input_key(event: &SampleIngested) -> &str {
        &event.caption_key
    }

    fn describe(&self) -> String {
        format!(
            "encoder {}, tokenizer {}, max_length {}",
            self.encoding.encoder, self.encoding.tokenizer, self.encoding.max_length
        )
    }

    async fn admit(&self, sample: Sample, replies: &Replies) -> Option<CaptionedSample> {
        if sample.event.caption_key.is_empty() {
            tracing::debug!(sample_id = %sample.event.sample_id, "sample has no caption; nothing to encode");
            replies.ignore(sample).await;
            return None;
        }
        match check_event(&self.ctx, &sample.event) {
            Ok(caption_key) => Some(CaptionedSample {
                sample,
                caption_key,
            }),
            Err(reason) => {
                replies.terminate(sample, &reason).await;
                None
            }
        }
    }

    async fn encode(&self, items: Vec<CaptionedSample>, replies: &Replies) {
        let read: Vec<(Sample, String)> =
            join_all(items.into_iter().map(|item| read_caption(item, replies)))
                .await
                .into_iter()
                .flatten()
                .collect();
        let groups = self.group(read, replies).await;
        let todo: Vec<Group> = join_all(
            groups
                .into_iter()
                .map(|group| self.uncached(group, replies)),
        )
        .await
        .into_iter()
        .flatten()
        .collect();
        if !todo.is_empty() {
            self.encode_groups(todo, replies).await;
        }
    }
}

impl EmbeddingStage {
    /// The stage encoding with `model` at its default length.
    pub fn new(ctx: ServiceContext, model: TextWorker) -> Self {
        Self {
            ctx,
            encoding: model.encoding(),
            model,
        }
    }

    /// The cache identity of what it writes.
    pub fn encoding(&self) -> &TextEncoding {
        &self.encoding
    }

    /// Groups read captions by their embedding key (identical texts share one).
    async fn group(&self, read: Vec<(Sample, String)>, replies: &Replies) -> Vec<Group> {
        let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
        for (sample, caption) in read {
            let embedding_key = match self.encoding.embedding_key(&CaptionHash::of(&caption)) {
                Ok(key) => key,
                Err(error) => {
                    replies.retry(sample, &error.to_string()).await;
                    continue;
                }
            };
            groups
                .entry(embedding_key.clone())
                .or_insert_with(|| Group {
                    caption,
                    embedding_key,
                    samples: Vec::new(),
                })
                .samples
                .push(sample);
        }
        groups.into_values().collect()
    }

    /// The group, unless its embedding is already cached (then its messages
    /// are answered) or the store cannot tell (then they are retried).
    async fn uncached(&self, group: Group, replies: &Replies) -> Option<Group> {
        match self.ctx.store.exists(&group.embedding_key).await {
            Ok(false) => Some(group),
            Ok(true) => {
                tracing::debug!(key = %group.embedding_key, samples = group.samples.len(), "embedding already cached");
                for sample in group.samples {
                    let event = self.encoded(&sample, &group.embedding_key);
                    replies.finish_cached(sample, &event).await;
                }
                None
            }
            Err(error) => {
                replies.retry_all(group.samples, &error.to_string()).await;
                None
            }
        }
    }

    /// Encodes the batch's distinct captions in one forward pass and stores each embedding.
    async fn encode_groups(&self, groups: Vec<Group>, replies: &Replies) {
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
                    self.store_embedding(group, &embeddings, i, replies).await;
                }
            }
            Err(error) => {
                tracing::error!(batch = count, %error, "encoding failed");
                let samples = groups.into_iter().flat_map(|g| g.samples);
                replies.retry_all(samples, &error.to_string()).await;
            }
        }
    }

    /// Writes row `i` (unless it is not finite), then publishes and acks for
    /// every sample of the group.
    async fn store_embedding(
        &self,
        group: Group,
        embeddings: &Embeddings,
        i: usize,
        replies: &Replies,
    ) {
        let (values, _) = embeddings.row(i);
        if values.iter().any(|v| !v.is_finite()) {
            for sample in group.samples {
                let reason = "the text encoder produced non-finite embeddings";
                replies.reject(sample, reason.into()).await;
            }
            return;
        }
        let file = self.embedding_file(&group, embeddings, i);
        let finished = group
            .samples
            .into_iter()
            .map(|sample| {
                let event = self.encoded(&sample, &group.embedding_key);
                (sample, event)
            })
            .collect();
        replies.store(&group.embedding_key, file, finished).await;
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

    /// The `TextEncoded` event of a sample whose embedding is at `embedding_key`.
    fn encoded(&self, sample: &Sample, embedding_key: &Key) -> TextEncoded {
        TextEncoded {
            dataset: sample.event.dataset.clone(),
            sample_id: sample.event.sample_id.clone(),
            embedding_key: embedding_key.to_string(),
            encoder_fingerprint: self.encoding.encoder.clone(),
            tokenizer_fingerprint: self.encoding.tokenizer.clone(),
            max_length: self.encoding.max_length,
        }
    }
}

/// Reads the caption text (trimmed, as the seed does); rejects or retries on failure.
async fn read_caption(item: CaptionedSample, replies: &Replies) -> Option<(Sample, String)> {
    let (sample, bytes) = replies
        .read_input(item.sample, &item.caption_key, MAX_CAPTION_BYTES, "caption")
        .await?;
    match String::from_utf8(bytes.to_vec()) {
        Ok(text) => Some((sample, text.trim().to_string())),
        Err(_) => {
            replies
                .reject(sample, "caption is not UTF-8 text".into())
                .await;
            None
        }
    }
}

/// The caption key of an event, or why the event cannot be processed at all
/// (its dataset, sample id or caption key is not a valid one).
fn check_event(ctx: &ServiceContext, event: &SampleIngested) -> Result<Key, String> {
    Dataset::new(ctx.store.clone(), &event.dataset).map_err(|e| e.to_string())?;
    ssdit_store::key::validate_id("sample id", &event.sample_id).map_err(|e| e.to_string())?;
    Key::parse(&event.caption_key).map_err(|e| e.to_string())
}
