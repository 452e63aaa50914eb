//! `ssdit import seed-cache`: the seed's `cached_data/*.pt` into a dataset.
//!
//! Each valid file becomes a sample whose id is the content hash of the
//! `.pt` bytes (re-importing is a no-op), with its latent and caption
//! embedding written at the cache keys of [`Encodings`] whose fingerprints
//! name their origin (`seed-flux-vae`, `seed-t5gemma2-1b`, `seed-gemma`, the
//! embedding's length), so that a run configured with those encodings trains
//! on them through [`ssdit_dataset::Dataset::training_manifest`]. Invalid
//! files are recorded as rejects with the reason; the rest are imported.
//!
//! The seed's cache holds no image, so an imported sample's `image_key` is
//! empty: its latents cannot be re-encoded with another VAE, only used. With
//! `captions`, each sample's `<stem>.txt` / `<stem>.caption` (the seed's
//! `dataset/` folder) is stored as its caption, and its embedding is keyed by
//! that caption's text like any other; without one, by the sample
//! ([`CaptionHash::for_sample`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use ssdit_data::ContentId;
use ssdit_data::sidecar::{DEFAULT_MAX_CAPTION_BYTES, find_sidecar, read_caption};
use ssdit_dataset::{
    Bucket, CaptionHash, Dataset, Encodings, RejectRecord, SampleRecord, TextEncoding,
};
use ssdit_store::{TensorFile, layout};

use crate::sample::SeedSample;
use crate::torch::Limits;
use crate::{Error, Result};

/// The stage name of rejects recorded by the import.
pub const STAGE: &str = "import";
/// Fingerprint naming the seed's FLUX.1 VAE latents (`latent · 0.3611`).
pub const SEED_VAE: &str = "seed-flux-vae";
/// Fingerprint naming the seed's Gemma tokenizer (T5Gemma2's).
pub const SEED_TOKENIZER: &str = "seed-gemma";

/// How [`import_seed_cache`] names and finds things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedCacheOptions {
    /// A folder of sidecar captions named after the `.pt` files' stems.
    pub captions: Option<PathBuf>,
    /// VAE fingerprint of the imported latents.
    pub vae_fingerprint: String,
    /// Text-encoder fingerprint; `None` names it after the embedding width
    /// ([`seed_encoder_fingerprint`]).
    pub encoder_fingerprint: Option<String>,
    pub tokenizer_fingerprint: String,
    /// Files read and written at once.
    pub concurrency: usize,
}

impl Default for SeedCacheOptions {
    fn default() -> Self {
        Self {
            captions: None,
            vae_fingerprint: SEED_VAE.into(),
            encoder_fingerprint: None,
            tokenizer_fingerprint: SEED_TOKENIZER.into(),
            concurrency: 8,
        }
    }
}

/// The seed's text encoder, named after its output width (`config.py`:
/// 640 → T5Gemma2-270M, 1152 → 1B, 2560 → 4B), or `seed-text-d<width>`.
pub fn seed_encoder_fingerprint(width: usize) -> String {
    match width {
        640 => "seed-t5gemma2-270m".into(),
        1152 => "seed-t5gemma2-1b".into(),
        2560 => "seed-t5gemma2-4b".into(),
        other => format!("seed-text-d{other}"),
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportSummary {
    pub dataset: String,
    /// `.pt` files found.
    pub files: usize,
    /// Samples written by this import.
    pub imported: usize,
    /// Samples that were already in the dataset (same bytes).
    pub already_present: usize,
    /// Of the imported, those with a caption.
    pub captioned: usize,
    /// Files refused, with reasons (also recorded in the dataset).
    pub rejected: Vec<RejectRecord>,
    /// Where the latents and embeddings went; `None` when nothing was valid.
    pub encodings: Option<Encodings>,
    /// Imported or present samples per bucket.
    pub buckets: BTreeMap<Bucket, usize>,
    /// Imported samples per stored latent dtype.
    pub dtypes: BTreeMap<String, usize>,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "dataset {}: {} .pt files, {} imported ({} with captions), {} already present, {} rejected",
            self.dataset,
            self.files,
            self.imported,
            self.captioned,
            self.already_present,
            self.rejected.len()
        )?;
        if let Some(encodings) = &self.encodings {
            writeln!(
                f,
                "encodings: vae {}, text encoder {}, tokenizer {}, {} tokens",
                encodings.vae,
                encodings.text.encoder,
                encodings.text.tokenizer,
                encodings.text.max_length
            )?;
        }
        for (dtype, count) in &self.dtypes {
            writeln!(f, "  stored as {dtype}: {count}")?;
        }
        for (bucket, count) in &self.buckets {
            writeln!(f, "  bucket {bucket}: {count}")?;
        }
        for reject in &self.rejected {
            writeln!(f, "  rejected {}: {}", reject.file, reject.reason)?;
        }
        Ok(())
    }
}

/// One file's outcome.
enum Outcome {
    Imported {
        bucket: Bucket,
        dtype: String,
        captioned: bool,
    },
    Present {
        bucket: Bucket,
    },
    Rejected(RejectRecord),
}

/// A file read and checked, ready to write.
struct Prepared {
    id: String,
    sample: SeedSample,
    caption: Option<String>,
}

/// Imports every `*.pt` file of `dir` (not recursive) into `dataset`.
pub async fn import_seed_cache(
    dataset: &Dataset,
    dir: &Path,
    options: &SeedCacheOptions,
) -> Result<ImportSummary> {
    for (what, fingerprint) in [
        ("vae fingerprint", &options.vae_fingerprint),
        ("tokenizer fingerprint", &options.tokenizer_fingerprint),
    ] {
        layout::latents_prefix(fingerprint).map_err(|e| Error::Input {
            what,
            reason: e.to_string(),
        })?;
    }
    let files = list_pt_files(dir)?;
    let mut summary = ImportSummary {
        dataset: dataset.name().to_string(),
        files: files.len(),
        ..ImportSummary::default()
    };
    let text_shape = first_text_shape(&files).await?;
    if text_shape.is_none() {
        tracing::warn!(dataset = dataset.name(), dir = %dir.display(), "no valid seed sample found");
    }
    let encodings = match text_shape {
        Some((tokens, width)) => Some(encodings(options, tokens, width)?),
        None => None,
    };
    let outcomes: Vec<Outcome> = futures::stream::iter(files)
        .map(|path| {
            let encodings = encodings.clone();
            async move {
                let prepared =
                    prepare_file(path.clone(), options.captions.clone(), text_shape).await?;
                match (prepared, encodings) {
                    (Ok(prepared), Some(encodings)) => {
                        write_sample(dataset, &encodings, &path, prepared).await
                    }
                    (Err(reason), _) => Ok(Outcome::Rejected(reject(&path, reason))),
                    // Only possible if the file changed between the two reads.
                    (Ok(_), None) => Ok(Outcome::Rejected(reject(
                        &path,
                        "the file changed while it was being imported".into(),
                    ))),
                }
            }
        })
        .buffered(options.concurrency.max(1))
        .try_collect()
        .await?;
    for outcome in outcomes {
        match outcome {
            Outcome::Imported {
                bucket,
                dtype,
                captioned,
            } => {
                summary.imported += 1;
                summary.captioned += usize::from(captioned);
                *summary.buckets.entry(bucket).or_default() += 1;
                *summary.dtypes.entry(dtype).or_default() += 1;
            }
            Outcome::Present { bucket } => {
                summary.already_present += 1;
                *summary.buckets.entry(bucket).or_default() += 1;
            }
            Outcome::Rejected(reject) => {
                dataset.add_reject(&reject).await?;
                tracing::warn!(dataset = dataset.name(), file = %reject.file, reason = %reject.reason, "seed sample rejected");
                summary.rejected.push(reject);
            }
        }
    }
    summary.encodings = encodings;
    tracing::info!(
        dataset = dataset.name(),
        imported = summary.imported,
        present = summary.already_present,
        rejected = summary.rejected.len(),
        "seed cache imported"
    );
    Ok(summary)
}

fn encodings(options: &SeedCacheOptions, tokens: usize, width: usize) -> Result<Encodings> {
    let encodings = Encodings {
        vae: options.vae_fingerprint.clone(),
        text: TextEncoding {
            encoder: options
                .encoder_fingerprint
                .clone()
                .unwrap_or_else(|| seed_encoder_fingerprint(width)),
            tokenizer: options.tokenizer_fingerprint.clone(),
            max_length: tokens as u32,
        },
    };
    encodings.text.prefix().map_err(|e| Error::Input {
        what: "text encoder fingerprint",
        reason: e.to_string(),
    })?;
    Ok(encodings)
}

/// The `.pt` files of `dir`, sorted by name.
fn list_pt_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let is_pt = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("pt"));
        if is_pt && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The caption-embedding shape of the first valid file, in name order: every
/// sample of one import must share it (one text encoding per dataset).
async fn first_text_shape(files: &[PathBuf]) -> Result<Option<(usize, usize)>> {
    for path in files {
        if let Ok(prepared) = prepare_file(path.clone(), None, None).await? {
            return Ok(Some(prepared.sample.text_shape()));
        }
    }
    Ok(None)
}

/// Reads and checks one file on a blocking thread. The outer error is a
/// failure of the worker itself; the inner one the reason to reject the file.
async fn prepare_file(
    path: PathBuf,
    captions: Option<PathBuf>,
    text_shape: Option<(usize, usize)>,
) -> Result<std::result::Result<Prepared, String>> {
    tokio::task::spawn_blocking(move || prepare(&path, captions.as_deref(), text_shape))
        .await
        .map_err(|e| Error::Worker(e.to_string()))
}

fn prepare(
    path: &Path,
    captions: Option<&Path>,
    text_shape: Option<(usize, usize)>,
) -> std::result::Result<Prepared, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    let limit = Limits::sample().max_file_bytes;
    if size > limit {
        return Err(format!(
            "{size} bytes exceeds the limit of {limit} for a sample"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let id = ContentId::of(&bytes).to_string();
    let sample = SeedSample::from_bytes(bytes, &file_name(path)).map_err(|e| e.to_string())?;
    if let Some(expected) = text_shape
        && sample.text_shape() != expected
    {
        return Err(format!(
            "text_embeds have shape {:?}, but this import's other samples have {:?} (one text encoding per dataset)",
            sample.text_shape(),
            expected
        ));
    }
    let caption = match captions {
        Some(dir) => {
            let stem = path.file_stem().unwrap_or_default();
            let anchor = dir.join(stem).with_extension("pt");
            match find_sidecar(&anchor) {
                Some(file) => Some(
                    read_caption(&file, DEFAULT_MAX_CAPTION_BYTES)
                        .map_err(|reject| format!("caption {}: {reject}", file.display()))?,
                ),
                None => None,
            }
        }
        None => None,
    };
    Ok(Prepared {
        id,
        sample,
        caption,
    })
}

/// Writes the latent, the embedding, the caption, then the record (last, so
/// that a record means a complete sample).
async fn write_sample(
    dataset: &Dataset,
    encodings: &Encodings,
    path: &Path,
    prepared: Prepared,
) -> Result<Outcome> {
    let Prepared {
        id,
        sample,
        caption,
    } = prepared;
    let bucket = sample.bucket;
    if dataset.contains(&id).await? {
        return Ok(Outcome::Present { bucket });
    }
    let source = file_name(path);
    let store = dataset.store();
    let dtype = sample.dtype.to_string();
    let mut latent = TensorFile::new();
    latent
        .insert("latents", sample.latents)
        .set_metadata("source", format!("seed cache {source}"))
        .set_metadata("stored_dtype", dtype.clone());
    store
        .put_tensors(&encodings.latent_key(&id, bucket)?, latent)
        .await?;
    let mut embedding = TensorFile::new();
    embedding
        .insert("text_embeds", sample.text_embeds)
        .set_metadata("source", format!("seed cache {source}"));
    store
        .put_tensors(
            &encodings.embedding_key(&CaptionHash::for_sample(&id, caption.as_deref()))?,
            embedding,
        )
        .await?;
    let caption_key = match &caption {
        Some(text) => {
            let key = layout::caption(dataset.name(), &id)?;
            store
                .put(&key, Bytes::copy_from_slice(text.as_bytes()))
                .await?;
            Some(key.to_string())
        }
        None => None,
    };
    let record = SampleRecord {
        id: id.clone(),
        source,
        image_key: String::new(),
        caption_key,
        bucket,
        original_size: [bucket.width, bucket.height],
        label: None,
    };
    let bytes = serde_json::to_vec_pretty(&record).expect("records serialise");
    store
        .put(&layout::sample_record(dataset.name(), &id)?, bytes.into())
        .await?;
    tracing::debug!(dataset = dataset.name(), sample_id = %id, source = %record.source, "seed sample imported");
    Ok(Outcome::Imported {
        bucket,
        dtype,
        captioned: caption.is_some(),
    })
}

fn reject(path: &Path, reason: String) -> RejectRecord {
    RejectRecord {
        file: file_name(path),
        reason,
        stage: STAGE.into(),
        sample_id: None,
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
