//! The dataset tools on a small imported set: the seed-format samples of
//! `ssdit-import`'s fixtures (written by PyTorch), imported with their
//! captions, then measured, previewed and exported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use ssdit_dataset::{Bucket, Dataset, Encodings};
use ssdit_import::{SeedCacheOptions, import_seed_cache};
use ssdit_inspect::export::{ExportManifest, MANIFEST_FILE, export_dataset};
use ssdit_inspect::preview::{decode_tiles, load_samples, sheet};
use ssdit_inspect::stats::dataset_stats;
use ssdit_store::{Store, TensorFile};
use ssdit_vae::PreviewCodec;

/// `ssdit-import`'s fixture folder.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../import/tests/data")
}

fn expected_json() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap()
}

/// The three valid fixture samples in a memory store (the six bad files are rejected).
async fn imported() -> (Dataset, Encodings) {
    let store = Store::open("memory://").await.unwrap();
    let dataset = Dataset::new(store, "flowers").unwrap();
    let options = SeedCacheOptions {
        captions: Some(fixtures().join("captions")),
        ..SeedCacheOptions::default()
    };
    let summary = import_seed_cache(&dataset, &fixtures().join("cache"), &options)
        .await
        .unwrap();
    assert_eq!(summary.imported, 3);
    (dataset, summary.encodings.unwrap())
}

/// Every latent value per channel, in f64, read back from the store.
async fn channel_values(dataset: &Dataset) -> Vec<Vec<f64>> {
    let mut channels = vec![Vec::new(); 16];
    for sample in dataset.samples().await.unwrap() {
        let key = ssdit_store::layout::latent(
            &sample.id,
            "seed-flux-vae",
            sample.bucket.width,
            sample.bucket.height,
        )
        .unwrap();
        let file: TensorFile = dataset.store().get_tensors(&key).await.unwrap();
        let latent = &file.tensors()["latents"];
        let plane = latent.shape()[1] * latent.shape()[2];
        for (channel, values) in latent.data().chunks(plane).enumerate() {
            channels[channel].extend(values.iter().map(|&v| f64::from(v)));
        }
    }
    channels
}

#[tokio::test]
async fn stats_agree_with_numpy_on_the_same_latents() {
    let (dataset, _) = imported().await;
    let stats = dataset_stats(&dataset, "seed-flux-vae").await.unwrap();
    let numpy = &expected_json()["stats"];
    assert_eq!(stats.samples, 3);
    assert_eq!(stats.without_latent, 0);
    assert_eq!(stats.channels.len(), 16);
    let close = |got: f64, want: &serde_json::Value, what: &str| {
        let want = want.as_f64().unwrap();
        assert!((got - want).abs() < 1e-5, "{what}: {got} vs numpy {want}");
    };
    // numpy.mean / numpy.std (ddof 0) per channel over every value pooled.
    for (index, channel) in stats.channels.iter().enumerate() {
        close(channel.mean, &numpy["channel_mean"][index], "channel mean");
        close(channel.std(), &numpy["channel_std"][index], "channel std");
    }
    close(stats.overall.mean, &numpy["mean"], "mean");
    close(stats.overall.std(), &numpy["std"], "std");
    // The seed's calculate_cache_statistics.py numbers.
    close(stats.seed_mean, &numpy["seed_mean"], "seed mean");
    close(stats.seed_std, &numpy["seed_std"], "seed std");

    // And against a plain two-pass computation on the stored values.
    for (channel, values) in stats.channels.iter().zip(channel_values(&dataset).await) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert_eq!(channel.count, values.len() as u64);
        assert!((channel.mean - mean).abs() < 1e-12);
        assert!((channel.std() - std).abs() < 1e-12);
    }

    // Buckets and caption lengths: flower_a (9 words), flower_b (7), flower_c none.
    assert_eq!(
        stats.buckets,
        BTreeMap::from([
            (
                Bucket {
                    width: 32,
                    height: 32
                },
                1
            ),
            (
                Bucket {
                    width: 32,
                    height: 48
                },
                1
            ),
            (
                Bucket {
                    width: 48,
                    height: 32
                },
                1
            ),
        ])
    );
    let mut words = stats.caption_words.clone();
    words.sort_unstable();
    assert_eq!(words, [7, 9]);
    assert_eq!(stats.without_caption, 1);
    let table = stats.table();
    assert!(
        table.contains("3 samples with latents of VAE seed-flux-vae"),
        "{table}"
    );
    assert!(table.contains("48x32"), "{table}");

    let picture = stats.render().unwrap();
    assert_eq!(picture.width(), 800);
    assert!(picture.height() >= 3 * 400, "{}", picture.height());

    let other = dataset_stats(&dataset, "other-vae").await.unwrap();
    assert_eq!((other.samples, other.without_latent), (0, 3));
}

#[tokio::test]
async fn preview_decodes_latents_onto_a_captioned_sheet() {
    let (dataset, _) = imported().await;
    let device = Default::default();
    let codec = PreviewCodec::<NdArray<f32>>::new(&device);

    let all = load_samples(&dataset, "seed-flux-vae", &[], 2)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let flower_a = dataset
        .samples()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.source == "flower_a.pt")
        .unwrap();
    let named = load_samples(
        &dataset,
        "seed-flux-vae",
        &[flower_a.id[..12].to_string()],
        9,
    )
    .await
    .unwrap();
    assert_eq!(named.len(), 1);
    let tiles = decode_tiles(&codec, &named, &device).unwrap();
    assert_eq!(tiles[0].image.dimensions(), (48, 32));
    assert!(
        tiles[0].caption.contains("flower_a.pt 48x32: a pink rose"),
        "{}",
        tiles[0].caption
    );
    let image = sheet("flowers", "preview", &tiles, 4).unwrap();
    assert!(image.width() > 256 && image.height() > 256);

    let error = load_samples(&dataset, "seed-flux-vae", &["zz".to_string()], 9)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no sample \"zz\""), "{error}");
    let error = load_samples(&dataset, "other-vae", &[], 9)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no sample with a latent of VAE other-vae"),
        "{error}"
    );
}

#[tokio::test]
async fn export_writes_one_safetensors_per_sample_and_a_manifest() {
    let (dataset, encodings) = imported().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = export_dataset(&dataset, &encodings, dir.path())
        .await
        .unwrap();
    assert_eq!(manifest.samples.len(), 3);
    assert!(manifest.missing.is_empty());
    let written: ExportManifest =
        serde_json::from_slice(&std::fs::read(dir.path().join(MANIFEST_FILE)).unwrap()).unwrap();
    assert_eq!(written, manifest);
    let expected = safetensors::SafeTensors::deserialize(
        &std::fs::read(fixtures().join("expected.safetensors")).unwrap(),
    )
    .unwrap()
    .tensors()
    .into_iter()
    .map(|(name, view)| (name, view.data().to_vec()))
    .collect::<BTreeMap<_, _>>();
    for sample in &manifest.samples {
        let bytes = std::fs::read(dir.path().join(&sample.file)).unwrap();
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let metadata = header.metadata().clone().unwrap();
        assert_eq!(metadata["id"], sample.id);
        assert_eq!(metadata["width"], sample.width.to_string());
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for name in ["latents", "text_embeds"] {
            let view = file.tensor(name).unwrap();
            assert_eq!(view.dtype(), safetensors::Dtype::F32);
            let reference = &expected[&format!("cache.{}.{name}", sample.source)];
            assert_eq!(
                view.data(),
                reference.as_slice(),
                "{} {name}",
                sample.source
            );
        }
    }
}
