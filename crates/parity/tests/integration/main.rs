//! The parity checks against the reference fixtures, one module per model.
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod dit;
mod flex;
mod kernels;
mod sampler;
mod t5gemma2;
mod tokenizer;
mod train_step;
mod vae;
