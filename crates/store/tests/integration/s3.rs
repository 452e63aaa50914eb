//! The store contract on a real S3-compatible server (moto) that the test starts itself.

use crate::common;

use bytes::Bytes;
use ssdit_store::{Backend, Error, Key, RetryPolicy, Store, StoreOptions};
use ssdit_testkit::S3Server;

fn options(server: &S3Server) -> StoreOptions {
    StoreOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            initial_delay: std::time::Duration::from_millis(20),
            ..RetryPolicy::default()
        },
        from_env: false,
        options: vec![
            ("aws_endpoint".into(), server.endpoint()),
            ("aws_region".into(), "us-east-1".into()),
            ("aws_access_key_id".into(), "test".into()),
            ("aws_secret_access_key".into(), "test".into()),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_honours_the_contract() {
    let server = S3Server::start("ssdit-test").await;

    let store = Store::open_with("s3://ssdit-test/deploy/a", &options(&server))
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::S3);
    common::contract(&store).await;

    // The prefix is where the objects really are, seen from a store opened without it.
    let key = Key::parse("runs/r/metrics.csv").unwrap();
    store
        .put(&key, Bytes::from_static(b"step,loss\n"))
        .await
        .unwrap();
    let root = Store::open_with("s3://ssdit-test", &options(&server))
        .await
        .unwrap();
    let full = Key::parse("deploy/a/runs/r/metrics.csv").unwrap();
    assert_eq!(
        root.get(&full).await.unwrap(),
        Bytes::from_static(b"step,loss\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_fails_with_a_bounded_number_of_attempts() {
    let server = S3Server::start("ssdit-test").await;
    let store = Store::open_with("s3://no-such-bucket", &options(&server))
        .await
        .unwrap();
    let err = store
        .put(&Key::parse("a").unwrap(), Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    match err {
        Error::Backend { attempts, .. } => assert!((1..=3).contains(&attempts), "{attempts}"),
        Error::NotFound { .. } => {}
        other => panic!("unexpected error: {other}"),
    }
}
