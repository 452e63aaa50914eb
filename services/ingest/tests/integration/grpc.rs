//! The gRPC service on a real server on 127.0.0.1:0: chunked uploads, the
//! upload limit enforced while streaming, request validation, rejections in
//! the reply, a local folder uploaded by the client side (`FolderUpload`),
//! and `IngestUri` on a memory-store prefix and a `file://` folder.

use crate::common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use ssdit_dataset::Dataset;
use ssdit_ingest::{FolderUpload, FolderUploadOptions, Ingester};
use ssdit_proto::v1::ingest_service_client::IngestServiceClient;
use ssdit_proto::v1::upload_chunk::Kind;
use ssdit_proto::v1::{CaptionSource, FileStart, IngestReply, IngestUriRequest, UploadChunk};
use ssdit_server::grpc::GrpcOptions;
use ssdit_store::{Key, Store};
use ssdit_testkit::shared_data;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Channel;

/// The upload limit of these tests: the two small photos fit, astronaut.png
/// (791 555 bytes) does not.
const MAX_UPLOAD: u64 = 256 << 10;
const CHUNK: usize = 32 << 10;

struct Server {
    client: IngestServiceClient<Channel>,
    ingester: Ingester,
    harness: common::Harness,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(configure: impl FnOnce(&mut ssdit_core::Config)) -> Server {
    let mut config = common::config();
    config.server.max_upload_bytes = MAX_UPLOAD;
    configure(&mut config);
    let harness = common::Harness::new(config).await;
    let ingester = harness.ingester.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = ingester.clone();
    let task = tokio::spawn(async move {
        ssdit_ingest::run(serving, listener, GrpcOptions::default(), async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let client = IngestServiceClient::connect(url).await.unwrap();
    Server {
        client,
        ingester,
        harness,
        stop,
        task,
    }
}

fn start_chunk(
    dataset: &str,
    file_name: &str,
    caption: Option<&str>,
    size: Option<u64>,
) -> UploadChunk {
    UploadChunk {
        kind: Some(Kind::Start(FileStart {
            dataset: dataset.into(),
            file_name: file_name.into(),
            caption: caption.map(str::to_owned),
            label: None,
            size,
        })),
    }
}

/// A file as a start and its bytes in `CHUNK`-sized data messages.
fn file_chunks(dataset: &str, name: &str, bytes: &[u8], caption: Option<&str>) -> Vec<UploadChunk> {
    let mut chunks = vec![start_chunk(
        dataset,
        name,
        caption,
        Some(bytes.len() as u64),
    )];
    chunks.extend(bytes.chunks(CHUNK).map(|c| UploadChunk {
        kind: Some(Kind::Data(Bytes::copy_from_slice(c))),
    }));
    chunks
}

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(shared_data("photos").join(name)).unwrap()
}

async fn upload(
    server: &mut Server,
    chunks: Vec<UploadChunk>,
) -> Result<IngestReply, tonic::Status> {
    server
        .client
        .ingest(futures::stream::iter(chunks))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_upload_of_two_photos_with_a_truncated_file() {
    let mut server = start(|_| {}).await;
    let mut chunks = file_chunks(
        "uploads",
        "chelsea.png",
        &photo("chelsea.png"),
        Some("A cat."),
    );
    // A caption file of the same stem, sent after its image.
    chunks.extend(file_chunks(
        "uploads",
        "rocket.jpg",
        &photo("rocket.jpg"),
        None,
    ));
    chunks.extend(file_chunks(
        "uploads",
        "rocket.txt",
        b"A rocket on its pad.\n",
        None,
    ));
    let truncated = std::fs::read(shared_data("bad-inputs").join("truncated.jpg")).unwrap();
    chunks.extend(file_chunks(
        "uploads",
        "truncated.jpg",
        &truncated,
        Some("cut short"),
    ));
    let reply = upload(&mut server, chunks).await.unwrap();

    assert_eq!(reply.dataset, "uploads");
    let names: Vec<&str> = reply.samples.iter().map(|s| s.file_name.as_str()).collect();
    assert_eq!(names, ["chelsea.png", "rocket.jpg"]);
    assert!(reply.samples.iter().all(|s| !s.already_present));
    assert_eq!(reply.rejected.len(), 1, "{reply:?}");
    assert_eq!(reply.rejected[0].file_name, "truncated.jpg");
    assert!(
        reply.rejected[0].reason.contains("truncated"),
        "{:?}",
        reply.rejected[0]
    );

    let dataset = Dataset::new(server.harness.store.clone(), "uploads").unwrap();
    let rocket = dataset.sample(&reply.samples[1].sample_id).await.unwrap();
    assert_eq!(rocket.source, "rocket.jpg");
    assert_eq!((rocket.bucket.width, rocket.bucket.height), (512, 384));
    assert_eq!(
        dataset.caption(&rocket).await.unwrap().as_deref(),
        Some("A rocket on its pad.")
    );
    let chelsea = dataset.sample(&reply.samples[0].sample_id).await.unwrap();
    assert_eq!(
        dataset.caption(&chelsea).await.unwrap().as_deref(),
        Some("A cat.")
    );
    assert_eq!(dataset.rejects().await.unwrap()[0].file, "truncated.jpg");

    // The same upload again is a no-op.
    let again = upload(
        &mut server,
        file_chunks(
            "uploads",
            "chelsea.png",
            &photo("chelsea.png"),
            Some("A cat."),
        ),
    )
    .await
    .unwrap();
    assert!(again.samples[0].already_present);
    assert_eq!(again.samples[0].sample_id, reply.samples[0].sample_id);

    server.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_upload_pairs_captions_and_labels_sub_folders() {
    let mut server = start(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("upload");
    let sub = root.join("pink_primrose");
    std::fs::create_dir_all(&sub).unwrap();
    let photos = shared_data("photos");
    std::fs::copy(photos.join("chelsea.png"), root.join("chelsea.png")).unwrap();
    std::fs::write(root.join("chelsea.txt"), "A cat on a rug.\n").unwrap();
    std::fs::copy(photos.join("flower.jpg"), sub.join("flower.jpg")).unwrap();
    std::fs::write(sub.join("flower.caption"), common::flower_caption(1)).unwrap();
    std::fs::write(root.join("notes.md"), "not sent").unwrap();

    let options = FolderUploadOptions {
        recursive: true,
        folder_labels: true,
    };
    let upload = FolderUpload::scan("folder-up", &root, options)
        .await
        .unwrap();
    assert_eq!(upload.skipped(), 1, "notes.md");
    let names: Vec<&str> = upload.files().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "chelsea.txt",
            "pink_primrose__flower.caption",
            "chelsea.png",
            "pink_primrose__flower.jpg"
        ],
        "caption files first, sub-folders flattened"
    );
    let (stream, failures) = upload.into_stream();
    let reply = server.client.ingest(stream).await.unwrap().into_inner();
    assert!(failures.take().is_empty());
    assert!(reply.rejected.is_empty(), "{reply:?}");
    let names: Vec<&str> = reply.samples.iter().map(|s| s.file_name.as_str()).collect();
    assert_eq!(names, ["chelsea.png", "pink_primrose__flower.jpg"]);

    let dataset = Dataset::new(server.harness.store.clone(), "folder-up").unwrap();
    let chelsea = dataset.sample(&reply.samples[0].sample_id).await.unwrap();
    assert_eq!(
        dataset.caption(&chelsea).await.unwrap().as_deref(),
        Some("A cat on a rug.")
    );
    assert_eq!(chelsea.label.as_deref(), Some("upload"));
    let flower = dataset.sample(&reply.samples[1].sample_id).await.unwrap();
    assert_eq!(flower.label.as_deref(), Some("pink primrose"));
    assert_eq!(
        dataset.caption(&flower).await.unwrap(),
        Some(common::flower_caption(1))
    );

    // A file over the server's limit ends the call with RESOURCE_EXHAUSTED.
    std::fs::copy(photos.join("astronaut.png"), root.join("astronaut.png")).unwrap();
    let upload = FolderUpload::scan("folder-up", &root, FolderUploadOptions::default())
        .await
        .unwrap();
    let (stream, _) = upload.into_stream();
    let status = server.client.ingest(stream).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("astronaut.png"), "{status:?}");
}

#[tokio::test]
async fn an_oversized_file_is_refused_while_the_stream_is_still_open() {
    let mut server = start(|_| {}).await;
    let (tx, rx) = mpsc::channel(64);
    let big = photo("astronaut.png");
    tx.send(start_chunk("uploads", "astronaut.png", Some("x"), None))
        .await
        .unwrap();
    for chunk in big.chunks(CHUNK).take(MAX_UPLOAD as usize / CHUNK + 1) {
        tx.send(UploadChunk {
            kind: Some(Kind::Data(Bytes::copy_from_slice(chunk))),
        })
        .await
        .unwrap();
    }
    // `tx` stays open: the server must answer without waiting for the rest.
    let status = tokio::time::timeout(
        Duration::from_secs(20),
        server.client.ingest(ReceiverStream::new(rx)),
    )
    .await
    .expect("the server answers before the upload ends")
    .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("astronaut.png"), "{status:?}");
    assert!(
        status.message().contains(&MAX_UPLOAD.to_string()),
        "{status:?}"
    );
    drop(tx);

    // An announced size over the limit is refused from the FileStart alone.
    let status = upload(
        &mut server,
        vec![start_chunk(
            "uploads",
            "big.png",
            None,
            Some(MAX_UPLOAD + 1),
        )],
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let dataset = Dataset::new(server.harness.store.clone(), "uploads").unwrap();
    assert!(dataset.samples().await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_requests_are_invalid_arguments_naming_the_problem() {
    let mut server = start(|_| {}).await;
    let cases: Vec<(Vec<UploadChunk>, &str)> = vec![
        (
            vec![start_chunk("../escape", "a.png", None, None)],
            "dataset name",
        ),
        (
            vec![start_chunk("a/b", "a.png", None, None)],
            "path separator",
        ),
        (vec![start_chunk("", "a.png", None, None)], "dataset name"),
        (
            vec![start_chunk("ok", "../a.png", None, None)],
            "path separator",
        ),
        (
            vec![start_chunk("ok", "/etc/passwd", None, None)],
            "path separator",
        ),
        (vec![start_chunk("ok", "..", None, None)], "'..'"),
        (vec![start_chunk("ok", "a\0.png", None, None)], "NUL"),
        (
            vec![UploadChunk {
                kind: Some(Kind::Data(Bytes::from_static(b"x"))),
            }],
            "before any FileStart",
        ),
        (
            vec![
                start_chunk("ok", "a.png", None, Some(10)),
                UploadChunk {
                    kind: Some(Kind::Data(Bytes::from_static(b"abc"))),
                },
            ],
            "10 bytes announced, 3 received",
        ),
    ];
    for (chunks, needle) in cases {
        let status = upload(&mut server, chunks).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains(needle),
            "{status:?} lacks {needle:?}"
        );
    }
    let status = server
        .client
        .ingest_uri(IngestUriRequest {
            uri: "/tmp".into(),
            dataset: "ok".into(),
            recursive: false,
            caption_source: 99,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("caption_source 99"), "{status:?}");
    let status = server
        .client
        .ingest_uri(IngestUriRequest {
            uri: "/no/such/folder".into(),
            dataset: "ok".into(),
            ..IngestUriRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let status = server
        .client
        .ingest_uri(IngestUriRequest {
            uri: "memory://elsewhere/photos".into(),
            dataset: "ok".into(),
            ..IngestUriRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

/// Puts the photos (and sidecar captions) under `photos/` in a memory store.
async fn fill_store(store: &Store, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        let key = Key::parse(&format!("photos/{name}")).unwrap();
        store.put(&key, Bytes::from(photo(name))).await.unwrap();
        let caption = Path::new(name).with_extension("txt");
        let key = Key::parse(&format!("photos/{}", caption.display())).unwrap();
        store
            .put(&key, Bytes::from(common::flower_caption(i + 1)))
            .await
            .unwrap();
    }
    let nested = Key::parse("photos/more/coffee.png").unwrap();
    store
        .put(&nested, Bytes::from(photo("coffee.png")))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_uri_reads_store_prefixes_and_file_urls() {
    let mut server = start(|_| {}).await;
    let source = Store::open("memory://").await.unwrap();
    fill_store(&source, &["chelsea.png", "rocket.jpg"]).await;
    server
        .ingester
        .register_source_store("memory://uploads", source);

    let reply = server
        .client
        .ingest_uri(IngestUriRequest {
            uri: "memory://uploads/photos".into(),
            dataset: "from-store".into(),
            recursive: false,
            caption_source: CaptionSource::Sidecar as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = reply.samples.iter().map(|s| s.file_name.as_str()).collect();
    assert_eq!(
        names,
        ["chelsea.png", "rocket.jpg"],
        "not recursive: more/ is left out"
    );
    let dataset = Dataset::new(server.harness.store.clone(), "from-store").unwrap();
    let record = dataset.sample(&reply.samples[1].sample_id).await.unwrap();
    assert_eq!(record.source, "memory://uploads/photos/rocket.jpg");
    assert_eq!(
        dataset.caption(&record).await.unwrap(),
        Some(common::flower_caption(2))
    );

    let recursive = server
        .client
        .ingest_uri(IngestUriRequest {
            uri: "memory://uploads/photos".into(),
            dataset: "from-store".into(),
            recursive: true,
            caption_source: CaptionSource::Unspecified as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        recursive
            .samples
            .iter()
            .filter(|s| s.already_present)
            .count(),
        2
    );
    assert_eq!(
        recursive.rejected.len(),
        1,
        "more/coffee.png has no caption"
    );
    assert_eq!(recursive.rejected[0].file_name, "more/coffee.png");

    let dir = tempfile::tempdir().unwrap();
    common::captioned_photos(dir.path());
    let uri = format!("file://{}", dir.path().display());
    let reply = server
        .client
        .ingest_uri(IngestUriRequest {
            uri,
            dataset: "from-folder".into(),
            ..IngestUriRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.samples.len(), 6, "{reply:?}");
    assert!(reply.rejected.is_empty());
}

#[tokio::test]
async fn uri_roots_confine_local_folders() {
    let allowed = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let root = allowed.path().to_path_buf();
    let mut server = start(move |config| config.ingest.uri_roots = vec![root]).await;
    let status = server
        .client
        .ingest_uri(IngestUriRequest {
            uri: elsewhere.path().display().to_string(),
            dataset: "ok".into(),
            ..IngestUriRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let reply = server
        .client
        .ingest_uri(IngestUriRequest {
            uri: allowed.path().display().to_string(),
            dataset: "ok".into(),
            ..IngestUriRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.samples.is_empty() && reply.rejected.is_empty());
}
