//! The whole image path in one call: read → id → validate → decode → bucket →
//! resize. What the ingest service runs per file.

use std::path::Path;

use image::{ImageFormat, RgbImage};

use crate::bucket::{Bucket, BucketConfig, Buckets};
use crate::decode::{DecodeConfig, decode};
use crate::error::Result;
use crate::id::ContentId;
use crate::reject::Reject;
use crate::resize::{ResizeConfig, resize_to_bucket};
use crate::validate::{ValidationConfig, read_limited, validate};

/// Configuration of the image path.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrepareConfig {
    /// Limits checked before decoding.
    pub validation: ValidationConfig,
    /// Conversion to 8-bit RGB.
    pub decode: DecodeConfig,
    /// The aspect buckets.
    pub buckets: BucketConfig,
    /// Resizing to the bucket.
    pub resize: ResizeConfig,
}

/// An accepted image, resized to its bucket.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    /// Hash of the original file's bytes.
    pub id: ContentId,
    /// Format detected from the content.
    pub format: ImageFormat,
    /// Width after EXIF orientation, before resizing.
    pub source_width: u32,
    /// Height after EXIF orientation, before resizing.
    pub source_height: u32,
    /// The bucket chosen for the source aspect.
    pub bucket: Bucket,
    /// The pixels, exactly `bucket.width`×`bucket.height`.
    pub image: RgbImage,
}

/// Runs the image path with one configuration; cheap to share across threads.
#[derive(Debug, Clone)]
pub struct Preparer {
    config: PrepareConfig,
    buckets: Buckets,
}

impl Preparer {
    /// Checks the configuration and generates the buckets.
    pub fn new(config: PrepareConfig) -> Result<Self> {
        config.resize.validate()?;
        let buckets = Buckets::generate(&config.buckets)?;
        Ok(Self { config, buckets })
    }

    /// The configuration in use.
    pub fn config(&self) -> &PrepareConfig {
        &self.config
    }

    /// The generated buckets.
    pub fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    /// Reads and prepares the image at `path`.
    pub fn prepare_file(&self, path: &Path) -> Result<PreparedImage, Reject> {
        let bytes = read_limited(path, self.config.validation.max_bytes)
            .map_err(|reason| Reject::new(path, reason))?;
        self.prepare_bytes(path, &bytes)
    }

    /// Prepares an image already in memory; `file` names it in a reject.
    pub fn prepare_bytes(&self, file: &Path, bytes: &[u8]) -> Result<PreparedImage, Reject> {
        let reject = |reason| Reject::new(file, reason);
        let header = validate(bytes, &self.config.validation).map_err(reject)?;
        let decoded =
            decode(bytes, &header, &self.config.validation, &self.config.decode).map_err(reject)?;
        let (source_width, source_height) = decoded.dimensions();
        let bucket = self.buckets.best_for(source_width, source_height);
        let image = resize_to_bucket(&decoded, bucket, &self.config.resize)
            .expect("validated: λ checked in new, image at least 1x1, buckets never empty");
        tracing::debug!(
            file = %file.display(),
            format = ?header.format,
            source = %format_args!("{source_width}x{source_height}"),
            %bucket,
            "image prepared"
        );
        Ok(PreparedImage {
            id: ContentId::of(bytes),
            format: header.format,
            source_width,
            source_height,
            bucket,
            image,
        })
    }
}
