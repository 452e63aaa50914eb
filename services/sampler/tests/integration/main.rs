//! Integration tests of the sampler service: generation, loading, hot reload.
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod common;
mod generate;
mod load;
mod reload;
