//! `ssdit dataset export NAME DIR`: a dataset's cached latents and caption
//! embeddings out of the store, for Python.
//!
//! `DIR/samples/<id>.safetensors` holds `latents` `[C, h, w]` and
//! `text_embeds` `[L, D]` (f32) with the sample's id, source, bucket and
//! caption as safetensors metadata; `DIR/manifest.json` lists every exported
//! sample and every one left out with the reason. Python needs nothing but
//! `safetensors` (and the standard `json`):
//!
//! ```python
//! import json
//! from safetensors.numpy import load_file
//! manifest = json.load(open("DIR/manifest.json"))
//! for s in manifest["samples"]:
//!     t = load_file("DIR/" + s["file"])  # t["latents"], t["text_embeds"]
//! ```
//!
//! The manifest is written last, so a folder with a manifest is complete.

use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use ssdit_dataset::{Dataset, Encodings, ReadySample};
use ssdit_store::{Key, TensorFile};

use crate::tensors::{EMBEDDING_NAMES, LATENT_NAMES, read};
use crate::{Error, Result};

/// Format tag of the manifest.
pub const MANIFEST_FORMAT: &str = "ssdit.export.v1";
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The folder of per-sample files.
pub const SAMPLES_DIR: &str = "samples";
/// Samples read and written at once.
const CONCURRENCY: usize = 8;

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportManifest {
    pub format: String,
    pub dataset: String,
    /// VAE fingerprint of the latents.
    pub vae: String,
    pub text_encoder: String,
    pub tokenizer: String,
    /// Caption embedding length in tokens.
    pub max_length: u32,
    pub samples: Vec<ExportedSample>,
    /// Samples not exported, and why.
    pub missing: Vec<LeftOut>,
}

/// One exported sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedSample {
    pub id: String,
    /// Path of its safetensors file, relative to the export folder.
    pub file: String,
    pub source: String,
    pub width: u32,
    pub height: u32,
    pub caption: Option<String>,
}

/// A sample that was not exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub id: String,
    pub source: String,
    pub reason: String,
}

/// Exports every sample of `dataset` that has a latent and an embedding of
/// `encodings` into `dir` (created if needed). Returns the manifest written.
pub async fn export_dataset(
    dataset: &Dataset,
    encodings: &Encodings,
    dir: &Path,
) -> Result<ExportManifest> {
    let samples_dir = dir.join(SAMPLES_DIR);
    std::fs::create_dir_all(&samples_dir).map_err(|source| Error::Write {
        path: samples_dir.clone(),
        source,
    })?;
    let training = dataset.training_manifest(encodings).await?;
    let exported: Vec<ExportedSample> = futures::stream::iter(training.ready.iter())
        .map(|ready| export_sample(dataset, ready, &samples_dir))
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let manifest = ExportManifest {
        format: MANIFEST_FORMAT.to_string(),
        dataset: dataset.name().to_string(),
        vae: encodings.vae.clone(),
        text_encoder: encodings.text.encoder.clone(),
        tokenizer: encodings.text.tokenizer.clone(),
        max_length: encodings.text.max_length,
        samples: exported,
        missing: training
            .missing
            .into_iter()
            .map(|m| LeftOut {
                id: m.id,
                source: m.source,
                reason: m.reason,
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("manifests serialise");
    write_atomic(&dir.join(MANIFEST_FILE), &json)?;
    tracing::info!(
        dataset = dataset.name(),
        exported = manifest.samples.len(),
        missing = manifest.missing.len(),
        dir = %dir.display(),
        "dataset exported"
    );
    Ok(manifest)
}

async fn export_sample(
    dataset: &Dataset,
    ready: &ReadySample,
    samples_dir: &Path,
) -> Result<ExportedSample> {
    let store = dataset.store();
    let record = dataset.sample(&ready.id).await?;
    let latent_key = Key::parse(&ready.latent_key)?;
    let embedding_key = Key::parse(&ready.embedding_key)?;
    let latent = read(store, &latent_key, &LATENT_NAMES, 3, &ready.id, "latent").await?;
    let embedding = read(
        store,
        &embedding_key,
        &EMBEDDING_NAMES,
        2,
        &ready.id,
        "caption embedding",
    )
    .await?;
    let caption = dataset.caption(&record).await?;
    let mut file = TensorFile::new();
    file.insert("latents", latent)
        .insert("text_embeds", embedding)
        .set_metadata("id", record.id.clone())
        .set_metadata("source", record.source.clone())
        .set_metadata("width", record.bucket.width.to_string())
        .set_metadata("height", record.bucket.height.to_string());
    if let Some(text) = &caption {
        file.set_metadata("caption", text.clone());
    }
    let name = format!("{}.safetensors", record.id);
    let path = samples_dir.join(&name);
    let bytes = file.to_bytes(&path.display().to_string())?;
    write_atomic(&path, &bytes)?;
    Ok(ExportedSample {
        file: format!("{SAMPLES_DIR}/{name}"),
        id: record.id,
        source: record.source,
        width: record.bucket.width,
        height: record.bucket.height,
        caption,
    })
}

/// Writes `bytes` at `path` through a temporary file beside it and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let error = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let temporary: PathBuf = path.with_file_name(format!(".{}.partial", name.unwrap_or_default()));
    std::fs::write(&temporary, bytes).map_err(error)?;
    std::fs::rename(&temporary, path).map_err(|source| {
        let _ = std::fs::remove_file(&temporary);
        error(source)
    })
}
