//! The tiny offline encoder: a small T5Gemma2 text encoder whose weights come
//! from a fixed seed, for machines without the real weights (`--tiny`).

use burn::module::Module;
use burn::prelude::*;

use crate::rng::SplitMix64;
use crate::t5gemma2::{LayerType, RopeConfig, T5Gemma2Encoder, T5Gemma2EncoderConfig};
use crate::tokenizer::ByteTokenizer;

/// The seed of the tiny encoder's weights.
pub const TINY_SEED: u64 = 0x5EED_7E47_0001;

/// Version of the tiny weights' recipe; part of the fingerprint, bumped
/// whenever the generated weights change.
const TINY_RECIPE: &str = "ssdit-tiny-t5gemma2-v1";

/// The tiny encoder's sizes: 128 wide, two layers (one sliding, one full),
/// over the byte tokenizer's vocabulary.
pub fn tiny_config() -> T5Gemma2EncoderConfig {
    T5Gemma2EncoderConfig::new(
        ByteTokenizer::VOCAB_SIZE,
        128,
        256,
        4,
        2,
        32,
        vec![LayerType::Sliding, LayerType::Full],
        32,
        RopeConfig::new(10_000.0),
        RopeConfig::new(1_000_000.0),
        ByteTokenizer::EOI_ID as usize,
    )
    .with_query_pre_attn_scalar(32.0)
}

/// The tiny encoder on `device`, its weights drawn from `TINY_SEED`.
pub fn tiny_encoder<B: Backend>(device: &Device<B>) -> T5Gemma2Encoder<B> {
    seeded(tiny_config().init(device), TINY_SEED)
}

/// A stable id of the tiny encoder for cache keys: the hash of its recipe
/// version, configuration and seed.
pub fn tiny_fingerprint() -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(TINY_RECIPE.as_bytes());
    hasher.update(tiny_config().to_string().as_bytes());
    hasher.update(&TINY_SEED.to_le_bytes());
    hasher.finalize().to_hex()[..16].to_string()
}

/// A stable id of the byte tokenizer the tiny encoder uses, for cache keys.
pub fn tiny_tokenizer_fingerprint() -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"ssdit-byte-tokenizer-v1");
    hasher.update(&(ByteTokenizer::VOCAB_SIZE as u64).to_le_bytes());
    hasher.finalize().to_hex()[..16].to_string()
}

/// Replaces every parameter of `model` by values from its own seeded stream.
///
/// Scales keep activations of order one: embeddings (and the eoi embedding)
/// with std `1/√hidden` (the √hidden embedding scale brings them to unit
/// RMS), projections with std `1/√fan_in`, norm weights with std 0.1 around
/// the unit gain.
pub(crate) fn seeded<B: Backend, M: Module<B>>(model: M, seed: u64) -> M {
    ssdit_weights::redraw(model, |path, dims| {
        let std = match (path, dims) {
            ("embed_tokens.weight", [_, hidden]) => 1.0 / (*hidden as f32).sqrt(),
            ("embed_tokens.eoi_embedding", [hidden]) => 1.0 / (*hidden as f32).sqrt(),
            (_, [fan_in, _]) => 1.0 / (*fan_in as f32).sqrt(),
            _ => 0.1,
        };
        SplitMix64::for_label(seed, path).uniform_with_std(dims.iter().product(), std)
    })
}
