//! Integration tests of the captioning-ingest service: bad inputs, folders, gRPC upload, VLM captions.
//!
//! One test binary per package: each file is a module, so the package's
//! generic code is compiled and linked once for all of them.

mod bad_inputs;
mod common;
mod folder;
mod grpc;
mod vlm;
