//! SingleStreamDiTV2 in burn: the seed's single-stream diffusion transformer
//! with global Fourier filters (`model.py` of the seed, reproduced to its
//! float32 numerics and pinned by the `dit` parity fixture).
//!
//! - [`SingleStreamDiTConfig`]: the constructor arguments (seed defaults,
//!   the seed's `config.json`), validated; `init` / `init_seeded` build the
//!   model with the seed's initialisation.
//! - [`SingleStreamDiT::forward`]: `(x [B,C,H,W], t [B], text [B,L,D]) → v [B,C,H,W]`.
//! - Checkpoints: [`open_checkpoint`], [`SingleStreamDiT::load_file`],
//!   [`SingleStreamDiT::save_safetensors`], [`SingleStreamDiT::state_dict`]
//!   under the seed's tensor names ([`key_map`]); [`SingleStreamDiT::named_params`],
//!   [`SingleStreamDiT::named_shapes`] and
//!   [`SingleStreamDiT::parameter_count`] list the state dict without
//!   allocating it.
//! - Training: [`SingleStreamDiT::loss_gradients`] (forward, loss and
//!   backward, with block-level activation checkpointing as an option:
//!   [`TrainingPass`]); [`SingleStreamDiT::fourier_gates`] /
//!   [`SingleStreamDiT::mean_fourier_gate`] (the seed logs the mean gate).
//! - Precision: [`SingleStreamDiT::with_dtype`] casts the parameters (bf16 on
//!   a GPU); under autodiff that is mixed precision with f32 master weights.
//!
//! The Fourier filter's 2-D real DFT is done as matrix products against
//! bases cached per grid size (exact on any grid, differentiable); the RoPE
//! tables are cached the same way. Dropout is active only on autodiff
//! backends, like burn's own `Dropout`.

mod block;
mod cache;
mod config;
mod embed;
mod error;
mod fourier;
mod layers;
mod loader;
mod model;
mod patch;
mod precision;
mod rope;
mod training;

pub use config::SingleStreamDiTConfig;
pub use error::{Error, Result};
pub use loader::{NamedParam, key_map, open_checkpoint};
pub use model::SingleStreamDiT;
pub use training::{ActivationCheckpointing, Inputs, TrainingPass};
