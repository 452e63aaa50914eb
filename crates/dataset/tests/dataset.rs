//! A dataset filled the way the stages fill it, read back the way the trainer reads it.

use bytes::Bytes;
use ssdit_dataset::{
    Bucket, Dataset, DatasetStatus, Encodings, RejectRecord, SampleRecord, TextEncoding,
};
use ssdit_store::{F32Tensor, Store, TensorFile};

fn encodings() -> Encodings {
    Encodings {
        vae: "vaefp".into(),
        text: TextEncoding {
            encoder: "encfp".into(),
            tokenizer: "tokfp".into(),
            max_length: 128,
        },
    }
}

fn record(id: &str, bucket: Bucket) -> SampleRecord {
    SampleRecord {
        id: id.into(),
        source: format!("{id}.jpg"),
        image_key: String::new(),
        caption_key: None,
        bucket,
        original_size: [640, 480],
        label: None,
    }
}

async fn write_tensor(store: &Store, key: ssdit_store::Key) {
    let mut file = TensorFile::new();
    file.insert("x", F32Tensor::new(vec![0.0; 4], vec![2, 2]).unwrap());
    store.put_tensors(&key, file).await.unwrap();
}

#[tokio::test]
async fn status_and_manifest_follow_what_each_stage_wrote() {
    let store = Store::open("memory://").await.unwrap();
    let dataset = Dataset::new(store.clone(), "flowers").unwrap();
    let enc = encodings();
    let square = Bucket {
        width: 448,
        height: 448,
    };
    let wide = Bucket {
        width: 512,
        height: 384,
    };
    let png = Bytes::from_static(b"\x89PNG fake");
    for (id, bucket, caption) in [
        ("aaaa", square, Some("a rose")),
        ("bbbb", wide, Some("a tulip")),
        ("cccc", square, None),
        ("dddd", square, Some("a daisy")),
    ] {
        let stored = dataset
            .add_sample(record(id, bucket), png.clone(), "png", caption)
            .await
            .unwrap();
        assert!(stored.image_key.ends_with(&format!("{id}.png")));
        assert!(dataset.contains(id).await.unwrap());
    }
    dataset
        .add_reject(&RejectRecord {
            file: "empty.png".into(),
            reason: "zero-byte file".into(),
            stage: "ingest".into(),
            sample_id: None,
        })
        .await
        .unwrap();
    let vae_reject = RejectRecord {
        file: "dddd.jpg".into(),
        reason: "latent is not finite".into(),
        stage: "vae".into(),
        sample_id: Some("dddd".into()),
    };
    dataset.add_reject(&vae_reject).await.unwrap();
    dataset.add_reject(&vae_reject).await.unwrap();

    // The VAE encoded aaaa and bbbb; bbbb's latent is at the wrong bucket size.
    write_tensor(&store, enc.latent_key("aaaa", square).unwrap()).await;
    write_tensor(&store, enc.latent_key("bbbb", square).unwrap()).await;
    // The text encoder encoded the captioned ones but dddd.
    for id in ["aaaa", "bbbb"] {
        write_tensor(&store, enc.embedding_key(id).unwrap()).await;
    }

    let status = dataset.status(&enc).await.unwrap();
    assert_eq!(
        status,
        DatasetStatus {
            ingested: 4,
            captioned: 3,
            latents: 1,
            embeddings: 2,
            ready: 1,
            rejected: 2,
        }
    );

    let manifest = dataset.training_manifest(&enc).await.unwrap();
    let ready: Vec<_> = manifest.ready.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ready, ["aaaa"]);
    let reasons: Vec<_> = manifest
        .missing
        .iter()
        .map(|m| (m.id.as_str(), m.reason.as_str()))
        .collect();
    assert!(
        reasons[0].0 == "bbbb" && reasons[0].1.contains("no latent for VAE vaefp at 512x384"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].0 == "cccc" && reasons[1].1.contains("no caption"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].0 == "dddd" && reasons[2].1.contains("rejected by vae"),
        "{reasons:?}"
    );

    manifest.save(&dataset).await.unwrap();
    let caption = dataset
        .caption(&dataset.sample("bbbb").await.unwrap())
        .await
        .unwrap();
    assert_eq!(caption.as_deref(), Some("a tulip"));
}

#[tokio::test]
async fn names_that_escape_are_refused() {
    let store = Store::open("memory://").await.unwrap();
    assert!(Dataset::new(store.clone(), "../etc").is_err());
    assert!(Dataset::new(store.clone(), "a/b").is_err());
    assert!(Dataset::new(store, "nul\0").is_err());
}
