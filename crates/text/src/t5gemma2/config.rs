//! The encoder's configuration: a burn `Config`, read from a transformers
//! `config.json` (`T5Gemma2Config`, nested `encoder.text_config`) or built
//! from a preset.
//!
//! Reference: transformers `models/t5gemma2/configuration_t5gemma2.py`
//! (`T5Gemma2TextConfig` defaults) and `modeling_rope_utils.py` (rope types).

use std::path::Path;

use burn::config::Config;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ssdit_weights::limits::{self, MAX_LAYERS, MAX_VOCAB, MAX_WIDTH};

use crate::{Error, Result};

/// Whether a layer attends over a local window or the whole sequence
/// (transformers' `layer_types` entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayerType {
    /// `"sliding_attention"`: a bidirectional local window of `sliding_window` tokens.
    #[serde(rename = "sliding_attention")]
    Sliding,
    /// `"full_attention"`: every (unpadded) token.
    #[serde(rename = "full_attention")]
    Full,
}

/// Rotary position embedding of one layer type (`rope_parameters[type]`).
///
/// `rope_type` `"default"` is `factor = 1`; `"linear"` divides the inverse
/// frequencies by `factor`. Other rope types are rejected when parsing.
#[derive(Config, Debug, PartialEq)]
pub struct RopeConfig {
    /// `rope_theta`: the base of the inverse frequencies.
    pub theta: f64,
    /// Linear position-interpolation factor (1 for `"default"`).
    #[config(default = 1.0)]
    pub factor: f64,
}

/// Sizes and numerics of the T5Gemma2 text encoder (the encoder's
/// `text_config`; the vision tower and decoder are not part of it).
#[derive(Config, Debug)]
pub struct T5Gemma2EncoderConfig {
    /// Token vocabulary (rows of `embed_tokens.weight`).
    pub vocab_size: usize,
    /// Width of the residual stream, and of the output embeddings.
    pub hidden_size: usize,
    /// Width of the gated MLP.
    pub intermediate_size: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); divides `num_attention_heads`.
    pub num_key_value_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// One entry per layer: sliding-window or full attention.
    pub layer_types: Vec<LayerType>,
    /// Window of the sliding layers, in tokens (transformers' window semantics:
    /// key j is visible from query i when `i - (w+1)/2 < j < i + w/2 + 1`).
    pub sliding_window: usize,
    /// RoPE of the sliding layers (`rope_parameters.sliding_attention`).
    pub rope_sliding: RopeConfig,
    /// RoPE of the full layers (`rope_parameters.full_attention`).
    pub rope_full: RopeConfig,
    /// Token id embedded with the learnt `eoi_embedding` instead of its row.
    pub eoi_token_index: usize,
    /// Attention scores are scaled by `query_pre_attn_scalar^-0.5`.
    #[config(default = 256.0)]
    pub query_pre_attn_scalar: f64,
    /// Epsilon of every RMSNorm.
    #[config(default = 1e-6)]
    pub rms_norm_eps: f64,
}

impl T5Gemma2EncoderConfig {
    /// The text encoder of `google/t5gemma-2-1b-1b`.
    ///
    /// T5Gemma 2 1B-1B adapts Gemma 3 1B, whose text config (`gemma3_text`,
    /// `google/gemma-3-1b`) gives hidden 1152, 26 layers, 4 query heads,
    /// 1 key/value head, head_dim 256, MLP 6912, vocabulary 262144, sliding
    /// window 512, `query_pre_attn_scalar` 256 and `sliding_window_pattern` 6
    /// (every sixth layer full); the seed's `config.py` confirms the 1152-wide
    /// output. The T5Gemma2-specific values come from the family's released
    /// `config.json` as transformers 5.0 writes it (`google/t5gemma-2-270m-270m`,
    /// the one copy found offline): `eoi_token_index` 256000, sliding RoPE
    /// `default` with theta 10000, full RoPE `linear` ×8 with theta 1e6.
    /// Loading a checkpoint always reads its own `config.json`; this preset
    /// sizes benchmarks and tests.
    pub fn t5gemma_2_1b() -> Self {
        Self::new(
            262_144,
            1152,
            6912,
            4,
            1,
            256,
            layer_pattern(26, 6),
            512,
            RopeConfig::new(10_000.0),
            RopeConfig::new(1_000_000.0).with_factor(8.0),
            256_000,
        )
    }

    /// Number of encoder layers.
    pub fn num_hidden_layers(&self) -> usize {
        self.layer_types.len()
    }

    /// Reads a transformers `config.json`: a full `T5Gemma2Config` (its
    /// `encoder.text_config`), a `T5Gemma2EncoderConfig`, or a text config.
    pub fn from_hf_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_hf_json(&text, &path.display().to_string())
    }

    /// Parses the text of a transformers `config.json`; `origin` names it in errors.
    pub fn from_hf_json(json: &str, origin: &str) -> Result<Self> {
        let root: Value = serde_json::from_str(json).map_err(|e| Error::Json {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
        hf::parse(&root, origin)
    }

    /// Checks the sizes agree with each other (heads divide, window positive…).
    pub fn validate(&self, origin: &str) -> Result<()> {
        let fail = |field: &str, reason: String| Err(Error::config(origin, field, reason));
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
            ("sliding_window", self.sliding_window),
            ("num_hidden_layers", self.layer_types.len()),
        ] {
            if value == 0 {
                return fail(field, "must be positive".into());
            }
        }
        if let Some(too_large) = limits::first_too_large(&[
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, MAX_WIDTH),
            ("intermediate_size", self.intermediate_size, MAX_WIDTH),
            ("num_attention_heads", self.num_attention_heads, MAX_WIDTH),
            ("num_key_value_heads", self.num_key_value_heads, MAX_WIDTH),
            ("head_dim", self.head_dim, MAX_WIDTH),
            ("num_hidden_layers", self.layer_types.len(), MAX_LAYERS),
        ]) {
            return fail(too_large.field, too_large.to_string());
        }
        if let Some(reason) = limits::too_many_parameters(self.parameter_estimate()) {
            return fail(
                "vocab_size, hidden_size, intermediate_size, num_hidden_layers",
                reason,
            );
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return fail(
                "num_key_value_heads",
                format!(
                    "{} does not divide num_attention_heads {}",
                    self.num_key_value_heads, self.num_attention_heads
                ),
            );
        }
        if !self.head_dim.is_multiple_of(2) {
            return fail(
                "head_dim",
                format!("{} is odd; rotary embeddings need pairs", self.head_dim),
            );
        }
        for (field, rope) in [
            ("rope_parameters.sliding_attention", &self.rope_sliding),
            ("rope_parameters.full_attention", &self.rope_full),
        ] {
            if !(positive(rope.theta) && positive(rope.factor)) {
                return fail(
                    field,
                    format!(
                        "rope_theta {} and factor {} must be positive",
                        rope.theta, rope.factor
                    ),
                );
            }
        }
        if !positive(self.query_pre_attn_scalar) {
            return fail(
                "query_pre_attn_scalar",
                format!("{} must be positive", self.query_pre_attn_scalar),
            );
        }
        Ok(())
    }
}

impl T5Gemma2EncoderConfig {
    /// About how many parameters the encoder has, from its embedding and
    /// projection matrices (norms add a fraction of a percent); sizes must
    /// be within the limits first.
    pub(crate) fn parameter_estimate(&self) -> f64 {
        let hidden = self.hidden_size as f64;
        let queries = (self.num_attention_heads * self.head_dim) as f64;
        let keys = (self.num_key_value_heads * self.head_dim) as f64;
        let attention = hidden * (2.0 * queries + 2.0 * keys); // q, k, v, o
        let mlp = 3.0 * hidden * self.intermediate_size as f64; // gate, up, down
        self.vocab_size as f64 * hidden + self.layer_types.len() as f64 * (attention + mlp)
    }
}

/// Whether `x` is a positive number (false for NaN).
fn positive(x: f64) -> bool {
    x > 0.0
}

/// transformers' default `layer_types`: every `pattern`-th layer is full.
pub(crate) fn layer_pattern(layers: usize, pattern: usize) -> Vec<LayerType> {
    (0..layers)
        .map(|i| {
            if (i + 1) % pattern == 0 {
                LayerType::Full
            } else {
                LayerType::Sliding
            }
        })
        .collect()
}

/// Reading transformers' JSON, with its defaults and our refusals.
mod hf {
    use super::*;

    /// `T5Gemma2TextConfig` fields the encoder uses. Fields that only concern
    /// the decoder, dropout or caching are not read.
    struct TextConfig {
        vocab_size: usize,
        hidden_size: usize,
        intermediate_size: usize,
        num_hidden_layers: usize,
        num_attention_heads: usize,
        num_key_value_heads: usize,
        head_dim: usize,
        hidden_activation: String,
        rms_norm_eps: f64,
        attention_bias: bool,
        query_pre_attn_scalar: f64,
        sliding_window: usize,
        layer_types: Option<Vec<String>>,
        sliding_window_pattern: Option<usize>,
        attn_logit_softcapping: Option<f64>,
        use_bidirectional_attention: Option<Value>,
        rope_parameters: Option<Value>,
        rope_theta: Option<f64>,
        rope_local_base_freq: Option<f64>,
        rope_scaling: Option<Value>,
    }

    /// transformers' default `eoi_token_index`.
    const DEFAULT_EOI_TOKEN_INDEX: usize = 256_000;

    impl TextConfig {
        /// Reads the fields, with `T5Gemma2TextConfig`'s defaults for absent ones.
        fn read(fields: &Fields<'_>) -> Result<Self> {
            Ok(Self {
                vocab_size: fields.get("vocab_size", 262_208)?,
                hidden_size: fields.get("hidden_size", 2304)?,
                intermediate_size: fields.get("intermediate_size", 9216)?,
                num_hidden_layers: fields.get("num_hidden_layers", 26)?,
                num_attention_heads: fields.get("num_attention_heads", 8)?,
                num_key_value_heads: fields.get("num_key_value_heads", 4)?,
                head_dim: fields.get("head_dim", 256)?,
                hidden_activation: fields.get("hidden_activation", "gelu_pytorch_tanh".into())?,
                rms_norm_eps: fields.get("rms_norm_eps", 1e-6)?,
                attention_bias: fields.get("attention_bias", false)?,
                query_pre_attn_scalar: fields.get("query_pre_attn_scalar", 256.0)?,
                sliding_window: fields.get("sliding_window", 4096)?,
                layer_types: fields.opt("layer_types")?,
                sliding_window_pattern: match fields.opt("sliding_window_pattern")? {
                    Some(pattern) => Some(pattern),
                    None => fields.opt("_sliding_window_pattern")?,
                },
                attn_logit_softcapping: fields.opt("attn_logit_softcapping")?,
                use_bidirectional_attention: fields.opt("use_bidirectional_attention")?,
                rope_parameters: fields.opt("rope_parameters")?,
                rope_theta: fields.opt("rope_theta")?,
                rope_local_base_freq: fields.opt("rope_local_base_freq")?,
                rope_scaling: fields.opt("rope_scaling")?,
            })
        }
    }

    /// The fields of one JSON object, read one by one so that an error names
    /// the field.
    struct Fields<'a> {
        map: &'a serde_json::Map<String, Value>,
        path: &'a str,
        origin: &'a str,
    }

    impl<'a> Fields<'a> {
        fn new(value: &'a Value, path: &'a str, origin: &'a str) -> Result<Self> {
            let map = value.as_object().ok_or_else(|| {
                Error::config(
                    origin,
                    if path.is_empty() { "(root)" } else { path },
                    "not a JSON object",
                )
            })?;
            Ok(Self { map, path, origin })
        }

        /// The full JSON path of `key`.
        fn name(&self, key: &str) -> String {
            if self.path.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", self.path)
            }
        }

        /// `key`, or `default` when absent (`null` is an error).
        fn get<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T> {
            match self.map.get(key) {
                None => Ok(default),
                Some(value) => self.parse(key, value),
            }
        }

        /// `key`, or `None` when absent or `null`.
        fn opt<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
            match self.map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => self.parse(key, value).map(Some),
            }
        }

        fn parse<T: DeserializeOwned>(&self, key: &str, value: &Value) -> Result<T> {
            T::deserialize(value)
                .map_err(|e| Error::config(self.origin, self.name(key), e.to_string()))
        }
    }

    /// One `rope_parameters` entry.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Rope {
        rope_type: Option<String>,
        #[serde(rename = "type")]
        legacy_type: Option<String>,
        rope_theta: Option<f64>,
        factor: Option<f64>,
    }

    pub(super) fn parse(root: &Value, origin: &str) -> Result<T5Gemma2EncoderConfig> {
        let (text, text_path, eoi) = locate(root, origin)?;
        let fields = Fields::new(text, text_path, origin)?;
        let text = TextConfig::read(&fields)?;
        let field = |name: &str| fields.name(name);
        if text.hidden_activation != "gelu_pytorch_tanh" {
            return Err(Error::config(
                origin,
                field("hidden_activation"),
                format!(
                    "{:?} is not supported (only \"gelu_pytorch_tanh\")",
                    text.hidden_activation
                ),
            ));
        }
        if let Some(cap) = text.attn_logit_softcapping {
            return Err(Error::config(
                origin,
                field("attn_logit_softcapping"),
                format!("{cap} is not supported (must be null)"),
            ));
        }
        if text.attention_bias {
            return Err(Error::config(
                origin,
                field("attention_bias"),
                "true is not supported (T5Gemma2 projections have no bias)",
            ));
        }
        if let Some(value) = text
            .use_bidirectional_attention
            .as_ref()
            .filter(|v| **v != Value::Bool(false))
        {
            return Err(Error::config(
                origin,
                field("use_bidirectional_attention"),
                format!("{value} is not supported (it rewrites the decoder-style sliding window)"),
            ));
        }
        // The default layer pattern is built from this count: bound it first.
        if let Some(too_large) =
            limits::first_too_large(&[("num_hidden_layers", text.num_hidden_layers, MAX_LAYERS)])
        {
            return Err(Error::config(
                origin,
                field(too_large.field),
                too_large.to_string(),
            ));
        }
        let layer_types = layer_types(&text, origin, &field)?;
        let (rope_sliding, rope_full) = ropes(&text, origin, &field)?;
        let config = T5Gemma2EncoderConfig::new(
            text.vocab_size,
            text.hidden_size,
            text.intermediate_size,
            text.num_attention_heads,
            text.num_key_value_heads,
            text.head_dim,
            layer_types,
            text.sliding_window,
            rope_sliding,
            rope_full,
            eoi,
        )
        .with_query_pre_attn_scalar(text.query_pre_attn_scalar)
        .with_rms_norm_eps(text.rms_norm_eps);
        config.validate(origin)?;
        Ok(config)
    }

    /// The text config inside `root`, its JSON path, and the eoi token id.
    fn locate<'a>(root: &'a Value, origin: &str) -> Result<(&'a Value, &'static str, usize)> {
        let model_type = root.get("model_type").and_then(Value::as_str);
        let eoi = |value: Option<&Value>, field: &str| -> Result<usize> {
            match value {
                None | Some(Value::Null) => Ok(DEFAULT_EOI_TOKEN_INDEX),
                Some(v) => v
                    .as_u64()
                    .map(|v| v as usize)
                    .ok_or_else(|| Error::config(origin, field, format!("{v} is not a token id"))),
            }
        };
        let missing = |field: &str| Error::config(origin, field, "missing");
        match model_type {
            Some("t5gemma2") => {
                let encoder = root.get("encoder").ok_or_else(|| missing("encoder"))?;
                let text = encoder
                    .get("text_config")
                    .ok_or_else(|| missing("encoder.text_config"))?;
                let eoi_value = root
                    .get("eoi_token_index")
                    .or_else(|| encoder.get("eoi_token_index"));
                Ok((
                    text,
                    "encoder.text_config",
                    eoi(eoi_value, "eoi_token_index")?,
                ))
            }
            Some("t5gemma2_encoder") => {
                let text = root
                    .get("text_config")
                    .ok_or_else(|| missing("text_config"))?;
                Ok((
                    text,
                    "text_config",
                    eoi(root.get("eoi_token_index"), "eoi_token_index")?,
                ))
            }
            Some("t5gemma2_text") => Ok((root, "", DEFAULT_EOI_TOKEN_INDEX)),
            other => Err(Error::config(
                origin,
                "model_type",
                format!(
                    "{other:?} is not a T5Gemma2 model (expected \"t5gemma2\", \"t5gemma2_encoder\" or \"t5gemma2_text\")"
                ),
            )),
        }
    }

    fn layer_types(
        text: &TextConfig,
        origin: &str,
        field: &dyn Fn(&str) -> String,
    ) -> Result<Vec<LayerType>> {
        let Some(names) = &text.layer_types else {
            let pattern = text.sliding_window_pattern.unwrap_or(6);
            if pattern == 0 {
                return Err(Error::config(
                    origin,
                    field("sliding_window_pattern"),
                    "must be positive",
                ));
            }
            return Ok(layer_pattern(text.num_hidden_layers, pattern));
        };
        if names.len() != text.num_hidden_layers {
            return Err(Error::config(
                origin,
                field("layer_types"),
                format!(
                    "{} entries for num_hidden_layers {}",
                    names.len(),
                    text.num_hidden_layers
                ),
            ));
        }
        names
            .iter()
            .enumerate()
            .map(|(i, name)| match name.as_str() {
                "sliding_attention" => Ok(LayerType::Sliding),
                "full_attention" => Ok(LayerType::Full),
                other => Err(Error::config(
                    origin,
                    format!("{}[{i}]", field("layer_types")),
                    format!("{other:?} is not \"sliding_attention\" or \"full_attention\""),
                )),
            })
            .collect()
    }

    /// `(sliding, full)` RoPE: from `rope_parameters`, or from the older
    /// `rope_theta` / `rope_local_base_freq` / `rope_scaling` fields as
    /// transformers standardises them.
    fn ropes(
        text: &TextConfig,
        origin: &str,
        field: &dyn Fn(&str) -> String,
    ) -> Result<(RopeConfig, RopeConfig)> {
        let one = |value: Option<&Value>, name: &str, default_theta: f64| -> Result<RopeConfig> {
            let path = field(&format!("rope_parameters.{name}"));
            let Some(value) = value.filter(|v| !v.is_null()) else {
                return Ok(RopeConfig::new(default_theta));
            };
            let rope: Rope = serde_json::from_value(value.clone())
                .map_err(|e| Error::config(origin, &path, e.to_string()))?;
            rope_config(rope, default_theta, origin, &path)
        };
        match &text.rope_parameters {
            Some(params) => {
                if let Some(unknown) = params.as_object().and_then(|map| {
                    map.keys()
                        .find(|k| !matches!(k.as_str(), "sliding_attention" | "full_attention"))
                }) {
                    return Err(Error::config(
                        origin,
                        field(&format!("rope_parameters.{unknown}")),
                        "not a layer type (expected sliding_attention and full_attention entries)",
                    ));
                }
                Ok((
                    one(
                        params.get("sliding_attention"),
                        "sliding_attention",
                        10_000.0,
                    )?,
                    one(params.get("full_attention"), "full_attention", 1_000_000.0)?,
                ))
            }
            None => {
                let sliding = RopeConfig::new(text.rope_local_base_freq.unwrap_or(10_000.0));
                let full_theta = text.rope_theta.unwrap_or(1_000_000.0);
                let full = match text.rope_scaling.as_ref().filter(|v| !v.is_null()) {
                    None => RopeConfig::new(full_theta),
                    Some(scaling) => {
                        let path = field("rope_scaling");
                        let rope: Rope = serde_json::from_value(scaling.clone())
                            .map_err(|e| Error::config(origin, &path, e.to_string()))?;
                        rope_config(rope, full_theta, origin, &path)?
                    }
                };
                Ok((sliding, full))
            }
        }
    }

    fn rope_config(rope: Rope, default_theta: f64, origin: &str, path: &str) -> Result<RopeConfig> {
        let kind = rope
            .rope_type
            .or(rope.legacy_type)
            .unwrap_or_else(|| "default".into());
        let theta = rope.rope_theta.unwrap_or(default_theta);
        match (kind.as_str(), rope.factor) {
            ("default", _) => Ok(RopeConfig::new(theta)),
            ("linear", Some(factor)) => Ok(RopeConfig::new(theta).with_factor(factor)),
            ("linear", None) => Err(Error::config(
                origin,
                format!("{path}.factor"),
                "missing (rope_type \"linear\" needs a factor)",
            )),
            (other, _) => Err(Error::config(
                origin,
                format!("{path}.rope_type"),
                format!("{other:?} is not supported (only \"default\" and \"linear\")"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_config(extra: &str) -> String {
        format!(
            r#"{{"model_type": "t5gemma2", "eoi_token_index": 9,
                "encoder": {{"text_config": {{
                    "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
                    "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
                    "head_dim": 4, "sliding_window": 4, "query_pre_attn_scalar": 4,
                    "layer_types": ["sliding_attention", "full_attention"],
                    "rope_parameters": {{
                        "sliding_attention": {{"rope_theta": 10000.0, "rope_type": "default"}},
                        "full_attention": {{"rope_theta": 1000000.0, "rope_type": "linear", "factor": 8.0}}
                    }}{extra}
                }}}}}}"#
        )
    }

    #[test]
    fn reads_nested_text_config() {
        let config = T5Gemma2EncoderConfig::from_hf_json(&text_config(""), "test").unwrap();
        assert_eq!(config.hidden_size, 8);
        assert_eq!(config.layer_types, [LayerType::Sliding, LayerType::Full]);
        assert_eq!(config.rope_full, RopeConfig::new(1e6).with_factor(8.0));
        assert_eq!(config.rope_sliding, RopeConfig::new(1e4));
        assert_eq!(config.eoi_token_index, 9);
        assert_eq!(config.query_pre_attn_scalar, 4.0);
    }

    fn error_of(extra: &str) -> String {
        T5Gemma2EncoderConfig::from_hf_json(&text_config(extra), "test")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn rejects_unsupported_values_naming_the_field() {
        let err = error_of(r#", "attn_logit_softcapping": 50.0"#);
        assert!(err.contains("attn_logit_softcapping"), "{err}");
        let err = error_of(r#", "hidden_activation": "relu""#);
        assert!(err.contains("hidden_activation"), "{err}");
        let err = error_of(r#", "attention_bias": true"#);
        assert!(err.contains("attention_bias"), "{err}");
        let err = error_of(r#", "use_bidirectional_attention": true"#);
        assert!(err.contains("use_bidirectional_attention"), "{err}");
    }

    #[test]
    fn wrongly_typed_fields_are_named() {
        let json = text_config("").replace(r#""hidden_size": 8"#, r#""hidden_size": "wide""#);
        let err = T5Gemma2EncoderConfig::from_hf_json(&json, "test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("encoder.text_config.hidden_size"), "{err}");
        let json = text_config("").replace(r#""sliding_window": 4"#, r#""sliding_window": null"#);
        let err = T5Gemma2EncoderConfig::from_hf_json(&json, "test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("encoder.text_config.sliding_window"), "{err}");
    }

    #[test]
    fn rejects_unknown_rope_type() {
        let json = text_config("").replace(r#""rope_type": "linear""#, r#""rope_type": "yarn""#);
        let err = T5Gemma2EncoderConfig::from_hf_json(&json, "test")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rope_parameters.full_attention.rope_type") && err.contains("yarn"),
            "{err}"
        );
    }

    #[test]
    fn rejects_inconsistent_sizes() {
        let json =
            text_config("").replace(r#""num_key_value_heads": 1"#, r#""num_key_value_heads": 3"#);
        let err = T5Gemma2EncoderConfig::from_hf_json(&json, "test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("num_key_value_heads"), "{err}");
        let json = text_config("").replace(
            r#""layer_types": ["sliding_attention", "full_attention"]"#,
            r#""layer_types": ["sliding_attention"]"#,
        );
        let err = T5Gemma2EncoderConfig::from_hf_json(&json, "test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("layer_types"), "{err}");
        let json = text_config("").replace("\"full_attention\"]", "\"global\"]");
        let err = T5Gemma2EncoderConfig::from_hf_json(&json, "test")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer_types[1]") && err.contains("global"),
            "{err}"
        );
    }

    #[test]
    fn rejects_other_models_and_bad_json() {
        let err = T5Gemma2EncoderConfig::from_hf_json(r#"{"model_type": "gemma3"}"#, "test")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model_type") && err.contains("gemma3"),
            "{err}"
        );
        let err = T5Gemma2EncoderConfig::from_hf_json("{not json", "cfg.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cfg.json"), "{err}");
        let err = T5Gemma2EncoderConfig::from_hf_json(
            r#"{"model_type": "t5gemma2", "encoder": {}}"#,
            "test",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("encoder.text_config") && err.contains("missing"),
            "{err}"
        );
    }

    #[test]
    fn default_layer_pattern_and_legacy_rope_fields() {
        let json = r#"{"model_type": "t5gemma2_text", "num_hidden_layers": 7,
                       "rope_theta": 500000.0, "rope_local_base_freq": 20000.0}"#;
        let config = T5Gemma2EncoderConfig::from_hf_json(json, "test").unwrap();
        assert_eq!(config.layer_types[5], LayerType::Full);
        assert_eq!(
            config
                .layer_types
                .iter()
                .filter(|t| **t == LayerType::Full)
                .count(),
            1
        );
        assert_eq!(config.rope_full.theta, 500000.0);
        assert_eq!(config.rope_sliding.theta, 20000.0);
    }

    #[test]
    fn absurd_sizes_are_refused_by_name() {
        for (field, value) in [
            ("vocab_size", "1000000000000"),
            ("hidden_size", "1000000000000"),
            ("intermediate_size", "1000000000000"),
            ("num_attention_heads", "1000000000000"),
            ("head_dim", "1000000000000"),
        ] {
            let json = text_config(&format!(r#", "{field}": {value}"#));
            let err = T5Gemma2EncoderConfig::from_hf_json(&json, "test")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("field {field}: {value} exceeds the limit")),
                "{err}"
            );
        }
        // Without layer_types the default pattern would be sized by the count.
        let json = r#"{"model_type": "t5gemma2_text", "num_hidden_layers": 1000000000000}"#;
        let err = T5Gemma2EncoderConfig::from_hf_json(json, "test")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("num_hidden_layers: 1000000000000 exceeds the limit of 1024"),
            "{err}"
        );
    }

    #[test]
    fn models_too_large_in_total_are_refused() {
        let json = r#"{"model_type": "t5gemma2_text", "hidden_size": 65536,
                       "intermediate_size": 65536, "num_hidden_layers": 1024}"#;
        let err = T5Gemma2EncoderConfig::from_hf_json(json, "test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("parameters, over the limit"), "{err}");
    }

    #[test]
    fn parameter_estimate_is_close_to_the_count() {
        use burn::backend::NdArray;
        use burn::module::Module;
        let config = crate::tiny::tiny_config();
        let count = config.init::<NdArray>(&Default::default()).num_params() as f64;
        let estimate = config.parameter_estimate();
        assert!(
            (estimate / count - 1.0).abs() < 0.01,
            "estimate {estimate}, count {count}"
        );
    }

    #[test]
    fn preset_matches_the_published_sizes() {
        let config = T5Gemma2EncoderConfig::t5gemma_2_1b();
        config.validate("preset").unwrap();
        assert_eq!(config.num_hidden_layers(), 26);
        let full: Vec<_> = (0..26)
            .filter(|&i| config.layer_types[i] == LayerType::Full)
            .collect();
        assert_eq!(full, [5, 11, 17, 23]);
    }
}
