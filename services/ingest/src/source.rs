//! The inputs of a batch: which files are images, where their bytes and their
//! captions come from, and their category labels. Folders are walked on a
//! blocking thread; object-store prefixes are listed once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ssdit_caption::{Labels, label_from_folder};
use ssdit_data::sidecar::{
    DEFAULT_MAX_CAPTION_BYTES, SIDECAR_EXTENSIONS, caption_from_bytes, find_sidecar, read_caption,
};
use ssdit_data::{ImageFormat, RejectReason};
use ssdit_store::{Key, Store};

use crate::error::{Error, Result};
use crate::settings::CaptionMode;

/// Where some bytes are.
#[derive(Debug, Clone)]
pub(crate) enum Blob {
    /// A local file, read on a blocking thread.
    File(PathBuf),
    /// An object in a store.
    Object { store: Store, key: Key },
    /// Bytes already received (uploads).
    Memory(Bytes),
}

/// Where an image's caption comes from.
#[derive(Debug, Clone)]
pub(crate) enum CaptionInput {
    /// Sent with the image (uploads).
    Attached(String),
    /// A caption file named `name`.
    Sidecar { name: String, blob: Blob },
    /// No caption file was found; the reason says where it was looked for.
    Missing(String),
}

/// One image to ingest.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// Position in the batch, for the reply's order.
    pub index: usize,
    /// The name the reply uses: relative to the folder or prefix, or the
    /// client's file name.
    pub name: String,
    /// Where it came from, as records and logs name it (a path, a URL, or the
    /// client's file name).
    pub location: String,
    pub image: Blob,
    pub caption: CaptionInput,
    /// Category label: attached, from the labels file, or (in modes that use
    /// them) from the folder name.
    pub label: Option<String>,
}

/// One unit of work of a batch.
#[derive(Debug, Clone)]
pub(crate) enum Work {
    /// An image to ingest (boxed: an item is much larger than a refusal).
    Image(Box<Item>),
    /// An input refused before it could be read as an image (an upload's
    /// caption file that matches no image).
    Refused {
        index: usize,
        name: String,
        reason: String,
    },
}

/// What a folder or prefix listing found.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub work: Vec<Work>,
    /// Files that are neither images nor caption files.
    pub skipped: usize,
}

/// Whether a name has an image extension the `image` crate knows (the format
/// itself is sniffed from the bytes later).
pub(crate) fn is_image_name(name: &str) -> bool {
    ImageFormat::from_path(name).is_ok()
}

/// Whether a name is a caption sidecar (`.txt`, `.caption`).
pub(crate) fn is_caption_name(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| SIDECAR_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Every regular file under `root` (descending into sub-folders when
/// `recursive`), sorted. Hidden files and folders are skipped; symbolic links
/// to files are followed, links to folders are not (no cycles).
pub(crate) fn walk_folder(root: &Path, recursive: bool) -> Result<Vec<PathBuf>> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let mut files = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).map_err(io(&folder))? {
            let entry = entry.map_err(io(&folder))?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = entry.file_type().map_err(io(&path))?;
            if kind.is_dir() {
                if recursive {
                    folders.push(path);
                } else {
                    tracing::warn!(folder = %path.display(), "sub-folder not searched: this ingest is not recursive");
                }
            } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
                files.push(path);
            } else {
                tracing::debug!(path = %path.display(), "skipping a link to a folder or a special file");
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The images among a folder's files, each with its sidecar (in sidecar mode)
/// and its label.
pub(crate) fn folder_listing(
    root: &Path,
    files: &[PathBuf],
    mode: CaptionMode,
    labels: Option<&Labels>,
) -> Listing {
    let mut listing = Listing::default();
    for path in files {
        let name = path
            .strip_prefix(root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        if !is_image_name(&name) {
            listing.skipped += usize::from(!is_caption_name(&name));
            continue;
        }
        let caption = match find_sidecar(path) {
            Some(sidecar) => CaptionInput::Sidecar {
                name: sidecar
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                blob: Blob::File(sidecar),
            },
            None => CaptionInput::Missing(missing_sidecar(path, "beside the image")),
        };
        listing.work.push(Work::Image(Box::new(Item {
            index: listing.work.len(),
            name,
            location: path.display().to_string(),
            image: Blob::File(path.clone()),
            caption,
            label: label_of(path, mode, labels),
        })));
    }
    listing
}

/// The images under `prefix` in `store` (one level, or all when
/// `recursive`), each with its sidecar object and its label. `root_url` names
/// the store in records (`s3://bucket`).
pub(crate) async fn prefix_listing(
    store: &Store,
    root_url: &str,
    prefix: &Key,
    recursive: bool,
    mode: CaptionMode,
    labels: Option<&Labels>,
) -> Result<Listing> {
    let objects = store.list(prefix).await?;
    let keys: BTreeSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    let mut listing = Listing::default();
    for object in &objects {
        let key = object.key.as_str();
        let Some(name) = key
            .strip_prefix(prefix.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            continue;
        };
        if !recursive && name.contains('/') {
            continue;
        }
        if !is_image_name(name) {
            listing.skipped += usize::from(!is_caption_name(name));
            continue;
        }
        let sidecar = SIDECAR_EXTENSIONS.iter().find_map(|ext| {
            let candidate = Path::new(key).with_extension(ext);
            let candidate = candidate.to_str()?;
            keys.contains(candidate)
                .then(|| Key::parse(candidate).ok())?
        });
        let caption = match sidecar {
            Some(sidecar) => CaptionInput::Sidecar {
                name: sidecar.file_name().to_owned(),
                blob: Blob::Object {
                    store: store.clone(),
                    key: sidecar,
                },
            },
            None => CaptionInput::Missing(missing_sidecar(Path::new(key), "under the prefix")),
        };
        listing.work.push(Work::Image(Box::new(Item {
            index: listing.work.len(),
            name: name.to_owned(),
            location: format!("{}/{key}", root_url.trim_end_matches('/')),
            image: Blob::Object {
                store: store.clone(),
                key: object.key.clone(),
            },
            caption,
            label: label_of(Path::new(key), mode, labels),
        })));
    }
    Ok(listing)
}

/// An image's label: the labels file's entry, else (when the mode uses them)
/// its folder's name.
fn label_of(image: &Path, mode: CaptionMode, labels: Option<&Labels>) -> Option<String> {
    labels
        .and_then(|l| l.get(image))
        .map(str::to_owned)
        .or_else(|| {
            mode.uses_folder_labels()
                .then(|| label_from_folder(image))
                .flatten()
        })
}

/// The reason an image has no caption file.
pub(crate) fn missing_sidecar(image: &Path, place: &str) -> String {
    let stem = image
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    format!("no caption: neither {stem}.txt nor {stem}.caption exists {place}")
}

/// Reads an image's bytes, refusing files over `max_bytes` before reading
/// them. `Err` is a store failure; `Ok(Err)` a refused input.
pub(crate) async fn read_image(blob: &Blob, max_bytes: u64) -> Result<Result<Bytes, RejectReason>> {
    match blob {
        Blob::Memory(bytes) => Ok(Ok(bytes.clone())),
        Blob::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                ssdit_data::validate::read_limited(&path, max_bytes).map(Bytes::from)
            })
            .await
            .map_err(|e| Error::Internal(format!("reading an image: {e}")))
        }
        Blob::Object { store, key } => match store.get_bounded(key, max_bytes).await {
            Ok(bytes) => Ok(Ok(bytes)),
            Err(ssdit_store::Error::TooLarge { size, max, .. }) => {
                Ok(Err(RejectReason::TooManyBytes { bytes: size, max }))
            }
            Err(ssdit_store::Error::NotFound { .. }) => Ok(Err(RejectReason::Unreadable {
                detail: "the object was removed after it was listed".into(),
            })),
            Err(error) => Err(error.into()),
        },
    }
}

/// Reads a caption file strictly (UTF-8, byte-order mark dropped, trimmed; an
/// empty file is an empty caption). `Err` is a store failure; `Ok(Err)` the
/// reason the image is refused, naming the caption file.
pub(crate) async fn read_sidecar(name: &str, blob: &Blob) -> Result<Result<String, String>> {
    let refused = |reason: RejectReason| format!("caption file {name}: {reason}");
    let max = DEFAULT_MAX_CAPTION_BYTES;
    let bytes = match blob {
        Blob::File(path) => {
            let path = path.clone();
            let read = tokio::task::spawn_blocking(move || read_caption(&path, max))
                .await
                .map_err(|e| Error::Internal(format!("reading a caption: {e}")))?;
            return Ok(read.map_err(|reject| refused(reject.reason)));
        }
        Blob::Memory(bytes) => bytes.clone(),
        Blob::Object { store, key } => match store.get_bounded(key, max).await {
            Ok(bytes) => bytes,
            Err(ssdit_store::Error::TooLarge { size, max, .. }) => {
                return Ok(Err(refused(RejectReason::TooManyBytes {
                    bytes: size,
                    max,
                })));
            }
            Err(ssdit_store::Error::NotFound { .. }) => {
                return Ok(Err(refused(RejectReason::Unreadable {
                    detail: "the object was removed after it was listed".into(),
                })));
            }
            Err(error) => return Err(error.into()),
        },
    };
    if bytes.len() as u64 > max {
        return Ok(Err(refused(RejectReason::TooManyBytes {
            bytes: bytes.len() as u64,
            max,
        })));
    }
    Ok(caption_from_bytes(&bytes).map_err(refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_captions_are_told_apart_by_name() {
        for name in ["a.png", "b.JPG", "c.jpeg", "d.webp", "sub/e.tiff"] {
            assert!(is_image_name(name), "{name}");
        }
        for name in ["a.txt", "b.caption", "README", "labels.csv"] {
            assert!(!is_image_name(name), "{name}");
        }
        assert!(is_caption_name("a.TXT") && is_caption_name("b.caption"));
        assert!(!is_caption_name("c.png"));
    }

    #[test]
    fn walk_skips_hidden_files_and_descends_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("daisy")).unwrap();
        std::fs::create_dir_all(dir.path().join(".cache")).unwrap();
        for file in ["a.png", ".hidden.png", "daisy/b.jpg", ".cache/c.png"] {
            std::fs::write(dir.path().join(file), b"x").unwrap();
        }
        let flat = walk_folder(dir.path(), false).unwrap();
        assert_eq!(flat, [dir.path().join("a.png")]);
        let deep = walk_folder(dir.path(), true).unwrap();
        assert_eq!(
            deep,
            [dir.path().join("a.png"), dir.path().join("daisy/b.jpg")]
        );
    }

    #[test]
    fn folder_listing_pairs_sidecars_and_labels_by_mode() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pink_primrose")).unwrap();
        for file in [
            "pink_primrose/a.png",
            "pink_primrose/a.txt",
            "b.jpg",
            "notes.md",
        ] {
            std::fs::write(dir.path().join(file), b"x").unwrap();
        }
        let files = walk_folder(dir.path(), true).unwrap();
        let listing = folder_listing(dir.path(), &files, CaptionMode::Sidecar, None);
        assert_eq!(listing.skipped, 1, "notes.md");
        let items: Vec<&Item> = listing
            .work
            .iter()
            .map(|w| match w {
                Work::Image(item) => item.as_ref(),
                Work::Refused { .. } => panic!("no refusals in a folder listing"),
            })
            .collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].name, "b.jpg");
        assert!(
            matches!(&items[0].caption, CaptionInput::Missing(reason) if reason.contains("b.txt"))
        );
        assert_eq!(items[1].name, "pink_primrose/a.png");
        assert!(matches!(&items[1].caption, CaptionInput::Sidecar { name, .. } if name == "a.txt"));
        assert_eq!(items[1].label, None, "sidecar mode ignores folder names");
        let vlm = folder_listing(dir.path(), &files, CaptionMode::Vlm, None);
        match &vlm.work[1] {
            Work::Image(item) => assert_eq!(item.label.as_deref(), Some("pink primrose")),
            Work::Refused { .. } => panic!("no refusals in a folder listing"),
        }
    }
}
