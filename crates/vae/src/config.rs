//! The autoencoder's configuration: a burn `Config` for building the model,
//! read from diffusers' `config.json` with diffusers' own defaults.

use std::path::Path;

use burn::config::Config;
use serde::Deserialize;
use ssdit_weights::limits::{self, MAX_LAYERS, MAX_WIDTH};

use crate::{Error, Result};

/// Most down (and up) blocks: a downsampling factor of 2^15 (FLUX.1 has 4
/// blocks, factor 8).
const MAX_BLOCKS: usize = 16;

/// Hyper-parameters of an `AutoencoderKL` in the layout this crate
/// implements: `DownEncoderBlock2D`/`UpDecoderBlock2D` blocks, SiLU, GroupNorm
/// (eps 1e-6), a mid block with one optional attention, no quant convs.
#[derive(Config, Debug, PartialEq)]
pub struct AutoencoderKlConfig {
    /// Channels per down block (reversed for the up blocks).
    pub block_out_channels: Vec<usize>,
    /// Image channels in.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Image channels out.
    #[config(default = 3)]
    pub out_channels: usize,
    /// Channels of the latent (the encoder emits twice as many: mean and logvar).
    #[config(default = 16)]
    pub latent_channels: usize,
    /// Resnets per down block; up blocks have one more.
    #[config(default = 2)]
    pub layers_per_block: usize,
    /// GroupNorm groups everywhere.
    #[config(default = 32)]
    pub norm_num_groups: usize,
    /// Whether the mid blocks hold their attention layer.
    #[config(default = true)]
    pub mid_block_add_attention: bool,
    /// Latents are multiplied by this after encoding (see [`crate::VaeScaling`]).
    #[config(default = 0.3611)]
    pub scaling_factor: f64,
    /// Latents are shifted by this before scaling, when a pipeline uses it.
    pub shift_factor: Option<f64>,
    /// The image size the model was trained at; diffusers tiles at this size.
    #[config(default = 1024)]
    pub sample_size: usize,
}

impl AutoencoderKlConfig {
    /// The FLUX.1 VAE: `diffusers/FLUX.1-vae` `config.json`
    /// (= `black-forest-labs/FLUX.1-dev` `vae/config.json`).
    pub fn flux_vae() -> Self {
        // block_out_channels [128, 256, 512, 512], layers_per_block 2, norm_num_groups 32,
        // latent_channels 16, scaling_factor 0.3611, shift_factor 0.1159, sample_size 1024,
        // use_quant_conv / use_post_quant_conv false.
        Self::new(vec![128, 256, 512, 512])
            .with_layers_per_block(2)
            .with_norm_num_groups(32)
            .with_latent_channels(16)
            .with_scaling_factor(0.3611)
            .with_shift_factor(Some(0.1159))
            .with_sample_size(1024)
    }

    /// A small model of the same layout (4 blocks, 8× down, 16 latent
    /// channels) for offline demos and tests: the shared fixture's sizes.
    pub fn tiny() -> Self {
        Self::new(vec![32, 32, 64, 64])
            .with_layers_per_block(1)
            .with_norm_num_groups(8)
            .with_sample_size(64)
            .with_shift_factor(Some(0.1159))
    }

    /// Reads diffusers' `config.json`, validating every value.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Parses diffusers' `config.json` text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let raw: DiffusersConfig = serde_json::from_str(text).map_err(|e| Error::ConfigFile {
            path: origin.into(),
            reason: e.to_string(),
        })?;
        let config = raw.into_config(origin)?;
        config.validate(origin)?;
        Ok(config)
    }

    /// diffusers' `config.json` for this configuration (as `save_pretrained`
    /// writes it), so saved models load in diffusers and back here.
    pub fn to_diffusers_json(&self) -> String {
        let blocks = self.block_out_channels.len();
        let json = serde_json::json!({
            "_class_name": CLASS_NAME,
            "act_fn": "silu",
            "block_out_channels": self.block_out_channels,
            "down_block_types": vec![DOWN_BLOCK; blocks],
            "force_upcast": true,
            "in_channels": self.in_channels,
            "latent_channels": self.latent_channels,
            "latents_mean": null,
            "latents_std": null,
            "layers_per_block": self.layers_per_block,
            "mid_block_add_attention": self.mid_block_add_attention,
            "norm_num_groups": self.norm_num_groups,
            "out_channels": self.out_channels,
            "sample_size": self.sample_size,
            "scaling_factor": self.scaling_factor,
            "shift_factor": self.shift_factor,
            "up_block_types": vec![UP_BLOCK; blocks],
            "use_post_quant_conv": false,
            "use_quant_conv": false,
        });
        serde_json::to_string_pretty(&json).expect("a JSON value serialises")
    }

    /// The spatial factor between image and latent: 2^(blocks − 1).
    pub fn downsample_factor(&self) -> usize {
        1 << self.block_out_channels.len().saturating_sub(1)
    }

    /// Checks the values the model cannot be built with; `origin` names the
    /// configuration in errors.
    pub fn validate(&self, origin: &str) -> Result<()> {
        let unsupported = |field: &'static str, value: String, reason: &str| Error::Unsupported {
            origin: origin.to_string(),
            field,
            value,
            reason: reason.to_string(),
        };
        if self.block_out_channels.is_empty() || self.block_out_channels.contains(&0) {
            return Err(unsupported(
                "block_out_channels",
                format!("{:?}", self.block_out_channels),
                "needs at least one block, each with channels",
            ));
        }
        let groups = self.norm_num_groups;
        if groups == 0 || self.block_out_channels.iter().any(|c| c % groups != 0) {
            return Err(unsupported(
                "norm_num_groups",
                groups.to_string(),
                &format!(
                    "must divide every entry of block_out_channels {:?}",
                    self.block_out_channels
                ),
            ));
        }
        for (field, value) in [
            ("layers_per_block", self.layers_per_block),
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("latent_channels", self.latent_channels),
        ] {
            if value == 0 {
                return Err(unsupported(field, "0".into(), "must be at least 1"));
            }
        }
        self.check_upper_bounds(origin)?;
        if !self.scaling_factor.is_finite() || self.scaling_factor == 0.0 {
            return Err(unsupported(
                "scaling_factor",
                self.scaling_factor.to_string(),
                "must be finite and non-zero",
            ));
        }
        if self.shift_factor.is_some_and(|s| !s.is_finite()) {
            return Err(unsupported(
                "shift_factor",
                format!("{:?}", self.shift_factor),
                "must be finite",
            ));
        }
        Ok(())
    }

    /// Refuses sizes beyond [`ssdit_weights::limits`], each by name, then a
    /// model too large in total, before any size is multiplied or allocated.
    fn check_upper_bounds(&self, origin: &str) -> Result<()> {
        let unsupported = |field: &'static str, value: String, reason: String| Error::Unsupported {
            origin: origin.to_string(),
            field,
            value,
            reason,
        };
        let blocks = self.block_out_channels.len();
        if blocks > MAX_BLOCKS {
            return Err(unsupported(
                "block_out_channels",
                format!("{blocks} blocks"),
                format!("at most {MAX_BLOCKS} blocks are supported"),
            ));
        }
        let widest = self.block_out_channels.iter().copied().max().unwrap_or(0);
        if let Some(too_large) = limits::first_too_large(&[
            ("block_out_channels", widest, MAX_WIDTH),
            ("layers_per_block", self.layers_per_block, MAX_LAYERS),
            ("in_channels", self.in_channels, MAX_WIDTH),
            ("out_channels", self.out_channels, MAX_WIDTH),
            ("latent_channels", self.latent_channels, MAX_WIDTH),
        ]) {
            return Err(unsupported(
                too_large.field,
                too_large.value.to_string(),
                format!("exceeds the limit of {}", too_large.limit),
            ));
        }
        match limits::too_many_parameters(self.parameter_estimate()) {
            Some(reason) => Err(unsupported(
                "block_out_channels",
                format!(
                    "{:?} with layers_per_block {}",
                    self.block_out_channels, self.layers_per_block
                ),
                reason,
            )),
            None => Ok(()),
        }
    }

    /// About how many parameters the model has, from its convolution and
    /// attention weights (norms and biases add about a percent); sizes must
    /// be within the limits first.
    pub(crate) fn parameter_estimate(&self) -> f64 {
        let conv3x3 = |cin: usize, cout: usize| 9.0 * cin as f64 * cout as f64;
        let resnet = |cin: usize, cout: usize| {
            let shortcut = if cin == cout {
                0.0
            } else {
                (cin * cout) as f64
            };
            conv3x3(cin, cout) + conv3x3(cout, cout) + shortcut
        };
        // Resnets of each block (the first takes the previous block's
        // channels), and the resampling convolution of all but the last.
        let blocks = |channels: &[usize], resnets: usize| -> f64 {
            let sampler_convs = channels.len() - 1;
            channels
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    let cin = channels[i.saturating_sub(1)];
                    let sampler = if i < sampler_convs {
                        conv3x3(c, c)
                    } else {
                        0.0
                    };
                    resnet(cin, c) + (resnets - 1) as f64 * resnet(c, c) + sampler
                })
                .sum()
        };
        let channels = &self.block_out_channels;
        let reversed: Vec<usize> = channels.iter().rev().copied().collect();
        let (first, last) = (channels[0], reversed[0]);
        // Two resnets and one attention (q, k, v, out).
        let mid = 2.0 * resnet(last, last) + 4.0 * (last * last) as f64;
        let encoder = conv3x3(self.in_channels, first)
            + blocks(channels, self.layers_per_block)
            + mid
            + conv3x3(last, 2 * self.latent_channels);
        let decoder = conv3x3(self.latent_channels, last)
            + mid
            + blocks(&reversed, self.layers_per_block + 1)
            + conv3x3(first, self.out_channels);
        encoder + decoder
    }
}

/// `config.json` as diffusers' `AutoencoderKL.__init__` takes it, with its
/// defaults for absent keys.
#[derive(Deserialize)]
struct DiffusersConfig {
    #[serde(rename = "_class_name")]
    class_name: Option<String>,
    #[serde(default = "three")]
    in_channels: usize,
    #[serde(default = "three")]
    out_channels: usize,
    #[serde(default = "default_down_blocks")]
    down_block_types: Vec<String>,
    #[serde(default = "default_up_blocks")]
    up_block_types: Vec<String>,
    #[serde(default = "default_block_out_channels")]
    block_out_channels: Vec<usize>,
    #[serde(default = "one")]
    layers_per_block: usize,
    #[serde(default = "default_act_fn")]
    act_fn: String,
    #[serde(default = "default_latent_channels")]
    latent_channels: usize,
    #[serde(default = "default_groups")]
    norm_num_groups: usize,
    #[serde(default)]
    sample_size: Option<SampleSize>,
    #[serde(default = "default_scaling_factor")]
    scaling_factor: f64,
    #[serde(default)]
    shift_factor: Option<f64>,
    #[serde(default)]
    latents_mean: Option<Vec<f64>>,
    #[serde(default)]
    latents_std: Option<Vec<f64>>,
    #[serde(default = "yes")]
    use_quant_conv: bool,
    #[serde(default = "yes")]
    use_post_quant_conv: bool,
    #[serde(default = "yes")]
    mid_block_add_attention: bool,
}

/// diffusers accepts an int or `[height, width]` and tiles at the first.
#[derive(Deserialize)]
#[serde(untagged)]
enum SampleSize {
    Square(usize),
    Sides(Vec<usize>),
}

fn three() -> usize {
    3
}
fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn default_down_blocks() -> Vec<String> {
    vec![DOWN_BLOCK.into()]
}
fn default_up_blocks() -> Vec<String> {
    vec![UP_BLOCK.into()]
}
fn default_block_out_channels() -> Vec<usize> {
    vec![64]
}
fn default_act_fn() -> String {
    "silu".into()
}
fn default_latent_channels() -> usize {
    4
}
fn default_groups() -> usize {
    32
}
fn default_scaling_factor() -> f64 {
    0.18215
}

const CLASS_NAME: &str = "AutoencoderKL";
const DOWN_BLOCK: &str = "DownEncoderBlock2D";
const UP_BLOCK: &str = "UpDecoderBlock2D";
/// diffusers' default sample size when the key is absent.
const DEFAULT_SAMPLE_SIZE: usize = 32;

impl DiffusersConfig {
    fn into_config(self, origin: &str) -> Result<AutoencoderKlConfig> {
        let unsupported = |field: &'static str, value: String, reason: &str| Error::Unsupported {
            origin: origin.to_string(),
            field,
            value,
            reason: reason.to_string(),
        };
        if let Some(name) = self.class_name.as_deref().filter(|n| *n != CLASS_NAME) {
            return Err(unsupported(
                "_class_name",
                format!("{name:?}"),
                "only AutoencoderKL is implemented",
            ));
        }
        if self.act_fn != "silu" {
            return Err(unsupported(
                "act_fn",
                format!("{:?}", self.act_fn),
                "only silu is implemented",
            ));
        }
        let blocks = self.block_out_channels.len();
        check_block_types(
            "down_block_types",
            &self.down_block_types,
            DOWN_BLOCK,
            blocks,
        )
        .map_err(|(value, reason)| unsupported("down_block_types", value, &reason))?;
        check_block_types("up_block_types", &self.up_block_types, UP_BLOCK, blocks)
            .map_err(|(value, reason)| unsupported("up_block_types", value, &reason))?;
        if self.use_quant_conv {
            return Err(unsupported(
                "use_quant_conv",
                "true".into(),
                "the FLUX.1 layout has no quant_conv",
            ));
        }
        if self.use_post_quant_conv {
            return Err(unsupported(
                "use_post_quant_conv",
                "true".into(),
                "the FLUX.1 layout has no post_quant_conv",
            ));
        }
        if let Some(mean) = self.latents_mean {
            return Err(unsupported(
                "latents_mean",
                format!("{mean:?}"),
                "per-channel latent statistics are not implemented (use the dataset normalisation)",
            ));
        }
        if let Some(std) = self.latents_std {
            return Err(unsupported(
                "latents_std",
                format!("{std:?}"),
                "per-channel latent statistics are not implemented (use the dataset normalisation)",
            ));
        }
        let sample_size = match self.sample_size {
            None => DEFAULT_SAMPLE_SIZE,
            Some(SampleSize::Square(size)) => size,
            Some(SampleSize::Sides(sides)) => *sides.first().ok_or_else(|| {
                unsupported(
                    "sample_size",
                    "[]".into(),
                    "needs an int or [height, width]",
                )
            })?,
        };
        Ok(AutoencoderKlConfig {
            block_out_channels: self.block_out_channels,
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            latent_channels: self.latent_channels,
            layers_per_block: self.layers_per_block,
            norm_num_groups: self.norm_num_groups,
            mid_block_add_attention: self.mid_block_add_attention,
            scaling_factor: self.scaling_factor,
            shift_factor: self.shift_factor,
            sample_size,
        })
    }
}

fn check_block_types(
    field: &str,
    types: &[String],
    expected: &str,
    blocks: usize,
) -> std::result::Result<(), (String, String)> {
    if types.len() != blocks {
        return Err((
            format!("{types:?}"),
            format!("{field} needs one entry per block_out_channels entry ({blocks})"),
        ));
    }
    match types.iter().find(|t| *t != expected) {
        Some(other) => Err((
            format!("{types:?}"),
            format!("block type {other:?} is not implemented (only {expected})"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE_LIKE: &str = r#"{
        "_class_name": "AutoencoderKL", "_diffusers_version": "0.42.1", "act_fn": "silu",
        "block_out_channels": [32, 32, 64, 64],
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
        "force_upcast": true, "in_channels": 3, "latent_channels": 16, "latents_mean": null,
        "latents_std": null, "layers_per_block": 1, "mid_block_add_attention": true,
        "norm_num_groups": 8, "out_channels": 3, "sample_size": 64, "scaling_factor": 0.3611,
        "shift_factor": 0.1159,
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
        "use_post_quant_conv": false, "use_quant_conv": false
    }"#;

    fn with(key: &str, value: &str) -> String {
        let mut json: serde_json::Value = serde_json::from_str(FIXTURE_LIKE).unwrap();
        json[key] = serde_json::from_str(value).unwrap();
        json.to_string()
    }

    #[test]
    fn reads_the_flux_layout() {
        let config = AutoencoderKlConfig::from_json(FIXTURE_LIKE, "test").unwrap();
        assert_eq!(config, AutoencoderKlConfig::tiny());
        assert_eq!(config.downsample_factor(), 8);
    }

    #[test]
    fn diffusers_json_round_trips() {
        for config in [AutoencoderKlConfig::flux_vae(), AutoencoderKlConfig::tiny()] {
            let json = config.to_diffusers_json();
            assert_eq!(
                AutoencoderKlConfig::from_json(&json, "saved").unwrap(),
                config
            );
        }
    }

    #[test]
    fn flux_preset_is_valid() {
        let flux = AutoencoderKlConfig::flux_vae();
        flux.validate("flux").unwrap();
        assert_eq!(flux.downsample_factor(), 8);
    }

    #[test]
    fn unsupported_values_name_their_field() {
        let cases = [
            ("use_quant_conv", "true"),
            ("use_post_quant_conv", "true"),
            ("act_fn", "\"gelu\""),
            ("_class_name", "\"AutoencoderTiny\""),
            ("latents_mean", "[0.0, 1.0]"),
            (
                "down_block_types",
                r#"["DownEncoderBlock2D","AttnDownEncoderBlock2D","DownEncoderBlock2D","DownEncoderBlock2D"]"#,
            ),
            ("up_block_types", r#"["UpDecoderBlock2D"]"#),
            ("norm_num_groups", "7"),
            ("layers_per_block", "0"),
            ("block_out_channels", "[32, 0, 64, 64]"),
        ];
        for (field, value) in cases {
            let err = AutoencoderKlConfig::from_json(&with(field, value), "cfg.json").unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(&err, Error::Unsupported { field: f, .. } if *f == field),
                "{field}: {text}"
            );
            assert!(text.contains("cfg.json") && text.contains(field), "{text}");
        }
    }

    #[test]
    fn absurd_sizes_are_refused_by_name() {
        let blocks = 17;
        let list = |item: &str| format!("[{}]", vec![item; blocks].join(", "));
        let mut many_blocks: serde_json::Value = serde_json::from_str(FIXTURE_LIKE).unwrap();
        many_blocks["block_out_channels"] = serde_json::from_str(&list("32")).unwrap();
        many_blocks["down_block_types"] =
            serde_json::from_str(&list(&format!("{DOWN_BLOCK:?}"))).unwrap();
        many_blocks["up_block_types"] =
            serde_json::from_str(&list(&format!("{UP_BLOCK:?}"))).unwrap();
        let huge = "exceeds the limit";
        let cases = [
            (
                "block_out_channels",
                with("block_out_channels", "[32, 32, 64, 1000000000]"),
                huge,
            ),
            (
                "block_out_channels",
                many_blocks.to_string(),
                "at most 16 blocks",
            ),
            (
                "layers_per_block",
                with("layers_per_block", "1000000000"),
                huge,
            ),
            ("in_channels", with("in_channels", "1000000000"), huge),
            ("out_channels", with("out_channels", "1000000000"), huge),
            (
                "latent_channels",
                with("latent_channels", "1000000000"),
                huge,
            ),
        ];
        for (field, json, reason) in cases {
            let err = AutoencoderKlConfig::from_json(&json, "cfg.json").unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(&err, Error::Unsupported { field: f, .. } if *f == field)
                    && text.contains(reason),
                "{field}: {text}"
            );
        }
    }

    #[test]
    fn models_too_large_in_total_are_refused() {
        let json = with("block_out_channels", "[65536, 65536, 65536, 65536]");
        let err = AutoencoderKlConfig::from_json(&json, "cfg.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("block_out_channels") && err.contains("parameters, over the limit"),
            "{err}"
        );
    }

    #[test]
    fn parameter_estimate_is_close_to_the_count() {
        use burn::backend::NdArray;
        use burn::module::Module;
        let config = AutoencoderKlConfig::tiny();
        let count = config.init::<NdArray>(&Default::default()).num_params() as f64;
        let estimate = config.parameter_estimate();
        assert!(
            (estimate / count - 1.0).abs() < 0.03,
            "estimate {estimate}, count {count}"
        );
    }

    #[test]
    fn absent_keys_take_diffusers_defaults() {
        // diffusers defaults use quant convs, which this layout rejects by name.
        let err = AutoencoderKlConfig::from_json("{}", "empty.json").unwrap_err();
        assert!(err.to_string().contains("use_quant_conv"), "{err}");
        let minimal = r#"{"use_quant_conv": false, "use_post_quant_conv": false}"#;
        let config = AutoencoderKlConfig::from_json(minimal, "minimal.json").unwrap();
        assert_eq!(config.block_out_channels, vec![64]);
        assert_eq!(config.latent_channels, 4);
        assert_eq!(config.sample_size, 32);
        assert!((config.scaling_factor - 0.18215).abs() < 1e-12);
    }

    #[test]
    fn malformed_json_names_the_file() {
        let err =
            AutoencoderKlConfig::from_json(r#"{"latent_channels": "x"}"#, "bad.json").unwrap_err();
        assert!(matches!(err, Error::ConfigFile { .. }), "{err}");
        assert!(err.to_string().contains("bad.json"), "{err}");
    }

    #[test]
    fn sample_size_may_be_a_pair() {
        let config =
            AutoencoderKlConfig::from_json(&with("sample_size", "[512, 768]"), "pair").unwrap();
        assert_eq!(config.sample_size, 512);
    }
}
