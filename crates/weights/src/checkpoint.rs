use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use burn::module::ParamId;
use burn::prelude::Backend;
use burn::tensor::{DType, Element, TensorData};
use burn_store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, PytorchStore, SafetensorsStore, TensorSnapshot,
};
use serde::Deserialize;

use crate::{Error, KeyMap, Result};

/// The named tensors of one model checkpoint, read lazily from its files.
///
/// Opening parses headers only; tensor data is read when a tensor is applied
/// or asked for, so a multi-gigabyte checkpoint costs no memory up front.
pub struct Checkpoint {
    origin: String,
    tensors: BTreeMap<String, TensorSnapshot>,
}

const SAFETENSORS: &str = "safetensors";
const PYTORCH: &str = "PyTorch";

/// Files a model directory may hold, in the order they are looked for.
const DIRECTORY_CANDIDATES: &[&str] = &[
    "model.safetensors.index.json",
    "model.safetensors",
    "diffusion_pytorch_model.safetensors.index.json",
    "diffusion_pytorch_model.safetensors",
];

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("origin", &self.origin)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl Checkpoint {
    /// Opens a checkpoint by path: a `.safetensors` file, a sharded
    /// `*.safetensors.index.json`, a PyTorch `.pt`/`.pth`/`.bin`/`.ckpt` state
    /// dict, or a model directory holding one of the standard file names.
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            let file = DIRECTORY_CANDIDATES
                .iter()
                .map(|name| path.join(name))
                .find(|p| p.is_file())
                .ok_or_else(|| Error::Malformed {
                    origin: path.display().to_string(),
                    format: "model directory",
                    reason: format!("none of {} found", DIRECTORY_CANDIDATES.join(", ")),
                })?;
            return Self::open(&file);
        }
        if !path.is_file() {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".index.json") {
            Self::open_sharded(path)
        } else if name.ends_with(".safetensors") {
            Self::open_safetensors(path)
        } else if [".pt", ".pth", ".bin", ".ckpt"]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            Self::open_pytorch(path, None)
        } else {
            Err(Error::Malformed {
                origin: path.display().to_string(),
                format: "weight",
                reason: "unknown extension (expected .safetensors, .safetensors.index.json, .pt, .pth, .bin or .ckpt)"
                    .into(),
            })
        }
    }

    /// Opens one safetensors file.
    pub fn open_safetensors(path: &Path) -> Result<Self> {
        let origin = path.display().to_string();
        let mut store = SafetensorsStore::from_file(path);
        let tensors = store
            .get_all_snapshots()
            .map_err(|e| malformed(&origin, SAFETENSORS, e))?
            .clone();
        Ok(Self { origin, tensors })
    }

    /// Reads a safetensors file already in memory (e.g. fetched from an object store).
    pub fn from_safetensors_bytes(bytes: Vec<u8>, origin: impl Into<String>) -> Result<Self> {
        let origin = origin.into();
        let mut store = SafetensorsStore::from_bytes(Some(bytes));
        let tensors = store
            .get_all_snapshots()
            .map_err(|e| malformed(&origin, SAFETENSORS, e))?
            .clone();
        Ok(Self { origin, tensors })
    }

    /// Opens a PyTorch pickle checkpoint. `top_level_key` selects a nested
    /// state dict, e.g. `"ema_state_dict"` in a full training state.
    pub fn open_pytorch(path: &Path, top_level_key: Option<&str>) -> Result<Self> {
        let origin = match top_level_key {
            Some(key) => format!("{}[{key}]", path.display()),
            None => path.display().to_string(),
        };
        let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
        if let Some(key) = top_level_key {
            store = store.with_top_level_key(key);
        }
        let tensors = store
            .get_all_snapshots()
            .map_err(|e| malformed(&origin, PYTORCH, e))?
            .clone();
        if tensors.is_empty() {
            return Err(Error::Empty {
                origin,
                what: top_level_key.unwrap_or("a state dict").to_string(),
            });
        }
        Ok(Self { origin, tensors })
    }

    /// Opens a sharded safetensors checkpoint from its `index.json`.
    pub fn open_sharded(index_path: &Path) -> Result<Self> {
        let origin = index_path.display().to_string();
        let text = std::fs::read_to_string(index_path).map_err(|source| Error::Io {
            path: index_path.to_path_buf(),
            source,
        })?;
        let index: ShardIndex =
            serde_json::from_str(&text).map_err(|e| malformed(&origin, "safetensors index", e))?;
        let dir = index_path.parent().unwrap_or(Path::new("."));
        let mut shards: BTreeMap<&str, Checkpoint> = BTreeMap::new();
        for file in index.weight_map.values() {
            if !shards.contains_key(file.as_str()) {
                shards.insert(
                    file,
                    Self::open_safetensors(&shard_path(dir, file, &origin)?)?,
                );
            }
        }
        let mut tensors = BTreeMap::new();
        for (name, file) in &index.weight_map {
            let shard = &shards[file.as_str()];
            let snapshot = shard.tensors.get(name).ok_or_else(|| Error::Malformed {
                origin: origin.clone(),
                format: "safetensors index",
                reason: format!("{name} is listed in {file} but that shard does not hold it"),
            })?;
            tensors.insert(name.clone(), snapshot.clone());
        }
        Ok(Self { origin, tensors })
    }

    /// Where this checkpoint was read from, for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the checkpoint holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Shape of a tensor, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|s| s.shape.as_slice())
    }

    /// Stored element type of a tensor, if present.
    pub fn dtype(&self, name: &str) -> Option<DType> {
        self.tensors.get(name).map(|s| s.dtype)
    }

    /// Reads one tensor's data as stored.
    pub fn tensor(&self, name: &str) -> Result<TensorData> {
        let snapshot = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::MissingTensors {
                origin: self.origin.clone(),
                names: vec![name.to_string()],
            })?;
        snapshot.to_data().map_err(|e| Error::Tensor {
            origin: self.origin.clone(),
            name: name.to_string(),
            reason: format!("{e:?}"),
        })
    }

    /// Keeps only the tensors whose names start with `prefix`, with the prefix
    /// removed (e.g. `"encoder."` of a full encoder-decoder checkpoint).
    pub fn strip_prefix(self, prefix: &str) -> Self {
        let tensors = self
            .tensors
            .into_iter()
            .filter_map(|(name, s)| name.strip_prefix(prefix).map(|rest| (rest.to_string(), s)))
            .collect();
        Self {
            origin: format!("{}[{prefix}*]", self.origin),
            tensors,
        }
    }

    /// Applies every tensor to `module` under `keys`, converting to the
    /// module's float type. Fails, naming the tensors, when the module has a
    /// parameter the checkpoint lacks, the checkpoint has a tensor the module
    /// lacks (unless `keys` ignores it), or a shape differs.
    pub fn load_into<B: Backend, M: ModuleSnapshot<B>>(
        &self,
        mut module: M,
        keys: &KeyMap,
    ) -> Result<M> {
        let dtype = <B::FloatElem as Element>::dtype();
        let snapshots = self
            .tensors
            .iter()
            .filter(|(name, _)| !keys.is_ignored(name))
            .map(|(name, snapshot)| renamed(snapshot, &keys.module_path(name), dtype))
            .collect();
        let result = module.apply(snapshots, None, Some(Box::new(PyTorchToBurnAdapter)), true);
        self.check(result, keys)?;
        Ok(module)
    }

    fn check(&self, result: ApplyResult, keys: &KeyMap) -> Result<()> {
        if let Some(error) = result.errors.first() {
            return Err(self.apply_error(error, keys));
        }
        if !result.missing.is_empty() {
            return Err(Error::MissingTensors {
                origin: self.origin.clone(),
                names: result
                    .missing
                    .iter()
                    .map(|(p, _)| keys.checkpoint_name(p))
                    .collect(),
            });
        }
        if !result.unused.is_empty() {
            return Err(Error::UnexpectedTensors {
                origin: self.origin.clone(),
                names: result
                    .unused
                    .iter()
                    .map(|p| keys.checkpoint_name(p))
                    .collect(),
            });
        }
        Ok(())
    }

    fn apply_error(&self, error: &ApplyError, keys: &KeyMap) -> Error {
        let origin = self.origin.clone();
        match error {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => {
                let name = keys.checkpoint_name(path);
                let found = self
                    .shape(&name)
                    .map(<[usize]>::to_vec)
                    .unwrap_or_else(|| found.to_vec());
                Error::ShapeMismatch {
                    origin,
                    name,
                    expected: expected.to_vec(),
                    found,
                }
            }
            ApplyError::DTypeMismatch {
                path,
                expected,
                found,
            } => Error::Tensor {
                origin,
                name: keys.checkpoint_name(path),
                reason: format!("element type {found:?}, the model expects {expected:?}"),
            },
            ApplyError::AdapterError { path, message }
            | ApplyError::LoadError { path, message } => Error::Tensor {
                origin,
                name: keys.checkpoint_name(path),
                reason: message.clone(),
            },
        }
    }
}

/// Serialises a module's parameters as safetensors under the checkpoint
/// names of `keys` (PyTorch layouts: linear weights as `[out, in]`).
pub fn save_safetensors<B: Backend, M: ModuleSnapshot<B>>(
    module: &M,
    keys: &KeyMap,
    metadata: BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let save_error = |reason: String| Error::Save {
        path: "<memory>".into(),
        reason,
    };
    let mut views = Vec::new();
    for snapshot in module.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true) {
        let name = keys.checkpoint_name(&snapshot.full_path());
        let data = snapshot
            .to_data()
            .map_err(|e| save_error(format!("{name}: {e:?}")))?;
        views.push((name, TensorView::new(data).map_err(save_error)?));
    }
    let metadata = metadata.into_iter().collect();
    safetensors::serialize(views, Some(metadata)).map_err(|e| save_error(e.to_string()))
}

/// One tensor's bytes in the form the safetensors writer takes.
struct TensorView {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl TensorView {
    fn new(data: TensorData) -> std::result::Result<Self, String> {
        let dtype = match data.dtype {
            DType::F64 => safetensors::Dtype::F64,
            DType::F32 => safetensors::Dtype::F32,
            DType::F16 => safetensors::Dtype::F16,
            DType::BF16 => safetensors::Dtype::BF16,
            DType::I64 => safetensors::Dtype::I64,
            DType::I32 => safetensors::Dtype::I32,
            DType::U8 => safetensors::Dtype::U8,
            DType::Bool(_) => safetensors::Dtype::BOOL,
            other => {
                return Err(format!(
                    "element type {other:?} has no safetensors equivalent"
                ));
            }
        };
        Ok(Self {
            dtype,
            shape: data.shape.to_vec(),
            bytes: data.bytes.to_vec(),
        })
    }
}

impl safetensors::View for TensorView {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn renamed(snapshot: &TensorSnapshot, path: &str, dtype: DType) -> TensorSnapshot {
    let data = snapshot.clone_data_fn();
    let convert = snapshot.dtype != dtype && snapshot.dtype.is_float();
    let data_fn: Rc<dyn Fn() -> Result<TensorData, burn_store::TensorSnapshotError>> = if convert {
        Rc::new(move || data().map(|d| d.convert_dtype(dtype)))
    } else {
        data
    };
    TensorSnapshot::from_closure(
        data_fn,
        if convert { dtype } else { snapshot.dtype },
        snapshot.shape.clone(),
        path.split('.').map(str::to_string).collect(),
        Vec::new(),
        ParamId::new(),
    )
}

fn shard_path(dir: &Path, file: &str, origin: &str) -> Result<PathBuf> {
    let relative = Path::new(file);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(Error::Malformed {
            origin: origin.to_string(),
            format: "safetensors index",
            reason: format!("shard {file:?} points outside the model directory"),
        });
    }
    Ok(dir.join(relative))
}

fn malformed(origin: &str, format: &'static str, error: impl std::fmt::Display) -> Error {
    Error::Malformed {
        origin: origin.to_string(),
        format,
        reason: error.to_string(),
    }
}
