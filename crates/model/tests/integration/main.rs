//! Integration tests of the DiT: checkpoints, configuration, dropout, the
//! seed's forward on the Flex backend (the non-CPU-kernel path, f32 and bf16)
//! (`init.rs` is a binary of its own: it seeds burn's global RNG).
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod checkpoint;
mod config_mutations;
mod default_config;
mod dropout;
mod flex;
mod support;
