//! The store contract on a local directory, plus what only a directory can show.

use crate::common;

use bytes::Bytes;
use ssdit_store::{Backend, Key, Store, layout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_directory_honours_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().to_str().unwrap()).await.unwrap();
    assert_eq!(store.backend(), Backend::Local);
    common::contract(&store).await;
}

#[tokio::test]
async fn file_urls_and_missing_directories_open() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("new/store");
    let store = Store::open(&format!("file://{}", root.display()))
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::Local);
    let key = layout::manifest("flowers").unwrap();
    store.put(&key, Bytes::from_static(b"{}")).await.unwrap();
    // Keys are plain paths under the root, so other tools (Python) find the files.
    let on_disk = std::fs::read(root.join("datasets/flowers/manifest.json")).unwrap();
    assert_eq!(on_disk, b"{}");
}

#[tokio::test]
async fn writes_leave_no_staging_files_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().to_str().unwrap()).await.unwrap();
    let key = Key::parse("runs/r/metrics.csv").unwrap();
    for i in 0..5 {
        store
            .put(&key, Bytes::from(format!("step,{i}\n")))
            .await
            .unwrap();
    }
    let names: Vec<String> = std::fs::read_dir(dir.path().join("runs/r"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["metrics.csv"]);
}

#[tokio::test]
async fn foreign_files_are_skipped_by_listings() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().to_str().unwrap()).await.unwrap();
    let images = dir.path().join("datasets/flowers/images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(images.join("has space.png"), b"x").unwrap();
    std::fs::write(images.join("ok.png"), b"y").unwrap();
    let listed = store
        .list(&layout::images_prefix("flowers").unwrap())
        .await
        .unwrap();
    let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["datasets/flowers/images/ok.png"]);
}
