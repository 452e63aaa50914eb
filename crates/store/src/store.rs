//! [`Store`]: one type over every backend, addressed by [`Key`]s.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::error::{Error, Result};
use crate::key::Key;
use crate::open::{Backend, StoreOptions, open};
use crate::retry::RetryPolicy;
use crate::tensors::{MAX_TENSOR_FILE_BYTES, TensorFile};

/// Chunk size of multipart uploads of local files.
const UPLOAD_CHUNK: usize = 8 << 20;

/// An object listed under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: Key,
    /// Its size in bytes.
    pub size: u64,
}

/// The object store of a deployment; clones share the connection.
///
/// # Atomic writes
///
/// A reader never sees a partly written object, on any backend, because each write is one
/// operation that the backend makes visible all at once:
///
/// - **S3, GCS, Azure**: a single PUT (or a multipart upload, visible only at completion)
///   is atomic — a temporary key plus copy would double the traffic for nothing;
/// - **local directory**: object_store writes a staging file beside the target
///   (`name#N`, hidden from listings) and renames it over the target — rename is atomic
///   on POSIX file systems; multipart uploads stage and rename the same way;
/// - **memory**: the map entry is replaced under a lock.
///
/// So `put` returns only once the object is complete and visible: write, then publish
/// the event that points at it. Renames are not fsync'd; a power loss can leave a short
/// file, which is why readers verify sizes and headers ([`Store::get_bounded`],
/// [`Store::get_tensors`]) before trusting an object.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    prefix: Option<Key>,
    backend: Backend,
    retry: RetryPolicy,
    url: Arc<str>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.url)
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Opens the store at `url` with default options (see [`crate::open`] for the URLs).
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    /// Opens the store at `url`.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Self> {
        let opened = open(url, options).await?;
        tracing::info!(url, backend = ?opened.backend, "object store opened");
        Ok(Self {
            inner: opened.store,
            prefix: opened.prefix,
            backend: opened.backend,
            retry: options.retry.clone(),
            url: url.into(),
        })
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The kind of backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn path(&self, key: &Key) -> ObjectPath {
        match &self.prefix {
            Some(prefix) => ObjectPath::from(format!("{prefix}/{key}")),
            None => ObjectPath::from(key.as_str()),
        }
    }

    /// Writes `bytes` at `key` atomically, replacing any previous object.
    pub async fn put(&self, key: &Key, bytes: Bytes) -> Result<()> {
        let path = self.path(key);
        let payload = PutPayload::from_bytes(bytes);
        self.retry
            .run("put", key.as_str(), || {
                self.inner.put(&path, payload.clone())
            })
            .await?;
        tracing::debug!(%key, size = payload.content_length(), "object written");
        Ok(())
    }

    /// Writes `bytes` at `key` unless an object is already there; returns whether it wrote.
    /// Meant for content-addressed keys: two racing writers write identical bytes, so the
    /// check-then-write needs no conditional request (which not every S3-compatible
    /// service supports).
    pub async fn put_if_absent(&self, key: &Key, bytes: Bytes) -> Result<bool> {
        if self.exists(key).await? {
            return Ok(false);
        }
        self.put(key, bytes).await?;
        Ok(true)
    }

    /// Uploads a local file to `key` as a multipart upload (atomic at completion), reading
    /// it in 8 MiB chunks: for checkpoints too large to hold in memory twice.
    pub async fn put_file(&self, key: &Key, file: &Path) -> Result<()> {
        let policy = &self.retry;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.upload_file(key, file).await {
                Ok(size) => {
                    tracing::debug!(%key, size, "file uploaded");
                    return Ok(());
                }
                Err(UploadError::Local(error)) => return Err(error),
                Err(UploadError::Store(error)) => {
                    let transient = matches!(error, object_store::Error::Generic { .. });
                    if !transient || attempts >= policy.max_attempts.max(1) {
                        return Err(Error::Backend {
                            operation: "upload",
                            key: key.to_string(),
                            attempts,
                            source: error,
                        });
                    }
                    let delay = policy.delay(attempts);
                    tracing::warn!(%key, attempts, ?delay, %error, "upload failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn upload_file(&self, key: &Key, file: &Path) -> Result<u64, UploadError> {
        let local = |source| {
            UploadError::Local(Error::Io {
                path: file.to_owned(),
                source,
            })
        };
        let mut reader = tokio::fs::File::open(file).await.map_err(local)?;
        let upload = self
            .inner
            .put_multipart(&self.path(key))
            .await
            .map_err(UploadError::Store)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, UPLOAD_CHUNK);
        let mut buffer = vec![0u8; UPLOAD_CHUNK];
        let mut size = 0u64;
        loop {
            let read = match reader.read(&mut buffer).await {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) => {
                    let _ = writer.abort().await;
                    return Err(local(error));
                }
            };
            size += read as u64;
            if let Err(error) = writer.wait_for_capacity(2).await {
                let _ = writer.abort().await;
                return Err(UploadError::Store(error));
            }
            writer.write(&buffer[..read]);
        }
        writer.finish().await.map_err(UploadError::Store)?;
        Ok(size)
    }

    /// The object at `key`.
    pub async fn get(&self, key: &Key) -> Result<Bytes> {
        self.get_bounded(key, u64::MAX).await
    }

    /// The object at `key`, refusing objects over `max_bytes` before downloading them and
    /// checking that the bytes read match the announced size.
    pub async fn get_bounded(&self, key: &Key, max_bytes: u64) -> Result<Bytes> {
        let path = self.path(key);
        self.retry
            .run("get", key.as_str(), || async {
                let result = self.inner.get(&path).await?;
                let size = result.meta.size;
                if size > max_bytes {
                    return Ok(Err(Error::TooLarge {
                        key: key.to_string(),
                        size,
                        max: max_bytes,
                    }));
                }
                let bytes = result.bytes().await?;
                if bytes.len() as u64 != size {
                    return Ok(Err(Error::SizeMismatch {
                        key: key.to_string(),
                        expected: size,
                        actual: bytes.len() as u64,
                    }));
                }
                Ok(Ok(bytes))
            })
            .await?
    }

    /// The object at `key`, or `None` when there is none.
    pub async fn get_opt(&self, key: &Key) -> Result<Option<Bytes>> {
        match self.get(key).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The size of the object at `key`, or `None` when there is none.
    pub async fn size(&self, key: &Key) -> Result<Option<u64>> {
        let path = self.path(key);
        match self
            .retry
            .run("head", key.as_str(), || self.inner.head(&path))
            .await
        {
            Ok(meta) => Ok(Some(meta.size)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Whether an object exists at `key`.
    pub async fn exists(&self, key: &Key) -> Result<bool> {
        Ok(self.size(key).await?.is_some())
    }

    /// Removes the object at `key`; removing a missing object is not an error.
    pub async fn delete(&self, key: &Key) -> Result<()> {
        let path = self.path(key);
        match self
            .retry
            .run("delete", key.as_str(), || self.inner.delete(&path))
            .await
        {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Every object under `prefix` (recursively), sorted by key. Objects whose names are
    /// not valid keys (written by other tools) are skipped.
    pub async fn list(&self, prefix: &Key) -> Result<Vec<ObjectInfo>> {
        let path = self.path(prefix);
        let metas = self
            .retry
            .run("list", prefix.as_str(), || {
                self.inner.list(Some(&path)).try_collect::<Vec<_>>()
            })
            .await?;
        let root = self.prefix.as_ref().map(|p| format!("{p}/"));
        let mut objects: Vec<ObjectInfo> = metas
            .into_iter()
            .filter_map(|meta| {
                let location = meta.location.as_ref();
                let relative = match &root {
                    Some(root) => location.strip_prefix(root.as_str())?,
                    None => location,
                };
                match Key::parse(relative) {
                    Ok(key) => Some(ObjectInfo {
                        key,
                        size: meta.size,
                    }),
                    Err(error) => {
                        tracing::debug!(location, %error, "skipping an object that is not a valid key");
                        None
                    }
                }
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Writes a safetensors file at `key` atomically. Encoding runs on a blocking thread:
    /// checkpoints can be hundreds of megabytes.
    pub async fn put_tensors(&self, key: &Key, file: TensorFile) -> Result<()> {
        let destination = key.to_string();
        let bytes = tokio::task::spawn_blocking(move || file.to_bytes(&destination))
            .await
            .map_err(|e| Error::TensorFile {
                key: key.to_string(),
                reason: format!("encoding task failed: {e}"),
            })??;
        self.put(key, bytes.into()).await
    }

    /// Reads and validates the safetensors file at `key` (size, header, offsets, dtypes,
    /// shapes) before returning any tensor. Decoding runs on a blocking thread.
    pub async fn get_tensors(&self, key: &Key) -> Result<TensorFile> {
        let bytes = self.get_bounded(key, MAX_TENSOR_FILE_BYTES).await?;
        let source = key.to_string();
        tokio::task::spawn_blocking(move || TensorFile::from_bytes(&bytes, &source))
            .await
            .map_err(|e| Error::TensorFile {
                key: key.to_string(),
                reason: format!("decoding task failed: {e}"),
            })?
    }
}

enum UploadError {
    Local(Error),
    Store(object_store::Error),
}
