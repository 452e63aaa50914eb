//! Integration tests of importing: dataset caches and checkpoints.
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod cache;
mod checkpoint;
mod common;
