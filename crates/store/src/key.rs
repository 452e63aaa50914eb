//! Validated object keys and key components.
//!
//! Every key the system writes is built by [`crate::layout`] from validated components, and
//! every key received from outside (an event, a request) goes through [`Key::parse`]. Both
//! enforce the same rules, so no input can name an object outside the store's root or
//! outside its own prefix: no `..` or `.` segments, no absolute paths, no empty segments,
//! no NUL or control characters, no backslashes, bounded lengths.

use std::fmt;

use crate::error::{Error, Result};

/// Longest key accepted (S3's limit).
pub const MAX_KEY_LEN: usize = 1024;
/// Longest segment of a key.
pub const MAX_SEGMENT_LEN: usize = 255;
/// Longest dataset name or run id.
pub const MAX_NAME_LEN: usize = 64;
/// Longest id or fingerprint.
pub const MAX_ID_LEN: usize = 128;

/// A key relative to the store's root, `/`-separated, every segment checked by
/// [`validate_segment`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// Parses and validates a key received from outside.
    pub fn parse(key: &str) -> Result<Self> {
        let invalid = |reason| invalid("key", key, reason);
        if key.is_empty() {
            return Err(invalid("empty"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(invalid("longer than 1024 bytes"));
        }
        if key.starts_with('/') {
            return Err(invalid("absolute paths are not allowed"));
        }
        for segment in key.split('/') {
            validate_segment("key segment", segment)?;
        }
        Ok(Self(key.to_owned()))
    }

    /// A key from segments that were each validated by the caller.
    pub(crate) fn from_segments(segments: &[&str]) -> Result<Self> {
        Self::parse(&segments.join("/"))
    }

    /// This key with one more validated segment.
    pub fn child(&self, segment: &str) -> Result<Self> {
        validate_segment("key segment", segment)?;
        Self::parse(&format!("{}/{segment}", self.0))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// Whether `self` lies under the prefix `prefix` (segment-wise).
    pub fn starts_with(&self, prefix: &Key) -> bool {
        self.0
            .strip_prefix(prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn invalid(what: &'static str, value: &str, reason: &'static str) -> Error {
    let mut shown: String = value.chars().take(80).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    Error::InvalidComponent {
        what,
        value: shown,
        reason,
    }
}

fn is_safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '=')
}

/// A key segment: `[A-Za-z0-9._=-]`, 1 to 255 bytes, not starting with `.` (so never `.`,
/// `..` or a hidden file). The character set is safe on every backend, needs no
/// percent-encoding, and never collides with the local store's staging files (`name#N`).
pub fn validate_segment(what: &'static str, segment: &str) -> Result<()> {
    if segment.is_empty() {
        return Err(invalid(what, segment, "empty segment"));
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err(invalid(what, segment, "longer than 255 bytes"));
    }
    if segment.starts_with('.') {
        return Err(invalid(
            what,
            segment,
            "must not start with '.' ('.', '..' and hidden names)",
        ));
    }
    if let Some(reason) = segment.chars().find_map(bad_char_reason) {
        return Err(invalid(what, segment, reason));
    }
    Ok(())
}

fn bad_char_reason(c: char) -> Option<&'static str> {
    match c {
        c if is_safe_char(c) => None,
        '\0' => Some("contains a NUL byte"),
        '/' | '\\' => Some("contains a path separator"),
        c if c.is_control() => Some("contains a control character"),
        _ => Some("only ASCII letters, digits and '.', '_', '=', '-' are allowed"),
    }
}

/// A dataset name or run id: a key segment of at most 64 bytes starting with a letter or
/// digit.
pub fn validate_name(what: &'static str, name: &str) -> Result<()> {
    validate_segment(what, name)?;
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(what, name, "longer than 64 bytes"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(invalid(what, name, "must start with a letter or digit"));
    }
    Ok(())
}

/// A sample id or model fingerprint: `[A-Za-z0-9_-]`, 1 to 128 bytes (hex hashes and the
/// like).
pub fn validate_id(what: &'static str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(invalid(what, id, "empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(invalid(what, id, "longer than 128 bytes"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(invalid(
            what,
            id,
            "only ASCII letters, digits, '_' and '-' are allowed",
        ));
    }
    Ok(())
}

/// A client's file name, as recorded in manifests and reject lists: any text but no path
/// separators, NUL or control characters, not `.` or `..`, 1 to 255 bytes. File names
/// never become keys (samples are stored under their content hash); this check keeps
/// them from smuggling paths into records and logs.
pub fn validate_file_name(name: &str) -> Result<()> {
    let what = "file name";
    if name.is_empty() {
        return Err(invalid(what, name, "empty"));
    }
    if name.len() > MAX_SEGMENT_LEN {
        return Err(invalid(what, name, "longer than 255 bytes"));
    }
    if name == "." || name == ".." {
        return Err(invalid(what, name, "'.' and '..' are not file names"));
    }
    let bad = name.chars().find_map(|c| match c {
        '\0' => Some("contains a NUL byte"),
        '/' | '\\' => Some("contains a path separator"),
        c if c.is_control() => Some("contains a control character"),
        _ => None,
    });
    match bad {
        Some(reason) => Err(invalid(what, name, reason)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_keys_parse() {
        for key in [
            "datasets/flowers/images/ab12.png",
            "cache/latents/vae-x/448x448/id.safetensors",
            "a",
            "step=10",
        ] {
            assert_eq!(Key::parse(key).unwrap().as_str(), key);
        }
    }

    #[test]
    fn unsafe_keys_are_rejected() {
        let long = "a/".repeat(600);
        for key in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "a/b\0c",
            "a/b\nc",
            "a/.hidden",
            "a/b#1",
            "a b",
            "C:/x",
            long.as_str(),
        ] {
            assert!(Key::parse(key).is_err(), "{key:?} was accepted");
        }
    }

    #[test]
    fn children_are_validated_and_prefixes_are_segment_wise() {
        let root = Key::parse("datasets/flowers").unwrap();
        assert!(root.child("..").is_err());
        assert!(root.child("a/b").is_err());
        let child = root.child("manifest.json").unwrap();
        assert!(child.starts_with(&root));
        assert_eq!(child.file_name(), "manifest.json");
        let sibling = Key::parse("datasets/flowers2/x").unwrap();
        assert!(!sibling.starts_with(&root));
    }

    #[test]
    fn names_ids_and_file_names_have_their_own_rules() {
        assert!(validate_name("dataset name", "flowers-2024.v1").is_ok());
        for bad in ["", "..", ".x", "-x", "a/b", "a b", &"x".repeat(65)] {
            assert!(validate_name("dataset name", bad).is_err(), "{bad:?}");
        }
        assert!(validate_id("sample id", "0123abcdef_-").is_ok());
        for bad in ["", "a.b", "a/b", &"f".repeat(129)] {
            assert!(validate_id("sample id", bad).is_err(), "{bad:?}");
        }
        assert!(validate_file_name("IMG 0001 (copy).JPG").is_ok());
        assert!(validate_file_name("fleur-été.png").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a/b.png",
            "..\\x",
            "a\0b",
            "a\rb",
            &"x".repeat(256),
        ] {
            assert!(validate_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn long_values_are_truncated_in_errors() {
        let err = validate_id("sample id", &"x".repeat(500)).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
    }
}
