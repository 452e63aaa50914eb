//! A folder's caption files, loaded strictly and written back atomically:
//! what the caption tools (edit, stats) run on.

use std::path::{Path, PathBuf};

use ssdit_data::Reject;
use ssdit_data::sidecar::{SIDECAR_EXTENSIONS, read_caption};

use crate::edit::Edit;
use crate::error::{Error, Result};

/// One caption file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptionFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its text (strict UTF-8, trimmed).
    pub text: String,
}

/// The caption files of one folder, sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptionSet {
    /// The files, sorted by path.
    pub files: Vec<CaptionFile>,
}

impl CaptionSet {
    /// Reads every `.txt` / `.caption` file in `dir` (not recursive). Files
    /// that are not valid UTF-8 or over `max_bytes` are returned as rejects.
    pub fn load_dir(dir: &Path, max_bytes: u64) -> Result<(Self, Vec<Reject>)> {
        let io = |source| Error::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let is_caption = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| SIDECAR_EXTENSIONS.contains(&e));
            if is_caption && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        let mut rejects = Vec::new();
        for path in paths {
            match read_caption(&path, max_bytes) {
                Ok(text) => files.push(CaptionFile { path, text }),
                Err(reject) => rejects.push(reject),
            }
        }
        Ok((Self { files }, rejects))
    }

    /// (key, text) pairs for [`crate::edit::plan_edits`] and
    /// [`crate::stats::caption_stats`]; the key is the file name.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files.iter().map(|f| {
            let key = f.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            (key, f.text.as_str())
        })
    }

    /// Writes the edits back to their files (each atomically) and updates
    /// the set. Edit keys are file names as given by [`CaptionSet::entries`].
    pub fn apply(&mut self, edits: &[Edit]) -> Result<usize> {
        let mut written = 0;
        for edit in edits {
            let Some(file) = self
                .files
                .iter_mut()
                .find(|f| f.path.file_name().and_then(|n| n.to_str()) == Some(edit.key.as_str()))
            else {
                return Err(Error::Config {
                    what: "caption edit",
                    reason: format!("no caption file named {}", edit.key),
                });
            };
            write_atomic(&file.path, &edit.after)?;
            file.text.clone_from(&edit.after);
            written += 1;
        }
        Ok(written)
    }
}

/// Writes `text` to `path` through a temporary file in the same folder and a
/// rename, so a reader never sees a half-written caption.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("caption");
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::{EditRule, plan_edits};

    #[test]
    fn load_edit_apply_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1.txt"), "A rose, the center is red.\n").unwrap();
        std::fs::write(dir.path().join("2.caption"), "A lily.").unwrap();
        std::fs::write(dir.path().join("3.txt"), b"bad \xff byte").unwrap();
        std::fs::write(dir.path().join("4.png"), b"not a caption").unwrap();
        let (mut set, rejects) = CaptionSet::load_dir(dir.path(), 1 << 20).unwrap();
        assert_eq!(set.files.len(), 2);
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0].kind(), ssdit_data::RejectKind::InvalidUtf8);

        let rule = EditRule::literal("center", "centre").unwrap();
        let edits = plan_edits(set.entries(), &rule);
        assert_eq!(edits.len(), 1);
        // The dry run wrote nothing.
        assert_eq!(
            std::fs::read_to_string(dir.path().join("1.txt")).unwrap(),
            "A rose, the center is red.\n"
        );
        assert_eq!(set.apply(&edits).unwrap(), 1);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("1.txt")).unwrap(),
            "A rose, the centre is red."
        );
        assert_eq!(set.files[0].text, "A rose, the centre is red.");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 4, "no temporary files left");
    }
}
