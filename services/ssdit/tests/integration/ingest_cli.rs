//! The ingest and caption client commands through the `ssdit` binary, on a
//! store in a temporary folder: `ssdit ingest` uploads the sample photos and
//! the shared bad inputs to an `ssdit serve captioning-ingest`; `ssdit
//! captions stats` counts the captions; `ssdit captions edit` lists a change,
//! then writes it — leaving the sample without an embedding (embeddings are
//! cached by caption text) until the `ssdit serve text-encoder` it announces
//! the sample to encodes the new caption; on a local store (embedded bus)
//! the edit encodes it itself. Bad arguments fail with a clear message and a
//! non-zero exit.

use crate::cli;
use crate::embedded;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use cli::ssdit;
use ssdit_dataset::{CaptionHash, Dataset, DatasetStatus, Encodings, cached_embeddings};
use ssdit_store::Store;
use ssdit_testkit::{NatsServer, ServiceProcess, shared_data};

const DATASET: &str = "photos";

/// The shared bad inputs that are images (or claim to be): each is rejected.
const BAD_IMAGES: [&str; 4] = ["bomb.png", "empty.png", "not-an-image.png", "truncated.jpg"];

/// A configuration file with `body` as its TOML.
fn config_file(dir: &Path, body: &str) -> PathBuf {
    let file = dir.join("ssdit.toml");
    std::fs::write(&file, body).unwrap();
    file
}

/// The `[store]` section of a store in `store`.
fn store_section(store: &Path) -> String {
    format!("[store]\nurl = {:?}\n", store.display().to_string())
}

/// The arguments of `captions edit` on [`DATASET`] replacing `find` with
/// `replace` (a dry run; add `--apply` to write).
fn dataset_edit<'a>(find: &'a str, replace: &'a str) -> [&'a str; 8] {
    [
        "captions",
        "edit",
        "--dataset",
        DATASET,
        "--find",
        find,
        "--replace",
        replace,
    ]
}

/// The standard output of a successful run.
fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The standard error of a failed run.
fn failure(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure: {output:?}");
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// `ssdit serve SERVICE --tiny` on `config`, logging into `dir`.
async fn serve(service: &str, config: &Path, dir: &Path) -> ServiceProcess {
    let config = config.to_str().unwrap();
    ServiceProcess::start(
        service,
        Path::new(env!("CARGO_BIN_EXE_ssdit")),
        &["serve", service, "--tiny", "--config", config],
        &[],
        dir,
        Duration::from_secs(120),
    )
    .await
}

/// The dataset's status for the one text encoding in the store (the VAE's
/// latents are not produced here: only the caption counts matter).
async fn status(store: &Store) -> DatasetStatus {
    let encodings = cached_embeddings(store).await.unwrap();
    let texts: Vec<_> = encodings.into_keys().collect();
    let Some(text) = texts.first() else {
        return DatasetStatus::default();
    };
    assert_eq!(texts.len(), 1, "{texts:?}");
    let encodings = Encodings {
        vae: "none".into(),
        text: text.clone(),
    };
    Dataset::new(store.clone(), DATASET)
        .unwrap()
        .status(&encodings)
        .await
        .unwrap()
}

/// Waits until `n` samples have an embedding of their current caption.
async fn wait_embeddings(store: &Store, n: usize, text_encoder: &ServiceProcess) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = status(store).await;
        if status.embeddings == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{status:?}: not {n} embeddings within 60 s\n{}",
            text_encoder.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_then_caption_stats_and_an_edit_that_is_encoded_again() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start().await;
    let store_dir = dir.path().join("store");
    let config = config_file(
        dir.path(),
        &format!(
            "{}\n[bus]\nkind = \"nats\"\nurl = {:?}\nack_wait = \"5s\"\n\n[ingest]\ntarget_resolution = 128\n",
            store_section(&store_dir),
            nats.url()
        ),
    );
    let images = dir.path().join("images");
    let captions = embedded::captioned_photos(&images);
    for name in BAD_IMAGES {
        std::fs::copy(shared_data("bad-inputs").join(name), images.join(name)).unwrap();
    }
    let ingest = serve("captioning-ingest", &config, dir.path()).await;
    let mut text_encoder = serve("text-encoder", &config, dir.path()).await;
    let images = images.to_str().unwrap();
    let ingest_args = ["ingest", images, "--dataset", DATASET, "--addr"];

    let ingested = stdout(&ssdit(
        &config,
        &[&ingest_args[..], &[&ingest.url()]].concat(),
    ));
    assert!(
        ingested.contains("dataset photos: 6 new, 0 already present, 4 rejected"),
        "{ingested}"
    );
    for (name, reason) in [
        ("bomb.png", "decompression bomb"),
        ("empty.png", "file is empty"),
        ("not-an-image.png", "not a recognised image format"),
        ("truncated.jpg", "truncated"),
    ] {
        let line = ingested
            .lines()
            .find(|l| l.starts_with(&format!("rejected {name}: ")))
            .unwrap_or_else(|| panic!("{name} is not rejected: {ingested}"));
        assert!(line.contains(reason), "{line}");
    }
    for (name, _) in &captions {
        assert!(
            ingested.contains(&format!("accepted {name} (sample ")),
            "{ingested}"
        );
    }
    let again = stdout(&ssdit(
        &config,
        &[&ingest_args[..], &[&ingest.url()]].concat(),
    ));
    assert!(
        again.contains("dataset photos: 0 new, 6 already present, 4 rejected"),
        "{again}"
    );

    let store = Store::open(store_dir.to_str().unwrap()).await.unwrap();
    wait_embeddings(&store, 6, &text_encoder).await;

    let stats = stdout(&ssdit(
        &config,
        &["captions", "stats", "--dataset", DATASET],
    ));
    assert!(stats.contains("captions: 6"), "{stats}");
    let limit = format!("over {} words: 0", ssdit_caption::MAX_WORDS);
    assert!(stats.contains(&limit), "{stats}");

    let edit = dataset_edit("ginger", "grey");
    let dry = stdout(&ssdit(&config, &edit));
    assert!(
        dry.contains("1 of 6 captions change, 1 replacements"),
        "{dry}"
    );
    assert!(dry.contains("dry run: nothing written"), "{dry}");
    assert_eq!(
        status(&store).await.embeddings,
        6,
        "a dry run changes nothing"
    );

    // With the text encoder stopped, the edit's effect on the cache shows.
    assert!(
        text_encoder.terminate(Duration::from_secs(20)),
        "{}",
        text_encoder.log_tail()
    );
    let applied = stdout(&ssdit(&config, &[&edit[..], &["--apply"]].concat()));
    assert!(applied.contains("written: 1"), "{applied}");
    assert!(applied.contains("announced: 1 samples"), "{applied}");
    let status_now = status(&store).await;
    assert_eq!(
        (status_now.captioned, status_now.embeddings),
        (6, 5),
        "the edited caption has no embedding"
    );

    // The text encoder, back, encodes the caption it was told about.
    text_encoder = serve("text-encoder", &config, dir.path()).await;
    wait_embeddings(&store, 6, &text_encoder).await;
    let chelsea = captions
        .iter()
        .find(|(name, _)| name == "chelsea.png")
        .unwrap();
    let edited = chelsea.1.replace("ginger", "grey");
    let text = cached_embeddings(&store)
        .await
        .unwrap()
        .into_keys()
        .next()
        .unwrap();
    let key = text.embedding_key(&CaptionHash::of(&edited)).unwrap();
    assert!(store.exists(&key).await.unwrap(), "{key} is missing");
    let done = stdout(&ssdit(&config, &edit));
    assert!(done.contains("0 of 6 captions change"), "{done}");
}

/// The edit on a local store (embedded bus, no encoder running anywhere)
/// encodes the new caption itself with the configured text encoder; the old
/// caption's embedding is left in the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_on_a_local_store_encodes_the_new_caption_itself() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let config = config_file(
        dir.path(),
        &format!(
            "{}\n[models]\ntext_encoder = \"tiny\"\n",
            store_section(&store_dir)
        ),
    );
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/import/tests/data");
    let cache = data.join("cache");
    let captions = data.join("captions");
    stdout(&ssdit(
        &config,
        &[
            "import",
            "seed-cache",
            cache.to_str().unwrap(),
            "--dataset",
            DATASET,
            "--captions",
            captions.to_str().unwrap(),
        ],
    ));
    let status = stdout(&ssdit(&config, &["dataset", "status", DATASET]));
    assert!(status.contains("ready       3"), "{status}");
    let store = Store::open(store_dir.to_str().unwrap()).await.unwrap();
    let imported = cached_embeddings(&store).await.unwrap();
    assert_eq!(imported.len(), 1, "{imported:?}");
    let seed_text = imported.keys().next().unwrap().clone();
    let (old, new) = (
        "a tall sunflower against a blue sky",
        "a tall daisy against a blue sky",
    );
    assert!(imported[&seed_text].contains(&CaptionHash::of(old)));

    let edit = dataset_edit("sunflower", "daisy");
    stdout(&ssdit(&config, &edit));
    assert_eq!(
        cached_embeddings(&store).await.unwrap(),
        imported,
        "a dry run encodes nothing"
    );
    let applied = stdout(&ssdit(&config, &[&edit[..], &["--apply"]].concat()));
    assert!(applied.contains("written: 1"), "{applied}");
    assert!(
        applied.contains("encoded: 1 new captions, with the text encoder tiny"),
        "{applied}"
    );

    let max_length = ssdit_core::Config::default().encode.max_text_length;
    let tiny =
        ssdit_text_encoder::TextWorker::load(&ssdit_core::config::ModelsConfig::tiny(), max_length)
            .await
            .unwrap()
            .encoding();
    let encoded = cached_embeddings(&store).await.unwrap();
    assert_eq!(
        encoded.get(&tiny),
        Some(&[CaptionHash::of(new)].into()),
        "the new caption, and only it, is encoded with the configured encoder: {encoded:?}"
    );
    assert_eq!(
        encoded[&seed_text], imported[&seed_text],
        "the old caption's embedding is left in the cache"
    );
}

#[test]
fn captions_in_a_folder_are_counted_and_edited() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &store_section(&dir.path().join("store")));
    let folder = dir.path().join("captions");
    std::fs::create_dir_all(&folder).unwrap();
    for (stem, text) in [
        ("a", "a red rose"),
        ("b", "a rose in the rain"),
        ("c", "an iris"),
    ] {
        std::fs::write(folder.join(format!("{stem}.txt")), text).unwrap();
    }
    let folder_arg = folder.to_str().unwrap();
    let stats = stdout(&ssdit(
        &config,
        &["captions", "stats", "--folder", folder_arg],
    ));
    assert!(stats.contains("captions: 3"), "{stats}");
    assert!(
        stats.contains("words per caption (min 2, mean 3.3, max 5)"),
        "{stats}"
    );

    let edit = [
        "captions",
        "edit",
        "--folder",
        folder_arg,
        "--find",
        "rose",
        "--replace",
        "tulip",
    ];
    assert!(stdout(&ssdit(&config, &edit)).contains("dry run"));
    assert_eq!(
        std::fs::read_to_string(folder.join("a.txt")).unwrap(),
        "a red rose"
    );
    let applied = stdout(&ssdit(&config, &[&edit[..], &["--apply"]].concat()));
    assert!(applied.contains("written: 2"), "{applied}");
    let read = |stem: &str| std::fs::read_to_string(folder.join(format!("{stem}.txt"))).unwrap();
    assert_eq!(
        (read("a"), read("b"), read("c")),
        (
            "a red tulip".to_string(),
            "a tulip in the rain".to_string(),
            "an iris".to_string()
        )
    );
}

#[test]
fn bad_arguments_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &store_section(&dir.path().join("store")));
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    let images = dir.path().to_str().unwrap();
    for (args, needle) in [
        (
            &["captions", "stats"][..],
            "the following required arguments were not provided",
        ),
        (
            &[
                "captions",
                "stats",
                "--dataset",
                DATASET,
                "--folder",
                images,
            ],
            "cannot be used with",
        ),
        (
            &["captions", "stats", "--dataset", "../etc"],
            "dataset name",
        ),
        (
            &[
                "captions",
                "edit",
                "--folder",
                images,
                "--find",
                "(",
                "--replace",
                "x",
                "--regex",
            ],
            "regex",
        ),
        (
            &[
                "captions",
                "edit",
                "--folder",
                missing,
                "--find",
                "a",
                "--replace",
                "b",
            ],
            "reading the captions in",
        ),
        (
            &["ingest", images, "--dataset", DATASET, "--captions", "vlm"],
            "--captions applies to sources the server reads",
        ),
        (
            &[
                "ingest",
                images,
                "--dataset",
                DATASET,
                "--addr",
                "http://127.0.0.1:1",
            ],
            "cannot reach captioning-ingest at http://127.0.0.1:1",
        ),
        (&["ingest", images], "--dataset"),
    ] {
        let stderr = failure(&ssdit(&config, args));
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr}"
        );
    }
}
