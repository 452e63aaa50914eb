use ssdit_store::{Key, layout};

use crate::{Bucket, Result};

/// Which models a dataset is encoded with: the cache keys of latents and
/// embeddings hold these, so changing any model re-encodes exactly what it
/// produced, and caches are shared safely across runs and machines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encodings {
    /// Fingerprint of the VAE (config + weights).
    pub vae: String,
    pub text: TextEncoding,
}

/// The identity of a caption embedding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextEncoding {
    /// Fingerprint of the text encoder (config + weights).
    pub encoder: String,
    /// Fingerprint of the tokenizer.
    pub tokenizer: String,
    /// Tokens per caption.
    pub max_length: u32,
}

impl Encodings {
    /// Where a sample's latent lives.
    pub fn latent_key(&self, sample_id: &str, bucket: Bucket) -> Result<Key> {
        Ok(layout::latent(
            sample_id,
            &self.vae,
            bucket.width,
            bucket.height,
        )?)
    }

    /// Where a sample's caption embedding lives.
    pub fn embedding_key(&self, sample_id: &str) -> Result<Key> {
        self.text.embedding_key(sample_id)
    }
}

impl TextEncoding {
    /// Where a sample's caption embedding lives.
    pub fn embedding_key(&self, sample_id: &str) -> Result<Key> {
        Ok(layout::embedding(
            sample_id,
            &self.encoder,
            &self.tokenizer,
            self.max_length,
        )?)
    }

    /// The prefix holding every embedding of this encoding.
    pub fn prefix(&self) -> Result<Key> {
        Ok(layout::embeddings_prefix(
            &self.encoder,
            &self.tokenizer,
            self.max_length,
        )?)
    }
}
