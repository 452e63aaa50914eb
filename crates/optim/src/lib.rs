//! Optimization for ssdit, matching the seed's PyTorch training loop:
//!
//! - [`AdamW`]: `torch.optim.AdamW`'s update, operation for operation, with
//!   f32 or block-wise 8-bit moments ([`MomentPrecision`]; the seed trains
//!   with bitsandbytes' `AdamW8bit`), and state that saves to safetensors +
//!   JSON and restores bit for bit ([`OptimizerState`]);
//! - [`clip_grad_norm`]: `torch.nn.utils.clip_grad_norm_` over all parameters;
//! - [`CosineWithWarmup`]: transformers' `get_cosine_schedule_with_warmup`.
//!
//! The optimizer works on any burn `AutodiffModule` and the
//! `GradientsParams` of its backward pass.

mod adamw;
mod clip;
mod error;
mod params;
pub mod quant;
mod schedule;
mod state;

pub use adamw::{AdamW, AdamWConfig, MomentPrecision};
pub use clip::clip_grad_norm;
pub use error::{Error, Result};
pub use params::{ParamInfo, float_params};
pub use schedule::{CosineWithWarmup, SEED_WARMUP_FRACTION};
pub use state::{OptimizerState, ParamMeta, STATE_FORMAT, StateMeta, StoredMoments};
