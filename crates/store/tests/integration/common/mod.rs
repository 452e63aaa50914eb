//! The contract every backend must honour, written once and run on each.

use bytes::Bytes;
use ssdit_store::{Error, F32Tensor, Key, Store, TensorFile, layout};

const ID: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn key(s: &str) -> Key {
    Key::parse(s).expect("valid key")
}

/// Runs every check of the contract on `store`.
pub async fn contract(store: &Store) {
    round_trip_and_missing_objects(store).await;
    put_if_absent_keeps_the_first_write(store).await;
    listing_is_recursive_sorted_and_segment_wise(store).await;
    readers_never_see_partial_writes(store).await;
    size_limits_are_checked_before_downloading(store).await;
    tensor_files_round_trip_and_corrupt_ones_are_rejected(store).await;
    large_files_upload_in_parts(store).await;
}

async fn round_trip_and_missing_objects(store: &Store) {
    let image = layout::image("flowers", ID, "png").unwrap();
    assert_eq!(store.get_opt(&image).await.unwrap(), None);
    assert!(!store.exists(&image).await.unwrap());
    assert!(matches!(
        store.get(&image).await,
        Err(Error::NotFound { .. })
    ));

    store
        .put(&image, Bytes::from_static(b"first"))
        .await
        .unwrap();
    store
        .put(&image, Bytes::from_static(b"second!"))
        .await
        .unwrap();
    assert_eq!(
        store.get(&image).await.unwrap(),
        Bytes::from_static(b"second!")
    );
    assert_eq!(store.size(&image).await.unwrap(), Some(7));

    store.delete(&image).await.unwrap();
    store.delete(&image).await.unwrap();
    assert!(!store.exists(&image).await.unwrap());
}

async fn put_if_absent_keeps_the_first_write(store: &Store) {
    let caption = layout::caption("flowers", ID).unwrap();
    assert!(
        store
            .put_if_absent(&caption, Bytes::from_static(b"a red rose"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_if_absent(&caption, Bytes::from_static(b"other"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get(&caption).await.unwrap(),
        Bytes::from_static(b"a red rose")
    );
}

async fn listing_is_recursive_sorted_and_segment_wise(store: &Store) {
    for k in [
        "datasets/list/b.txt",
        "datasets/list/a/deep/x.txt",
        "datasets/list2/not-mine.txt",
        "datasets/lis/not-mine.txt",
    ] {
        store.put(&key(k), Bytes::from(k.to_owned())).await.unwrap();
    }
    let listed = store.list(&key("datasets/list")).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["datasets/list/a/deep/x.txt", "datasets/list/b.txt"]);
    assert_eq!(listed[1].size, "datasets/list/b.txt".len() as u64);
    assert!(store.list(&key("datasets/empty")).await.unwrap().is_empty());
}

/// A writer alternates two full-size payloads while a reader checks every read is one
/// of them, whole.
async fn readers_never_see_partial_writes(store: &Store) {
    const LEN: usize = 256 * 1024;
    let target = key("runs/atomic/checkpoints/step-0000000001/model.safetensors");
    store
        .put(&target, Bytes::from(vec![b'a'; LEN]))
        .await
        .unwrap();

    let writer = {
        let store = store.clone();
        let target = target.clone();
        tokio::spawn(async move {
            for i in 0..20u8 {
                let fill = if i % 2 == 0 { b'b' } else { b'a' };
                store
                    .put(&target, Bytes::from(vec![fill; LEN]))
                    .await
                    .unwrap();
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads < 5 {
        let bytes = store.get(&target).await.unwrap();
        assert_eq!(bytes.len(), LEN, "partial object visible");
        assert!(bytes.iter().all(|&b| b == bytes[0]), "mixed object visible");
        reads += 1;
    }
    writer.await.unwrap();
}

async fn size_limits_are_checked_before_downloading(store: &Store) {
    let big = key("runs/limits/samples/big.png");
    store.put(&big, Bytes::from(vec![0u8; 1000])).await.unwrap();
    let err = store.get_bounded(&big, 999).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                size: 1000,
                max: 999,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.get_bounded(&big, 1000).await.unwrap().len(), 1000);
}

async fn tensor_files_round_trip_and_corrupt_ones_are_rejected(store: &Store) {
    let latent_key = layout::latent(ID, "vae0", 448, 448).unwrap();
    let mut file = TensorFile::new();
    let values: Vec<f32> = (0..16 * 4 * 4).map(|i| (i as f32).sin()).collect();
    file.insert(
        "latents",
        F32Tensor::new(values.clone(), vec![16, 4, 4]).unwrap(),
    )
    .set_metadata("sample_id", ID);
    store.put_tensors(&latent_key, file).await.unwrap();
    let back = store.get_tensors(&latent_key).await.unwrap();
    assert_eq!(
        back.require("latents", &[16, 4, 4]).unwrap().data(),
        values.as_slice()
    );
    assert_eq!(back.require_metadata("sample_id").unwrap(), ID);

    let good = store.get(&latent_key).await.unwrap();
    let corrupt = layout::latent(ID, "vae0", 448, 384).unwrap();
    store
        .put(&corrupt, good.slice(..good.len() - 4))
        .await
        .unwrap();
    let err = store.get_tensors(&corrupt).await.unwrap_err();
    assert!(err.to_string().contains(corrupt.as_str()), "{err}");
    assert!(matches!(err, Error::TensorFile { .. }), "{err}");
}

async fn large_files_upload_in_parts(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.bin");
    let data: Vec<u8> = (0..9 * 1024 * 1024 + 123)
        .map(|i| (i % 251) as u8)
        .collect();
    tokio::fs::write(&path, &data).await.unwrap();
    let target = layout::checkpoint_file("upload", 7, "optimizer.safetensors").unwrap();
    store.put_file(&target, &path).await.unwrap();
    let back = store.get(&target).await.unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "uploaded bytes differ");

    let missing = store
        .put_file(&target, &dir.path().join("nope"))
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
}
