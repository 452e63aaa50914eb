//! Category labels for VLM captioning: a hint the model verifies against the
//! image. They come from the image's folder name or from a labels file.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// The label an image's folder name gives: `daisy/001.jpg` → "daisy",
/// `pink_primrose/x.png` → "pink primrose". Folder names without a letter
/// (`001/`) are not labels.
pub fn label_from_folder(image: &Path) -> Option<String> {
    let folder = image.parent()?.file_name()?.to_str()?;
    let label = folder
        .split(['_', '-', ' '])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    label.chars().any(char::is_alphabetic).then_some(label)
}

/// Labels read from a labels file.
///
/// One entry per line: the image's file name (or its stem), then a tab or a
/// comma (the first one splits), then the label. Blank lines and lines starting with `#` are skipped.
/// ```text
/// # file, label
/// 0001.jpg,sunflower
/// 0002.png,common daisy
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    by_name: HashMap<String, String>,
}

impl Labels {
    /// Reads and parses a labels file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses labels-file text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut by_name = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |reason: &str| Error::Labels {
                path: path.to_path_buf(),
                line: index + 1,
                reason: reason.to_owned(),
            };
            let (name, label) = line
                .split_once('\t')
                .or_else(|| line.split_once(','))
                .ok_or_else(|| error("expected <file name><tab or comma><label>"))?;
            let (name, label) = (name.trim(), label.trim());
            if name.is_empty() || label.is_empty() {
                return Err(error("the file name and the label must not be empty"));
            }
            if by_name.insert(name.to_owned(), label.to_owned()).is_some() {
                return Err(error(&format!("{name} is listed twice")));
            }
        }
        Ok(Self { by_name })
    }

    /// The label of `image`, looked up by its file name, then by its stem.
    pub fn get(&self, image: &Path) -> Option<&str> {
        let by = |key: Option<&std::ffi::OsStr>| {
            key.and_then(|k| k.to_str())
                .and_then(|k| self.by_name.get(k))
                .map(String::as_str)
        };
        by(image.file_name()).or_else(|| by(image.file_stem()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_become_labels() {
        assert_eq!(
            label_from_folder(Path::new("d/pink_primrose/1.png")).as_deref(),
            Some("pink primrose")
        );
        assert_eq!(label_from_folder(Path::new("d/001/1.png")), None);
        assert_eq!(label_from_folder(Path::new("1.png")), None);
    }

    #[test]
    fn labels_file_by_name_then_stem() {
        let labels = Labels::parse(
            "# header\n0001.jpg,sunflower\n0002\tcommon daisy, white\n\n",
            Path::new("labels.txt"),
        )
        .unwrap();
        assert_eq!(labels.len(), 2);
        assert_eq!(labels.get(Path::new("x/0001.jpg")), Some("sunflower"));
        assert_eq!(
            labels.get(Path::new("x/0002.png")),
            Some("common daisy, white")
        );
        assert_eq!(labels.get(Path::new("x/0003.png")), None);
    }

    #[test]
    fn bad_lines_name_the_line() {
        let err = Labels::parse("a,b\nno separator\n", Path::new("l.txt")).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(Labels::parse("a,b\na,c\n", Path::new("l.txt")).is_err());
    }
}
