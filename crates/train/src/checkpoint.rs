//! Checkpoints in the store, written so that a half-written one is never used.
//!
//! A checkpoint is a folder `runs/<run>/checkpoints/step-<step>/` holding
//!
//! | file | contents |
//! |---|---|
//! | `model.safetensors` | the trained weights, the seed's tensor names (loads in its PyTorch model) |
//! | `ema.safetensors` | the EMA weights, same names (what the sampler serves) |
//! | `config.json` | the DiT's constructor arguments, the seed's format |
//! | `optimizer.safetensors`, `optimizer.json` | AdamW moments and their metadata |
//! | `state.json` | step, epoch, position in the epoch, schedule, EMA count, run config |
//! | `commit.json` | written **last**: every other file's size and BLAKE3 hash |
//!
//! Each object is written atomically by the store; `commit.json` marks the
//! checkpoint complete. Readers only consider folders with a commit marker,
//! and verify every file against it before use, falling back to the previous
//! committed checkpoint if one does not verify. Cleanup deletes a folder's
//! marker first, so a partly deleted checkpoint is never picked up either.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use ssdit_store::{Key, Store, layout};

use crate::{Error, Result};

/// The commit marker's file name.
pub const COMMIT_FILE: &str = "commit.json";
/// Trained weights.
pub const MODEL_FILE: &str = "model.safetensors";
/// EMA weights.
pub const EMA_FILE: &str = "ema.safetensors";
/// DiT constructor arguments.
pub const CONFIG_FILE: &str = "config.json";
/// Optimizer moments.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Optimizer metadata.
pub const OPTIMIZER_META_FILE: &str = "optimizer.json";
/// Training position and settings.
pub const STATE_FILE: &str = "state.json";

/// Format tag of the commit marker.
const COMMIT_FORMAT: &str = "ssdit.checkpoint.v1";

/// Largest checkpoint file read (the seed's model in f32 is ~1.1 GB).
const MAX_FILE_BYTES: u64 = 16 << 30;

/// The commit marker: what a complete checkpoint holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub format: String,
    pub run_id: String,
    pub step: u64,
    /// File name → size and BLAKE3 hash.
    pub files: BTreeMap<String, FileDigest>,
}

/// Size and hash of one checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub bytes: u64,
    pub blake3: String,
}

impl FileDigest {
    fn of(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.len() as u64,
            blake3: blake3::hash(bytes).to_hex().to_string(),
        }
    }
}

/// A committed checkpoint found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRef {
    pub run_id: String,
    pub step: u64,
    /// The folder `runs/<run>/checkpoints/step-<step>`.
    pub dir: Key,
}

impl CheckpointRef {
    /// The key of one of its files.
    pub fn file(&self, name: &str) -> Result<Key> {
        Ok(self.dir.child(name)?)
    }

    /// Parses the key of a checkpoint folder or of a file in it
    /// (`runs/<run>/checkpoints/step-<step>[/<file>]`).
    pub fn parse(key: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::Checkpoint {
            key: key.to_string(),
            reason: reason.to_string(),
        };
        let parsed = Key::parse(key.trim_end_matches('/'))?;
        let step = layout::checkpoint_step(&parsed)
            .ok_or_else(|| invalid("not under runs/<run>/checkpoints/step-<step>"))?;
        let segments: Vec<&str> = parsed.as_str().split('/').collect();
        let run_id = match segments.as_slice() {
            ["runs", run, "checkpoints", _, ..] => (*run).to_string(),
            _ => return Err(invalid("not under runs/<run>/checkpoints/step-<step>")),
        };
        Ok(Self {
            dir: layout::checkpoint_dir(&run_id, step)?,
            run_id,
            step,
        })
    }
}

/// The files of one checkpoint, read and verified.
#[derive(Debug, Clone)]
pub struct CheckpointFiles {
    pub checkpoint: CheckpointRef,
    pub files: BTreeMap<String, Bytes>,
}

impl CheckpointFiles {
    /// File `name`, which the commit listed.
    pub fn get(&self, name: &str) -> Result<&Bytes> {
        self.files.get(name).ok_or_else(|| Error::Checkpoint {
            key: self.checkpoint.dir.to_string(),
            reason: format!("has no {name}"),
        })
    }

    /// File `name` as UTF-8 text.
    pub fn text(&self, name: &str) -> Result<&str> {
        std::str::from_utf8(self.get(name)?).map_err(|_| Error::Checkpoint {
            key: self.checkpoint.dir.to_string(),
            reason: format!("{name} is not UTF-8"),
        })
    }
}

/// Writes `files` as the checkpoint of `run_id` at `step`: every file, then
/// the commit marker. Returns the checkpoint.
pub async fn write(
    store: &Store,
    run_id: &str,
    step: u64,
    files: Vec<(&'static str, Bytes)>,
) -> Result<CheckpointRef> {
    let mut commit = Commit {
        format: COMMIT_FORMAT.to_string(),
        run_id: run_id.to_string(),
        step,
        files: BTreeMap::new(),
    };
    for (name, bytes) in files {
        let started = std::time::Instant::now();
        commit
            .files
            .insert(name.to_string(), FileDigest::of(&bytes));
        let size = bytes.len();
        store
            .put(&layout::checkpoint_file(run_id, step, name)?, bytes)
            .await?;
        tracing::debug!(
            run_id,
            step,
            file = name,
            bytes = size,
            ms = started.elapsed().as_millis() as u64,
            "checkpoint file written"
        );
    }
    let marker = serde_json::to_vec_pretty(&commit).expect("commit markers serialise");
    store
        .put(
            &layout::checkpoint_file(run_id, step, COMMIT_FILE)?,
            marker.into(),
        )
        .await?;
    Ok(CheckpointRef {
        run_id: run_id.to_string(),
        step,
        dir: layout::checkpoint_dir(run_id, step)?,
    })
}

/// Every committed checkpoint of `run_id`, oldest first.
pub async fn committed(store: &Store, run_id: &str) -> Result<Vec<CheckpointRef>> {
    let objects = store.list(&layout::checkpoints_prefix(run_id)?).await?;
    let mut steps: Vec<u64> = objects
        .iter()
        .filter(|o| o.key.file_name() == COMMIT_FILE)
        .filter_map(|o| layout::checkpoint_step(&o.key))
        .collect();
    steps.sort_unstable();
    steps.dedup();
    steps
        .into_iter()
        .map(|step| {
            Ok(CheckpointRef {
                run_id: run_id.to_string(),
                step,
                dir: layout::checkpoint_dir(run_id, step)?,
            })
        })
        .collect()
}

/// Reads a committed checkpoint and verifies every file against its marker.
pub async fn read(store: &Store, checkpoint: &CheckpointRef) -> Result<CheckpointFiles> {
    let fail = |reason: String| Error::Checkpoint {
        key: checkpoint.dir.to_string(),
        reason,
    };
    let marker = store
        .get_opt(&checkpoint.file(COMMIT_FILE)?)
        .await?
        .ok_or_else(|| fail("has no commit marker: it was never completed".into()))?;
    let commit: Commit = serde_json::from_slice(&marker)
        .map_err(|e| fail(format!("unreadable commit marker: {e}")))?;
    if commit.format != COMMIT_FORMAT || commit.step != checkpoint.step {
        return Err(fail(format!(
            "commit marker is {} for step {}, expected {COMMIT_FORMAT} for step {}",
            commit.format, commit.step, checkpoint.step
        )));
    }
    let mut files = BTreeMap::new();
    for (name, digest) in &commit.files {
        let bytes = store
            .get_bounded(&checkpoint.file(name)?, MAX_FILE_BYTES)
            .await?;
        if FileDigest::of(&bytes) != *digest {
            return Err(fail(format!(
                "{name} does not match its commit marker ({} bytes, expected {})",
                bytes.len(),
                digest.bytes
            )));
        }
        files.insert(name.clone(), bytes);
    }
    Ok(CheckpointFiles {
        checkpoint: checkpoint.clone(),
        files,
    })
}

/// The newest committed checkpoint of `run_id` that verifies, or `None`.
/// One that does not verify is logged and skipped.
pub async fn latest(store: &Store, run_id: &str) -> Result<Option<CheckpointFiles>> {
    for checkpoint in committed(store, run_id).await?.iter().rev() {
        match read(store, checkpoint).await {
            Ok(files) => return Ok(Some(files)),
            Err(error) => {
                tracing::warn!(run_id, step = checkpoint.step, %error, "skipping a checkpoint that does not verify");
            }
        }
    }
    Ok(None)
}

/// Keeps the newest `keep` committed checkpoints of `run_id` and removes the
/// others, and every uncommitted folder older than the newest commit (left
/// by a killed writer). A folder's commit marker is removed first.
pub async fn cleanup(store: &Store, run_id: &str, keep: usize) -> Result<usize> {
    let objects = store.list(&layout::checkpoints_prefix(run_id)?).await?;
    let mut by_step: BTreeMap<u64, Vec<Key>> = BTreeMap::new();
    for object in objects {
        if let Some(step) = layout::checkpoint_step(&object.key) {
            by_step.entry(step).or_default().push(object.key);
        }
    }
    let committed: Vec<u64> = by_step
        .iter()
        .filter(|(_, keys)| keys.iter().any(|k| k.file_name() == COMMIT_FILE))
        .map(|(step, _)| *step)
        .collect();
    let Some(&newest) = committed.last() else {
        return Ok(0);
    };
    let kept: Vec<u64> = committed.iter().rev().take(keep).copied().collect();
    let mut removed = 0;
    for (step, mut keys) in by_step {
        if kept.contains(&step) || step > newest {
            continue;
        }
        keys.sort_by_key(|k| k.file_name() != COMMIT_FILE);
        for key in keys {
            store.delete(&key).await?;
        }
        removed += 1;
        tracing::debug!(run_id, step, "old checkpoint removed");
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> Store {
        Store::open("memory://").await.unwrap()
    }

    fn files(tag: &str) -> Vec<(&'static str, Bytes)> {
        vec![
            (MODEL_FILE, Bytes::from(format!("model {tag}"))),
            (STATE_FILE, Bytes::from(format!("{{\"tag\": \"{tag}\"}}"))),
        ]
    }

    #[tokio::test]
    async fn only_committed_and_verified_checkpoints_are_used() {
        let store = store().await;
        write(&store, "r", 10, files("a")).await.unwrap();
        write(&store, "r", 20, files("b")).await.unwrap();
        // A checkpoint whose writer died before the marker.
        store
            .put(
                &layout::checkpoint_file("r", 30, MODEL_FILE).unwrap(),
                Bytes::from("partial"),
            )
            .await
            .unwrap();
        let latest = latest(&store, "r").await.unwrap().unwrap();
        assert_eq!(latest.checkpoint.step, 20);
        assert_eq!(latest.get(MODEL_FILE).unwrap(), &Bytes::from("model b"));

        // A file corrupted after its commit: the previous checkpoint is used.
        store
            .put(
                &layout::checkpoint_file("r", 20, MODEL_FILE).unwrap(),
                Bytes::from("model X"),
            )
            .await
            .unwrap();
        let err = read(&store, &latest.checkpoint)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.safetensors does not match"), "{err}");
        assert_eq!(latest_step(&store).await, Some(10));
    }

    async fn latest_step(store: &Store) -> Option<u64> {
        latest(store, "r").await.unwrap().map(|c| c.checkpoint.step)
    }

    #[tokio::test]
    async fn cleanup_keeps_the_newest_and_removes_debris() {
        let store = store().await;
        for step in [1, 2, 3, 4] {
            write(&store, "r", step, files("x")).await.unwrap();
        }
        store
            .put(
                &layout::checkpoint_file("r", 0, MODEL_FILE).unwrap(),
                Bytes::from("debris"),
            )
            .await
            .unwrap();
        assert_eq!(cleanup(&store, "r", 2).await.unwrap(), 3);
        let left: Vec<u64> = committed(&store, "r")
            .await
            .unwrap()
            .iter()
            .map(|c| c.step)
            .collect();
        assert_eq!(left, vec![3, 4]);
        let objects = store
            .list(&layout::checkpoints_prefix("r").unwrap())
            .await
            .unwrap();
        assert_eq!(objects.len(), 2 * 3, "{objects:?}");
    }

    #[test]
    fn parses_checkpoint_keys() {
        let c =
            CheckpointRef::parse("runs/r1/checkpoints/step-0000000042/ema.safetensors").unwrap();
        assert_eq!((c.run_id.as_str(), c.step), ("r1", 42));
        assert_eq!(c.dir.as_str(), "runs/r1/checkpoints/step-0000000042");
        assert_eq!(
            CheckpointRef::parse("runs/r1/checkpoints/step-0000000042/").unwrap(),
            c
        );
        assert!(CheckpointRef::parse("runs/r1/metrics.csv").is_err());
        assert!(CheckpointRef::parse("../etc/passwd").is_err());
    }
}
