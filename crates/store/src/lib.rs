//! ssdit's object store: every image, caption, latent, embedding, manifest, checkpoint,
//! metric and sample lives behind one [`Store`] type, opened by URL (local directory by
//! default, S3-compatible, GCS, Azure, or memory for tests).
//!
//! - [`layout`] owns every key the system uses and validates every client-provided
//!   component, so that no input escapes its prefix;
//! - writes are atomic on every backend (see [`Store`] for the per-backend strategy):
//!   write, then publish the event that points at the key;
//! - transient failures are retried with exponential backoff and jitter ([`RetryPolicy`]);
//! - latents and embeddings are safetensors files ([`TensorFile`]), validated on read.

mod error;
pub mod key;
pub mod layout;
pub mod open;
mod retry;
mod store;
mod tensors;

pub use error::{Error, Result};
pub use key::{Key, validate_file_name};
pub use open::{Backend, StoreOptions};
pub use retry::RetryPolicy;
pub use store::{ObjectInfo, Store};
pub use tensors::{F32Tensor, MAX_TENSOR_FILE_BYTES, TensorFile};
