//! Captions stored next to their image: `<stem>.txt`, else `<stem>.caption`
//! (the seed's lookup order), strict UTF-8, trimmed.

use std::path::{Path, PathBuf};

use crate::reject::{Reject, RejectReason};
use crate::validate::read_limited;

/// Sidecar extensions, in lookup order.
pub const SIDECAR_EXTENSIONS: [&str; 2] = ["txt", "caption"];

/// Default limit on a caption file's size: far above any real caption (the
/// text encoder keeps 128 tokens), low enough to refuse a mistaken blob.
pub const DEFAULT_MAX_CAPTION_BYTES: u64 = 1 << 20;

/// The sidecar caption file of `image`, if one exists: same folder, same
/// stem, `.txt` first, then `.caption`.
pub fn find_sidecar(image: &Path) -> Option<PathBuf> {
    SIDECAR_EXTENSIONS
        .iter()
        .map(|ext| image.with_extension(ext))
        .find(|candidate| candidate.is_file())
}

/// Reads a caption file: strict UTF-8 (an invalid byte is a reject naming
/// its offset), a leading byte-order mark dropped, surrounding whitespace
/// trimmed as the seed's `f.read().strip()`.
///
/// An empty caption is returned as an empty string: the seed trains on it
/// (as an unconditional sample); the caller decides.
pub fn read_caption(path: &Path, max_bytes: u64) -> Result<String, Reject> {
    let bytes = match read_limited(path, max_bytes) {
        Ok(bytes) => bytes,
        Err(RejectReason::Empty) => return Ok(String::new()),
        Err(reason) => return Err(Reject::new(path, reason)),
    };
    caption_from_bytes(&bytes).map_err(|reason| Reject::new(path, reason))
}

/// Decodes caption bytes: strict UTF-8, leading BOM dropped, trimmed.
pub fn caption_from_bytes(bytes: &[u8]) -> Result<String, RejectReason> {
    let text = std::str::from_utf8(bytes).map_err(|e| RejectReason::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    Ok(text.trim_start_matches('\u{feff}').trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_is_preferred_over_caption() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("rose.v1.png");
        assert_eq!(find_sidecar(&image), None);
        std::fs::write(dir.path().join("rose.v1.caption"), "b").unwrap();
        assert_eq!(
            find_sidecar(&image),
            Some(dir.path().join("rose.v1.caption"))
        );
        std::fs::write(dir.path().join("rose.v1.txt"), "a").unwrap();
        assert_eq!(find_sidecar(&image), Some(dir.path().join("rose.v1.txt")));
    }

    #[test]
    fn strict_utf8_bom_and_trim() {
        assert_eq!(
            caption_from_bytes(b"\xef\xbb\xbf  A rose.\n").unwrap(),
            "A rose."
        );
        assert_eq!(
            caption_from_bytes(b"A ros\xe9").unwrap_err(),
            RejectReason::InvalidUtf8 { offset: 5 }
        );
    }

    #[test]
    fn empty_file_is_an_empty_caption_and_huge_is_a_reject() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("a.txt");
        std::fs::write(&empty, "").unwrap();
        assert_eq!(read_caption(&empty, 10).unwrap(), "");
        let big = dir.path().join("b.txt");
        std::fs::write(&big, "x".repeat(11)).unwrap();
        let reject = read_caption(&big, 10).unwrap_err();
        assert_eq!(reject.kind(), crate::RejectKind::TooManyBytes);
        assert_eq!(reject.file, big);
    }
}
