//! captioning-ingest: real-world images in, clean captioned buckets out.
//!
//! Images come from a local folder, an object-store prefix, or a streamed
//! gRPC upload. Each one is validated before decoding, decoded (EXIF
//! orientation, alpha composited), put in its aspect bucket, downscaled (DPID
//! or Lanczos3) and stored as PNG with its caption (a sidecar file, the
//! caption attached to an upload, the folder label, or a VLM's) as a sample
//! of a dataset, named by the hash of its original bytes — so re-ingesting is
//! a no-op. Each new sample is announced with `SampleIngested`; each refused
//! input is recorded in the dataset's rejects list and announced with
//! `SampleRejected`, and the rest of the batch goes on.
//!
//! Entry points:
//! - [`Ingester`]: the pipeline, for in-process callers
//!   ([`Ingester::ingest_folder`], [`Ingester::ingest_uri`],
//!   [`Ingester::ingest_upload`]);
//! - [`run`]: the gRPC service (`IngestService`) until shutdown;
//! - [`captions`]: the caption tools (edit, stats) on a dataset in the store;
//! - [`FolderUpload`]: the client side, a local folder as an `Ingest` upload
//!   stream (for `ssdit ingest`).
//!
//! The libraries do the work: `ssdit-data` (validation, decoding, buckets,
//! resizing, sidecars, content ids), `ssdit-caption` (VLM client, labels,
//! caption edit and stats), `ssdit-dataset` (records).

pub mod captions;
mod error;
mod folder_upload;
mod ingester;
mod outcome;
mod service;
pub mod settings;
mod source;
mod upload;
pub mod uri;

pub use error::{Error, Result};
pub use folder_upload::{
    CHUNK_BYTES, FOLDER_SEPARATOR, FolderUpload, FolderUploadOptions, ReadFailures, UploadFile,
};
pub use ingester::{IngestOptions, Ingester, STAGE};
pub use outcome::{FileOutcome, FileStatus, IngestReport};
pub use service::{IngestGrpc, SERVICE_NAME, run};
pub use settings::CaptionMode;
pub use upload::MAX_LABEL_BYTES;
