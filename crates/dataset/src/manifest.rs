use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ssdit_store::layout;

use crate::dataset::Encoded;
use crate::{Bucket, Dataset, Encodings, RejectRecord, Result, SampleRecord};

/// The samples a training run will use, and the ones it cannot, with reasons.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingManifest {
    pub dataset: String,
    pub ready: Vec<ReadySample>,
    pub missing: Vec<MissingSample>,
}

/// A sample with everything the trainer needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadySample {
    pub id: String,
    pub bucket: Bucket,
    pub latent_key: String,
    pub embedding_key: String,
}

/// A sample the trainer cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingSample {
    pub id: String,
    pub source: String,
    pub reason: String,
}

impl TrainingManifest {
    pub(crate) fn build(
        dataset: &Dataset,
        encodings: &Encodings,
        samples: Vec<SampleRecord>,
        encoded: &Encoded,
        rejects: &BTreeMap<String, RejectRecord>,
    ) -> Result<Self> {
        let mut manifest = Self {
            dataset: dataset.name().to_string(),
            ..Self::default()
        };
        for sample in samples {
            let has_latent = encoded.has_latent(encodings, &sample)?;
            let caption = encoded.embedded_caption(&sample);
            if let (true, Some(caption)) = (has_latent, caption) {
                manifest.ready.push(ReadySample {
                    latent_key: encodings.latent_key(&sample.id, sample.bucket)?.to_string(),
                    embedding_key: encodings.embedding_key(caption)?.to_string(),
                    id: sample.id,
                    bucket: sample.bucket,
                });
                continue;
            }
            let reason = match rejects.get(&sample.id) {
                Some(reject) => format!("rejected by {}: {}", reject.stage, reject.reason),
                None => missing_reason(encodings, &sample, has_latent, caption.is_some()),
            };
            manifest.missing.push(MissingSample {
                id: sample.id,
                source: sample.source,
                reason,
            });
        }
        Ok(manifest)
    }

    /// Ready samples grouped by bucket (batches never mix buckets).
    pub fn by_bucket(&self) -> BTreeMap<Bucket, Vec<&ReadySample>> {
        let mut buckets: BTreeMap<Bucket, Vec<&ReadySample>> = BTreeMap::new();
        for sample in &self.ready {
            buckets.entry(sample.bucket).or_default().push(sample);
        }
        buckets
    }

    /// Writes this manifest to the dataset's `manifest.json`, for inspection
    /// and for runs to record exactly what they trained on.
    pub async fn save(&self, dataset: &Dataset) -> Result<()> {
        let key = layout::manifest(dataset.name())?;
        let bytes = serde_json::to_vec_pretty(self).expect("manifests serialise");
        dataset.store().put(&key, bytes.into()).await?;
        Ok(())
    }
}

fn missing_reason(
    encodings: &Encodings,
    sample: &SampleRecord,
    has_latent: bool,
    has_embedding: bool,
) -> String {
    let mut reasons = Vec::new();
    if !has_latent {
        reasons.push(format!(
            "no latent for VAE {} at {}",
            encodings.vae, sample.bucket
        ));
    }
    if sample.caption_key.is_none() {
        reasons.push("no caption".to_string());
    } else if !has_embedding {
        reasons.push(format!(
            "no embedding of its caption for text encoder {} (tokenizer {}, {} tokens)",
            encodings.text.encoder, encodings.text.tokenizer, encodings.text.max_length
        ));
    }
    reasons.join("; ")
}
