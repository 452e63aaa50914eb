//! The store contract in memory, with and without a URL prefix.

use crate::common;

use bytes::Bytes;
use ssdit_store::{Backend, Key, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_honours_the_contract() {
    let store = Store::open("memory://").await.unwrap();
    assert_eq!(store.backend(), Backend::Memory);
    common::contract(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_prefix_is_transparent() {
    let store = Store::open("memory://tenant/a").await.unwrap();
    common::contract(&store).await;
    let key = Key::parse("x/y.txt").unwrap();
    store.put(&key, Bytes::from_static(b"1")).await.unwrap();
    let listed = store.list(&Key::parse("x").unwrap()).await.unwrap();
    assert_eq!(listed[0].key, key);
}

#[tokio::test]
async fn unsafe_prefixes_are_refused() {
    for url in ["memory://../x", "memory://a//b", "s3://bucket/../up"] {
        assert!(Store::open(url).await.is_err(), "{url}");
    }
}
