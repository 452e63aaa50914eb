//! T5Gemma2's text encoder, layer by layer.
//!
//! Reproduces transformers 5.x
//! `T5Gemma2ForConditionalGeneration.get_encoder()(input_ids, attention_mask).last_hidden_state`
//! (`src/transformers/models/t5gemma2/modeling_t5gemma2.py`) for text input;
//! T5Gemma 2: <https://huggingface.co/google/t5gemma-2-1b-1b>.

mod attention;
mod config;
mod embedding;
mod layer;
mod mask;
mod mlp;
mod model;
mod norm;
mod rope;

pub use config::{LayerType, RopeConfig, T5Gemma2EncoderConfig};
pub use model::T5Gemma2Encoder;
