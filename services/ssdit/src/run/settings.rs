//! The demo's settings: what `ssdit run` uses when no configuration file is
//! given. Tuned so that a small DiT memorises a handful of photos on a
//! 2-core CPU in a few minutes (the seed's defaults train a 768-wide model
//! on 448 px images for days on a GPU).

use ssdit_core::Config;
use ssdit_core::config::{Downscale, SamplerKind};

/// The dataset name when none is given.
pub const DEFAULT_DATASET: &str = "demo";

/// Side of the square whose area the demo's buckets keep (the smallest the
/// configuration allows): 16×16-latent images, 64 DiT tokens.
pub const DEMO_RESOLUTION: u32 = 128;

/// Epochs of the demo: with one image per batch, six photos make six
/// optimizer steps per epoch, 6000 in all (about 3 minutes on 2 cores).
pub const DEMO_EPOCHS: usize = 1000;

/// The demo configuration: the seed's defaults, except what makes a CPU
/// memorise a few photos quickly.
pub fn demo_config() -> Config {
    let mut config = Config::default();
    config.models.dit = "tiny".into();
    config.ingest.target_resolution = DEMO_RESOLUTION;
    config.ingest.bucket_alignment = 16;
    config.ingest.downscale = Downscale::Lanczos;
    // The byte tokenizer of the tiny text encoder: one token per byte, so
    // 64 tokens hold the distinctive start of every caption.
    config.encode.max_text_length = 64;
    let train = &mut config.train;
    // Batches never mix buckets and drop partial batches: one image per
    // batch is the only size that trains every photo of a small folder.
    train.batch_size = 1;
    train.accum_steps = 1;
    train.learning_rate = 1e-3;
    train.warmup = 0.02;
    train.epochs = DEMO_EPOCHS;
    // Memorising photos by caption: every step sees its caption (no CFG
    // dropout), and times are drawn towards the noise end (shift < 1), where
    // only the caption tells the photos apart. Measured on the six demo
    // photos at 4800 steps: shift 1 → 13.0–20.5 dB, 0.5 → 17.3–19.6 dB,
    // 0.35 → 17.7–20.4 dB against the codec reconstructions.
    train.text_dropout = 0.0;
    train.shift = 0.3;
    train.offset_noise = 0.0;
    train.dropout = 0.0;
    train.ema_decay = 0.99;
    // One validation and one checkpoint, at the end.
    train.validate_every = DEMO_EPOCHS;
    train.save_every = DEMO_EPOCHS;
    train.keep_last = 1;
    train.validate_prompts = 4;
    train.validate_steps = 20;
    train.validate_cfg = 1.0;
    train.metrics_port = 0;
    let sampler = &mut config.sampler;
    sampler.steps = 30;
    // Without dropout there is no unconditional model to guide against.
    sampler.cfg = 1.0;
    sampler.sampler = SamplerKind::Euler;
    sampler.width = DEMO_RESOLUTION;
    sampler.height = DEMO_RESOLUTION;
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_is_valid() {
        demo_config().validate().unwrap();
    }
}
