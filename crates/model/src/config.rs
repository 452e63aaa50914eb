//! The DiT's configuration: the seed's constructor arguments.

use std::path::Path;

use burn::prelude::*;
use serde::Deserialize;
use ssdit_weights::limits::{self, MAX_LAYERS, MAX_TOKENS, MAX_WIDTH};

use crate::embed::TIMESTEP_FEATURES;
use crate::{Error, Result};

/// Largest patch side: a token covers at most 64 × 64 latent pixels (the
/// seed uses 2).
const MAX_PATCH_SIZE: usize = 64;

/// Hyper-parameters of [`SingleStreamDiT`](crate::SingleStreamDiT), named as
/// the seed's `SingleStreamDiTV2.__init__` arguments. The defaults are the
/// seed's (`config.py`, see [`SingleStreamDiTConfig::seed_default`]).
#[derive(Config, Debug, PartialEq)]
pub struct SingleStreamDiTConfig {
    /// Latent channels (FLUX.1 VAE: 16).
    #[config(default = 16)]
    pub in_channels: usize,
    /// Latent pixels per token side.
    #[config(default = 2)]
    pub patch_size: usize,
    /// Transformer width.
    #[config(default = 768)]
    pub hidden_size: usize,
    /// Attention heads (head size must be a multiple of 4 for the 2-D RoPE).
    #[config(default = 12)]
    pub num_heads: usize,
    /// Joint `[text, image]` fusion blocks.
    #[config(default = 16)]
    pub depth: usize,
    /// Noise-refiner (image only) and context-refiner (text only) blocks, each.
    #[config(default = 2)]
    pub refiner_depth: usize,
    /// Width of the text encoder's embeddings (T5Gemma2-1B: 1152).
    #[config(default = 1152)]
    pub text_embed_dim: usize,
    /// Longest caption, in tokens (rows of `text_pos_embed`).
    #[config(default = 128)]
    pub max_token_length: usize,
    /// RoPE frequency base.
    #[config(default = 10000.0)]
    pub rope_base: f64,
    /// Dropout on the attention and feed-forward outputs of the fusion blocks,
    /// active only when the backend records gradients (training).
    #[config(default = 0.05)]
    pub dropout: f64,
}

/// The seed's `config.json` format: `SingleStreamDiTV2` constructor
/// arguments, any of which may be omitted (the constructor's defaults apply).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedArgs {
    in_channels: Option<usize>,
    patch_size: Option<usize>,
    hidden_size: Option<usize>,
    num_heads: Option<usize>,
    depth: Option<usize>,
    refiner_depth: Option<usize>,
    text_embed_dim: Option<usize>,
    max_token_length: Option<usize>,
    rope_base: Option<f64>,
    dropout: Option<f64>,
    /// A memory/speed trade-off of the seed's training loop; no effect on numerics.
    #[allow(dead_code)]
    gradient_checkpointing: Option<bool>,
}

impl SingleStreamDiTConfig {
    /// The seed's settings (`config.py`: `hidden_size = 768`, `num_heads = 12`,
    /// `depth = 16`, `refiner_depth = 2`, `text_embed_dim = 1152` (T5Gemma2-1B),
    /// `in_channels = 16`, `max_token_length = 128`, `patch_size = 2`,
    /// `rope_base = 10_000`, `model_dropout = 0.05`): 271,150,802 parameters.
    pub fn seed_default() -> Self {
        Self::new()
    }

    /// A mid-sized model for single-GPU experiments: width 384, 6 heads,
    /// 8 fusion blocks, 1 refiner block each, over T5Gemma2-1B embeddings
    /// (the size DESIGN.md benchmarks the backends at).
    pub fn small() -> Self {
        Self::new()
            .with_hidden_size(384)
            .with_num_heads(6)
            .with_depth(8)
            .with_refiner_depth(1)
    }

    /// A model small enough for tests and `--tiny` demos on a CPU: width 64,
    /// 4 heads, 2 fusion blocks, 1 refiner block each, over the 128-wide
    /// embeddings of `ssdit-text`'s tiny encoder.
    pub fn tiny() -> Self {
        Self::new()
            .with_hidden_size(64)
            .with_num_heads(4)
            .with_depth(2)
            .with_refiner_depth(1)
            .with_text_embed_dim(128)
    }

    /// The configuration `models.dit` names: a preset (`seed`, `small`,
    /// `tiny`) or the path of a seed constructor-argument `config.json`.
    pub fn from_spec(spec: &str) -> Result<Self> {
        match spec.trim() {
            "seed" => Ok(Self::seed_default()),
            "small" => Ok(Self::small()),
            "tiny" => Ok(Self::tiny()),
            "" => Err(Error::Config(
                "empty model spec; expected seed, small, tiny or a config.json path".into(),
            )),
            path => Self::from_seed_file(Path::new(path)),
        }
    }

    /// Reads the seed's constructor-argument JSON (e.g. a fixture's
    /// `config.json`); omitted arguments take the seed's defaults. Unknown
    /// keys and impossible sizes are errors.
    pub fn from_seed_json(json: &str) -> Result<Self> {
        let args: SeedArgs = serde_json::from_str(json)
            .map_err(|e| Error::Config(format!("constructor arguments: {e}")))?;
        let default = Self::seed_default();
        let config = Self {
            in_channels: args.in_channels.unwrap_or(default.in_channels),
            patch_size: args.patch_size.unwrap_or(default.patch_size),
            hidden_size: args.hidden_size.unwrap_or(default.hidden_size),
            num_heads: args.num_heads.unwrap_or(default.num_heads),
            depth: args.depth.unwrap_or(default.depth),
            refiner_depth: args.refiner_depth.unwrap_or(default.refiner_depth),
            text_embed_dim: args.text_embed_dim.unwrap_or(default.text_embed_dim),
            max_token_length: args.max_token_length.unwrap_or(default.max_token_length),
            rope_base: args.rope_base.unwrap_or(default.rope_base),
            dropout: args.dropout.unwrap_or(default.dropout),
        };
        config.validate()?;
        Ok(config)
    }

    /// [`from_seed_json`](Self::from_seed_json) on a file.
    pub fn from_seed_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_seed_json(&text).map_err(|e| Error::ConfigFile {
            path: path.to_path_buf(),
            reason: match e {
                Error::Config(reason) => reason,
                other => other.to_string(),
            },
        })
    }

    /// Checks that the sizes describe a model that can be built and run.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("in_channels", self.in_channels),
            ("patch_size", self.patch_size),
            ("hidden_size", self.hidden_size),
            ("num_heads", self.num_heads),
            ("text_embed_dim", self.text_embed_dim),
            ("max_token_length", self.max_token_length),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(Error::Config(format!("{name} must be at least 1")));
        }
        self.check_upper_bounds()?;
        if !self.hidden_size.is_multiple_of(self.num_heads) {
            return Err(Error::Config(format!(
                "hidden_size {} is not divisible by num_heads {}",
                self.hidden_size, self.num_heads
            )));
        }
        if !self.head_dim().is_multiple_of(4) {
            return Err(Error::Config(format!(
                "head size {} (hidden_size {} / num_heads {}) must be a multiple of 4 for the 2-D RoPE",
                self.head_dim(),
                self.hidden_size,
                self.num_heads
            )));
        }
        if !(self.rope_base.is_finite() && self.rope_base > 0.0) {
            return Err(Error::Config(format!(
                "rope_base must be a positive number, got {}",
                self.rope_base
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Config(format!(
                "dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        Ok(())
    }

    /// Refuses sizes beyond [`ssdit_weights::limits`], each by name, then a
    /// model too large in total, before any size is multiplied or allocated.
    fn check_upper_bounds(&self) -> Result<()> {
        if let Some(too_large) = limits::first_too_large(&[
            ("in_channels", self.in_channels, MAX_WIDTH),
            ("patch_size", self.patch_size, MAX_PATCH_SIZE),
            ("hidden_size", self.hidden_size, MAX_WIDTH),
            ("num_heads", self.num_heads, MAX_WIDTH),
            ("depth", self.depth, MAX_LAYERS),
            ("refiner_depth", self.refiner_depth, MAX_LAYERS),
            ("text_embed_dim", self.text_embed_dim, MAX_WIDTH),
            ("max_token_length", self.max_token_length, MAX_TOKENS),
        ]) {
            return Err(Error::Config(format!("{}: {too_large}", too_large.field)));
        }
        match limits::too_many_parameters(self.parameter_estimate()) {
            Some(reason) => Err(Error::Config(format!(
                "{reason} (hidden_size {}, depth {}, refiner_depth {})",
                self.hidden_size, self.depth, self.refiner_depth
            ))),
            None => Ok(()),
        }
    }

    /// About how many parameters the model has, from its weight matrices
    /// (norms, biases and gates add a fraction of a percent); sizes must be
    /// within the limits first.
    pub(crate) fn parameter_estimate(&self) -> f64 {
        let h = self.hidden_size as f64;
        let attention = 4.0 * h * h; // q, k, v, out
        let feed_forward = 3.0 * h * self.ffn_hidden_size() as f64; // SwiGLU w1, w2, w3
        // A fusion block adds its adaLN modulation (h → 6h) and the Fourier
        // filter's MLP (2h → 1.5h → 2h).
        let fusion = attention + feed_forward + 12.0 * h * h;
        let context_refiner = attention + feed_forward;
        let embedders = (2 * self.patch_dim() // x_embedder, final_layer
            + self.text_embed_dim
            + self.max_token_length
            + TIMESTEP_FEATURES) as f64
            * h
            + h * h; // t_embedder's second layer
        (self.depth + self.refiner_depth) as f64 * fusion
            + self.refiner_depth as f64 * context_refiner
            + embedders
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// Features of one patch token: `in_channels · patch_size²`.
    pub fn patch_dim(&self) -> usize {
        self.in_channels * self.patch_size * self.patch_size
    }

    /// The SwiGLU hidden width: `⌊2·(4·hidden)/3⌋` rounded up to a multiple of 256
    /// (2048 for hidden 768).
    pub fn ffn_hidden_size(&self) -> usize {
        const MULTIPLE_OF: usize = 256;
        let hidden = 2 * (4 * self.hidden_size) / 3;
        hidden.div_ceil(MULTIPLE_OF) * MULTIPLE_OF
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_default_matches_the_seed_config() {
        let c = SingleStreamDiTConfig::seed_default();
        assert_eq!(
            (
                c.in_channels,
                c.patch_size,
                c.hidden_size,
                c.num_heads,
                c.depth
            ),
            (16, 2, 768, 12, 16)
        );
        assert_eq!(
            (c.refiner_depth, c.text_embed_dim, c.max_token_length),
            (2, 1152, 128)
        );
        assert_eq!((c.rope_base, c.dropout), (10_000.0, 0.05));
        assert_eq!(c.ffn_hidden_size(), 2048);
        assert_eq!(c.head_dim(), 64);
        c.validate().unwrap();
    }

    #[test]
    fn reads_constructor_arguments_with_defaults() {
        let c = SingleStreamDiTConfig::from_seed_json(
            r#"{"hidden_size": 64, "num_heads": 4, "depth": 2, "rope_base": 10000, "gradient_checkpointing": true}"#,
        )
        .unwrap();
        assert_eq!((c.hidden_size, c.num_heads, c.depth), (64, 4, 2));
        assert_eq!(
            c.text_embed_dim, 1152,
            "omitted arguments take the seed's defaults"
        );
        assert_eq!(c.ffn_hidden_size(), 256);
    }

    #[test]
    fn rejects_impossible_sizes_and_unknown_keys_with_reasons() {
        let err = |json: &str| {
            SingleStreamDiTConfig::from_seed_json(json)
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(r#"{"hidden_size": 100, "num_heads": 3}"#).contains("not divisible by num_heads")
        );
        assert!(err(r#"{"hidden_size": 72, "num_heads": 12}"#).contains("multiple of 4"));
        assert!(err(r#"{"num_heads": 0}"#).contains("num_heads must be at least 1"));
        assert!(err(r#"{"dropout": 1.5}"#).contains("dropout"));
        assert!(err(r#"{"hidden": 64}"#).contains("unknown field `hidden`"));
        assert!(err(r#"{"depth": -1}"#).contains("constructor arguments"));
    }

    #[test]
    fn absurd_sizes_are_refused_by_name() {
        for (field, value) in [
            ("in_channels", "1000000000"),
            ("patch_size", "1000"),
            ("hidden_size", "1000000000000"),
            ("num_heads", "1000000000000"),
            ("depth", "1000000000"),
            ("refiner_depth", "1000000000"),
            ("text_embed_dim", "1000000000000"),
            ("max_token_length", "1000000000000"),
        ] {
            let err = SingleStreamDiTConfig::from_seed_json(&format!(r#"{{"{field}": {value}}}"#))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("{field}: {value} exceeds the limit")),
                "{err}"
            );
        }
    }

    #[test]
    fn models_too_large_in_total_are_refused() {
        let err = SingleStreamDiTConfig::from_seed_json(
            r#"{"hidden_size": 65536, "num_heads": 512, "depth": 1024}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("parameters, over the limit") && err.contains("hidden_size 65536"),
            "{err}"
        );
    }

    #[test]
    fn parameter_estimate_is_close_to_the_count() {
        use burn::backend::NdArray;
        let seed = SingleStreamDiTConfig::seed_default().parameter_estimate();
        assert!((seed / 271_150_802.0 - 1.0).abs() < 0.005, "{seed}");
        for config in [
            SingleStreamDiTConfig::small(),
            SingleStreamDiTConfig::tiny(),
        ] {
            let model = config.init::<NdArray>(&Default::default()).unwrap();
            let count = model.parameter_count() as f64;
            let estimate = config.parameter_estimate();
            assert!(
                (estimate / count - 1.0).abs() < 0.03,
                "estimate {estimate}, count {count}"
            );
        }
    }

    #[test]
    fn presets_are_valid_and_named_by_spec() {
        for (spec, hidden, depth, text) in [
            ("seed", 768, 16, 1152),
            ("small", 384, 8, 1152),
            ("tiny", 64, 2, 128),
        ] {
            let c = SingleStreamDiTConfig::from_spec(spec).unwrap();
            c.validate().unwrap();
            assert_eq!(
                (c.hidden_size, c.depth, c.text_embed_dim),
                (hidden, depth, text)
            );
        }
        assert_eq!(SingleStreamDiTConfig::tiny().head_dim(), 16);
        assert!(SingleStreamDiTConfig::from_spec(" ").is_err());
        let err = SingleStreamDiTConfig::from_spec("/nonexistent/dit.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/dit.json"), "{err}");
    }

    #[test]
    fn file_errors_name_the_file() {
        let err = SingleStreamDiTConfig::from_seed_file(Path::new("/nonexistent/config.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/config.json"), "{err}");
    }
}
