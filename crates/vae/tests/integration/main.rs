//! Integration tests of the VAE: configuration, weight loading, the preview codec.
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod config_mutations;
mod loading;
mod preview;
