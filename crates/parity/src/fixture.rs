use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::TensorData;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Error, Result, Tolerance};

/// The shared reference fixtures: `$SSDIT_FIXTURES` if set, else
/// `shared/fixtures` beside the repository checkout.
pub fn fixtures_root() -> PathBuf {
    match std::env::var_os("SSDIT_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
    }
}

/// One fixture folder: its `cases.json` and the tensors of `cases.safetensors`.
#[derive(Debug)]
pub struct Fixture {
    dir: PathBuf,
    cases: Value,
    tensors: BTreeMap<String, TensorData>,
}

impl Fixture {
    /// Reads `dir/cases.json` and, when present, `dir/cases.safetensors`.
    pub fn open(dir: &Path) -> Result<Self> {
        let cases_path = dir.join("cases.json");
        let text = std::fs::read_to_string(&cases_path).map_err(|source| Error::Io {
            path: cases_path.clone(),
            source,
        })?;
        let cases = serde_json::from_str(&text).map_err(|e| Error::Fixture {
            path: cases_path,
            reason: e.to_string(),
        })?;
        let tensors_path = dir.join("cases.safetensors");
        let tensors = if tensors_path.is_file() {
            read_tensors(&tensors_path)?
        } else {
            BTreeMap::new()
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            cases,
            tensors,
        })
    }

    /// The folder this fixture was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed `cases.json`.
    pub fn cases(&self) -> &Value {
        &self.cases
    }

    /// A field of `cases.json`, deserialised.
    pub fn field<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let value = self
            .cases
            .get(name)
            .ok_or_else(|| self.error(format!("cases.json has no {name:?}")))?;
        serde_json::from_value(value.clone())
            .map_err(|e| self.error(format!("cases.json {name:?}: {e}")))
    }

    /// The `tolerance` object of `cases.json` (`max_abs`, `max_rel_l2`).
    pub fn tolerance(&self) -> Result<Tolerance> {
        self.field("tolerance")
    }

    /// A tensor of `cases.safetensors`, as stored.
    pub fn tensor(&self, name: &str) -> Result<TensorData> {
        self.tensors
            .get(name)
            .cloned()
            .ok_or_else(|| self.error(format!("cases.safetensors has no tensor {name:?}")))
    }

    /// Names of the tensors in `cases.safetensors` starting with `prefix`.
    pub fn tensor_names(&self, prefix: &str) -> Vec<String> {
        self.tensors
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// A path relative to this folder (e.g. `../dit/dit.safetensors`).
    pub fn resolve(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// An error about this fixture.
    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::Fixture {
            path: self.dir.clone(),
            reason: reason.into(),
        }
    }
}

fn read_tensors(path: &Path) -> Result<BTreeMap<String, TensorData>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |reason: String| Error::Fixture {
        path: path.to_path_buf(),
        reason,
    };
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| invalid(e.to_string()))?;
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let shape = view.shape().to_vec();
            let bytes = view.data();
            let data = match view.dtype() {
                safetensors::Dtype::F32 => {
                    TensorData::new(le_values(bytes, f32::from_le_bytes), shape)
                }
                safetensors::Dtype::F64 => {
                    TensorData::new(le_values(bytes, f64::from_le_bytes), shape)
                }
                safetensors::Dtype::I64 => {
                    TensorData::new(le_values(bytes, i64::from_le_bytes), shape)
                }
                other => {
                    return Err(invalid(format!(
                        "tensor {name}: unsupported dtype {other:?}"
                    )));
                }
            };
            Ok((name, data))
        })
        .collect()
}

fn le_values<T, const N: usize>(bytes: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|chunk| from(chunk.try_into().expect("chunks_exact yields N bytes")))
        .collect()
}
