//! Integration tests of the text-encoder service: gRPC and the bus worker.
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod common;
mod grpc;
mod worker;
