//! The bad inputs: each refused with its own clear reason in the dataset's
//! rejects list and announced, nothing else affected, the overlong caption
//! accepted; ingesting again records and announces nothing new.

use crate::common;

use ssdit_dataset::Dataset;
use ssdit_ingest::{FileStatus, IngestOptions};
use ssdit_proto::v1::{SampleIngested, SampleRejected};
use ssdit_testkit::shared_data;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_is_rejected_with_its_own_reason() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_files(&shared_data("bad-inputs"), dir.path());
    // Pair the caption files with real images so that the caption path runs.
    let photos = shared_data("photos");
    std::fs::copy(
        photos.join("flower.jpg"),
        dir.path().join("invalid-utf8.jpg"),
    )
    .unwrap();
    std::fs::copy(
        photos.join("rocket.jpg"),
        dir.path().join("overlong-caption.jpg"),
    )
    .unwrap();
    // A good photo with its caption: the bad ones must not affect it.
    std::fs::copy(photos.join("coffee.png"), dir.path().join("coffee.png")).unwrap();
    std::fs::write(dir.path().join("coffee.txt"), common::flower_caption(7)).unwrap();

    let harness = common::Harness::new(common::config()).await;
    let report = harness
        .ingest("bad", dir.path(), IngestOptions::default())
        .await;
    let status = |name: &str| {
        report
            .status_of(name)
            .unwrap_or_else(|| panic!("{name} is not in the reply"))
    };
    let reason = |name: &str| match status(name) {
        FileStatus::Rejected { reason } => reason.clone(),
        other => panic!("{name}: expected a rejection, got {other:?}"),
    };
    let expected = [
        ("bomb.png", "decompression bomb"),
        ("empty.png", "file is empty"),
        ("not-an-image.png", "not a recognised image format"),
        ("truncated.jpg", "truncated"),
        (
            "invalid-utf8.jpg",
            "caption file invalid-utf8.txt: caption is not valid UTF-8",
        ),
    ];
    let mut reasons = Vec::new();
    for (name, needle) in expected {
        let reason = reason(name);
        assert!(reason.contains(needle), "{name}: {reason}");
        reasons.push(reason);
    }
    reasons.sort();
    reasons.dedup();
    assert_eq!(reasons.len(), expected.len(), "every reason is its own");

    assert!(matches!(
        status("overlong-caption.jpg"),
        FileStatus::Accepted { .. }
    ));
    assert!(matches!(status("coffee.png"), FileStatus::Accepted { .. }));
    assert_eq!(report.files.len(), 7);

    let dataset = Dataset::new(harness.store.clone(), "bad").unwrap();
    let samples = dataset.samples().await.unwrap();
    assert_eq!(samples.len(), 2);
    let overlong = samples
        .iter()
        .find(|s| s.source.ends_with("overlong-caption.jpg"))
        .unwrap();
    let caption = dataset.caption(overlong).await.unwrap().unwrap();
    assert!(
        caption.split_whitespace().count() > 1000,
        "the overlong caption is kept whole; the tokenizer truncates it"
    );

    let rejects = dataset.rejects().await.unwrap();
    assert_eq!(rejects.len(), expected.len());
    for (name, needle) in expected {
        let record = rejects
            .iter()
            .find(|r| r.file.ends_with(name))
            .unwrap_or_else(|| panic!("{name} is not in the rejects list"));
        assert!(record.reason.contains(needle), "{record:?}");
        assert_eq!(record.stage, "ingest");
    }
    let rejected: Vec<SampleRejected> = harness.events("rejected").await;
    assert_eq!(rejected.len(), expected.len());
    assert!(
        rejected
            .iter()
            .all(|e| e.dataset == "bad" && e.stage == "ingest")
    );
    assert_eq!(harness.events::<SampleIngested>("ingested").await.len(), 2);

    let again = harness
        .ingest("bad", dir.path(), IngestOptions::default())
        .await;
    assert_eq!(
        (again.accepted(), again.already_present(), again.rejected()),
        (0, 2, expected.len())
    );
    assert_eq!(dataset.rejects().await.unwrap().len(), expected.len());
    assert!(
        harness
            .events::<SampleRejected>("rejected")
            .await
            .is_empty()
    );
    assert!(
        harness
            .events::<SampleIngested>("ingested")
            .await
            .is_empty()
    );
}
