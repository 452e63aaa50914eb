//! The six photos with their sidecar captions: all accepted with their seed
//! bucket, stored (record, bucket-sized PNG, caption) and announced once;
//! ingesting the folder again changes nothing and announces nothing.

use crate::common;

use ssdit_dataset::Dataset;
use ssdit_ingest::{FileStatus, IngestOptions};
use ssdit_proto::v1::{SampleIngested, SampleRejected};
use ssdit_store::Key;
use ssdit_testkit::{PHOTOS, shared_data};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_become_captioned_samples_once() {
    let dir = tempfile::tempdir().unwrap();
    let captions = common::captioned_photos(dir.path());
    let harness = common::Harness::new(common::config()).await;
    let report = harness
        .ingest("photos", dir.path(), IngestOptions::default())
        .await;
    println!(
        "{} photos in {} ms ({:.0} ms per photo, DPID, 2 workers)",
        report.files.len(),
        report.elapsed.as_millis(),
        report.elapsed.as_secs_f64() * 1e3 / report.files.len() as f64
    );
    assert_eq!(report.files.len(), 6);
    assert_eq!(report.accepted(), 6, "{report:#?}");
    assert_eq!(report.skipped, 0);

    let dataset = Dataset::new(harness.store.clone(), "photos").unwrap();
    let samples = dataset.samples().await.unwrap();
    assert_eq!(samples.len(), 6);
    let events: Vec<SampleIngested> = harness.events("ingested").await;
    assert_eq!(events.len(), 6, "one SampleIngested per sample");

    for (photo, outcome) in PHOTOS.iter().zip(&report.files) {
        let (name, (bw, bh)) = (photo.file, photo.bucket);
        assert_eq!(outcome.file, name, "reply in input order");
        let FileStatus::Accepted { sample_id, bucket } = &outcome.status else {
            panic!("{name}: {:?}", outcome.status);
        };
        assert_eq!((bucket.width, bucket.height), (bw, bh), "{name}");
        let original = std::fs::read(dir.path().join(name)).unwrap();
        assert_eq!(
            sample_id,
            ssdit_data::ContentId::of(&original).as_str(),
            "{name}: id is the hash of the original bytes"
        );

        let record = dataset.sample(sample_id).await.unwrap();
        assert_eq!(record.original_size, [photo.size.0, photo.size.1], "{name}");
        assert_eq!((record.bucket.width, record.bucket.height), (bw, bh));
        assert!(record.source.ends_with(name), "{}", record.source);
        assert_eq!(record.label, None, "sidecar mode records no folder label");

        let png = harness
            .store
            .get(&Key::parse(&record.image_key).unwrap())
            .await
            .unwrap();
        let image = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
        assert_eq!(
            (image.width(), image.height()),
            (bw, bh),
            "{name}: stored at bucket size"
        );

        let caption = dataset.caption(&record).await.unwrap().unwrap();
        assert_eq!(
            caption, captions[name],
            "{name}: the sidecar's text, trimmed"
        );

        let event = events
            .iter()
            .find(|e| e.sample_id == *sample_id)
            .unwrap_or_else(|| panic!("{name}: no event"));
        assert_eq!(event.dataset, "photos");
        assert_eq!(event.image_key, record.image_key);
        assert_eq!(Some(&event.caption_key), record.caption_key.as_ref());
        assert_eq!((event.bucket_width, event.bucket_height), (bw, bh));
    }

    // Again: nothing new in the store, nothing published.
    let objects_before = harness
        .store
        .list(&Key::parse("datasets/photos").unwrap())
        .await
        .unwrap();
    let again = harness
        .ingest("photos", dir.path(), IngestOptions::default())
        .await;
    assert_eq!(
        (again.accepted(), again.already_present(), again.rejected()),
        (0, 6, 0)
    );
    for (first, second) in report.files.iter().zip(&again.files) {
        let FileStatus::Accepted { sample_id, .. } = &first.status else {
            unreachable!()
        };
        assert_eq!(
            second.status,
            FileStatus::AlreadyPresent {
                sample_id: sample_id.clone()
            }
        );
    }
    let objects_after = harness
        .store
        .list(&Key::parse("datasets/photos").unwrap())
        .await
        .unwrap();
    assert_eq!(objects_before, objects_after, "re-ingest writes nothing");
    assert!(
        harness
            .events::<SampleIngested>("ingested")
            .await
            .is_empty()
    );
    assert!(
        harness
            .events::<SampleRejected>("rejected")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn duplicates_in_one_batch_are_one_sample_and_missing_captions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let photos = shared_data("photos");
    std::fs::copy(photos.join("rocket.jpg"), dir.path().join("a.jpg")).unwrap();
    std::fs::copy(photos.join("rocket.jpg"), dir.path().join("b.jpg")).unwrap();
    std::fs::copy(photos.join("chelsea.png"), dir.path().join("c.png")).unwrap();
    std::fs::write(dir.path().join("a.txt"), "A rocket.").unwrap();
    std::fs::write(dir.path().join("b.caption"), "The same rocket.").unwrap();
    std::fs::write(dir.path().join("notes.md"), "not an image").unwrap();
    let harness = common::Harness::new(common::config()).await;
    let report = harness
        .ingest("dups", dir.path(), IngestOptions::default())
        .await;
    assert_eq!(report.skipped, 1, "notes.md");
    assert_eq!(
        (
            report.accepted(),
            report.already_present(),
            report.rejected()
        ),
        (1, 1, 1),
        "{report:#?}"
    );
    let FileStatus::Rejected { reason } = &report.files[2].status else {
        panic!("{:?}", report.files[2]);
    };
    assert!(
        reason.contains("c.txt") && reason.contains("c.caption"),
        "{reason}"
    );
    let dataset = Dataset::new(harness.store.clone(), "dups").unwrap();
    let rejects = dataset.rejects().await.unwrap();
    assert_eq!(rejects.len(), 1);
    assert!(rejects[0].file.ends_with("c.png"));
    assert!(rejects[0].sample_id.is_some(), "the image itself was fine");
    assert_eq!(harness.events::<SampleIngested>("ingested").await.len(), 1);
}
