//! Integration tests of the DiT: bf16, checkpoints, configuration, dropout
//! (`init.rs` is a binary of its own: it seeds burn's global RNG).
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod bf16;
mod checkpoint;
mod config_mutations;
mod default_config;
mod dropout;
mod support;
