//! Training-image preparation for ssdit: what the captioning-ingest service
//! runs on each input before the VAE encodes it.
//!
//! - [`validate`]: limits decided before decoding (bytes, pixels from the
//!   header, format sniffed from the content, truncation, minimum size).
//! - [`decode`]: any layout the `image` crate reads → 8-bit RGB, EXIF
//!   orientation applied, alpha composited on a background colour.
//! - [`Buckets`]: the seed's area-preserving aspect buckets
//!   (`preprocess.py`: `generate_buckets`, `get_best_bucket`).
//! - [`resize`]: DPID (Weber et al. 2016) or Lanczos3 to the exact bucket size.
//! - [`sidecar`]: `.txt`/`.caption` captions next to the image.
//! - [`ContentId`]: a sample's id, the blake3 hash of its image bytes.
//! - [`Preparer`]: all of the above in one call.
//!
//! A bad input is a [`Reject`] value naming the file and the reason, never a
//! panic and never an error that stops a run.

mod bucket;
mod completeness;
pub mod decode;
mod error;
mod id;
mod prepare;
mod reject;
pub mod resize;
pub mod sidecar;
pub mod validate;

pub use bucket::{
    Bucket, BucketConfig, Buckets, REDUCED_ASPECT_RATIOS, REDUCED_LIST_MAX_TARGET,
    SEED_ASPECT_RATIOS,
};
pub use decode::{DecodeConfig, decode};
pub use error::{Error, Result};
pub use id::{CONTENT_ID_HEX_LEN, ContentId, ParseContentIdError};
pub use image::{ImageFormat, RgbImage};
pub use prepare::{PrepareConfig, PreparedImage, Preparer};
pub use reject::{Reject, RejectKind, RejectReason, format_name};
pub use resize::{Downscaler, Fit, ResizeConfig};
pub use validate::{ImageHeader, ValidationConfig, validate};
