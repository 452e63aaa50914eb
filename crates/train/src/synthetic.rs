//! A small synthetic encoded dataset written straight into a store: sample
//! records, latents and caption embeddings, as ingest and the encoders would
//! leave them. It lets tests, demos and smoke runs exercise the trainer
//! without images, a VAE or a text encoder.
//!
//! Latents are smooth per-sample patterns (sums of sinusoids with a
//! per-sample phase) so that a model can learn them; embeddings are seeded
//! Gaussian noise, one per sample.

use burn::backend::NdArray;
use bytes::Bytes;
use ssdit_core::config::ModelsConfig;
use ssdit_dataset::{Bucket, CaptionHash, Dataset, Encodings, SampleRecord, TextEncoding};
use ssdit_store::{F32Tensor, Store, TensorFile};

use crate::Result;
use ssdit_vae::{CodecChoice, load_codec};

use crate::data::{EMBEDDING_TENSORS, LATENT_TENSORS};
use crate::encodings::text_encoder_fingerprint;
use crate::rng::{self, Purpose, Streams};

/// What to write.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticDataset {
    /// The dataset's name.
    pub name: String,
    /// Samples per bucket.
    pub per_bucket: usize,
    /// The buckets (pixel sizes; latents are 8× smaller).
    pub buckets: Vec<Bucket>,
    /// Latent channels (16 for the FLUX VAE and the preview codec).
    pub channels: usize,
    /// Caption tokens and embedding width (the tiny text encoder's width is 128).
    pub text_tokens: usize,
    pub text_dim: usize,
    /// Seed of the embeddings and latent phases.
    pub seed: u64,
}

impl SyntheticDataset {
    /// `per_bucket` samples of one 64×64-pixel bucket (8×8 latents), 16
    /// channels, 8 caption tokens 128 wide.
    pub fn tiny(name: &str, per_bucket: usize) -> Self {
        Self {
            name: name.to_string(),
            per_bucket,
            buckets: vec![Bucket {
                width: 64,
                height: 64,
            }],
            channels: 16,
            text_tokens: 8,
            text_dim: 128,
            seed: 0,
        }
    }

    /// Fixed cache identities, for tests that pass them to the trainer
    /// directly ([`RunRequest::encodings`](crate::RunRequest)).
    pub fn fixed_encodings(&self) -> Encodings {
        Encodings {
            vae: "synthetic-vae".into(),
            text: TextEncoding {
                encoder: "synthetic-text".into(),
                tokenizer: "synthetic-tokenizer".into(),
                max_length: self.text_tokens as u32,
            },
        }
    }

    /// The cache identities the configured `models` would give this data
    /// (the codec's and text encoder's fingerprints, `text_tokens` long), so
    /// that a run resolving its encodings from `models` finds it.
    pub fn encodings_for(&self, models: &ModelsConfig) -> Result<Encodings> {
        let choice: CodecChoice = models.vae.parse()?;
        let codec = load_codec::<NdArray<f32>>(&choice, &Default::default())?;
        let tokenizer = if models.text_encoder.trim() == "tiny" {
            ssdit_text::tiny::tiny_tokenizer_fingerprint()
        } else {
            "synthetic-tokenizer".into()
        };
        Ok(Encodings {
            vae: codec.fingerprint().to_string(),
            text: TextEncoding {
                encoder: text_encoder_fingerprint(&models.text_encoder)?,
                tokenizer,
                max_length: self.text_tokens as u32,
            },
        })
    }

    /// Writes every sample under `encodings` (record last, as ingest does).
    pub async fn write(&self, store: &Store, encodings: &Encodings) -> Result<()> {
        let dataset = Dataset::new(store.clone(), &self.name)?;
        let streams = Streams::new(self.seed);
        for (b, bucket) in self.buckets.iter().enumerate() {
            for i in 0..self.per_bucket {
                let index = (b * self.per_bucket + i) as u64;
                let id = format!("synthetic{index:06}");
                let (h, w) = bucket.latent_hw();
                let latent = self.latent(index, h, w);
                let shape = vec![self.channels, h, w];
                store
                    .put_tensors(
                        &encodings.latent_key(&id, *bucket)?,
                        file(LATENT_TENSORS[0], F32Tensor::new(latent, shape)?),
                    )
                    .await?;
                let caption = format!("synthetic pattern {index}");
                let mut rng = streams.rng(Purpose::Batch, u64::MAX, index);
                let embedding = rng::normal(&mut rng, self.text_tokens * self.text_dim);
                let shape = vec![self.text_tokens, self.text_dim];
                store
                    .put_tensors(
                        &encodings.embedding_key(&CaptionHash::of(&caption))?,
                        file(EMBEDDING_TENSORS[0], F32Tensor::new(embedding, shape)?),
                    )
                    .await?;
                let record = SampleRecord {
                    id: id.clone(),
                    source: format!("{id}.png"),
                    image_key: String::new(),
                    caption_key: None,
                    bucket: *bucket,
                    original_size: [bucket.width, bucket.height],
                    label: None,
                };
                dataset
                    .add_sample(record, Bytes::new(), "png", Some(&caption))
                    .await?;
            }
        }
        tracing::info!(dataset = %self.name, samples = self.per_bucket * self.buckets.len(), "synthetic dataset written");
        Ok(())
    }

    /// Sample `index`'s latent `[C, h, w]`: per channel a product of two
    /// sinusoids with phases set by the sample, amplitude about 1.
    fn latent(&self, index: u64, h: usize, w: usize) -> Vec<f32> {
        let phase = index as f32 * 0.7 + self.seed as f32;
        let mut out = Vec::with_capacity(self.channels * h * w);
        for c in 0..self.channels {
            let fc = 1.0 + (c % 4) as f32;
            for y in 0..h {
                for x in 0..w {
                    let u = x as f32 / w as f32 * std::f32::consts::TAU;
                    let v = y as f32 / h as f32 * std::f32::consts::TAU;
                    out.push((fc * u + phase).sin() * (v + phase * 0.5 + c as f32).cos());
                }
            }
        }
        out
    }
}

fn file(name: &str, tensor: F32Tensor) -> TensorFile {
    let mut file = TensorFile::new();
    file.insert(name, tensor);
    file
}
