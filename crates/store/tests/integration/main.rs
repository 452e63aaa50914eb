//! Integration tests of the object stores: local directory, memory, S3, tensor files.
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod common;
mod local;
mod memory;
mod s3;
mod tensor_file_mutations;
