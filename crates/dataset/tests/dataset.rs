//! A dataset filled the way the stages fill it, read back the way the trainer reads it.

use bytes::Bytes;
use ssdit_dataset::{
    Bucket, CaptionHash, Dataset, DatasetStatus, Encodings, RejectRecord, SampleRecord,
    TextEncoding,
};
use ssdit_store::{F32Tensor, Key, Store, TensorFile};

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

async fn write_tensor(store: &Store, key: Key) {
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
    for caption in ["a rose", "a tulip"] {
        write_tensor(
            &store,
            enc.embedding_key(&CaptionHash::of(caption)).unwrap(),
        )
        .await;
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

const SQUARE: Bucket = Bucket {
    width: 448,
    height: 448,
};

/// Adds sample `id` with `caption` and its latent.
async fn add_encoded_image(dataset: &Dataset, enc: &Encodings, id: &str, caption: Option<&str>) {
    let png = Bytes::from_static(b"\x89PNG fake");
    dataset
        .add_sample(record(id, SQUARE), png, "png", caption)
        .await
        .unwrap();
    write_tensor(dataset.store(), enc.latent_key(id, SQUARE).unwrap()).await;
}

/// The embedding key the manifest gives each ready sample.
async fn ready_embeddings(dataset: &Dataset, enc: &Encodings) -> Vec<(String, String)> {
    let manifest = dataset.training_manifest(enc).await.unwrap();
    manifest
        .ready
        .into_iter()
        .map(|s| (s.id, s.embedding_key))
        .collect()
}

#[tokio::test]
async fn embeddings_follow_the_caption_text_not_the_sample() {
    let store = Store::open("memory://").await.unwrap();
    let dataset = Dataset::new(store.clone(), "flowers").unwrap();
    let enc = encodings();
    for (id, caption) in [
        ("aaaa", "a red rose"),
        ("bbbb", "a red rose"),
        ("cccc", "iris"),
    ] {
        add_encoded_image(&dataset, &enc, id, Some(caption)).await;
    }
    let rose = enc.embedding_key(&CaptionHash::of("a red rose")).unwrap();
    let iris = enc.embedding_key(&CaptionHash::of("iris")).unwrap();
    for key in [&rose, &iris] {
        write_tensor(&store, key.clone()).await;
    }
    // Two samples with the same caption share one embedding.
    let ready = ready_embeddings(&dataset, &enc).await;
    let expected = |keys: [&Key; 3]| -> Vec<(String, String)> {
        ["aaaa", "bbbb", "cccc"]
            .into_iter()
            .zip(keys)
            .map(|(id, key)| (id.to_string(), key.to_string()))
            .collect()
    };
    assert_eq!(ready, expected([&rose, &rose, &iris]));
    assert_eq!(
        store.list(&enc.text.prefix().unwrap()).await.unwrap().len(),
        2
    );

    // An edited caption is no longer encoded: its old embedding is not used.
    let caption_key =
        Key::parse(&dataset.sample("aaaa").await.unwrap().caption_key.unwrap()).unwrap();
    store
        .put(&caption_key, Bytes::from_static(b"a red rose in the rain"))
        .await
        .unwrap();
    let status = dataset.status(&enc).await.unwrap();
    assert_eq!(
        (status.captioned, status.embeddings, status.ready),
        (3, 2, 2)
    );
    let manifest = dataset.training_manifest(&enc).await.unwrap();
    assert_eq!(manifest.missing.len(), 1, "{manifest:?}");
    assert_eq!(manifest.missing[0].id, "aaaa");
    assert!(
        manifest.missing[0]
            .reason
            .contains("no embedding of its caption for text encoder encfp"),
        "{manifest:?}"
    );

    // Once the new caption is encoded, the manifest points at its embedding.
    let rain = enc
        .embedding_key(&CaptionHash::of("a red rose in the rain"))
        .unwrap();
    write_tensor(&store, rain.clone()).await;
    assert_eq!(dataset.status(&enc).await.unwrap().ready, 3);
    assert_eq!(
        ready_embeddings(&dataset, &enc).await,
        expected([&rain, &rose, &iris])
    );
}

#[tokio::test]
async fn unreadable_captions_and_uncaptioned_embeddings_are_counted_right() {
    let store = Store::open("memory://").await.unwrap();
    let dataset = Dataset::new(store.clone(), "flowers").unwrap();
    let enc = encodings();
    add_encoded_image(&dataset, &enc, "aaaa", Some("placeholder")).await;
    add_encoded_image(&dataset, &enc, "bbbb", Some("a tulip")).await;
    add_encoded_image(&dataset, &enc, "cccc", None).await;
    add_encoded_image(&dataset, &enc, "dddd", None).await;
    let not_utf8 = Key::parse(&dataset.sample("aaaa").await.unwrap().caption_key.unwrap()).unwrap();
    store
        .put(&not_utf8, Bytes::from_static(b"a \xff rose"))
        .await
        .unwrap();
    let missing = Key::parse(&dataset.sample("bbbb").await.unwrap().caption_key.unwrap()).unwrap();
    store.delete(&missing).await.unwrap();
    // An embedding imported without its caption belongs to its sample alone.
    let imported = enc
        .embedding_key(&CaptionHash::uncaptioned("cccc"))
        .unwrap();
    write_tensor(&store, imported.clone()).await;

    let hashes = dataset
        .caption_hashes(&dataset.samples().await.unwrap())
        .await
        .unwrap();
    let ids: Vec<&str> = hashes.keys().map(String::as_str).collect();
    assert_eq!(ids, ["cccc", "dddd"]);
    let status = dataset.status(&enc).await.unwrap();
    assert_eq!(
        (status.captioned, status.embeddings, status.ready),
        (2, 1, 1)
    );
    assert_eq!(
        ready_embeddings(&dataset, &enc).await,
        [("cccc".to_string(), imported.to_string())]
    );
}

#[tokio::test]
async fn names_that_escape_are_refused() {
    let store = Store::open("memory://").await.unwrap();
    assert!(Dataset::new(store.clone(), "../etc").is_err());
    assert!(Dataset::new(store.clone(), "a/b").is_err());
    assert!(Dataset::new(store, "nul\0").is_err());
}
