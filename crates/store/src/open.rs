//! Opening a store from a URL.
//!
//! | URL                                   | backend                                   |
//! |---------------------------------------|-------------------------------------------|
//! | `/data/ssdit`, `./store`, `file:///…` | local directory (created if missing)      |
//! | `memory://`                           | in memory, for tests                      |
//! | `s3://bucket/prefix`                  | S3 or any S3-compatible endpoint          |
//! | `gs://bucket/prefix`                  | Google Cloud Storage                      |
//! | `az://container/prefix`               | Azure Blob Storage                        |
//!
//! Cloud credentials and settings come from the backend's usual environment variables when
//! [`StoreOptions::from_env`] is set (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`…; `GOOGLE_*`;
//! `AZURE_*`), then from [`StoreOptions::options`] (object_store config keys such as
//! `aws_endpoint`, `aws_region`). Plain `http://` endpoints are allowed automatically
//! when they point at a loopback address (a local MinIO), and otherwise only with
//! `aws_allow_http = true`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::{ObjectStore, RetryConfig};
use url::Url;

use crate::error::{Error, Result};
use crate::key::Key;
use crate::retry::RetryPolicy;

/// Which kind of backend a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A local directory.
    Local,
    /// Process memory (tests).
    Memory,
    /// S3 or an S3-compatible service.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
}

/// How to open a store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreOptions {
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Read cloud credentials and settings from the backend's environment variables.
    pub from_env: bool,
    /// Backend settings by object_store config key, applied after the environment.
    pub options: Vec<(String, String)>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            from_env: true,
            options: Vec::new(),
        }
    }
}

/// An opened backend and the prefix every key is placed under.
pub(crate) struct Opened {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Option<Key>,
    pub backend: Backend,
}

enum Location {
    Local(PathBuf),
    Memory(String),
    Cloud {
        backend: Backend,
        bucket: String,
        prefix: String,
    },
}

pub(crate) async fn open(url: &str, options: &StoreOptions) -> Result<Opened> {
    match locate(url)? {
        Location::Local(path) => Ok(Opened {
            store: open_local(url, &path).await?,
            prefix: None,
            backend: Backend::Local,
        }),
        Location::Memory(prefix) => Ok(Opened {
            store: Arc::new(InMemory::new()),
            prefix: parse_prefix(url, &prefix)?,
            backend: Backend::Memory,
        }),
        Location::Cloud {
            backend,
            bucket,
            prefix,
        } => Ok(Opened {
            store: open_cloud(url, backend, &bucket, options)?,
            prefix: parse_prefix(url, &prefix)?,
            backend,
        }),
    }
}

fn invalid_url(url: &str, reason: impl Into<String>) -> Error {
    Error::InvalidUrl {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

fn locate(url: &str) -> Result<Location> {
    if url.trim().is_empty() {
        return Err(invalid_url(url, "empty"));
    }
    if url.contains('\0') {
        return Err(invalid_url(url, "contains a NUL byte"));
    }
    if let Some(rest) = url.strip_prefix("memory://") {
        return Ok(Location::Memory(rest.trim_matches('/').to_owned()));
    }
    if !url.contains("://") {
        return Ok(Location::Local(PathBuf::from(url)));
    }
    // URL parsing would silently resolve `..` and `.`: refuse them instead.
    if url.split('/').skip(3).any(|s| s == ".." || s == ".") {
        return Err(invalid_url(url, "'.' and '..' segments are not allowed"));
    }
    let parsed = Url::parse(url).map_err(|e| invalid_url(url, e.to_string()))?;
    let backend = match parsed.scheme() {
        "file" => {
            let host_ok = matches!(parsed.host_str(), None | Some("") | Some("localhost"));
            let path = parsed.to_file_path().ok().filter(|_| host_ok);
            return path
                .map(Location::Local)
                .ok_or_else(|| invalid_url(url, "file:// URLs must hold an absolute local path"));
        }
        "s3" | "s3a" => Backend::S3,
        "gs" => Backend::Gcs,
        "az" => Backend::Azure,
        other => return Err(invalid_url(url, format!("unsupported scheme {other:?}"))),
    };
    let bucket = parsed.host_str().unwrap_or_default().to_owned();
    if bucket.is_empty() {
        return Err(invalid_url(url, "missing bucket or container name"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid_url(
            url,
            "query strings and fragments are not supported",
        ));
    }
    Ok(Location::Cloud {
        backend,
        bucket,
        prefix: parsed.path().trim_matches('/').to_owned(),
    })
}

/// The URL's path below the bucket, validated like a key (empty: none).
fn parse_prefix(url: &str, prefix: &str) -> Result<Option<Key>> {
    if prefix.is_empty() {
        return Ok(None);
    }
    Key::parse(prefix)
        .map(Some)
        .map_err(|e| invalid_url(url, format!("prefix: {e}")))
}

async fn open_local(url: &str, path: &Path) -> Result<Arc<dyn ObjectStore>> {
    tokio::fs::create_dir_all(path)
        .await
        .map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
    let path = path.to_owned();
    let store = tokio::task::spawn_blocking(move || LocalFileSystem::new_with_prefix(path))
        .await
        .map_err(|e| invalid_url(url, format!("opening the directory: {e}")))?
        .map_err(|source| Error::Open {
            url: url.to_owned(),
            source,
        })?;
    Ok(Arc::new(store.with_automatic_cleanup(true)))
}

/// object_store's own retries are off: [`RetryPolicy`] counts and logs every attempt.
fn no_retries() -> RetryConfig {
    RetryConfig {
        max_retries: 0,
        ..RetryConfig::default()
    }
}

fn open_cloud(
    url: &str,
    backend: Backend,
    bucket: &str,
    options: &StoreOptions,
) -> Result<Arc<dyn ObjectStore>> {
    let opened = |result: object_store::Result<Arc<dyn ObjectStore>>| {
        result.map_err(|source| Error::Open {
            url: url.to_owned(),
            source,
        })
    };
    let config_key = |key: &str| invalid_url(url, format!("unknown configuration key {key:?}"));
    match backend {
        Backend::S3 => {
            let mut builder = if options.from_env {
                AmazonS3Builder::from_env()
            } else {
                AmazonS3Builder::new()
            };
            builder = builder.with_bucket_name(bucket).with_retry(no_retries());
            for (key, value) in &options.options {
                let key = AmazonS3ConfigKey::from_str(key).map_err(|_| config_key(key))?;
                builder = builder.with_config(key, value);
            }
            let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
            if endpoint.as_deref().is_some_and(is_loopback_http) {
                builder = builder.with_allow_http(true);
            }
            opened(builder.build().map(|s| Arc::new(s) as _))
        }
        Backend::Gcs => {
            let mut builder = if options.from_env {
                GoogleCloudStorageBuilder::from_env()
            } else {
                GoogleCloudStorageBuilder::new()
            };
            builder = builder.with_bucket_name(bucket).with_retry(no_retries());
            for (key, value) in &options.options {
                let key = GoogleConfigKey::from_str(key).map_err(|_| config_key(key))?;
                builder = builder.with_config(key, value);
            }
            opened(builder.build().map(|s| Arc::new(s) as _))
        }
        Backend::Azure => {
            let mut builder = if options.from_env {
                MicrosoftAzureBuilder::from_env()
            } else {
                MicrosoftAzureBuilder::new()
            };
            builder = builder.with_container_name(bucket).with_retry(no_retries());
            for (key, value) in &options.options {
                let key = AzureConfigKey::from_str(key).map_err(|_| config_key(key))?;
                builder = builder.with_config(key, value);
            }
            opened(builder.build().map(|s| Arc::new(s) as _))
        }
        Backend::Local | Backend::Memory => Err(invalid_url(url, "not a cloud backend")),
    }
}

/// `http://` on 127.0.0.0/8, `[::1]` or `localhost`.
fn is_loopback_http(endpoint: &str) -> bool {
    let Ok(url) = Url::parse(endpoint) else {
        return false;
    };
    if url.scheme() != "http" {
        return false;
    }
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_to_backends_and_prefixes() {
        assert!(
            matches!(locate("/tmp/x").unwrap(), Location::Local(p) if p == Path::new("/tmp/x"))
        );
        assert!(
            matches!(locate("rel/dir").unwrap(), Location::Local(p) if p == Path::new("rel/dir"))
        );
        assert!(
            matches!(locate("file:///tmp/y").unwrap(), Location::Local(p) if p == Path::new("/tmp/y"))
        );
        assert!(matches!(locate("memory://").unwrap(), Location::Memory(p) if p.is_empty()));
        match locate("s3://bucket/a/b/").unwrap() {
            Location::Cloud {
                backend,
                bucket,
                prefix,
            } => {
                assert_eq!(
                    (backend, bucket.as_str(), prefix.as_str()),
                    (Backend::S3, "bucket", "a/b")
                );
            }
            _ => panic!("not cloud"),
        }
        assert!(matches!(
            locate("gs://b").unwrap(),
            Location::Cloud {
                backend: Backend::Gcs,
                ..
            }
        ));
        assert!(matches!(
            locate("az://c/p").unwrap(),
            Location::Cloud {
                backend: Backend::Azure,
                ..
            }
        ));
    }

    #[test]
    fn bad_urls_are_rejected() {
        for url in [
            "s3://b/a/../../c",
            "gs://b/./c",
            "",
            "  ",
            "ftp://x/y",
            "s3://",
            "s3:///path",
            "file://host/x",
            "s3://b/p?x=1",
            "a\0b",
        ] {
            assert!(locate(url).is_err(), "{url:?}");
        }
        assert!(parse_prefix("s3://b/../x", "../x").is_err());
        assert!(parse_prefix("s3://b/a//b", "a//b").is_err());
    }

    #[test]
    fn only_loopback_http_is_allowed_implicitly() {
        assert!(is_loopback_http("http://127.0.0.1:9000"));
        assert!(is_loopback_http("http://localhost:9000"));
        assert!(is_loopback_http("http://[::1]:9000"));
        assert!(!is_loopback_http("http://10.0.0.5:9000"));
        assert!(!is_loopback_http("https://127.0.0.1:9000"));
        assert!(!is_loopback_http("not a url"));
    }

    #[tokio::test]
    async fn unknown_option_keys_are_an_error() {
        let options = StoreOptions {
            from_env: false,
            options: vec![("aws_no_such_key".into(), "1".into())],
            ..StoreOptions::default()
        };
        let err = open("s3://bucket", &options).await.err().expect("an error");
        assert!(err.to_string().contains("aws_no_such_key"), "{err}");
    }
}
