//! A dataset as it lives in the object store, and the contract between the
//! stages that fill it and the trainer that reads it.
//!
//! captioning-ingest writes each accepted sample's image and caption, then
//! its [`SampleRecord`] (last, so a record means a complete sample); every
//! refused input becomes a [`RejectRecord`]. The encoders write latents and
//! embeddings at keys derived from [`Encodings`] (model fingerprints, bucket,
//! max length); a latent is keyed by its sample, an embedding by its
//! caption's text ([`CaptionHash`]), so an edited caption is encoded again and
//! identical captions share one embedding. [`Dataset::status`] counts what each stage has done, and
//! [`Dataset::training_manifest`] tells the trainer which samples are ready and
//! why the others are not — before training starts, never hours into it.

mod dataset;
mod encodings;
mod error;
mod manifest;
mod record;

pub use dataset::{Dataset, DatasetStatus};
pub use encodings::{CaptionHash, Encodings, TextEncoding, cached_embeddings};
pub use error::{Error, Result};
pub use manifest::{MissingSample, ReadySample, TrainingManifest};
pub use record::{Bucket, RejectRecord, SampleRecord};
