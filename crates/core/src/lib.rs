//! What every ssdit service shares: the configuration (one TOML file with
//! the seed's defaults, environment overrides from an explicit map, validated
//! once at start) and the choice of compute backend.

pub mod backend;
pub mod config;
mod error;

pub use config::Config;
pub use error::{Error, Result};
