//! The text encoder on its own compute thread: captions in, embeddings and
//! masks out, one batch per forward pass.

use std::sync::Arc;

use burn::prelude::*;
use ssdit_core::backend::{ComputeBackend, DeviceSpec};
use ssdit_core::config::ModelsConfig;
use ssdit_dataset::TextEncoding;
use ssdit_server::ComputeWorker;
use ssdit_text::TextEncoder;
use ssdit_weights::ModelSource;

use crate::{Error, Result};

type B = ComputeBackend;

/// The `models.text_encoder` value of the tiny seeded encoder.
pub const TINY: &str = "tiny";

/// Builds the text encoder `spec` names — `tiny`, a T5Gemma2 model
/// directory or a hub id — padding captions to `max_length` tokens. The
/// sampler builds its own with this same function, so both agree.
pub fn load_text_encoder(
    spec: &str,
    max_length: usize,
    device: &Device<B>,
) -> ssdit_text::Result<TextEncoder<B>> {
    let encoder = match spec.trim() {
        TINY => TextEncoder::tiny(max_length, device)?,
        source => TextEncoder::t5gemma2(&ModelSource::parse(source), max_length, device)?,
    };
    if spec.trim() == TINY {
        tracing::warn!(
            fingerprint = encoder.fingerprint(),
            "text encoder is the tiny seeded stand-in: its embeddings are not meaningful"
        );
    }
    Ok(encoder)
}

/// What the encoder is, as far as callers need to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextInfo {
    /// Fingerprint of the encoder's config, weights and tokenizer.
    pub fingerprint: String,
    /// Fingerprint of the tokenizer alone.
    pub tokenizer_fingerprint: String,
    /// Embedding width.
    pub dim: usize,
    /// Tokens per caption by default (`encode.max_text_length`).
    pub max_length: usize,
}

/// Embeddings of a batch: `[n, len, dim]` values and `[n, len]` masks.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub values: Vec<f32>,
    pub mask: Vec<u8>,
    pub n: usize,
    pub len: usize,
    pub dim: usize,
}

impl Embeddings {
    /// Row `i`: its `[len, dim]` embedding and `[len]` mask.
    pub fn row(&self, i: usize) -> (&[f32], &[u8]) {
        let per = self.len * self.dim;
        (
            &self.values[i * per..(i + 1) * per],
            &self.mask[i * self.len..(i + 1) * self.len],
        )
    }
}

/// The text encoder's compute thread. Clones share it.
#[derive(Clone)]
pub struct TextWorker {
    worker: ComputeWorker<TextEncoder<B>>,
    info: Arc<TextInfo>,
}

/// Batches waiting for the compute thread at most.
const QUEUE: usize = 4;

impl TextWorker {
    /// Builds the encoder `models.text_encoder` names on `models.device`, on
    /// a new compute thread, padding to `max_length` tokens by default.
    pub async fn load(models: &ModelsConfig, max_length: usize) -> Result<Self> {
        let spec = models.text_encoder.clone();
        let model_error = |reason: String| Error::Model {
            spec: spec.clone(),
            reason,
        };
        let device = DeviceSpec::parse(&models.device)
            .and_then(DeviceSpec::device)
            .map_err(|e| model_error(e.to_string()))?;
        let build_spec = spec.clone();
        let worker = ComputeWorker::spawn("text-encoder", QUEUE, move || {
            load_text_encoder(&build_spec, max_length, &device)
        })
        .await
        .map_err(|e| model_error(e.to_string()))?;
        let info = worker
            .run(|encoder| TextInfo {
                fingerprint: encoder.fingerprint().to_string(),
                tokenizer_fingerprint: encoder.tokenizer_fingerprint().to_string(),
                dim: encoder.dim(),
                max_length: encoder.max_length(),
            })
            .await?;
        tracing::info!(text_encoder = %spec, fingerprint = %info.fingerprint, tokenizer = %info.tokenizer_fingerprint, dim = info.dim, max_length, "text encoder loaded");
        Ok(Self {
            worker,
            info: Arc::new(info),
        })
    }

    /// Fingerprints, width, default length.
    pub fn info(&self) -> &TextInfo {
        &self.info
    }

    /// The cache identity of embeddings at the default length.
    pub fn encoding(&self) -> TextEncoding {
        TextEncoding {
            encoder: self.info.fingerprint.clone(),
            tokenizer: self.info.tokenizer_fingerprint.clone(),
            max_length: u32::try_from(self.info.max_length).unwrap_or(u32::MAX),
        }
    }

    /// Encodes `captions` padded and truncated to `max_length` tokens, in one
    /// forward pass.
    pub async fn encode(&self, captions: Vec<String>, max_length: usize) -> Result<Embeddings> {
        self.worker
            .run(move |encoder| {
                let out = encoder.encode_with_length(&captions, max_length)?;
                let [n, len, dim] = out.embeddings.dims();
                let values = out
                    .embeddings
                    .into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .map_err(|e| Error::Internal(format!("embeddings are not floats: {e:?}")))?;
                let mask = out
                    .mask
                    .into_data()
                    .convert::<i64>()
                    .into_vec::<i64>()
                    .map_err(|e| Error::Internal(format!("mask is not integers: {e:?}")))?
                    .into_iter()
                    .map(|m| u8::from(m != 0))
                    .collect();
                Ok(Embeddings {
                    values,
                    mask,
                    n,
                    len,
                    dim,
                })
            })
            .await?
    }
}
