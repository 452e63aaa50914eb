//! The ingest pipeline: for each image, validate → decode → bucket →
//! downscale → PNG → caption → store → announce; each refused input is
//! recorded and announced, and the rest of the batch goes on.
//!
//! Decoding, resizing and PNG encoding run on blocking threads, at most
//! `ingest.workers` at once; VLM requests are async, limited by the
//! captioner's own concurrency and rate limits. Files are taken from their
//! source only as fast as they are processed, so a batch of any size (or an
//! upload of any length) is held in memory a few files at a time.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use ssdit_bus::{Bus, BusExt};
use ssdit_caption::{CaptionRequest, Captioner, Labels};
use ssdit_core::Config;
use ssdit_core::config::StoreConfig;
use ssdit_data::{ContentId, Preparer, Reject};
use ssdit_dataset::{Bucket, Dataset, RejectRecord, SampleRecord};
use ssdit_proto::v1::{SampleRejected, UploadChunk};
use ssdit_server::ServiceContext;
use ssdit_store::{Key, Store, layout};
use tokio::sync::Semaphore;
use tonic::Status;

use crate::error::{Error, Result};
use crate::outcome::{FileOutcome, FileStatus, IngestReport};
use crate::settings::{self, CaptionMode};
use crate::source::{self, CaptionInput, Item, Work};
use crate::upload::Upload;

/// The stage name in reject records and `SampleRejected` events.
pub const STAGE: &str = "ingest";

/// Largest reject record read back when checking for an earlier identical one.
const MAX_REJECT_RECORD_BYTES: u64 = 1 << 20;

/// Options of a folder or prefix ingest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestOptions {
    /// Descend into sub-folders / sub-prefixes.
    pub recursive: bool,
    /// Where captions come from; `None` is the configured default.
    pub captions: Option<CaptionMode>,
}

/// The captioning-ingest pipeline, shared by the gRPC service and in-process
/// callers (the `ssdit` CLI). Clones share the store, the bus, the worker
/// limit and the VLM client.
#[derive(Clone)]
pub struct Ingester {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    bus: Arc<dyn Bus>,
    preparer: Preparer,
    captioner: Captioner,
    labels: Option<Labels>,
    default_mode: CaptionMode,
    /// Permits for blocking image work (decode, resize, encode).
    workers: Semaphore,
    /// Files in progress at once in one batch.
    in_flight: usize,
    max_upload_bytes: u64,
    uri_roots: Vec<PathBuf>,
    store_config: StoreConfig,
    /// Stores that source URIs resolve to without opening (`memory://` ones).
    sources: RwLock<HashMap<String, Store>>,
}

/// The part of a batch its files share.
struct Batch {
    dataset: Dataset,
    mode: CaptionMode,
    /// Sample ids taken by a file of this batch: a second file with the same
    /// bytes is already present.
    claimed: Mutex<HashSet<String>>,
}

impl Batch {
    fn claim(&self, id: &ContentId) -> bool {
        self.claimed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string())
    }
}

/// An image resized to its bucket and encoded.
struct Resized {
    bucket: Bucket,
    source_size: [u32; 2],
    png: Bytes,
}

impl Ingester {
    /// The pipeline of a service context. `env` holds the environment the
    /// binary read (for `ingest.vlm.api_key_env`); libraries never read it.
    pub fn new(ctx: &ServiceContext, env: &HashMap<String, String>) -> Result<Self> {
        Self::from_parts(&ctx.config, ctx.store.clone(), ctx.bus.clone(), env)
    }

    /// The pipeline over an explicit store and bus.
    pub fn from_parts(
        config: &Config,
        store: Store,
        bus: Arc<dyn Bus>,
        env: &HashMap<String, String>,
    ) -> Result<Self> {
        let ingest = &config.ingest;
        let preparer = Preparer::new(settings::prepare_config(ingest))
            .map_err(|e| Error::Config(e.to_string()))?;
        let vlm = settings::vlm_config(ingest, env)?;
        let vlm_concurrency = vlm.max_concurrency;
        let captioner = Captioner::new(vlm).map_err(|e| Error::Config(e.to_string()))?;
        let labels = match &ingest.labels_file {
            Some(path) => Some(Labels::load(path).map_err(|e| Error::Config(e.to_string()))?),
            None => None,
        };
        let workers = settings::workers(ingest);
        tracing::info!(
            workers,
            downscale = ?ingest.downscale,
            target = ingest.target_resolution,
            captions = ?ingest.captions,
            labels = labels.as_ref().map(Labels::len),
            "captioning-ingest ready"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                bus,
                preparer,
                captioner,
                labels,
                default_mode: ingest.captions.into(),
                workers: Semaphore::new(workers),
                in_flight: 2 * workers + vlm_concurrency,
                max_upload_bytes: config.server.max_upload_bytes,
                uri_roots: ingest.uri_roots.clone(),
                store_config: config.store.clone(),
                sources: RwLock::new(HashMap::new()),
            }),
        })
    }

    /// The store samples are written to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Makes source URIs under `root` (`scheme://bucket`, e.g. `memory://photos`)
    /// read from `store` instead of opening one: how in-process callers and
    /// tests ingest from a `memory://` store, which no other process can open.
    pub fn register_source_store(&self, root: &str, store: Store) {
        self.inner
            .sources
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(root.trim_end_matches('/').to_owned(), store);
    }

    /// Ingests the images of a local folder (trusted: `ingest.uri_roots` does
    /// not apply; that is for remote requests).
    pub async fn ingest_folder(
        &self,
        dataset: &str,
        folder: &Path,
        options: IngestOptions,
    ) -> Result<IngestReport> {
        let dataset = self.dataset(dataset)?;
        let metadata = tokio::fs::metadata(folder).await.map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::SourceNotFound {
                    path: folder.to_path_buf(),
                }
            } else {
                Error::Io {
                    path: folder.to_path_buf(),
                    source,
                }
            }
        })?;
        if !metadata.is_dir() {
            return Err(Error::InvalidSource {
                uri: folder.display().to_string(),
                reason: "not a folder".into(),
            });
        }
        let mode = options.captions.unwrap_or(self.inner.default_mode);
        let inner = self.inner.clone();
        let root = folder.to_path_buf();
        let listing = tokio::task::spawn_blocking(move || {
            let files = source::walk_folder(&root, options.recursive)?;
            Ok::<_, Error>(source::folder_listing(
                &root,
                &files,
                mode,
                inner.labels.as_ref(),
            ))
        })
        .await
        .map_err(|e| Error::Internal(format!("listing a folder: {e}")))??;
        tracing::info!(dataset = dataset.name(), folder = %folder.display(), files = listing.work.len(), skipped = listing.skipped, "ingesting a folder");
        let work = futures::stream::iter(listing.work.into_iter().map(Ok));
        self.inner
            .run_batch(dataset, mode, work, listing.skipped)
            .await
    }

    /// Ingests the images under `prefix` of `store`; `root_url` names the store
    /// in records (`s3://bucket`).
    pub async fn ingest_prefix(
        &self,
        dataset: &str,
        store: &Store,
        root_url: &str,
        prefix: &Key,
        options: IngestOptions,
    ) -> Result<IngestReport> {
        let dataset = self.dataset(dataset)?;
        let mode = options.captions.unwrap_or(self.inner.default_mode);
        let listing = source::prefix_listing(
            store,
            root_url,
            prefix,
            options.recursive,
            mode,
            self.inner.labels.as_ref(),
        )
        .await?;
        tracing::info!(dataset = dataset.name(), source = %format_args!("{root_url}/{prefix}"), files = listing.work.len(), skipped = listing.skipped, "ingesting a prefix");
        let work = futures::stream::iter(listing.work.into_iter().map(Ok));
        self.inner
            .run_batch(dataset, mode, work, listing.skipped)
            .await
    }

    /// Ingests a local folder (a path or `file://` URL) or an object-store
    /// prefix (`s3://bucket/prefix`, `gs://…`, `az://…`, or a registered
    /// `memory://` root), as `IngestUri` asks. Local folders must lie under
    /// `ingest.uri_roots` when that is set.
    pub async fn ingest_uri(
        &self,
        dataset: &str,
        uri: &str,
        options: IngestOptions,
    ) -> Result<IngestReport> {
        self.dataset(dataset)?;
        match crate::uri::resolve(uri)? {
            crate::uri::Location::Folder(path) => {
                self.check_uri_root(&path).await?;
                self.ingest_folder(dataset, &path, options).await
            }
            crate::uri::Location::Prefix { root, prefix } => {
                let store = self.source_store(uri, &root).await?;
                self.ingest_prefix(dataset, &store, &root, &prefix, options)
                    .await
            }
        }
    }

    /// Ingests a streamed upload (`Ingest`): files are checked against
    /// `server.max_upload_bytes` chunk by chunk and processed as they complete.
    pub async fn ingest_upload<S>(&self, chunks: S) -> Result<IngestReport>
    where
        S: Stream<Item = Result<UploadChunk, Status>> + Send + Unpin + 'static,
    {
        let mode = self.inner.default_mode;
        let upload = Upload::begin(
            chunks,
            self.inner.max_upload_bytes,
            mode == CaptionMode::Sidecar,
        )
        .await?;
        let dataset = self.dataset(upload.dataset())?;
        tracing::info!(dataset = dataset.name(), "receiving an upload");
        self.inner
            .run_batch(dataset, mode, upload.into_work(), 0)
            .await
    }

    fn dataset(&self, name: &str) -> Result<Dataset> {
        check_dataset_name(name)?;
        Ok(Dataset::new(self.inner.store.clone(), name)?)
    }

    async fn check_uri_root(&self, path: &Path) -> Result<()> {
        if self.inner.uri_roots.is_empty() {
            return Ok(());
        }
        let canonical = |p: PathBuf| async move {
            tokio::fs::canonicalize(&p).await.map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    Error::SourceNotFound { path: p }
                } else {
                    Error::Io { path: p, source }
                }
            })
        };
        let path = canonical(path.to_path_buf()).await?;
        for root in &self.inner.uri_roots {
            if let Ok(root) = canonical(root.clone()).await
                && path.starts_with(&root)
            {
                return Ok(());
            }
        }
        Err(Error::SourceNotAllowed { path })
    }

    async fn source_store(&self, uri: &str, root: &str) -> Result<Store> {
        let registered = self
            .inner
            .sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(root)
            .cloned();
        if let Some(store) = registered {
            return Ok(store);
        }
        if root.starts_with("memory://") {
            return Err(Error::InvalidSource {
                uri: uri.to_owned(),
                reason: format!("memory stores live in one process; none is registered as {root}"),
            });
        }
        let config = StoreConfig {
            url: root.to_owned(),
            ..self.inner.store_config.clone()
        };
        ssdit_server::open_store(&config)
            .await
            .map_err(|e| Error::InvalidSource {
                uri: uri.to_owned(),
                reason: e.to_string(),
            })
    }
}

/// Checks a dataset name before anything is read or written under it.
pub(crate) fn check_dataset_name(name: &str) -> Result<()> {
    layout::dataset_root(name)
        .map(drop)
        .map_err(|error| Error::InvalidDataset {
            name: name.chars().take(80).collect(),
            reason: match error {
                ssdit_store::Error::InvalidComponent { reason, .. } => reason.to_owned(),
                other => other.to_string(),
            },
        })
}

impl Inner {
    /// Runs a batch: takes work while fewer than `in_flight` files are in
    /// progress, each on its own task. An error ends the call at once; files
    /// already in progress still finish (nothing is left half-written, and
    /// every stored sample is announced).
    async fn run_batch(
        self: &Arc<Self>,
        dataset: Dataset,
        mode: CaptionMode,
        work: impl Stream<Item = Result<Work>> + Send,
        skipped: usize,
    ) -> Result<IngestReport> {
        let started = Instant::now();
        let batch = Arc::new(Batch {
            dataset,
            mode,
            claimed: Mutex::new(HashSet::new()),
        });
        let mut work = pin!(work);
        let mut running = FuturesUnordered::new();
        let mut files = Vec::new();
        let mut exhausted = false;
        while !exhausted || !running.is_empty() {
            tokio::select! {
                next = work.next(), if !exhausted && running.len() < self.in_flight => match next {
                    None => exhausted = true,
                    Some(Err(error)) => return Err(error),
                    Some(Ok(work)) => {
                        let (inner, batch) = (self.clone(), batch.clone());
                        running.push(tokio::spawn(async move { inner.handle(&batch, work).await }));
                    }
                },
                Some(done) = running.next(), if !running.is_empty() => {
                    files.push(done.map_err(|e| Error::Internal(format!("ingest task: {e}")))??);
                }
            }
        }
        files.sort_by_key(|f: &FileOutcome| f.index);
        let report = IngestReport {
            dataset: batch.dataset.name().to_owned(),
            files,
            skipped,
            elapsed: started.elapsed(),
        };
        tracing::info!(
            dataset = %report.dataset,
            accepted = report.accepted(),
            already_present = report.already_present(),
            rejected = report.rejected(),
            skipped = report.skipped,
            ms = report.elapsed.as_millis() as u64,
            "ingest finished"
        );
        Ok(report)
    }

    async fn handle(self: &Arc<Self>, batch: &Batch, work: Work) -> Result<FileOutcome> {
        match work {
            Work::Image(item) => self.ingest(batch, *item).await,
            Work::Refused {
                index,
                name,
                reason,
            } => self.refuse(batch, index, &name, &name, None, reason).await,
        }
    }

    /// One image, from its bytes to its announced sample.
    async fn ingest(self: &Arc<Self>, batch: &Batch, item: Item) -> Result<FileOutcome> {
        let started = Instant::now();
        let refuse = |id: Option<&ContentId>, reason: String| {
            self.refuse(
                batch,
                item.index,
                &item.name,
                &item.location,
                id.map(ToString::to_string),
                reason,
            )
        };
        let max_bytes = self.preparer.config().validation.max_bytes;
        let bytes = match source::read_image(&item.image, max_bytes).await? {
            Ok(bytes) => bytes,
            Err(reason) => return refuse(None, reason.to_string()).await,
        };
        let validation = self.preparer.config().validation.clone();
        let (bytes, id, header) = self
            .blocking(move || {
                let id = ContentId::of(&bytes);
                let header = ssdit_data::validate(&bytes, &validation);
                (bytes, id, header)
            })
            .await?;
        if let Err(reason) = header {
            return refuse(None, reason.to_string()).await;
        }
        if !batch.claim(&id) || batch.dataset.contains(id.as_str()).await? {
            tracing::debug!(dataset = batch.dataset.name(), file = %item.name, sample_id = %id, "already present");
            return Ok(FileOutcome {
                index: item.index,
                file: item.name,
                status: FileStatus::AlreadyPresent {
                    sample_id: id.to_string(),
                },
            });
        }
        let caption = match self.caption_text(batch.mode, &item).await? {
            Ok(caption) => caption,
            Err(reason) => return refuse(Some(&id), reason).await,
        };
        let (inner, location) = (self.clone(), item.location.clone());
        let resized = match self
            .blocking(move || inner.resize_and_encode(&location, &bytes))
            .await??
        {
            Ok(resized) => resized,
            Err(reject) => return refuse(None, reject.reason.to_string()).await,
        };
        let caption = match caption {
            Some(text) => text,
            None => match self.vlm_caption(&item, &resized).await {
                Ok(text) => text,
                Err(reason) => return refuse(Some(&id), reason).await,
            },
        };
        let record = SampleRecord {
            id: id.to_string(),
            source: item.location.clone(),
            image_key: String::new(),
            caption_key: None,
            bucket: resized.bucket,
            original_size: resized.source_size,
            label: item.label.clone(),
        };
        let commit =
            tokio::spawn(
                self.clone()
                    .commit(batch.dataset.clone(), record, resized.png, caption),
            );
        let stored = commit
            .await
            .map_err(|e| Error::Internal(format!("storing a sample: {e}")))??;
        tracing::info!(
            dataset = batch.dataset.name(),
            file = %item.name,
            sample_id = %stored.id,
            bucket = %stored.bucket,
            ms = started.elapsed().as_millis() as u64,
            "sample ingested"
        );
        Ok(FileOutcome {
            index: item.index,
            file: item.name,
            status: FileStatus::Accepted {
                sample_id: stored.id,
                bucket: stored.bucket,
            },
        })
    }

    /// Runs image work on a blocking thread, at most `workers` at once.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .workers
            .acquire()
            .await
            .map_err(|e| Error::Internal(format!("worker pool closed: {e}")))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::Internal(format!("image worker: {e}")))
    }

    /// Decode, bucket, resize and encode as PNG (on a blocking thread).
    fn resize_and_encode(
        &self,
        location: &str,
        bytes: &[u8],
    ) -> Result<std::result::Result<Resized, Reject>> {
        let prepared = match self.preparer.prepare_bytes(Path::new(location), bytes) {
            Ok(prepared) => prepared,
            Err(reject) => return Ok(Err(reject)),
        };
        let png = encode_png(&prepared.image)?;
        Ok(Ok(Resized {
            bucket: Bucket {
                width: prepared.bucket.width,
                height: prepared.bucket.height,
            },
            source_size: [prepared.source_width, prepared.source_height],
            png,
        }))
    }

    /// The caption an item gets before any VLM call: `Some(text)`, `None` when
    /// the VLM is to write it, or the reason the image is refused.
    async fn caption_text(
        &self,
        mode: CaptionMode,
        item: &Item,
    ) -> Result<std::result::Result<Option<String>, String>> {
        if let CaptionInput::Attached(text) = &item.caption {
            return Ok(Ok(Some(text.clone())));
        }
        match mode {
            CaptionMode::Vlm => Ok(Ok(None)),
            CaptionMode::FolderLabel => Ok(match &item.label {
                Some(label) => Ok(Some(label.clone())),
                None => Err("no category label: no labels file entry, and no folder name with a letter in it".to_owned()),
            }),
            CaptionMode::Sidecar => match &item.caption {
                CaptionInput::Sidecar { name, blob } => {
                    Ok(source::read_sidecar(name, blob).await?.map(Some))
                }
                CaptionInput::Missing(reason) => Ok(Err(reason.clone())),
                CaptionInput::Attached(_) => unreachable!("handled above"),
            },
        }
    }

    /// Asks the VLM for a caption of the bucket-sized image, with the label.
    async fn vlm_caption(
        &self,
        item: &Item,
        resized: &Resized,
    ) -> std::result::Result<String, String> {
        let request = CaptionRequest {
            input: item.location.clone(),
            image: resized.png.to_vec(),
            label: item.label.clone(),
        };
        match self.captioner.caption(&request).await {
            Ok(outcome) => {
                tracing::debug!(file = %item.name, attempts = outcome.attempts, truncated = outcome.truncated, "captioned by the VLM");
                Ok(outcome.caption)
            }
            Err(error) => Err(format!("captioning failed: {error}")),
        }
    }

    /// Stores a sample, then announces it. Runs on its own task so that a
    /// cancelled call never leaves a stored sample unannounced; if the
    /// announcement fails, the record is removed again so that a retry redoes
    /// (and announces) the sample.
    async fn commit(
        self: Arc<Self>,
        dataset: Dataset,
        record: SampleRecord,
        png: Bytes,
        caption: String,
    ) -> Result<SampleRecord> {
        let stored = dataset
            .add_sample(record, png, "png", Some(&caption))
            .await?;
        let event = dataset.announcement(&stored);
        if let Err(error) = self.bus.publish_event(&event).await {
            let key = layout::sample_record(dataset.name(), &stored.id)?;
            if let Err(undo) = self.store.delete(&key).await {
                tracing::error!(%key, %undo, "sample stored but not announced, and its record could not be removed");
            }
            return Err(error.into());
        }
        Ok(stored)
    }

    /// Records a refused input and announces it, unless the same refusal is
    /// already recorded (re-ingesting publishes nothing new).
    async fn refuse(
        self: &Arc<Self>,
        batch: &Batch,
        index: usize,
        name: &str,
        location: &str,
        sample_id: Option<String>,
        reason: String,
    ) -> Result<FileOutcome> {
        tracing::warn!(dataset = batch.dataset.name(), file = %name, %reason, "input rejected");
        let record = RejectRecord {
            file: location.to_owned(),
            reason: reason.clone(),
            stage: STAGE.to_owned(),
            sample_id,
        };
        tokio::spawn(self.clone().record_reject(batch.dataset.clone(), record))
            .await
            .map_err(|e| Error::Internal(format!("recording a rejection: {e}")))??;
        Ok(FileOutcome {
            index,
            file: name.to_owned(),
            status: FileStatus::Rejected { reason },
        })
    }

    async fn record_reject(self: Arc<Self>, dataset: Dataset, record: RejectRecord) -> Result<()> {
        let key = layout::reject(dataset.name(), &record.id())?;
        match self.store.get_bounded(&key, MAX_REJECT_RECORD_BYTES).await {
            Ok(bytes)
                if serde_json::from_slice::<RejectRecord>(&bytes).is_ok_and(|r| r == record) =>
            {
                return Ok(());
            }
            Ok(_)
            | Err(ssdit_store::Error::NotFound { .. } | ssdit_store::Error::TooLarge { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        dataset.add_reject(&record).await?;
        let event = SampleRejected {
            dataset: dataset.name().to_owned(),
            file: record.file.clone(),
            reason: record.reason.clone(),
            stage: record.stage.clone(),
            sample_id: record.sample_id.clone(),
        };
        if let Err(error) = self.bus.publish_event(&event).await {
            if let Err(undo) = self.store.delete(&key).await {
                tracing::error!(%key, %undo, "rejection recorded but not announced, and its record could not be removed");
            }
            return Err(error.into());
        }
        Ok(())
    }
}

/// The bucket-sized image as PNG (fast compression: it is read once, by the
/// VAE encoder).
fn encode_png(image: &ssdit_data::RgbImage) -> Result<Bytes> {
    let mut out = Cursor::new(Vec::with_capacity(image.as_raw().len() / 2));
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| Error::Internal(format!("encoding a PNG: {e}")))?;
    Ok(Bytes::from(out.into_inner()))
}
