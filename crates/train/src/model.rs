//! Which DiT a run trains: a preset (`tiny`, `small`, `seed`) or the seed's
//! constructor-argument `config.json`, fitted to the data.

use ssdit_model::SingleStreamDiTConfig;

use crate::{Error, Result};

/// Presets whose caption width and length follow the data: `tiny` and
/// `small` are made for whatever text encoder encoded the dataset. The `seed`
/// preset and config files are taken as they are (a released checkpoint
/// fixes them) and must match the data.
const ADAPTIVE_PRESETS: [&str; 2] = ["tiny", "small"];

/// What the data fixes about the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataShape {
    /// Latent channels.
    pub channels: usize,
    /// Caption tokens.
    pub text_tokens: usize,
    /// Caption embedding width.
    pub text_dim: usize,
}

/// The configuration of the DiT `spec` names, with the run's block dropout,
/// checked against (or, for `tiny`/`small`, fitted to) the data.
pub fn dit_config(spec: &str, data: DataShape, dropout: f64) -> Result<SingleStreamDiTConfig> {
    let error = |reason: String| Error::Model {
        spec: spec.to_string(),
        reason,
    };
    let config = SingleStreamDiTConfig::from_spec(spec).map_err(|e| error(e.to_string()))?;
    let config = if ADAPTIVE_PRESETS.contains(&spec.trim()) {
        config
            .with_in_channels(data.channels)
            .with_text_embed_dim(data.text_dim)
            .with_max_token_length(data.text_tokens)
    } else {
        config
    };
    if config.in_channels != data.channels {
        return Err(error(format!(
            "takes {}-channel latents, the dataset's have {}",
            config.in_channels, data.channels
        )));
    }
    if config.text_embed_dim != data.text_dim {
        return Err(error(format!(
            "takes {}-wide caption embeddings, the dataset's are {} wide",
            config.text_embed_dim, data.text_dim
        )));
    }
    if config.max_token_length < data.text_tokens {
        return Err(error(format!(
            "takes at most {} caption tokens, the dataset's have {}",
            config.max_token_length, data.text_tokens
        )));
    }
    let config = config.with_dropout(dropout);
    config.validate().map_err(|e| error(e.to_string()))?;
    Ok(config)
}

/// The seed's constructor-argument JSON of `config` (the `config.json` of
/// a checkpoint, read back by [`SingleStreamDiTConfig::from_seed_json`]).
pub fn seed_json(config: &SingleStreamDiTConfig) -> String {
    serde_json::json!({
        "in_channels": config.in_channels,
        "patch_size": config.patch_size,
        "hidden_size": config.hidden_size,
        "num_heads": config.num_heads,
        "depth": config.depth,
        "refiner_depth": config.refiner_depth,
        "text_embed_dim": config.text_embed_dim,
        "max_token_length": config.max_token_length,
        "rope_base": config.rope_base,
        "dropout": config.dropout,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: DataShape = DataShape {
        channels: 16,
        text_tokens: 32,
        text_dim: 128,
    };

    #[test]
    fn tiny_fits_the_data_and_takes_the_run_dropout() {
        let c = dit_config("tiny", DATA, 0.1).unwrap();
        assert_eq!((c.text_embed_dim, c.max_token_length), (128, 32));
        assert_eq!(c.dropout, 0.1);
        let back = SingleStreamDiTConfig::from_seed_json(&seed_json(&c)).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn seed_preset_must_match_the_data() {
        let err = dit_config("seed", DATA, 0.05).unwrap_err().to_string();
        assert!(
            err.contains("1152-wide") && err.contains("128 wide"),
            "{err}"
        );
        let data = DataShape {
            text_dim: 1152,
            text_tokens: 128,
            ..DATA
        };
        assert_eq!(dit_config("seed", data, 0.05).unwrap().hidden_size, 768);
        assert!(dit_config("/nonexistent.json", data, 0.05).is_err());
    }
}
