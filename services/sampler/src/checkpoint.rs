//! Which weights the sampler serves, and reading them.
//!
//! The trainer writes a checkpoint as a folder
//! `runs/<run>/checkpoints/step-<N>/` ([`ssdit_train::checkpoint`]): among
//! others `ema.safetensors` (the EMA weights under the seed's tensor names:
//! what is served), `config.json` (the DiT's constructor arguments, the
//! seed's format), and `commit.json` last — each file's size and BLAKE3
//! hash. A folder without `commit.json` is incomplete and never picked as the
//! newest; a file whose size or hash disagrees with the marker is refused.
//! Only the served file and `config.json` are read (not the optimizer state
//! a full checkpoint read would fetch). A checkpoint without `config.json`
//! is built with the configured `models.dit`.
//!
//! The sampler also serves local files (`.safetensors`, or the seed's `.pt`
//! state dicts and training states, whose EMA weights are taken), and a
//! random-initialised model of the configured preset.

use std::fmt;
use std::path::{Path, PathBuf};

use ssdit_model::SingleStreamDiTConfig;
use ssdit_store::{Key, Store, layout};
use ssdit_train::checkpoint::{COMMIT_FILE, CONFIG_FILE, Commit, EMA_FILE, committed};

use crate::{Error, Result};

/// Largest weights file read (the seed's model in f32 is ~1.1 GB).
const MAX_WEIGHTS_BYTES: u64 = 16 << 30;
/// Largest `config.json` / `commit.json` read.
const MAX_JSON_BYTES: u64 = 1 << 20;

/// Where a served model's weights come from; also its name in replies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckpointId {
    /// A weights file of a run's checkpoint folder in the store.
    Store {
        run_id: String,
        step: u64,
        file: Key,
    },
    /// A local weights file.
    File(PathBuf),
    /// Weights drawn from `seed` for the preset `models.dit` names.
    Random { preset: String, seed: u64 },
}

impl fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store { file, .. } => write!(f, "{file}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Random { preset, seed } => write!(f, "random-init:{preset}:{seed}"),
        }
    }
}

impl CheckpointId {
    /// Parses the store key of a checkpoint folder
    /// (`runs/<run>/checkpoints/step-<N>`, serving its `ema.safetensors`) or
    /// of a `.safetensors` file in one. Anything else — including keys that
    /// would leave the run's folder — is an invalid argument.
    pub fn parse_store_key(key: &str) -> Result<Self> {
        let invalid =
            |reason: String| Error::InvalidArgument(format!("checkpoint {key:?}: {reason}"));
        let expected = || {
            invalid(format!(
                "expected runs/<run>/checkpoints/step-<N>[/<file>.safetensors] with N in {} digits ({})",
                layout::STEP_DIGITS,
                layout::step_name(42)
            ))
        };
        let parsed = Key::parse(key.trim_end_matches('/')).map_err(|e| invalid(e.to_string()))?;
        let step = layout::checkpoint_step(&parsed).ok_or_else(expected)?;
        let segments: Vec<&str> = parsed.as_str().split('/').collect();
        let (run_id, file) = match segments.as_slice() {
            ["runs", run, "checkpoints", _] => (*run, EMA_FILE),
            ["runs", run, "checkpoints", _, file] if file.ends_with(".safetensors") => {
                (*run, *file)
            }
            _ => return Err(expected()),
        };
        let file =
            layout::checkpoint_file(run_id, step, file).map_err(|e| invalid(e.to_string()))?;
        Ok(Self::Store {
            run_id: run_id.to_string(),
            step,
            file,
        })
    }

    /// The served file of a run's checkpoint at `step`.
    pub fn of_run(run_id: &str, step: u64) -> Result<Self> {
        Ok(Self::Store {
            run_id: run_id.to_string(),
            step,
            file: layout::checkpoint_file(run_id, step, EMA_FILE)?,
        })
    }

    /// The run and step of a store checkpoint.
    pub fn run_step(&self) -> Option<(&str, u64)> {
        match self {
            Self::Store { run_id, step, .. } => Some((run_id, *step)),
            _ => None,
        }
    }
}

/// Weights to build a model from.
#[derive(Debug)]
pub enum Weights {
    /// A safetensors file's bytes (the seed's tensor names).
    Safetensors(Vec<u8>),
    /// A local file: `.safetensors` or a seed `.pt`.
    File(PathBuf),
    /// Drawn from this seed.
    Random(u64),
}

/// Everything needed to build one model on the compute thread.
#[derive(Debug)]
pub struct ModelSource {
    pub id: CheckpointId,
    pub config: SingleStreamDiTConfig,
    pub weights: Weights,
}

/// Whether the weights of `id` exist.
pub async fn exists(store: &Store, id: &CheckpointId) -> Result<bool> {
    Ok(match id {
        CheckpointId::Store { file, .. } => store.exists(file).await?,
        CheckpointId::File(path) => path.is_file(),
        CheckpointId::Random { .. } => true,
    })
}

/// The newest committed checkpoint of `run_id`, if any.
pub async fn newest(store: &Store, run_id: &str) -> Result<Option<CheckpointId>> {
    committed(store, run_id)
        .await?
        .last()
        .map(|checkpoint| CheckpointId::of_run(run_id, checkpoint.step))
        .transpose()
}

/// Reads what `id` needs to be built: its weights (checked against the
/// folder's commit marker when there is one) and its architecture
/// (`config.json` beside the weights, else `fallback`).
pub async fn fetch(
    store: &Store,
    id: CheckpointId,
    fallback: &SingleStreamDiTConfig,
) -> Result<ModelSource> {
    let fail = |reason: String| Error::Checkpoint {
        id: id.to_string(),
        reason,
    };
    let (config, weights) = match &id {
        CheckpointId::Store { run_id, step, file } => {
            let config_key = layout::checkpoint_file(run_id, *step, CONFIG_FILE)?;
            let commit_key = layout::checkpoint_file(run_id, *step, COMMIT_FILE)?;
            let bytes = match store.get_bounded(file, MAX_WEIGHTS_BYTES).await {
                Ok(bytes) => bytes,
                Err(ssdit_store::Error::NotFound { .. }) => {
                    return Err(Error::NotFound(format!("checkpoint {id} not found")));
                }
                Err(error) => return Err(error.into()),
            };
            if let Some(commit) = store.get_opt(&commit_key).await? {
                verify(&commit, file.file_name(), &bytes).map_err(fail)?;
            }
            let config = match store.get_opt(&config_key).await? {
                Some(json) if json.len() as u64 <= MAX_JSON_BYTES => {
                    parse_config(&json).map_err(fail)?
                }
                Some(_) => return Err(fail(format!("{CONFIG_FILE} is larger than 1 MiB"))),
                None => fallback.clone(),
            };
            (config, Weights::Safetensors(bytes.to_vec()))
        }
        CheckpointId::File(path) => {
            if !path.is_file() {
                return Err(Error::NotFound(format!(
                    "checkpoint file {} not found",
                    path.display()
                )));
            }
            let config = match local_config(path).await {
                Some(json) => parse_config(&json).map_err(fail)?,
                None => fallback.clone(),
            };
            (config, Weights::File(path.clone()))
        }
        CheckpointId::Random { seed, .. } => (fallback.clone(), Weights::Random(*seed)),
    };
    Ok(ModelSource {
        id,
        config,
        weights,
    })
}

/// `config.json` beside a local weights file, if there is one.
async fn local_config(path: &Path) -> Option<Vec<u8>> {
    let candidate = path.with_file_name(CONFIG_FILE);
    tokio::fs::read(candidate).await.ok()
}

fn parse_config(json: &[u8]) -> Result<SingleStreamDiTConfig, String> {
    let text = std::str::from_utf8(json).map_err(|_| format!("{CONFIG_FILE} is not UTF-8"))?;
    SingleStreamDiTConfig::from_seed_json(text).map_err(|e| format!("{CONFIG_FILE}: {e}"))
}

/// Checks `bytes` against the commit marker's size and hash for `name`.
fn verify(commit: &[u8], name: &str, bytes: &[u8]) -> Result<(), String> {
    let commit: Commit =
        serde_json::from_slice(commit).map_err(|e| format!("{COMMIT_FILE} is not valid: {e}"))?;
    let digest = commit
        .files
        .get(name)
        .ok_or_else(|| format!("{COMMIT_FILE} does not list {name}"))?;
    if digest.bytes != bytes.len() as u64 {
        return Err(format!(
            "{name} is {} bytes, {COMMIT_FILE} says {}",
            bytes.len(),
            digest.bytes
        ));
    }
    let hash = blake3::hash(bytes).to_hex();
    if hash.as_str() != digest.blake3 {
        return Err(format!("{name} does not match the hash in {COMMIT_FILE}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_keys_of_folders_and_files_parse() {
        let dir = CheckpointId::parse_store_key("runs/r1/checkpoints/step-0000000042").unwrap();
        assert_eq!(dir.run_step(), Some(("r1", 42)));
        assert_eq!(
            dir.to_string(),
            "runs/r1/checkpoints/step-0000000042/ema.safetensors"
        );
        let file =
            CheckpointId::parse_store_key("runs/r1/checkpoints/step-0000000042/model.safetensors/")
                .unwrap();
        assert_eq!(
            file.to_string(),
            "runs/r1/checkpoints/step-0000000042/model.safetensors"
        );
        for bad in [
            "",
            "../runs/r1/checkpoints/step-0000000042",
            "runs/r1/checkpoints/step-42",
            "runs/r1/checkpoints/step-0000000042/state.json",
            "runs/r1/checkpoints/step-0000000042/a/b.safetensors",
            "datasets/d/checkpoints/step-0000000042",
        ] {
            let err = CheckpointId::parse_store_key(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{bad}: {err}");
        }
        let unpadded = CheckpointId::parse_store_key("runs/r1/checkpoints/step-42").unwrap_err();
        assert!(
            unpadded.to_string().contains("10 digits (step-0000000042)"),
            "{unpadded}"
        );
    }

    #[test]
    fn commit_markers_are_enforced() {
        let bytes = b"weights";
        let commit = format!(
            r#"{{"format":"ssdit.checkpoint.v1","run_id":"r1","step":42,"files":{{"ema.safetensors":{{"bytes":7,"blake3":"{}"}}}}}}"#,
            blake3::hash(bytes).to_hex()
        );
        verify(commit.as_bytes(), "ema.safetensors", bytes).unwrap();
        let err = verify(commit.as_bytes(), "ema.safetensors", b"weightz").unwrap_err();
        assert!(err.contains("hash"), "{err}");
        let err = verify(commit.as_bytes(), "ema.safetensors", b"short").unwrap_err();
        assert!(err.contains("5 bytes"), "{err}");
        let err = verify(commit.as_bytes(), "model.safetensors", bytes).unwrap_err();
        assert!(err.contains("does not list"), "{err}");
        assert!(verify(b"{", "ema.safetensors", bytes).is_err());
    }
}
