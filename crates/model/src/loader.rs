//! Checkpoint I/O under the seed's PyTorch state-dict names.
//!
//! Module fields carry the checkpoint names, so almost every tensor maps to
//! itself; [`key_map`] is the one table of the exceptions. Files load from
//! safetensors (ours or converted), from the seed's `.pt` state dicts, and
//! from its full training states (`ema_state_dict` / `model_state_dict`);
//! saving writes safetensors with the seed's names and PyTorch layouts, so
//! the file loads into the seed's PyTorch model
//! (`model.load_state_dict(safetensors.torch.load_file(path))`).

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use ssdit_weights::{Checkpoint, KeyMap};

use crate::{Error, Result, SingleStreamDiT};

/// Prefix `torch.compile` puts on every state-dict name (the seed compiles
/// its model on Linux before saving).
const COMPILE_PREFIX: &str = "_orig_mod.";

/// Top-level keys of the seed's full training state that hold a model.
const TRAINING_STATE_KEYS: [&str; 2] = ["ema_state_dict", "model_state_dict"];

/// The renames between the seed's state-dict names and module paths: the
/// `nn.Sequential` indices, which cannot be field names.
///
/// | checkpoint | module |
/// |---|---|
/// | `cap_embedder.0.` (RMSNorm) | `cap_embedder.norm.` |
/// | `cap_embedder.1.` (Linear) | `cap_embedder.linear.` |
/// | `t_embedder.0.` (Linear) | `t_embedder.linear_in.` |
/// | `t_embedder.2.` (Linear) | `t_embedder.linear_out.` |
/// | `….adaLN_modulation.1.` (Linear after SiLU) | `….adaLN_modulation.` |
/// | `….fourier_filter.freq_mlp.0.` | `….fourier_filter.freq_mlp.linear_in.` |
/// | `….fourier_filter.freq_mlp.2.` | `….fourier_filter.freq_mlp.linear_out.` |
pub fn key_map() -> KeyMap {
    KeyMap::new()
        .rename(
            r"^cap_embedder\.0\.",
            "cap_embedder.norm.",
            r"^cap_embedder\.norm\.",
            "cap_embedder.0.",
        )
        .rename(
            r"^cap_embedder\.1\.",
            "cap_embedder.linear.",
            r"^cap_embedder\.linear\.",
            "cap_embedder.1.",
        )
        .rename(
            r"^t_embedder\.0\.",
            "t_embedder.linear_in.",
            r"^t_embedder\.linear_in\.",
            "t_embedder.0.",
        )
        .rename(
            r"^t_embedder\.2\.",
            "t_embedder.linear_out.",
            r"^t_embedder\.linear_out\.",
            "t_embedder.2.",
        )
        .rename(
            r"\.adaLN_modulation\.1\.",
            ".adaLN_modulation.",
            r"\.adaLN_modulation\.",
            ".adaLN_modulation.1.",
        )
        .rename(
            r"\.freq_mlp\.0\.",
            ".freq_mlp.linear_in.",
            r"\.freq_mlp\.linear_in\.",
            ".freq_mlp.0.",
        )
        .rename(
            r"\.freq_mlp\.2\.",
            ".freq_mlp.linear_out.",
            r"\.freq_mlp\.linear_out\.",
            ".freq_mlp.2.",
        )
}

/// Opens a DiT checkpoint: a `.safetensors` file, a PyTorch state dict
/// (`.pt`/`.pth`/`.bin`/`.ckpt`), or with `key` the state dict stored under
/// that key of a full training state (`"ema_state_dict"`,
/// `"model_state_dict"`). A `torch.compile` prefix (`_orig_mod.`) is removed.
/// A training state opened without a key is an error that names the keys.
pub fn open_checkpoint(path: &Path, key: Option<&str>) -> Result<Checkpoint> {
    let checkpoint = match key {
        Some(key) => Checkpoint::open_pytorch(path, Some(key))?,
        None => Checkpoint::open(path)?,
    };
    if key.is_none() {
        let nested: Vec<&str> = TRAINING_STATE_KEYS
            .into_iter()
            .filter(|k| checkpoint.names().any(|n| n.starts_with(&format!("{k}."))))
            .collect();
        if !nested.is_empty() {
            return Err(Error::Input {
                input: "checkpoint",
                reason: format!(
                    "{} is a full training state: choose one of {} as the key",
                    path.display(),
                    nested.join(", ")
                ),
            });
        }
    }
    let compiled =
        !checkpoint.is_empty() && checkpoint.names().all(|n| n.starts_with(COMPILE_PREFIX));
    Ok(if compiled {
        checkpoint.strip_prefix(COMPILE_PREFIX)
    } else {
        checkpoint
    })
}

impl<B: Backend> SingleStreamDiT<B> {
    /// Loads every parameter from `checkpoint` (names as the seed's state
    /// dict). A missing, surplus or wrong-shaped tensor is an error naming it.
    pub fn load_checkpoint(self, checkpoint: &Checkpoint) -> Result<Self> {
        Ok(checkpoint.load_into(self, &key_map())?)
    }

    /// [`open_checkpoint`] then [`load_checkpoint`](Self::load_checkpoint).
    pub fn load_file(self, path: &Path, key: Option<&str>) -> Result<Self> {
        self.load_checkpoint(&open_checkpoint(path, key)?)
    }

    /// The parameters as a safetensors file under the seed's names and layouts.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let metadata = BTreeMap::from([("format".to_string(), "pt".to_string())]);
        Ok(ssdit_weights::save_safetensors(self, &key_map(), metadata)?)
    }

    /// The parameters as the seed's state dict: every tensor by checkpoint
    /// name, in PyTorch layout (e.g. to compare with a reference after a step).
    pub fn state_dict(&self) -> Result<Checkpoint> {
        Ok(Checkpoint::from_safetensors_bytes(
            self.to_safetensors()?,
            "state dict",
        )?)
    }

    /// Writes [`to_safetensors`](Self::to_safetensors) to `path` atomically
    /// (a temporary file beside it, then a rename).
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let bytes = self.to_safetensors()?;
        let write_error = |source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        let file_name = path.file_name().ok_or_else(|| {
            write_error(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file path",
            ))
        })?;
        let temporary = path.with_file_name(format!(".{}.partial", file_name.to_string_lossy()));
        std::fs::write(&temporary, bytes).map_err(write_error)?;
        std::fs::rename(&temporary, path).map_err(write_error)
    }

    /// Every parameter's checkpoint name and PyTorch shape (linear weights
    /// `[out, in]`), in module order, without drawing lazily initialised
    /// parameters.
    pub fn named_shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.named_params()
            .into_iter()
            .map(|param| {
                let shape = param.torch_shape();
                (param.name, shape)
            })
            .collect()
    }

    /// Every parameter as checkpoints and optimizer states see it, in module
    /// order, without drawing lazily initialised parameters.
    pub fn named_params(&self) -> Vec<NamedParam> {
        let mut lister = ParamLister {
            keys: key_map(),
            path: Vec::new(),
            containers: Vec::new(),
            params: Vec::new(),
        };
        self.visit(&mut lister);
        lister.params
    }

    /// Number of scalar parameters (271,150,802 at the seed's settings),
    /// without drawing lazily initialised parameters.
    pub fn parameter_count(&self) -> usize {
        self.named_shapes()
            .iter()
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum()
    }
}

/// A parameter of the model under both of its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedParam {
    /// Its name in the seed's state dicts (see [`key_map`]).
    pub name: String,
    /// Its burn module path, which names its optimizer state.
    pub path: String,
    /// Its shape in burn's layout.
    pub shape: Vec<usize>,
    /// Whether it is a `Linear` weight, which burn stores `[in, out]` and
    /// PyTorch `[out, in]`.
    pub transposed: bool,
}

impl NamedParam {
    /// Its shape in PyTorch's layout, as checkpoints store it.
    pub fn torch_shape(&self) -> Vec<usize> {
        let mut shape = self.shape.clone();
        if self.transposed {
            shape.reverse();
        }
        shape
    }
}

/// Collects parameters with [`Param::lazy_shape`].
struct ParamLister {
    keys: KeyMap,
    path: Vec<String>,
    containers: Vec<String>,
    params: Vec<NamedParam>,
}

/// burn's container name for `Linear`, whose weight PyTorch stores transposed.
const LINEAR: &str = "Struct:Linear";

impl<B: Backend> ModuleVisitor<B> for ParamLister {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let path = self.path.join(".");
        self.params.push(NamedParam {
            name: self.keys.checkpoint_name(&path),
            transposed: self.containers.last().is_some_and(|c| c == LINEAR)
                && self.path.last().is_some_and(|p| p == "weight"),
            shape: param.lazy_shape().to_vec(),
            path,
        });
    }
}
