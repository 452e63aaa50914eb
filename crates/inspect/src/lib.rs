//! Looking at what the pipeline made, as the seed's helper scripts did:
//!
//! - [`stats`]: per-channel latent mean and standard deviation over a
//!   dataset (its `scripts/calculate_cache_statistics.py`, in f64), bucket
//!   and caption-length histograms, as a table and a PNG;
//! - [`preview`]: cached latents decoded back to images through a codec, on
//!   a contact sheet with captions (its `scripts/check_cache.py`);
//! - [`reconstruct`]: image → codec → image in f32 with PSNR and SSIM
//!   ([`metrics`]) and a side-by-side picture (its
//!   `scripts/debug_vae_pipeline.py`);
//! - [`export`]: a dataset's latents and caption embeddings as one
//!   safetensors file per sample plus a JSON manifest, which Python reads
//!   with `safetensors` alone.
//!
//! [`encodings`] finds which VAE and text encoder a dataset's cache holds,
//! so the tools work on whatever the encoders (or an import) wrote.

pub mod encodings;
mod error;
pub mod export;
pub mod metrics;
pub mod preview;
pub mod reconstruct;
pub mod stats;
mod tensors;

pub use error::{Error, Result};
