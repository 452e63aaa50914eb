//! What every ssdit service shares: the configuration (one TOML file with
//! the seed's defaults, environment overrides from an explicit map, validated
//! once at start), the choice of compute backend and its CPU kernels, the
//! memory a computation holds ([`memory_in_use`]), what a caught panic said
//! ([`panic_message`]), and [`boxed_from!`] for error enums that box the
//! errors of the crates below.

pub mod backend;
mod boxed_from;
pub mod config;
mod error;
mod memory;
pub mod openblas;
mod panic;

pub use config::Config;
pub use error::{Error, Result};
pub use memory::{gpu_memory_in_use, memory_in_use};
pub use panic::panic_message;
