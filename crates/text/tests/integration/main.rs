//! Integration tests of the text encoder: configuration, weight loading, tiny model, tokenizer
//! (`dtype.rs` is a binary of its own: it changes a process-wide default).
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod common;
mod config_mutations;
mod loading;
mod tiny;
mod tokenizer;
