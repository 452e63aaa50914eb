//! Text embeddings for ssdit: the T5Gemma2 text encoder in burn, its
//! tokenizer, and a tiny seeded encoder for machines without the weights.
//!
//! - [`t5gemma2`]: the encoder, numerically identical to transformers'
//!   `T5Gemma2ForConditionalGeneration.get_encoder()` (`last_hidden_state`),
//!   loading `google/t5gemma-2-*` checkpoints by their own tensor names
//!   ([`loader`]).
//! - [`tokenizer`]: `tokenizer.json` (via the `tokenizers` crate) and a
//!   file-free byte tokenizer, both padding/truncating to `max_length` like
//!   transformers' `padding="max_length", truncation=True`.
//! - [`tiny`]: a two-layer T5Gemma2 encoder with weights from a fixed seed,
//!   identical in every process.
//! - [`TextEncoder`]: what the text-encoder service holds, either way:
//!   captions → `[batch, max_length, dim]` embeddings and their mask, plus the
//!   output width, the length and a fingerprint for cache keys.

mod encoder;
mod error;
pub mod loader;
mod rng;
pub mod t5gemma2;
pub mod tiny;
pub mod tokenizer;

pub use encoder::{CaptionTokenizer, TextEmbeddings, TextEncoder};
pub use error::{Error, Result};
pub use tokenizer::{ByteTokenizer, DEFAULT_MAX_LENGTH, HfTokenizer, TokenBatch};
