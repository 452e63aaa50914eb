//! Integration tests of weight files: checkpoints and untrusted input.
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod checkpoint;
mod untrusted;
