//! Source URIs of `IngestUri`: a local folder (a path or `file://…`) or an
//! object-store prefix (`s3://bucket/prefix`, `gs://…`, `az://…`, `memory://…`).

use std::path::PathBuf;

use ssdit_store::Key;
use url::Url;

use crate::error::{Error, Result};

/// Where a source URI points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local folder.
    Folder(PathBuf),
    /// A prefix of an object store: the store's root (`s3://bucket`) and the
    /// key prefix below it.
    Prefix { root: String, prefix: Key },
}

/// Object-store schemes a prefix may use.
const STORE_SCHEMES: [&str; 5] = ["s3", "s3a", "gs", "az", "memory"];

/// Parses a source URI, refusing what could not be ingested or could escape
/// its prefix (`..`, `.`, NUL, queries).
pub fn resolve(uri: &str) -> Result<Location> {
    let invalid = |reason: &str| Error::InvalidSource {
        uri: uri.chars().take(200).collect(),
        reason: reason.to_owned(),
    };
    if uri.trim().is_empty() {
        return Err(invalid("empty"));
    }
    if uri.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    if !uri.contains("://") {
        return Ok(Location::Folder(PathBuf::from(uri)));
    }
    // URL parsing would silently resolve `..` and `.`: refuse them instead.
    if uri.split('/').skip(3).any(|s| s == ".." || s == ".") {
        return Err(invalid("'.' and '..' segments are not allowed"));
    }
    let url = Url::parse(uri).map_err(|e| invalid(&e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("query strings and fragments are not supported"));
    }
    let scheme = url.scheme();
    if scheme == "file" {
        let local_host = matches!(url.host_str(), None | Some("") | Some("localhost"));
        return url
            .to_file_path()
            .ok()
            .filter(|_| local_host)
            .map(Location::Folder)
            .ok_or_else(|| invalid("file:// URLs must hold an absolute local path"));
    }
    if !STORE_SCHEMES.contains(&scheme) {
        return Err(invalid(
            "unsupported scheme (use a local path, file://, s3://, gs://, az:// or memory://)",
        ));
    }
    let bucket = url.host_str().unwrap_or_default();
    if bucket.is_empty() {
        return Err(invalid("missing bucket or container name"));
    }
    let path = url.path().trim_matches('/');
    if path.is_empty() {
        return Err(invalid(
            "name a prefix below the bucket (s3://bucket/prefix); whole buckets are not listed",
        ));
    }
    let prefix = Key::parse(path).map_err(|e| invalid(&format!("prefix: {e}")))?;
    Ok(Location::Prefix {
        root: format!("{scheme}://{bucket}"),
        prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_prefixes() {
        assert_eq!(
            resolve("/data/photos").unwrap(),
            Location::Folder("/data/photos".into())
        );
        assert_eq!(
            resolve("file:///data/photos").unwrap(),
            Location::Folder("/data/photos".into())
        );
        assert_eq!(
            resolve("s3://bucket/raw/flowers/").unwrap(),
            Location::Prefix {
                root: "s3://bucket".into(),
                prefix: Key::parse("raw/flowers").unwrap()
            }
        );
        assert_eq!(
            resolve("memory://uploads/photos").unwrap(),
            Location::Prefix {
                root: "memory://uploads".into(),
                prefix: Key::parse("photos").unwrap()
            }
        );
    }

    #[test]
    fn unusable_uris_are_refused_with_a_reason() {
        for (uri, needle) in [
            ("", "empty"),
            ("s3://bucket", "prefix below the bucket"),
            ("s3://bucket/a/../b", "'..'"),
            ("gs://b/./c", "'..'"),
            ("ftp://host/x", "unsupported scheme"),
            ("file://host/x", "absolute local path"),
            ("s3://b/p?x=1", "query"),
            ("s3://b/.hidden/x", "prefix"),
            ("a\0b", "NUL"),
        ] {
            let err = resolve(uri).unwrap_err();
            assert!(err.to_string().contains(needle), "{uri:?}: {err}");
        }
    }
}
