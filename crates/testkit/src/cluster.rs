//! A distributed deployment for one test: a private NATS server, a private
//! S3-compatible server reached through a [`TcpProxy`] (so the store can be
//! made unreachable), one configuration file, and `ssdit serve …` processes
//! started on demand. Fault tests drive it and count what reached the store.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};
use ssdit_proto::v1::ingest_service_client::IngestServiceClient;
use ssdit_proto::v1::{CaptionSource, IngestReply, IngestUriRequest};
use ssdit_store::{Key, Store, StoreOptions};
use tempfile::TempDir;

use crate::{BusProbe, NatsServer, S3Server, ServiceProcess, TcpProxy};

/// The bucket every cluster uses.
pub const BUCKET: &str = "ssdit-faults";
/// The JetStream stream (the config default); subjects are `ssdit.<event>`.
pub const STREAM: &str = "SSDIT";
/// Where latents live in the store.
pub const LATENTS: &str = "cache/latents";
/// Where embeddings live in the store.
pub const EMBEDDINGS: &str = "cache/embeddings";

/// The knobs fault tests turn; the rest of the configuration is fixed.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `bus.ack_wait` (humantime): how soon an unanswered message is redelivered.
    pub ack_wait: &'static str,
    /// `bus.max_deliver`.
    pub max_deliver: u32,
    /// `store.retries`: attempts per store operation.
    pub store_retries: u32,
    /// `encode.batch_size`.
    pub batch_size: usize,
    /// `ingest.target_resolution`.
    pub resolution: u32,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            ack_wait: "5s",
            max_deliver: 10,
            store_retries: 3,
            batch_size: 4,
            resolution: 128,
        }
    }
}

/// NATS + S3 (behind a proxy) + a config file + service logs, all in one
/// temporary directory; everything is stopped on drop.
pub struct Cluster {
    /// The broker (restart it with [`NatsServer::restart`]).
    pub nats: NatsServer,
    /// The S3-compatible server.
    pub s3: S3Server,
    /// The services' only way to the S3 server: cut it to make the store unreachable.
    pub s3_link: TcpProxy,
    dir: TempDir,
    config: PathBuf,
    program: PathBuf,
}

impl Cluster {
    /// Starts the servers and writes the configuration; `program` is the
    /// `ssdit` binary (`env!("CARGO_BIN_EXE_ssdit")`).
    pub async fn start(program: &Path, options: &ClusterOptions) -> Self {
        let dir = tempfile::tempdir().expect("temporary cluster directory");
        let nats = NatsServer::start().await;
        let s3 = S3Server::start(BUCKET).await;
        let s3_link = TcpProxy::start(s3.port()).await;
        let config = dir.path().join("ssdit.toml");
        std::fs::write(&config, config_toml(&nats, &s3_link, options)).expect("writing the config");
        Self {
            nats,
            s3,
            s3_link,
            dir,
            config,
            program: program.to_path_buf(),
        }
    }

    /// The cluster's temporary directory (logs, inputs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `ssdit serve <service> --tiny` as process `name` (its log is `<name>.log`).
    pub async fn serve(&self, service: &str, name: &str) -> ServiceProcess {
        let config = self.config.to_str().expect("UTF-8 temporary path");
        ServiceProcess::start(
            name,
            &self.program,
            &["serve", service, "--tiny", "--config", config],
            &self.s3.env(),
            self.dir.path(),
            Duration::from_secs(120),
        )
        .await
    }

    /// The store as the test sees it: straight to the S3 server, never through the proxy.
    pub async fn store(&self) -> Store {
        Store::open_with(
            &format!("s3://{BUCKET}/faults"),
            &StoreOptions {
                from_env: false,
                options: vec![
                    ("aws_endpoint".into(), self.s3.endpoint()),
                    ("aws_region".into(), crate::s3::REGION.into()),
                    ("aws_access_key_id".into(), crate::s3::ACCESS_KEY.into()),
                    ("aws_secret_access_key".into(), crate::s3::SECRET_KEY.into()),
                ],
                ..StoreOptions::default()
            },
        )
        .await
        .expect("opening the test's view of the store")
    }

    /// A probe on the deployment's stream.
    pub async fn bus(&self) -> BusProbe {
        BusProbe::connect(&self.nats.url(), STREAM).await
    }

    /// `count` distinct generated photos with sidecar captions in a new folder.
    pub fn photos(&self, count: usize) -> PathBuf {
        let folder = self.dir.path().join("photos");
        std::fs::create_dir_all(&folder).expect("creating the photo folder");
        for index in 0..count {
            generated_photo(index)
                .save(folder.join(format!("photo-{index:03}.png")))
                .expect("writing a generated photo");
            std::fs::write(
                folder.join(format!("photo-{index:03}.txt")),
                format!("a generated test pattern, number {index}, in soft gradients"),
            )
            .expect("writing a caption");
        }
        folder
    }
}

/// Ingests `folder` into `dataset` through the ingest service at `url`
/// (sidecar captions).
pub async fn ingest_url(
    url: &str,
    dataset: &str,
    folder: &Path,
) -> Result<IngestReply, tonic::Status> {
    let mut client = IngestServiceClient::connect(url.to_string())
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    client
        .ingest_uri(IngestUriRequest {
            uri: folder.to_str().expect("UTF-8 temporary path").to_string(),
            dataset: dataset.into(),
            recursive: false,
            caption_source: CaptionSource::Sidecar as i32,
        })
        .await
        .map(tonic::Response::into_inner)
}

fn config_toml(nats: &NatsServer, s3: &TcpProxy, options: &ClusterOptions) -> String {
    format!(
        r#"
[store]
url = "s3://{BUCKET}/faults"
endpoint = "{endpoint}"
region = "{region}"
retries = {retries}

[bus]
kind = "nats"
url = "{nats}"
ack_wait = "{ack_wait}"
max_deliver = {max_deliver}

[ingest]
target_resolution = {resolution}

[encode]
batch_size = {batch}

[train]
metrics_port = 0
"#,
        endpoint = s3.http_url(),
        region = crate::s3::REGION,
        retries = options.store_retries,
        nats = nats.url(),
        ack_wait = options.ack_wait,
        max_deliver = options.max_deliver,
        resolution = options.resolution,
        batch = options.batch_size,
    )
}

/// A 160×128 pattern unique to `index` (so every photo is its own sample).
fn generated_photo(index: usize) -> RgbImage {
    let seed = index as u32;
    RgbImage::from_fn(160, 128, |x, y| {
        let r = (x * 255 / 159) as u8;
        let g = (y * 255 / 127) as u8;
        let b = ((x ^ y).wrapping_mul(seed * 2 + 1).wrapping_add(seed * 37) % 256) as u8;
        Rgb([r, g, b])
    })
}

/// What the store holds under a cache prefix: each key once (sample ids for
/// latents, caption hashes for embeddings), every file a complete, valid
/// tensor file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheContents {
    /// Sample ids (latents) or caption hashes (embeddings) that have a file.
    pub ids: BTreeSet<String>,
    /// Files found (one per id when nothing is duplicated).
    pub files: usize,
    /// Files that did not read back as complete tensor files, with the reason.
    pub invalid: Vec<String>,
}

impl CacheContents {
    /// Files beyond one per id.
    pub fn duplicates(&self) -> usize {
        self.files - self.ids.len()
    }
}

/// Lists `prefix` (`cache/latents` or `cache/embeddings`) and reads every file back.
pub async fn cache_contents(store: &Store, prefix: &str) -> CacheContents {
    let objects = store
        .list(&Key::parse(prefix).expect("a valid prefix"))
        .await
        .unwrap_or_else(|e| panic!("listing {prefix}: {e}"));
    let mut contents = CacheContents::default();
    for object in objects {
        let Some(id) = object
            .key
            .as_str()
            .rsplit('/')
            .next()
            .and_then(|name| name.strip_suffix(".safetensors"))
        else {
            continue;
        };
        contents.files += 1;
        contents.ids.insert(id.to_string());
        if let Err(error) = store.get_tensors(&object.key).await {
            contents.invalid.push(format!("{}: {error}", object.key));
        }
    }
    contents
}

/// Ids with a file under `prefix` (a listing only; nothing is read).
pub async fn cache_ids(store: &Store, prefix: &str) -> BTreeSet<String> {
    store
        .list(&Key::parse(prefix).expect("a valid prefix"))
        .await
        .unwrap_or_else(|e| panic!("listing {prefix}: {e}"))
        .iter()
        .filter_map(|object| {
            let name = object.key.as_str().rsplit('/').next()?;
            name.strip_suffix(".safetensors").map(str::to_string)
        })
        .collect()
}

/// Polls until the caches hold `latents` latents and `embeddings` embeddings
/// or `within` passes, then reads them back: the latents and the embeddings.
pub async fn wait_for_caches(
    store: &Store,
    latents: usize,
    embeddings: usize,
    within: Duration,
) -> (CacheContents, CacheContents) {
    let deadline = Instant::now() + within;
    loop {
        let complete = cache_ids(store, LATENTS).await.len() >= latents
            && cache_ids(store, EMBEDDINGS).await.len() >= embeddings;
        if complete || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    (
        cache_contents(store, LATENTS).await,
        cache_contents(store, EMBEDDINGS).await,
    )
}
