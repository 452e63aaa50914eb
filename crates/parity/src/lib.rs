//! Parity checks: ssdit's models against golden outputs of the reference
//! implementations (the seed's PyTorch DiT, diffusers, transformers).
//!
//! A fixture folder holds `cases.json` (semantics and tolerance) and
//! `cases.safetensors` (inputs and expected outputs), in the format of
//! `shared/fixtures/README.md`. Each check reads one folder, runs our model,
//! and returns a [`Report`] with one [`Comparison`] per compared tensor; the
//! `ssdit parity` command prints it and exits non-zero when any comparison
//! exceeds the folder's tolerance. Any folder made the same way (other
//! sizes, other seeds) works.

pub mod dit;
mod error;
mod fixture;
pub mod kernels;
mod report;
pub mod sampler;
pub mod t5gemma2;
pub mod tokenizer;
pub mod train_step;
pub mod vae;

pub use error::{Error, Result};
pub use fixture::{Fixture, fixtures_root};
pub use report::{Comparison, Report, Tolerance};
