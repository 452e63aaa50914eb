//! The client side of `Ingest`: a local folder as an upload stream, for
//! `ssdit ingest` and other clients of a remote ingest server.
//!
//! Caption files are sent before the images, so the server pairs each image
//! with its caption as soon as the image arrives. Files are read in chunks as
//! the stream is polled: an upload of any size is held in memory one chunk at
//! a time. Upload file names are plain names, so files in sub-folders are
//! sent as `<folder>__<name>` (their caption files likewise, so pairs still
//! match).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::Stream;
use ssdit_caption::label_from_folder;
use ssdit_proto::v1::upload_chunk::Kind;
use ssdit_proto::v1::{FileStart, UploadChunk};
use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};
use crate::source::{is_caption_name, is_image_name, walk_folder};

/// Bytes per data message.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Joins the folders of a file in a sub-folder into its upload name.
pub const FOLDER_SEPARATOR: &str = "__";

/// What to send from a folder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderUploadOptions {
    /// Include sub-folders.
    pub recursive: bool,
    /// Send each image's folder name as its category label (the VLM's hint,
    /// or the caption in folder-label mode).
    pub folder_labels: bool,
}

/// One file to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFile {
    /// Where it is read from.
    pub path: PathBuf,
    /// Its upload name.
    pub name: String,
    /// Its category label, when folder labels are sent.
    pub label: Option<String>,
}

/// A folder's images and caption files, ready to stream to `Ingest`.
#[derive(Debug, Clone)]
pub struct FolderUpload {
    dataset: String,
    files: Vec<UploadFile>,
    skipped: usize,
}

/// Files that could not be read while the stream was sent (the stream ends
/// at the first one, and the server refuses the short file).
#[derive(Debug, Clone, Default)]
pub struct ReadFailures(Arc<Mutex<Vec<String>>>);

impl ReadFailures {
    /// The failures so far, each naming the file and the reason.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn push(&self, failure: String) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(failure);
    }
}

impl FolderUpload {
    /// Lists `folder` (on a blocking thread): caption files first, then
    /// images, each group sorted; other files are counted as skipped.
    pub async fn scan(dataset: &str, folder: &Path, options: FolderUploadOptions) -> Result<Self> {
        crate::ingester::check_dataset_name(dataset)?;
        let root = folder.to_path_buf();
        let files = tokio::task::spawn_blocking(move || walk_folder(&root, options.recursive))
            .await
            .map_err(|e| Error::Internal(format!("listing a folder: {e}")))??;
        let mut captions = Vec::new();
        let mut images = Vec::new();
        let mut skipped = 0;
        for path in files {
            let relative = path.strip_prefix(folder).unwrap_or(&path);
            let name = relative
                .iter()
                .map(|part| part.to_string_lossy())
                .collect::<Vec<_>>()
                .join(FOLDER_SEPARATOR);
            let label = options
                .folder_labels
                .then(|| label_from_folder(&path))
                .flatten();
            let file = UploadFile { path, name, label };
            if is_caption_name(&file.name) {
                captions.push(file);
            } else if is_image_name(&file.name) {
                images.push(file);
            } else {
                skipped += 1;
            }
        }
        captions.append(&mut images);
        Ok(Self {
            dataset: dataset.to_owned(),
            files: captions,
            skipped,
        })
    }

    /// The files to send, caption files first.
    pub fn files(&self) -> &[UploadFile] {
        &self.files
    }

    /// Files that are neither images nor caption files (not sent).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The upload stream, and where read failures are reported.
    pub fn into_stream(
        self,
    ) -> (
        impl Stream<Item = UploadChunk> + Send + 'static,
        ReadFailures,
    ) {
        let failures = ReadFailures::default();
        let state = Sending {
            dataset: self.dataset,
            files: self.files.into_iter(),
            open: None,
            failures: failures.clone(),
        };
        (futures::stream::unfold(state, Sending::next), failures)
    }
}

/// The state of an upload stream.
struct Sending {
    dataset: String,
    files: std::vec::IntoIter<UploadFile>,
    open: Option<(String, tokio::fs::File)>,
    failures: ReadFailures,
}

impl Sending {
    async fn next(mut self) -> Option<(UploadChunk, Self)> {
        if let Some((name, file)) = self.open.as_mut() {
            let mut buf = vec![0; CHUNK_BYTES];
            match file.read(&mut buf).await {
                Ok(0) => self.open = None,
                Ok(n) => {
                    buf.truncate(n);
                    let chunk = UploadChunk {
                        kind: Some(Kind::Data(buf.into())),
                    };
                    return Some((chunk, self));
                }
                Err(error) => {
                    self.failures.push(format!("reading {name}: {error}"));
                    return None;
                }
            }
        }
        let next = self.files.next()?;
        let opened = match tokio::fs::File::open(&next.path).await {
            Ok(file) => file.metadata().await.map(|m| (file, m.len())),
            Err(error) => Err(error),
        };
        let (file, size) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                self.failures
                    .push(format!("reading {}: {error}", next.path.display()));
                return None;
            }
        };
        let chunk = UploadChunk {
            kind: Some(Kind::Start(FileStart {
                dataset: self.dataset.clone(),
                file_name: next.name.clone(),
                caption: None,
                label: next.label,
                size: Some(size),
            })),
        };
        self.open = Some((next.path.display().to_string(), file));
        Some((chunk, self))
    }
}
