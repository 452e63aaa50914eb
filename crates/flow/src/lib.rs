//! Flow matching for ssdit (rectified flow with a linear path, as the seed's
//! `train.py` and `samplers.py` implement it):
//!
//! - [`time`]: the time shift `t·s/(1+(s−1)t)` and training timesteps;
//! - [`path`]: `x_t = (1−t)·x₀ + t·x₁`, the velocity target `x₁ − x₀`, offset noise;
//! - [`loss`]: MSE / L1 / Huber as PyTorch defines them;
//! - [`guidance`]: the [`VelocityModel`] seen by samplers and classifier-free
//!   guidance batched as `[uncond; cond]` in one forward pass;
//! - [`sampler`]: Euler and classic RK4 with per-step progress;
//! - [`self_eval`]: the Self-E consistency target from the EMA teacher;
//! - [`ema`]: the EMA of a model's weights.
//!
//! Everything is generic over the burn backend; the model enters through
//! [`VelocityModel`], so this crate does not depend on the DiT.

mod error;

pub mod ema;
pub mod guidance;
pub mod loss;
pub mod path;
pub mod sampler;
pub mod self_eval;
pub mod time;

pub use ema::{DEFAULT_EMA_DECAY, Ema};
pub use error::{Error, Result};
pub use guidance::{Guidance, VelocityModel, euler_to_one};
pub use loss::{DEFAULT_HUBER_DELTA, Loss};
pub use path::{interpolate, sample_noise, velocity_target};
pub use sampler::{SampleProgress, Sampler, SamplerConfig, SamplerMethod};
pub use self_eval::{SelfEvalConfig, SelfEvalDraws, self_eval_loss, self_eval_target};
pub use time::{sample_timesteps, schedule, shift_time, shift_times};
