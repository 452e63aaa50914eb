//! One handle for the text-encoder service: captions in, embeddings and masks out,
//! whether backed by the real T5Gemma2 weights or the tiny seeded encoder.

use burn::prelude::*;
use burn::tensor::{Bool, Int};
use ssdit_weights::ModelSource;

use crate::loader::{ModelFiles, load_encoder};
use crate::t5gemma2::T5Gemma2Encoder;
use crate::tiny::{tiny_encoder, tiny_fingerprint};
use crate::tokenizer::{ByteTokenizer, HfTokenizer, TokenBatch};
use crate::{Error, Result};

/// The tokenizer paired with an encoder.
#[derive(Debug, Clone)]
pub enum CaptionTokenizer {
    /// The model's own `tokenizer.json`.
    Hf(Box<HfTokenizer>),
    /// The file-free byte tokenizer of the tiny encoder.
    Bytes(ByteTokenizer),
}

impl CaptionTokenizer {
    /// Tokenizes `texts` to `max_length` rows.
    pub fn encode(&self, texts: &[String]) -> Result<TokenBatch> {
        match self {
            Self::Hf(tokenizer) => tokenizer.encode(texts),
            Self::Bytes(tokenizer) => Ok(tokenizer.encode(texts)),
        }
    }

    /// Length of every row.
    pub fn max_length(&self) -> usize {
        match self {
            Self::Hf(tokenizer) => tokenizer.max_length(),
            Self::Bytes(tokenizer) => tokenizer.max_length(),
        }
    }
}

/// Embeddings of a batch of captions.
#[derive(Debug, Clone)]
pub struct TextEmbeddings<B: Backend> {
    /// `[batch, max_length, dim]`: the encoder's last hidden state at every
    /// position, padding included (as the reference produces it).
    pub embeddings: Tensor<B, 3>,
    /// `[batch, max_length]`: 1 for real tokens, 0 for padding (transformers'
    /// `attention_mask`).
    pub mask: Tensor<B, 2, Int>,
}

/// A text encoder and its tokenizer.
#[derive(Debug)]
pub struct TextEncoder<B: Backend> {
    model: T5Gemma2Encoder<B>,
    tokenizer: CaptionTokenizer,
    fingerprint: String,
    device: Device<B>,
}

impl<B: Backend> TextEncoder<B> {
    /// The real T5Gemma2 encoder from a model directory or hub id
    /// (`config.json`, `tokenizer.json`, single or sharded safetensors).
    pub fn t5gemma2(source: &ModelSource, max_length: usize, device: &Device<B>) -> Result<Self> {
        let files = ModelFiles::resolve(source)?;
        let tokenizer = HfTokenizer::from_file(&files.tokenizer, max_length)?;
        let fingerprint = files.fingerprint()?;
        let model = load_encoder(&files, device)?;
        tracing::info!(
            model = %source,
            dim = model.hidden_size(),
            max_length,
            fingerprint,
            "T5Gemma2 text encoder loaded"
        );
        Ok(Self::new(
            model,
            CaptionTokenizer::Hf(Box::new(tokenizer)),
            fingerprint,
            device,
        ))
    }

    /// The tiny offline encoder (seeded weights, byte tokenizer).
    pub fn tiny(max_length: usize, device: &Device<B>) -> Result<Self> {
        let tokenizer = ByteTokenizer::new(max_length)?;
        Ok(Self::new(
            tiny_encoder(device),
            CaptionTokenizer::Bytes(tokenizer),
            tiny_fingerprint(),
            device,
        ))
    }

    /// Pairs an encoder with a tokenizer; `fingerprint` names the pair in cache keys.
    pub fn new(
        model: T5Gemma2Encoder<B>,
        tokenizer: CaptionTokenizer,
        fingerprint: String,
        device: &Device<B>,
    ) -> Self {
        Self {
            model,
            tokenizer,
            fingerprint,
            device: device.clone(),
        }
    }

    /// Width of the embeddings.
    pub fn dim(&self) -> usize {
        self.model.hidden_size()
    }

    /// Tokens per caption.
    pub fn max_length(&self) -> usize {
        self.tokenizer.max_length()
    }

    /// A stable id of the weights, config and tokenizer, for cache keys.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &CaptionTokenizer {
        &self.tokenizer
    }

    /// Encodes captions: `[batch, max_length, dim]` embeddings and their mask.
    pub fn encode(&self, captions: &[String]) -> Result<TextEmbeddings<B>> {
        if captions.is_empty() {
            return Err(Error::Input("no captions to encode".into()));
        }
        let tokens = self.tokenizer.encode(captions)?;
        let (ids, mask) = self.tensors(&tokens)?;
        let embeddings = self.model.forward(ids, mask.clone());
        Ok(TextEmbeddings {
            embeddings,
            mask: mask.int(),
        })
    }

    /// Token rows as tensors, checking every id fits the embedding table.
    fn tensors(&self, tokens: &TokenBatch) -> Result<(Tensor<B, 2, Int>, Tensor<B, 2, Bool>)> {
        let vocab = self.model.config().vocab_size;
        let (batch, len) = (tokens.len(), self.max_length());
        let mut ids = Vec::with_capacity(batch * len);
        let mut mask = Vec::with_capacity(batch * len);
        for (row, (row_ids, row_mask)) in tokens
            .input_ids
            .iter()
            .zip(&tokens.attention_mask)
            .enumerate()
        {
            if row_ids.len() != len || row_mask.len() != len {
                return Err(Error::Input(format!(
                    "caption {row}: {} tokens, expected {len}",
                    row_ids.len()
                )));
            }
            if let Some(&id) = row_ids.iter().find(|&&id| id as usize >= vocab) {
                return Err(Error::Input(format!(
                    "caption {row}: token id {id} is outside the model's vocabulary of {vocab}"
                )));
            }
            ids.extend(row_ids.iter().map(|&id| i64::from(id)));
            mask.extend(row_mask.iter().map(|&m| m != 0));
        }
        Ok((
            Tensor::from_data(TensorData::new(ids, [batch, len]), &self.device),
            Tensor::from_data(TensorData::new(mask, [batch, len]), &self.device),
        ))
    }
}
