//! Model weight files, read the way the reference implementations wrote them.
//!
//! Every model in ssdit loads its weights from the files its reference ships:
//! `diffusion_pytorch_model.safetensors` (diffusers), `model.safetensors` and
//! sharded `model.safetensors.index.json` (transformers), and PyTorch `.pt`
//! state dicts (the seed's DiT checkpoints). [`Checkpoint`] opens any of them
//! into named tensors; [`Checkpoint::load_into`] applies them to a burn module
//! under a [`KeyMap`] and fails on any missing, unexpected or wrong-shaped
//! tensor, naming it. [`resolve`] turns a local path or a Hugging Face repo id
//! into files on disk. [`limits`] bounds the sizes a model configuration
//! may declare before anything is built from it. [`redraw`] gives a module
//! weights computed from each parameter's name instead, for the seeded
//! stand-in models.

mod checkpoint;
mod error;
mod fingerprint;
mod keymap;
pub mod limits;
mod redraw;
mod resolve;

pub use checkpoint::{Checkpoint, save_safetensors};
pub use error::{Error, Result};
pub use fingerprint::fingerprint_files;
pub use keymap::KeyMap;
pub use redraw::redraw;
pub use resolve::{ModelSource, resolve};
