//! Integration tests of the trainer service: gRPC and a killed trainer's resume.
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod common;
mod grpc;
mod killed;
