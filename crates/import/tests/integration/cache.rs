//! The seed's cached samples (`tests/data/cache/*.pt`, written by PyTorch's
//! `torch.save` in the layout of the seed's preprocess.py) read value for
//! value, bad files rejected with their reason, and a whole folder imported
//! into a dataset the trainer can use.

use crate::common;

use std::collections::BTreeMap;

use common::{data, data_file, expected_json, expected_tensors};
use ssdit_dataset::{Bucket, CaptionHash, Dataset};
use ssdit_import::torch::DType;
use ssdit_import::{SeedCacheOptions, SeedSample, import_seed_cache};
use ssdit_store::Store;

fn read_sample(name: &str) -> Result<SeedSample, String> {
    let bytes = std::fs::read(data_file(&format!("cache/{name}"))).unwrap();
    SeedSample::from_bytes(bytes, name).map_err(|e| e.to_string())
}

#[test]
fn bf16_f32_and_non_contiguous_samples_are_read_value_for_value() {
    let expected = expected_tensors();
    let sizes = expected_json();
    for (name, dtype) in [
        ("flower_a.pt", DType::BF16),
        ("flower_b.pt", DType::F32),
        ("flower_c.pt", DType::BF16),
    ] {
        let sample = read_sample(name).unwrap();
        assert_eq!(sample.dtype, dtype, "{name}");
        let size = &sizes["cache"][name];
        let bucket = Bucket {
            width: size["width"].as_u64().unwrap() as u32,
            height: size["height"].as_u64().unwrap() as u32,
        };
        assert_eq!(sample.bucket, bucket, "{name}");
        for (what, tensor) in [
            ("latents", &sample.latents),
            ("text_embeds", &sample.text_embeds),
        ] {
            let reference = &expected[&format!("cache.{name}.{what}")];
            assert_eq!(tensor.shape(), reference.shape.as_slice(), "{name} {what}");
            // bf16 widens to f32 exactly, so every value must be identical.
            assert_eq!(tensor.data(), reference.values.as_slice(), "{name} {what}");
        }
    }
    // flower_c's text_embeds were saved as a transposed view: [8, 16] with strides (1, 8).
    assert_eq!(read_sample("flower_c.pt").unwrap().text_shape(), (8, 16));
}

#[test]
fn corrupt_and_wrong_files_are_rejected_with_the_reason() {
    let cases = [
        ("truncated.pt", "not a PyTorch zip archive"),
        ("not_a_zip.pt", "not a PyTorch zip archive"),
        ("wrong_keys.pt", "missing key latents"),
        (
            "wrong_shape.pt",
            "latents have shape [16, 5, 6], expected [16, 4, 6] for a 48x32 bucket",
        ),
        ("bad_height.pt", "height is a str"),
        ("nan.pt", "latents hold a non-finite value (NaN)"),
    ];
    for (name, reason) in cases {
        let error = read_sample(name).unwrap_err();
        assert!(error.starts_with(name), "{name}: {error}");
        assert!(error.contains(reason), "{name}: {error}");
    }
    let error = SeedSample::from_bytes(Vec::new(), "empty.pt").unwrap_err();
    assert!(error.to_string().contains("empty.pt"), "{error}");
}

async fn memory_dataset() -> Dataset {
    let store = Store::open("memory://").await.unwrap();
    Dataset::new(store, "flowers").unwrap()
}

#[tokio::test]
async fn a_seed_cache_folder_becomes_a_trainable_dataset() {
    let dataset = memory_dataset().await;
    let options = SeedCacheOptions {
        captions: Some(data().join("captions")),
        ..SeedCacheOptions::default()
    };
    let summary = import_seed_cache(&dataset, &data().join("cache"), &options)
        .await
        .unwrap();
    assert_eq!(summary.files, 9);
    assert_eq!(summary.imported, 3);
    assert_eq!(summary.captioned, 2);
    assert_eq!(summary.already_present, 0);
    let rejected: Vec<&str> = summary.rejected.iter().map(|r| r.file.as_str()).collect();
    assert_eq!(
        rejected,
        [
            "bad_height.pt",
            "nan.pt",
            "not_a_zip.pt",
            "truncated.pt",
            "wrong_keys.pt",
            "wrong_shape.pt"
        ]
    );
    assert_eq!(
        summary.dtypes,
        BTreeMap::from([("bfloat16".into(), 2), ("float32".into(), 1)])
    );
    assert_eq!(dataset.rejects().await.unwrap().len(), 6);

    // The trainer's manifest finds every imported sample ready.
    let encodings = summary.encodings.clone().unwrap();
    assert_eq!(encodings.vae, "seed-flux-vae");
    assert_eq!(encodings.text.encoder, "seed-text-d16");
    assert_eq!(encodings.text.max_length, 8);
    let manifest = dataset.training_manifest(&encodings).await.unwrap();
    assert_eq!(manifest.ready.len(), 3);
    assert!(manifest.missing.is_empty(), "{:?}", manifest.missing);

    // What was stored is what PyTorch saved, under the sample's bucket.
    let expected = expected_tensors();
    let samples = dataset.samples().await.unwrap();
    let mut captions = Vec::new();
    for sample in &samples {
        let latent = dataset
            .store()
            .get_tensors(&encodings.latent_key(&sample.id, sample.bucket).unwrap())
            .await
            .unwrap();
        let reference = &expected[&format!("cache.{}.latents", sample.source)];
        assert_eq!(
            latent.tensors()["latents"].data(),
            reference.values.as_slice()
        );
        let caption = dataset.caption(sample).await.unwrap();
        let text = CaptionHash::for_sample(&sample.id, caption.as_deref());
        let embedding = dataset
            .store()
            .get_tensors(&encodings.embedding_key(&text).unwrap())
            .await
            .unwrap();
        let reference = &expected[&format!("cache.{}.text_embeds", sample.source)];
        assert_eq!(
            embedding.tensors()["text_embeds"].data(),
            reference.values.as_slice()
        );
        if let Some(caption) = caption {
            captions.push((sample.source.clone(), caption));
        }
    }
    captions.sort();
    assert_eq!(
        captions,
        [
            (
                "flower_a.pt".to_string(),
                "a pink rose with dew drops on its petals".to_string()
            ),
            (
                "flower_b.pt".to_string(),
                "a tall sunflower against a blue sky".to_string()
            ),
        ]
    );

    // Importing again changes nothing.
    let again = import_seed_cache(&dataset, &data().join("cache"), &options)
        .await
        .unwrap();
    assert_eq!((again.imported, again.already_present), (0, 3));
    assert_eq!(dataset.samples().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_folder_without_valid_samples_imports_nothing_and_bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(data_file("cache/not_a_zip.pt"), dir.path().join("x.pt")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a sample").unwrap();
    let dataset = memory_dataset().await;
    let summary = import_seed_cache(&dataset, dir.path(), &SeedCacheOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (summary.files, summary.imported, summary.rejected.len()),
        (1, 0, 1)
    );
    assert!(summary.encodings.is_none());

    let options = SeedCacheOptions {
        vae_fingerprint: "has/slash".into(),
        ..SeedCacheOptions::default()
    };
    let error = import_seed_cache(&dataset, dir.path(), &options)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("vae fingerprint"), "{error}");
    let error = import_seed_cache(
        &dataset,
        &dir.path().join("missing"),
        &SeedCacheOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("missing"), "{error}");
}
