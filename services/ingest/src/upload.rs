//! The streamed upload (`Ingest(stream UploadChunk)`): files are assembled as
//! their chunks arrive, each checked against the upload limit on every chunk
//! (a file over it ends the call at once, never buffered whole), and handed
//! on as soon as they are complete — or, in sidecar mode, as soon as their
//! caption file has arrived too.
//!
//! The stream is read only as fast as the batch takes work, so an upload is
//! held in memory a few files at a time. In sidecar mode an image whose
//! caption file comes later waits for it: send caption files first (or attach
//! captions) to keep that wait short.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use ssdit_data::sidecar::DEFAULT_MAX_CAPTION_BYTES;
use ssdit_proto::v1::upload_chunk::Kind;
use ssdit_proto::v1::{FileStart, UploadChunk};
use tonic::Status;

use crate::error::{Error, Result};
use crate::source::{Blob, CaptionInput, Item, Work, is_caption_name};

/// Longest category label accepted with an upload.
pub const MAX_LABEL_BYTES: usize = 256;

/// An upload being read.
pub(crate) struct Upload<S> {
    chunks: S,
    dataset: String,
    max_bytes: u64,
    /// Whether images without an attached caption pair with caption files.
    sidecars: bool,
    current: Option<OpenFile>,
    names: HashSet<String>,
    next_index: usize,
    /// Images waiting for their caption file, by stem.
    waiting: HashMap<String, Vec<Item>>,
    /// Caption files not yet paired, by stem.
    captions: HashMap<String, (String, Bytes, usize)>,
    /// Stems whose caption file found its image.
    paired: HashSet<String>,
    ready: VecDeque<Work>,
    ended: bool,
}

struct OpenFile {
    index: usize,
    start: FileStart,
    data: BytesMut,
}

impl<S> Upload<S>
where
    S: Stream<Item = Result<UploadChunk, Status>> + Unpin,
{
    /// Reads the first message, which must open a file, and checks the
    /// dataset it names.
    pub(crate) async fn begin(mut chunks: S, max_bytes: u64, sidecars: bool) -> Result<Self> {
        let start = match next_kind(&mut chunks).await? {
            None => return Err(invalid("the upload is empty: no FileStart was sent")),
            Some(Kind::Data(_)) => return Err(invalid("data arrived before any FileStart")),
            Some(Kind::Start(start)) => start,
        };
        crate::ingester::check_dataset_name(&start.dataset)?;
        let mut upload = Self {
            chunks,
            dataset: start.dataset.clone(),
            max_bytes,
            sidecars,
            current: None,
            names: HashSet::new(),
            next_index: 0,
            waiting: HashMap::new(),
            captions: HashMap::new(),
            paired: HashSet::new(),
            ready: VecDeque::new(),
            ended: false,
        };
        upload.open(start)?;
        Ok(upload)
    }

    /// The dataset every file of this upload goes to.
    pub(crate) fn dataset(&self) -> &str {
        &self.dataset
    }

    /// The work of this upload, as files complete; ends after the first error.
    pub(crate) fn into_work(self) -> impl Stream<Item = Result<Work>> + Send
    where
        S: Send + 'static,
    {
        futures::stream::unfold(self, |mut upload| async move {
            match upload.next_work().await {
                Ok(Some(work)) => Some((Ok(work), upload)),
                Ok(None) => None,
                Err(error) => {
                    upload.ended = true;
                    upload.ready.clear();
                    Some((Err(error), upload))
                }
            }
        })
    }

    async fn next_work(&mut self) -> Result<Option<Work>> {
        loop {
            if let Some(work) = self.ready.pop_front() {
                return Ok(Some(work));
            }
            if self.ended {
                return Ok(None);
            }
            match next_kind(&mut self.chunks).await? {
                None => {
                    self.close()?;
                    self.finish();
                    self.ended = true;
                }
                Some(Kind::Start(start)) => {
                    self.close()?;
                    self.open(start)?;
                }
                Some(Kind::Data(data)) => self.append(&data)?,
            }
        }
    }

    /// Opens a file after checking its start.
    fn open(&mut self, start: FileStart) -> Result<()> {
        if start.dataset != self.dataset {
            return Err(invalid(format!(
                "file {:?} names dataset {:?}, but this upload goes to {:?}: one upload, one dataset",
                start.file_name, start.dataset, self.dataset
            )));
        }
        check_file_name(&start.file_name)?;
        if !self.names.insert(start.file_name.clone()) {
            return Err(invalid(format!(
                "file name {:?} appears twice in this upload",
                start.file_name
            )));
        }
        if let Some(size) = start.size
            && size > self.max_bytes
        {
            return Err(Error::UploadTooLarge {
                file: start.file_name,
                size,
                max: self.max_bytes,
            });
        }
        if let Some(label) = &start.label {
            check_label(&start.file_name, label)?;
        }
        if let Some(caption) = &start.caption
            && caption.len() as u64 > DEFAULT_MAX_CAPTION_BYTES
        {
            return Err(invalid(format!(
                "file {:?}: the attached caption is {} bytes, over the limit of {DEFAULT_MAX_CAPTION_BYTES}",
                start.file_name,
                caption.len()
            )));
        }
        let capacity = start.size.unwrap_or(0).min(self.max_bytes) as usize;
        self.current = Some(OpenFile {
            index: self.next_index,
            start,
            data: BytesMut::with_capacity(capacity),
        });
        self.next_index += 1;
        Ok(())
    }

    /// Adds a chunk to the open file, refusing it the moment the file passes
    /// the limit or its announced size.
    fn append(&mut self, data: &[u8]) -> Result<()> {
        let Some(file) = self.current.as_mut() else {
            return Err(invalid("data arrived before any FileStart"));
        };
        let size = (file.data.len() + data.len()) as u64;
        if size > self.max_bytes {
            return Err(Error::UploadTooLarge {
                file: file.start.file_name.clone(),
                size,
                max: self.max_bytes,
            });
        }
        if let Some(announced) = file.start.size
            && size > announced
        {
            return Err(invalid(format!(
                "file {:?}: more bytes than the {announced} announced",
                file.start.file_name
            )));
        }
        file.data.extend_from_slice(data);
        Ok(())
    }

    /// Completes the open file, if any, and routes it.
    fn close(&mut self) -> Result<()> {
        let Some(file) = self.current.take() else {
            return Ok(());
        };
        let received = file.data.len() as u64;
        if let Some(announced) = file.start.size
            && announced != received
        {
            return Err(invalid(format!(
                "file {:?}: {announced} bytes announced, {received} received",
                file.start.file_name
            )));
        }
        let name = file.start.file_name.clone();
        let bytes = file.data.freeze();
        if is_caption_name(&name) && file.start.caption.is_none() {
            self.caption_file(file.index, name, bytes);
        } else {
            self.image_file(file.index, file.start, bytes);
        }
        Ok(())
    }

    fn caption_file(&mut self, index: usize, name: String, bytes: Bytes) {
        if !self.sidecars {
            tracing::debug!(file = %name, "caption file ignored: captions do not come from sidecars");
            return;
        }
        let stem = stem(&name);
        if let Some(images) = self.waiting.remove(&stem) {
            for mut item in images {
                item.caption = CaptionInput::Sidecar {
                    name: name.clone(),
                    blob: Blob::Memory(bytes.clone()),
                };
                self.ready.push_back(Work::Image(Box::new(item)));
            }
            self.paired.insert(stem);
            return;
        }
        // `.txt` wins over `.caption`, as beside a local image.
        let keep_existing = self
            .captions
            .get(&stem)
            .is_some_and(|(existing, _, _)| existing.to_ascii_lowercase().ends_with(".txt"));
        if !keep_existing {
            self.captions.insert(stem, (name, bytes, index));
        }
    }

    fn image_file(&mut self, index: usize, start: FileStart, bytes: Bytes) {
        let stem = stem(&start.file_name);
        let mut item = Item {
            index,
            name: start.file_name.clone(),
            location: start.file_name.clone(),
            image: Blob::Memory(bytes),
            caption: CaptionInput::Missing(format!(
                "no caption: none attached and neither {stem}.txt nor {stem}.caption is in this upload"
            )),
            label: start.label.filter(|l| !l.trim().is_empty()),
        };
        if let Some(caption) = start.caption {
            item.caption = CaptionInput::Attached(caption);
        } else if self.sidecars {
            if let Some((name, bytes, _)) = self.captions.get(&stem) {
                item.caption = CaptionInput::Sidecar {
                    name: name.clone(),
                    blob: Blob::Memory(bytes.clone()),
                };
                self.paired.insert(stem);
            } else {
                self.waiting.entry(stem).or_default().push(item);
                return;
            }
        }
        self.ready.push_back(Work::Image(Box::new(item)));
    }

    /// At the end of the stream: images still waiting have no caption file,
    /// and caption files that found no image are refused.
    fn finish(&mut self) {
        let mut left: BTreeMap<usize, Work> = BTreeMap::new();
        for item in self.waiting.drain().flat_map(|(_, items)| items) {
            left.insert(item.index, Work::Image(Box::new(item)));
        }
        for (stem, (name, _, index)) in self.captions.drain() {
            if !self.paired.contains(&stem) {
                let reason = format!(
                    "caption file matches no image in this upload (no image named {stem}.*)"
                );
                left.insert(
                    index,
                    Work::Refused {
                        index,
                        name,
                        reason,
                    },
                );
            }
        }
        self.ready.extend(left.into_values());
    }
}

async fn next_kind<S>(chunks: &mut S) -> Result<Option<Kind>>
where
    S: Stream<Item = Result<UploadChunk, Status>> + Unpin,
{
    match chunks.next().await {
        None => Ok(None),
        Some(Err(status)) => Err(invalid(format!(
            "the upload stream broke: {}",
            status.message()
        ))),
        Some(Ok(UploadChunk { kind: None })) => {
            Err(invalid("a message carries neither a FileStart nor data"))
        }
        Some(Ok(UploadChunk { kind: Some(kind) })) => Ok(Some(kind)),
    }
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidRequest(reason.into())
}

/// A client's file name: no path separators, NUL, control characters, `.`
/// or `..` (it names the file in records and pairs captions, never a key).
pub(crate) fn check_file_name(name: &str) -> Result<()> {
    ssdit_store::validate_file_name(name).map_err(|error| match error {
        ssdit_store::Error::InvalidComponent { reason, .. } => {
            invalid(format!("file name {name:?}: {reason}"))
        }
        other => invalid(format!("file name {name:?}: {other}")),
    })
}

fn check_label(file: &str, label: &str) -> Result<()> {
    if label.len() > MAX_LABEL_BYTES {
        return Err(invalid(format!(
            "file {file:?}: label is {} bytes, over the limit of {MAX_LABEL_BYTES}",
            label.len()
        )));
    }
    if label.chars().any(char::is_control) {
        return Err(invalid(format!(
            "file {file:?}: label contains a control character"
        )));
    }
    Ok(())
}

/// A file name without its last extension (`rose.v1.png` → `rose.v1`).
fn stem(name: &str) -> String {
    Path::new(name)
        .file_stem()
        .map_or_else(|| name.to_owned(), |s| s.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(name: &str, caption: Option<&str>, size: Option<u64>) -> UploadChunk {
        UploadChunk {
            kind: Some(Kind::Start(FileStart {
                dataset: "flowers".into(),
                file_name: name.into(),
                caption: caption.map(str::to_owned),
                label: None,
                size,
            })),
        }
    }

    fn data(bytes: &[u8]) -> UploadChunk {
        UploadChunk {
            kind: Some(Kind::Data(Bytes::copy_from_slice(bytes))),
        }
    }

    async fn collect(messages: Vec<UploadChunk>, max: u64) -> Result<Vec<Work>> {
        let chunks = futures::stream::iter(messages.into_iter().map(Ok));
        let upload = Upload::begin(chunks, max, true).await?;
        let work: Vec<Result<Work>> = upload.into_work().collect().await;
        work.into_iter().collect()
    }

    fn names(work: &[Work]) -> Vec<(String, &'static str)> {
        work.iter()
            .map(|w| match w {
                Work::Image(item) => (
                    item.name.clone(),
                    match item.caption {
                        CaptionInput::Attached(_) => "attached",
                        CaptionInput::Sidecar { .. } => "sidecar",
                        CaptionInput::Missing(_) => "missing",
                    },
                ),
                Work::Refused { name, .. } => (name.clone(), "refused"),
            })
            .collect()
    }

    #[tokio::test]
    async fn caption_files_pair_with_images_in_either_order() {
        let work = collect(
            vec![
                start("a.txt", None, None),
                data(b"A rose."),
                start("a.png", None, Some(3)),
                data(b"abc"),
                start("b.png", None, None),
                data(b"xyz"),
                start("b.caption", None, None),
                data(b"A tulip."),
                start("c.png", Some("A lily."), None),
                data(b"123"),
                start("d.png", None, None),
                data(b"456"),
                start("e.txt", None, None),
                data(b"orphan"),
            ],
            100,
        )
        .await
        .unwrap();
        let mut got = names(&work);
        got.sort();
        assert_eq!(
            got,
            [
                ("a.png".to_owned(), "sidecar"),
                ("b.png".to_owned(), "sidecar"),
                ("c.png".to_owned(), "attached"),
                ("d.png".to_owned(), "missing"),
                ("e.txt".to_owned(), "refused"),
            ]
        );
    }

    #[tokio::test]
    async fn limits_and_protocol_errors() {
        let too_big = collect(
            vec![start("a.png", None, None), data(&[0; 60]), data(&[0; 60])],
            100,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                too_big,
                Error::UploadTooLarge {
                    size: 120,
                    max: 100,
                    ..
                }
            ),
            "{too_big}"
        );
        let announced = collect(vec![start("a.png", None, Some(101))], 100)
            .await
            .unwrap_err();
        assert!(
            matches!(announced, Error::UploadTooLarge { .. }),
            "{announced}"
        );
        let cases: [(Vec<UploadChunk>, &str); 6] = [
            (vec![], "empty"),
            (vec![data(b"x")], "before any FileStart"),
            (
                vec![start("a.png", None, Some(5)), data(b"abc")],
                "5 bytes announced, 3 received",
            ),
            (vec![start("a/b.png", None, None)], "path separator"),
            (vec![start("..", None, None)], "'.' and '..'"),
            (
                vec![start("a.png", None, None), start("a.png", None, None)],
                "appears twice",
            ),
        ];
        for (messages, needle) in cases {
            let err = collect(messages, 100).await.unwrap_err();
            assert!(matches!(err, Error::InvalidRequest(_)), "{err}");
            assert!(err.to_string().contains(needle), "{err} lacks {needle:?}");
        }
        let mut other = start("b.png", None, None);
        if let Some(Kind::Start(s)) = other.kind.as_mut() {
            s.dataset = "other".into();
        }
        let err = collect(vec![start("a.png", None, None), other], 100)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("one upload, one dataset"), "{err}");
    }
}
