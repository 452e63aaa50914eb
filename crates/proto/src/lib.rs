//! ssdit's wire format: the `ssdit.v1` protobuf package.
//!
//! The `.proto` files live in `proto/ssdit/v1/` at the repository root (one package, one
//! folder, versioned) and are compiled by this crate's `build.rs` with `tonic-prost-build`:
//!
//! - gRPC services ([`v1::ingest_service_server`], [`v1::text_encoder_service_server`],
//!   [`v1::vae_service_server`], [`v1::trainer_service_server`],
//!   [`v1::sampler_service_server`], and their `*_client` modules);
//! - event-bus payloads ([`v1::SampleIngested`], [`v1::LatentEncoded`], …), each tied to its
//!   subject by the [`Event`] trait;
//! - the shared [`v1::Tensor`] record with validated conversions to and from `f32` / `u8`
//!   buffers (see [`tensor`]).
//!
//! [`FILE_DESCRIPTOR_SET`] feeds `tonic-reflection` in every server.

pub mod error;
pub mod events;
pub mod tensor;

/// Generated code of the `ssdit.v1` package: messages, enums, clients and servers.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("ssdit.v1");
}

pub use error::{Error, Result};
pub use events::Event;

/// Encoded `FileDescriptorSet` of the `ssdit.v1` package, for gRPC reflection
/// (`tonic_reflection::server::Builder::register_encoded_file_descriptor_set`).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("ssdit_v1_descriptor");
