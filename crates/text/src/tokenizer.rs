//! Captions → fixed-length token ids and attention masks.
//!
//! Both tokenizers pad and truncate like transformers'
//! `tokenizer(texts, max_length=n, padding="max_length", truncation=True)`:
//! every row is exactly `max_length` long, special tokens are added as the
//! post-processor says and count towards the length, truncation keeps the
//! start, padding goes on the right with mask 0.

use std::path::Path;

use tokenizers::{
    PaddingDirection, PaddingParams, PaddingStrategy, TruncationDirection, TruncationParams,
    TruncationStrategy,
};

use crate::{Error, Result};

/// The sequence length the seed trains with (`MAX_TOKEN_LENGTH`).
pub const DEFAULT_MAX_LENGTH: usize = 128;

/// Token ids and attention masks of a batch, `max_length` per row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    /// One row of ids per text.
    pub input_ids: Vec<Vec<u32>>,
    /// 1 for real tokens (special tokens included), 0 for padding.
    pub attention_mask: Vec<Vec<u32>>,
}

impl TokenBatch {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }
}

/// A Hugging Face `tokenizer.json` (the real model's tokenizer).
#[derive(Debug, Clone)]
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    max_length: usize,
    origin: String,
}

impl HfTokenizer {
    /// Reads `tokenizer.json` and sets `max_length` padding and truncation.
    ///
    /// The padding token is the one `tokenizer.json` configures, else its
    /// `<pad>` token (transformers takes it from `tokenizer_config.json`,
    /// which for Gemma tokenizers is `<pad>`).
    pub fn from_file(path: &Path, max_length: usize) -> Result<Self> {
        let origin = path.display().to_string();
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| Error::Tokenizer {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        Self::new(inner, max_length, origin)
    }

    /// Reads a `tokenizer.json` already in memory; `origin` names it in errors.
    pub fn from_bytes(bytes: &[u8], max_length: usize, origin: &str) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| Error::Tokenizer {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
        Self::new(inner, max_length, origin.to_string())
    }

    fn new(mut inner: tokenizers::Tokenizer, max_length: usize, origin: String) -> Result<Self> {
        let fail = |reason: String| Error::Tokenizer {
            origin: origin.clone(),
            reason,
        };
        if max_length == 0 {
            return Err(fail("max_length must be positive".into()));
        }
        let (pad_id, pad_token) = match inner.get_padding() {
            Some(padding) => (padding.pad_id, padding.pad_token.clone()),
            None => {
                let id = inner.token_to_id("<pad>").ok_or_else(|| {
                    fail("no padding token: no padding settings and no <pad> token".into())
                })?;
                (id, "<pad>".to_string())
            }
        };
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| fail(e.to_string()))?;
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(max_length),
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id,
            pad_type_id: 0,
            pad_token,
        }));
        Ok(Self {
            inner,
            max_length,
            origin,
        })
    }

    /// Length of every row.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The same tokenizer padding and truncating to `max_length` instead.
    pub fn with_max_length(&self, max_length: usize) -> Result<Self> {
        Self::new(self.inner.clone(), max_length, self.origin.clone())
    }

    /// Tokenizes `texts` (special tokens added).
    pub fn encode(&self, texts: &[String]) -> Result<TokenBatch> {
        let encodings =
            self.inner
                .encode_batch(texts.to_vec(), true)
                .map_err(|e| Error::Tokenizer {
                    origin: self.origin.clone(),
                    reason: e.to_string(),
                })?;
        let mut batch = TokenBatch {
            input_ids: Vec::with_capacity(texts.len()),
            attention_mask: Vec::with_capacity(texts.len()),
        };
        for encoding in encodings {
            batch.input_ids.push(encoding.get_ids().to_vec());
            batch
                .attention_mask
                .push(encoding.get_attention_mask().to_vec());
        }
        Ok(batch)
    }
}

/// A tokenizer that needs no files: `<bos>` then one token per UTF-8 byte.
///
/// Ids follow Gemma's layout for the specials (`<pad>` 0, `<eos>` 1, `<bos>`
/// 2, `<unk>` 3), bytes are `4 + byte`, and one more id stands for the
/// end-of-image token, which text never produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteTokenizer {
    max_length: usize,
}

impl ByteTokenizer {
    /// Padding id.
    pub const PAD_ID: u32 = 0;
    /// Beginning-of-sequence id, prepended to every text.
    pub const BOS_ID: u32 = 2;
    /// Id of byte 0; byte `b` is `BYTE_OFFSET + b`.
    pub const BYTE_OFFSET: u32 = 4;
    /// The end-of-image id (never produced from text).
    pub const EOI_ID: u32 = Self::BYTE_OFFSET + 256;
    /// Number of ids.
    pub const VOCAB_SIZE: usize = Self::EOI_ID as usize + 1;

    /// A tokenizer producing rows of `max_length` (at least 1: the `<bos>`).
    pub fn new(max_length: usize) -> Result<Self> {
        if max_length == 0 {
            return Err(Error::Tokenizer {
                origin: "byte tokenizer".into(),
                reason: "max_length must be positive".into(),
            });
        }
        Ok(Self { max_length })
    }

    /// Length of every row.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Tokenizes `texts`: `<bos>`, bytes (truncated to fit), padding.
    pub fn encode(&self, texts: &[String]) -> TokenBatch {
        let (input_ids, attention_mask) = texts
            .iter()
            .map(|text| {
                let mut ids = Vec::with_capacity(self.max_length);
                ids.push(Self::BOS_ID);
                ids.extend(
                    text.bytes()
                        .take(self.max_length - 1)
                        .map(|b| Self::BYTE_OFFSET + u32::from(b)),
                );
                let real = ids.len();
                ids.resize(self.max_length, Self::PAD_ID);
                let mut mask = vec![1; real];
                mask.resize(self.max_length, 0);
                (ids, mask)
            })
            .unzip();
        TokenBatch {
            input_ids,
            attention_mask,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_pad_and_truncate() {
        let tokenizer = ByteTokenizer::new(4).unwrap();
        let batch = tokenizer.encode(&["".into(), "ab".into(), "abc".into(), "abcdef".into()]);
        let (a, b) = (4 + u32::from(b'a'), 4 + u32::from(b'b'));
        let c = 4 + u32::from(b'c');
        assert_eq!(
            batch.input_ids,
            [
                vec![2, 0, 0, 0],
                vec![2, a, b, 0],
                vec![2, a, b, c],
                vec![2, a, b, c]
            ]
        );
        assert_eq!(
            batch.attention_mask,
            [
                vec![1, 0, 0, 0],
                vec![1, 1, 1, 0],
                vec![1, 1, 1, 1],
                vec![1, 1, 1, 1]
            ]
        );
        assert!(ByteTokenizer::new(0).is_err());
    }
}
