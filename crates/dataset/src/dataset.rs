use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use ssdit_proto::v1::SampleIngested;
use ssdit_store::{Key, Store, layout};

use crate::encodings::encoded_captions;
use crate::{CaptionHash, Encodings, Error, RejectRecord, Result, SampleRecord, TrainingManifest};

/// Records read concurrently when listing a dataset.
const READ_CONCURRENCY: usize = 16;

/// Largest record accepted from the store.
const MAX_RECORD_BYTES: u64 = 1 << 20;

/// One named dataset in the store.
#[derive(Debug, Clone)]
pub struct Dataset {
    store: Store,
    name: String,
}

/// How far each stage has got with a dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetStatus {
    /// Samples accepted by ingest.
    pub ingested: usize,
    /// Of those, samples with a caption.
    pub captioned: usize,
    /// Of those, samples with a latent for the current VAE and their bucket.
    pub latents: usize,
    /// Of those, samples with an embedding of their current caption for the
    /// text encoding (an edited caption counts once it is encoded again).
    pub embeddings: usize,
    /// Samples with both: ready to train on.
    pub ready: usize,
    /// Inputs refused, at any stage.
    pub rejected: usize,
}

impl Dataset {
    /// The dataset `name` in `store`; fails if the name is not a valid one.
    pub fn new(store: Store, name: &str) -> Result<Self> {
        layout::dataset_root(name)?;
        Ok(Self {
            store,
            name: name.to_string(),
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The event that announces `record`, a sample of this dataset, to the
    /// encoders.
    pub fn announcement(&self, record: &SampleRecord) -> SampleIngested {
        SampleIngested {
            dataset: self.name.clone(),
            sample_id: record.id.clone(),
            image_key: record.image_key.clone(),
            caption_key: record.caption_key.clone().unwrap_or_default(),
            bucket_width: record.bucket.width,
            bucket_height: record.bucket.height,
        }
    }

    /// The store it lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether sample `id` is already recorded (its record is written last).
    pub async fn contains(&self, id: &str) -> Result<bool> {
        Ok(self
            .store
            .exists(&layout::sample_record(&self.name, id)?)
            .await?)
    }

    /// Stores an accepted sample: its image (encoded bytes, `ext` their
    /// format), its caption if any, then its record. Completed only when the
    /// record is written, so a crash midway leaves no record behind.
    pub async fn add_sample(
        &self,
        mut record: SampleRecord,
        image: Bytes,
        ext: &str,
        caption: Option<&str>,
    ) -> Result<SampleRecord> {
        let image_key = layout::image(&self.name, &record.id, ext)?;
        self.store.put(&image_key, image).await?;
        record.image_key = image_key.to_string();
        record.caption_key = match caption {
            Some(text) => {
                let key = layout::caption(&self.name, &record.id)?;
                self.store
                    .put(&key, Bytes::copy_from_slice(text.as_bytes()))
                    .await?;
                Some(key.to_string())
            }
            None => None,
        };
        let record_key = layout::sample_record(&self.name, &record.id)?;
        self.store.put(&record_key, to_json(&record)).await?;
        Ok(record)
    }

    /// Records a refused input (idempotent: the same rejection lands on the same key).
    pub async fn add_reject(&self, reject: &RejectRecord) -> Result<()> {
        let key = layout::reject(&self.name, &reject.id())?;
        self.store.put(&key, to_json(reject)).await?;
        Ok(())
    }

    /// One sample's record.
    pub async fn sample(&self, id: &str) -> Result<SampleRecord> {
        self.read_record(&layout::sample_record(&self.name, id)?)
            .await
    }

    /// Every sample record, sorted by id.
    pub async fn samples(&self) -> Result<Vec<SampleRecord>> {
        let mut samples: Vec<SampleRecord> =
            self.read_all(&layout::samples_prefix(&self.name)?).await?;
        samples.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(samples)
    }

    /// Every reject record.
    pub async fn rejects(&self) -> Result<Vec<RejectRecord>> {
        self.read_all(&layout::rejects_prefix(&self.name)?).await
    }

    /// A sample's caption text, if it has one.
    pub async fn caption(&self, record: &SampleRecord) -> Result<Option<String>> {
        let Some(key) = &record.caption_key else {
            return Ok(None);
        };
        let bytes = self
            .store
            .get_bounded(&Key::parse(key)?, MAX_RECORD_BYTES)
            .await?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| Error::Caption {
                dataset: self.name.clone(),
                sample_id: record.id.clone(),
            })
    }

    /// Counts what each stage has done, for the given encodings.
    pub async fn status(&self, encodings: &Encodings) -> Result<DatasetStatus> {
        let samples = self.samples().await?;
        let encoded = self.encoded(&samples, encodings).await?;
        let mut status = DatasetStatus {
            ingested: samples.len(),
            rejected: self
                .store
                .list(&layout::rejects_prefix(&self.name)?)
                .await?
                .len(),
            ..DatasetStatus::default()
        };
        for sample in &samples {
            let has_latent = encoded.has_latent(encodings, sample)?;
            let has_embedding = encoded.embedded_caption(sample).is_some();
            status.captioned += usize::from(sample.caption_key.is_some());
            status.latents += usize::from(has_latent);
            status.embeddings += usize::from(has_embedding);
            status.ready += usize::from(has_latent && has_embedding);
        }
        Ok(status)
    }

    /// Which samples the trainer can use with these encodings, and why the
    /// others cannot.
    pub async fn training_manifest(&self, encodings: &Encodings) -> Result<TrainingManifest> {
        let samples = self.samples().await?;
        let encoded = self.encoded(&samples, encodings).await?;
        let rejects: BTreeMap<String, RejectRecord> = self
            .rejects()
            .await?
            .into_iter()
            .filter_map(|r| r.sample_id.clone().map(|id| (id, r)))
            .collect();
        TrainingManifest::build(self, encodings, samples, &encoded, &rejects)
    }

    /// The [`CaptionHash`] of each sample's current caption, by sample id
    /// (of its id for a sample without a caption). Samples whose caption is
    /// missing, too large or not UTF-8 are left out: the text encoder rejects
    /// them, so they have no embedding.
    pub async fn caption_hashes(
        &self,
        samples: &[SampleRecord],
    ) -> Result<BTreeMap<String, CaptionHash>> {
        let hashes: Vec<Option<(String, CaptionHash)>> = futures::stream::iter(samples)
            .map(|sample| async move {
                let caption = match self.caption(sample).await {
                    Ok(caption) => caption,
                    Err(Error::Caption { .. })
                    | Err(Error::Store(
                        ssdit_store::Error::NotFound { .. } | ssdit_store::Error::TooLarge { .. },
                    )) => return Ok(None),
                    Err(error) => return Err(error),
                };
                let hash = CaptionHash::for_sample(&sample.id, caption.as_deref());
                Ok(Some((sample.id.clone(), hash)))
            })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(hashes.into_iter().flatten().collect())
    }

    async fn encoded(&self, samples: &[SampleRecord], encodings: &Encodings) -> Result<Encoded> {
        let latents = self
            .store
            .list(&ssdit_store::layout::latents_prefix(&encodings.vae)?)
            .await?
            .into_iter()
            .map(|o| o.key.to_string())
            .collect();
        Ok(Encoded {
            latents,
            embeddings: encoded_captions(&self.store, &encodings.text).await?,
            captions: self.caption_hashes(samples).await?,
        })
    }

    async fn read_all<T: DeserializeOwned>(&self, prefix: &Key) -> Result<Vec<T>> {
        let objects = self.store.list(prefix).await?;
        futures::stream::iter(objects)
            .map(|object| async move { self.read_record(&object.key).await })
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await
    }

    async fn read_record<T: DeserializeOwned>(&self, key: &Key) -> Result<T> {
        let bytes = self.store.get_bounded(key, MAX_RECORD_BYTES).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Record {
            dataset: self.name.clone(),
            key: key.to_string(),
            reason: e.to_string(),
        })
    }
}

/// What the encoders have written for one set of encodings.
pub(crate) struct Encoded {
    /// Keys of every latent of the VAE.
    latents: BTreeSet<String>,
    /// Captions with an embedding.
    embeddings: BTreeSet<CaptionHash>,
    /// Each sample's caption, by sample id (see [`Dataset::caption_hashes`]).
    captions: BTreeMap<String, CaptionHash>,
}

impl Encoded {
    pub(crate) fn has_latent(&self, encodings: &Encodings, sample: &SampleRecord) -> Result<bool> {
        let key = encodings.latent_key(&sample.id, sample.bucket)?;
        Ok(self.latents.contains(key.as_str()))
    }

    /// The caption of `sample`, if its embedding is cached.
    pub(crate) fn embedded_caption(&self, sample: &SampleRecord) -> Option<&CaptionHash> {
        self.captions
            .get(&sample.id)
            .filter(|caption| self.embeddings.contains(*caption))
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(value).expect("records serialise"))
}
