//! One handle for the text-encoder service: captions in, embeddings and masks out,
//! whether backed by the real T5Gemma2 weights or the tiny seeded encoder.

use burn::prelude::*;
use burn::tensor::{Bool, Int};
use ssdit_weights::ModelSource;

use crate::loader::{ModelFiles, load_encoder};
use crate::t5gemma2::T5Gemma2Encoder;
use crate::tiny::{tiny_encoder, tiny_fingerprint, tiny_tokenizer_fingerprint};
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

    /// The same tokenizer padding and truncating to `max_length` instead.
    pub fn with_max_length(&self, max_length: usize) -> Result<Self> {
        Ok(match self {
            Self::Hf(tokenizer) => Self::Hf(Box::new(tokenizer.with_max_length(max_length)?)),
            Self::Bytes(_) => Self::Bytes(ByteTokenizer::new(max_length)?),
        })
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
    tokenizer_fingerprint: String,
    device: Device<B>,
}

impl<B: Backend> TextEncoder<B> {
    /// The real T5Gemma2 encoder from a model directory or hub id
    /// (`config.json`, `tokenizer.json`, single or sharded safetensors).
    pub fn t5gemma2(source: &ModelSource, max_length: usize, device: &Device<B>) -> Result<Self> {
        let files = ModelFiles::resolve(source)?;
        let tokenizer = HfTokenizer::from_file(&files.tokenizer, max_length)?;
        let fingerprint = files.fingerprint()?;
        let tokenizer_fingerprint = ssdit_weights::fingerprint_files(&[&files.tokenizer])?;
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
        )
        .with_tokenizer_fingerprint(tokenizer_fingerprint))
    }

    /// The tiny offline encoder (seeded weights, byte tokenizer).
    pub fn tiny(max_length: usize, device: &Device<B>) -> Result<Self> {
        let tokenizer = ByteTokenizer::new(max_length)?;
        Ok(Self::new(
            tiny_encoder(device),
            CaptionTokenizer::Bytes(tokenizer),
            tiny_fingerprint(),
            device,
        )
        .with_tokenizer_fingerprint(tiny_tokenizer_fingerprint()))
    }

    /// Pairs an encoder with a tokenizer; `fingerprint` names the pair in cache keys
    /// (and stands for the tokenizer too until
    /// [`with_tokenizer_fingerprint`](Self::with_tokenizer_fingerprint) says otherwise).
    pub fn new(
        model: T5Gemma2Encoder<B>,
        tokenizer: CaptionTokenizer,
        fingerprint: String,
        device: &Device<B>,
    ) -> Self {
        Self {
            model,
            tokenizer,
            tokenizer_fingerprint: fingerprint.clone(),
            fingerprint,
            device: device.clone(),
        }
    }

    /// Sets the tokenizer's own fingerprint (embedding cache keys name the
    /// encoder and the tokenizer separately).
    pub fn with_tokenizer_fingerprint(mut self, fingerprint: String) -> Self {
        self.tokenizer_fingerprint = fingerprint;
        self
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

    /// A stable id of the tokenizer alone (its `tokenizer.json`, or the byte
    /// tokenizer's recipe), for the `tok-…` part of embedding cache keys.
    pub fn tokenizer_fingerprint(&self) -> &str {
        &self.tokenizer_fingerprint
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &CaptionTokenizer {
        &self.tokenizer
    }

    /// Encodes captions: `[batch, max_length, dim]` embeddings and their mask.
    pub fn encode(&self, captions: &[String]) -> Result<TextEmbeddings<B>> {
        self.encode_tokens(captions, &self.tokenizer)
    }

    /// Encodes captions padded and truncated to `max_length` tokens rather
    /// than the tokenizer's own length: `[batch, max_length, dim]`.
    pub fn encode_with_length(
        &self,
        captions: &[String],
        max_length: usize,
    ) -> Result<TextEmbeddings<B>> {
        if max_length == self.max_length() {
            return self.encode(captions);
        }
        self.encode_tokens(captions, &self.tokenizer.with_max_length(max_length)?)
    }

    fn encode_tokens(
        &self,
        captions: &[String],
        tokenizer: &CaptionTokenizer,
    ) -> Result<TextEmbeddings<B>> {
        if captions.is_empty() {
            return Err(Error::Input("no captions to encode".into()));
        }
        let tokens = tokenizer.encode(captions)?;
        let (ids, mask) = self.tensors(&tokens, tokenizer.max_length())?;
        let embeddings = self.model.forward(ids, mask.clone());
        Ok(TextEmbeddings {
            embeddings,
            mask: mask.int(),
        })
    }

    /// Token rows as tensors, checking every id fits the embedding table.
    fn tensors(
        &self,
        tokens: &TokenBatch,
        len: usize,
    ) -> Result<(Tensor<B, 2, Int>, Tensor<B, 2, Bool>)> {
        let vocab = self.model.config().vocab_size;
        let batch = tokens.len();
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
