//! Loading the encoder from transformers' files: the one table of checkpoint
//! names, model-directory resolution (local or hub), and the fingerprint.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::Deserialize;
use ssdit_weights::{Checkpoint, KeyMap, ModelSource};

use crate::t5gemma2::{T5Gemma2Encoder, T5Gemma2EncoderConfig};
use crate::{Error, Result};

/// Checkpoint names ↔ encoder parameter paths.
///
/// `T5Gemma2ForConditionalGeneration.save_pretrained` writes the encoder's
/// text weights under `model.encoder.`; the module's fields carry the names
/// after that prefix. Deliberately unused, and listed so that any other
/// surplus tensor is an error: the SigLIP vision tower and its projector
/// (`model.encoder.vision_tower.*`, `model.encoder.multi_modal_projector.*`),
/// the decoder (`model.decoder.*`) and the LM head (`lm_head.*`, tied to the
/// embedding and absent from most files).
pub fn key_map() -> KeyMap {
    KeyMap::new()
        .rename(r"^model\.encoder\.", "", "^", "model.encoder.")
        .ignore(r"^model\.encoder\.vision_tower\.")
        .ignore(r"^model\.encoder\.multi_modal_projector\.")
        .ignore(r"^model\.decoder\.")
        .ignore(r"^lm_head\.")
}

/// The files of a T5Gemma2 model directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// `config.json`.
    pub config: PathBuf,
    /// `model.safetensors`, or the index of a sharded checkpoint.
    pub weights: PathBuf,
    /// The shards of a sharded checkpoint, or `weights` itself.
    pub weight_files: Vec<PathBuf>,
    /// `tokenizer.json`.
    pub tokenizer: PathBuf,
}

const CONFIG: &str = "config.json";
const TOKENIZER: &str = "tokenizer.json";
const SINGLE: &str = "model.safetensors";
const INDEX: &str = "model.safetensors.index.json";

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: std::collections::BTreeMap<String, String>,
}

impl ModelFiles {
    /// Finds (downloading from the hub when `source` is a repo id) the
    /// config, tokenizer and weights — single-file or sharded.
    pub fn resolve(source: &ModelSource) -> Result<Self> {
        let optional_index = format!("{INDEX}?");
        let optional_single = format!("{SINGLE}?");
        let dir = ssdit_weights::resolve(
            source,
            &[CONFIG, TOKENIZER, &optional_index, &optional_single],
        )?;
        let index = dir.join(INDEX);
        let (weights, weight_files) = if index.is_file() {
            let shards = shard_names(&index)?;
            let names: Vec<&str> = shards.iter().map(String::as_str).collect();
            let shard_dir = ssdit_weights::resolve(source, &names)?;
            let files = shards.iter().map(|s| shard_dir.join(s)).collect();
            (index, files)
        } else if dir.join(SINGLE).is_file() {
            (dir.join(SINGLE), vec![dir.join(SINGLE)])
        } else {
            return Err(Error::Weights(ssdit_weights::Error::Resolve {
                id: source.to_string(),
                reason: format!("neither {SINGLE} nor {INDEX} found"),
            }));
        };
        Ok(Self {
            config: dir.join(CONFIG),
            weights,
            weight_files,
            tokenizer: dir.join(TOKENIZER),
        })
    }

    /// A stable id of this model for cache keys: the hash of its config,
    /// weight files and tokenizer.
    pub fn fingerprint(&self) -> Result<String> {
        let mut files: Vec<&Path> = vec![&self.config];
        files.extend(self.weight_files.iter().map(PathBuf::as_path));
        files.push(&self.tokenizer);
        Ok(ssdit_weights::fingerprint_files(&files)?)
    }
}

/// The distinct shard files an index names, validated as plain relative names.
fn shard_names(index: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(index).map_err(|source| Error::Io {
        path: index.to_path_buf(),
        source,
    })?;
    let parsed: ShardIndex = serde_json::from_str(&text).map_err(|e| Error::Json {
        origin: index.display().to_string(),
        reason: e.to_string(),
    })?;
    let shards: BTreeSet<String> = parsed.weight_map.into_values().collect();
    if let Some(bad) = shards.iter().find(|s| {
        let path = Path::new(s.as_str());
        path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
    }) {
        return Err(Error::Json {
            origin: index.display().to_string(),
            reason: format!("shard {bad:?} points outside the model directory"),
        });
    }
    Ok(shards.into_iter().collect())
}

/// Reads `config.json` and the weights of `files` into an encoder on `device`.
pub fn load_encoder<B: Backend>(
    files: &ModelFiles,
    device: &Device<B>,
) -> Result<T5Gemma2Encoder<B>> {
    let config = T5Gemma2EncoderConfig::from_hf_file(&files.config)?;
    let checkpoint = Checkpoint::open(&files.weights)?;
    load_weights(&config, &checkpoint, device)
}

/// Builds an encoder of `config` holding `checkpoint`'s weights (converted
/// to the backend's float type). Fails naming any missing, wrong-shaped or
/// unexpected tensor.
pub fn load_weights<B: Backend>(
    config: &T5Gemma2EncoderConfig,
    checkpoint: &Checkpoint,
    device: &Device<B>,
) -> Result<T5Gemma2Encoder<B>> {
    tracing::debug!(
        origin = checkpoint.origin(),
        tensors = checkpoint.len(),
        "loading T5Gemma2 encoder"
    );
    Ok(checkpoint.load_into(config.init(device), &key_map())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways_and_other_towers_are_ignored() {
        let keys = key_map();
        let name = "model.encoder.layers.3.self_attn.q_proj.weight";
        assert_eq!(keys.module_path(name), "layers.3.self_attn.q_proj.weight");
        assert_eq!(
            keys.checkpoint_name("layers.3.self_attn.q_proj.weight"),
            name
        );
        assert!(keys.is_ignored("model.encoder.vision_tower.vision_model.post_layernorm.weight"));
        assert!(keys.is_ignored("model.encoder.multi_modal_projector.mm_input_projection_weight"));
        assert!(keys.is_ignored("model.decoder.layers.0.mlp.up_proj.weight"));
        assert!(!keys.is_ignored("model.encoder.embed_tokens.eoi_embedding"));
    }
}
