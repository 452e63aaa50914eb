//! A bounded, validating reader of `torch.save` files (PyTorch ≥ 1.6 zip
//! format), for what burn's `PytorchReader` does not give us.
//!
//! burn-store 0.21 reads the tensors of such files well — `ssdit_model`
//! loads DiT weights through it — and its `read_pickle_data` even returns
//! non-tensor entries, but as `HashMap`s with string keys: the order of a
//! state dict (which is the model's parameter order, needed to map an
//! optimizer state's integer indices to names) and the integer keys of
//! `optimizer_state_dict["state"]` are lost. So the seed's sample files and
//! training states are read here:
//!
//! - the zip archive is opened and checked (one `<prefix>/data.pkl`,
//!   little-endian `byteorder`), the pickle is bounded in size and run by a
//!   restricted interpreter ([`pickle`]) that executes nothing;
//! - tensors come back as [`TensorRef`]s (storage, offset, shape, stride),
//!   validated against their storage; their data is read on demand from the
//!   archive, checking the storage's size, and widened exactly to `f32`.

mod pickle;
mod value;

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::Path;

use half::{bf16, f16};
use zip::ZipArchive;

pub use pickle::PickleError;
pub use value::{DType, Dict, StorageRef, TensorRef, Value};

use crate::{Error, Result};

/// Size limits applied when reading a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Largest `data.pkl` accepted, in bytes.
    pub max_pickle_bytes: u64,
}

impl Limits {
    /// For the seed's cached samples (a few hundred KiB each at 448 px).
    pub fn sample() -> Self {
        Self {
            max_file_bytes: 256 << 20,
            max_pickle_bytes: 1 << 20,
        }
    }

    /// For checkpoints and training states (the seed's full state is a few GiB).
    pub fn checkpoint() -> Self {
        Self {
            max_file_bytes: 64 << 30,
            max_pickle_bytes: 256 << 20,
        }
    }
}

trait Source: Read + Seek {}
impl<T: Read + Seek> Source for T {}

/// An opened `torch.save` file: its decoded pickle and access to its storages.
pub struct TorchFile {
    origin: String,
    archive: ZipArchive<Box<dyn Source>>,
    prefix: String,
    root: Value,
}

impl std::fmt::Debug for TorchFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorchFile")
            .field("origin", &self.origin)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl TorchFile {
    /// Opens the file at `path`.
    pub fn open(path: &Path, limits: Limits) -> Result<Self> {
        let origin = path.display().to_string();
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        if size > limits.max_file_bytes {
            return Err(malformed(
                &origin,
                format!(
                    "{size} bytes exceeds the limit of {}",
                    limits.max_file_bytes
                ),
            ));
        }
        Self::from_source(Box::new(BufReader::new(file)), origin, limits)
    }

    /// Reads a file already in memory; `origin` names it in errors.
    pub fn from_bytes(bytes: Vec<u8>, origin: impl Into<String>, limits: Limits) -> Result<Self> {
        let origin = origin.into();
        if bytes.len() as u64 > limits.max_file_bytes {
            return Err(malformed(
                &origin,
                format!(
                    "{} bytes exceeds the limit of {}",
                    bytes.len(),
                    limits.max_file_bytes
                ),
            ));
        }
        Self::from_source(Box::new(Cursor::new(bytes)), origin, limits)
    }

    fn from_source(source: Box<dyn Source>, origin: String, limits: Limits) -> Result<Self> {
        let mut archive = ZipArchive::new(source).map_err(|e| {
            malformed(
                &origin,
                format!("not a PyTorch zip archive ({e}); files from torch < 1.6 or truncated files cannot be read"),
            )
        })?;
        let prefix = find_prefix(&archive).map_err(|reason| malformed(&origin, reason))?;
        check_byte_order(&mut archive, &prefix).map_err(|reason| malformed(&origin, reason))?;
        let pickle_bytes = read_entry(
            &mut archive,
            &format!("{prefix}/data.pkl"),
            limits.max_pickle_bytes,
        )
        .map_err(|reason| malformed(&origin, reason))?;
        let root = pickle::load(&pickle_bytes).map_err(|e| malformed(&origin, e.to_string()))?;
        Ok(Self {
            origin,
            archive,
            prefix,
            root,
        })
    }

    /// Where it was read from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The object that was saved.
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Reads a tensor's values as `f32` (row-major). `float32` is read as is,
    /// `bfloat16` and `float16` are widened exactly; other dtypes are errors.
    pub fn read_f32(&mut self, tensor: &TensorRef) -> Result<Vec<f32>> {
        let convert: fn(&[u8]) -> f32 = match tensor.dtype() {
            DType::F32 => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            DType::BF16 => |b| bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            DType::F16 => |b| f16::from_le_bytes([b[0], b[1]]).to_f32(),
            other => {
                return Err(malformed(
                    &self.origin,
                    format!("tensor of {other} where float32, bfloat16 or float16 was expected"),
                ));
            }
        };
        let bytes = self.storage_bytes(&tensor.storage)?;
        let size = tensor.dtype().size();
        if tensor.is_contiguous() {
            let start = tensor.offset * size;
            let end = start + tensor.numel() * size;
            return Ok(bytes[start..end].chunks_exact(size).map(convert).collect());
        }
        Ok(tensor
            .indices()
            .map(|i| convert(&bytes[i * size..(i + 1) * size]))
            .collect())
    }

    /// Reads a storage's bytes, checking that the archive holds exactly its size.
    fn storage_bytes(&mut self, storage: &StorageRef) -> Result<Vec<u8>> {
        let name = format!("{}/data/{}", self.prefix, storage.key);
        let expected = storage
            .numel
            .checked_mul(storage.dtype.size())
            .ok_or_else(|| {
                malformed(
                    &self.origin,
                    format!("storage {} is too large", storage.key),
                )
            })?;
        let bytes = read_entry(&mut self.archive, &name, expected as u64)
            .map_err(|reason| malformed(&self.origin, reason))?;
        if bytes.len() != expected {
            return Err(malformed(
                &self.origin,
                format!(
                    "storage {} holds {} bytes, expected {expected} ({} × {})",
                    storage.key,
                    bytes.len(),
                    storage.numel,
                    storage.dtype
                ),
            ));
        }
        Ok(bytes)
    }
}

/// The folder holding `data.pkl` (torch names it after the file; newer
/// versions use `archive`). Exactly one is expected.
fn find_prefix(archive: &ZipArchive<Box<dyn Source>>) -> Result<String, String> {
    let prefixes: Vec<&str> = archive
        .file_names()
        .filter_map(|name| name.strip_suffix("/data.pkl"))
        .filter(|prefix| !prefix.is_empty() && !prefix.contains('/'))
        .collect();
    match prefixes.as_slice() {
        [prefix] => Ok((*prefix).to_string()),
        [] => Err("the archive has no <name>/data.pkl: not a torch.save file".into()),
        _ => Err(format!(
            "the archive has several data.pkl files ({})",
            prefixes.join(", ")
        )),
    }
}

fn check_byte_order(archive: &mut ZipArchive<Box<dyn Source>>, prefix: &str) -> Result<(), String> {
    let name = format!("{prefix}/byteorder");
    if archive.index_for_name(&name).is_none() {
        return Ok(()); // Files from before the marker existed are little-endian.
    }
    let order = read_entry(archive, &name, 16)?;
    match order.as_slice() {
        b"little" => Ok(()),
        other => Err(format!(
            "byte order {:?} is not supported (only little-endian files)",
            String::from_utf8_lossy(other)
        )),
    }
}

/// Reads archive entry `name`, refusing more than `limit` bytes.
fn read_entry(
    archive: &mut ZipArchive<Box<dyn Source>>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let entry = archive
        .by_name(name)
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    if entry.size() > limit {
        return Err(format!(
            "{name} is {} bytes, more than the {limit} expected",
            entry.size()
        ));
    }
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{name} holds more than the {limit} bytes expected"));
    }
    Ok(bytes)
}

fn malformed(origin: &str, reason: impl Into<String>) -> Error {
    Error::Malformed {
        origin: origin.to_string(),
        reason: reason.into(),
    }
}
