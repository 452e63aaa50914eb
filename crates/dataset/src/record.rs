use serde::{Deserialize, Serialize};

/// An aspect bucket: the exact pixel size an image was resized to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Bucket {
    pub width: u32,
    pub height: u32,
}

impl Bucket {
    /// Its latent size at the VAE's 8× downsampling, as `(height, width)`.
    pub fn latent_hw(self) -> (usize, usize) {
        (self.height as usize / 8, self.width as usize / 8)
    }
}

impl std::fmt::Display for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// One accepted sample, as captioning-ingest recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    /// Content hash of the original image bytes.
    pub id: String,
    /// Where it came from: the client's file name or the source key/path.
    pub source: String,
    /// Key of the bucket-sized image the VAE encodes.
    pub image_key: String,
    /// Key of its caption text, if it has one.
    pub caption_key: Option<String>,
    /// The bucket it was resized to.
    pub bucket: Bucket,
    /// The original image size, `[width, height]`.
    pub original_size: [u32; 2],
    /// Category label (folder name or labels file), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// One refused input and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectRecord {
    /// The offending file (client name or source key/path).
    pub file: String,
    /// A clear, human-readable reason.
    pub reason: String,
    /// The stage that refused it: `ingest`, `vae`, `text`…
    pub stage: String,
    /// The sample id, when the input got that far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_id: Option<String>,
}

impl RejectRecord {
    /// A stable id: recording the same rejection twice lands on the same key.
    pub fn id(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.stage.as_bytes());
        hasher.update(&[0]);
        hasher.update(self.file.as_bytes());
        hasher.update(&[0]);
        hasher.update(self.sample_id.as_deref().unwrap_or_default().as_bytes());
        hasher.finalize().to_hex()[..32].to_string()
    }
}
