//! Captions from a VLM: a local OpenAI-compatible endpoint started by the test
//! on 127.0.0.1:0 answers each chat completion as the image's label (its
//! folder name) scripts it — a good caption, a persistent failure, or a slow
//! first answer. Each request must carry the model, the botanical system
//! instruction, the bucket-sized image as a data URL and the label in the user
//! turn; a good answer (cleaned) becomes the stored caption, a failure is a
//! rejection with its reason, and neither affects the other images.

use crate::common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use ssdit_caption::BOTANICAL_INSTRUCTION;
use ssdit_core::config::CaptionSource;
use ssdit_dataset::Dataset;
use ssdit_ingest::{CaptionMode, FileStatus, IngestOptions};
use ssdit_testkit::{ChatEndpoint, ChatReply, shared_data};

const MODEL: &str = "test-vlm";
const ANSWER: &str = "A macro shot of a sunflower, having bright yellow petals, the center is a brown disk, the background is blue sky, natural lighting.";
/// The client's timeout per attempt in these tests.
const TIMEOUT: Duration = Duration::from_millis(400);
/// How long the endpoint takes over the first request for a `slow` image.
const SLOW: Duration = Duration::from_millis(1_500);

/// Starts the endpoint. It answers each request as its label scripts it:
/// `failing` always gets HTTP 500, `slow` gets its first answer after
/// `SLOW`, anything else a quoted caption (which the client unquotes).
async fn start_vlm() -> ChatEndpoint {
    let attempts = Mutex::new(HashMap::<String, usize>::new());
    ChatEndpoint::start(move |body, _| {
        let label = label_of(body);
        let attempt = {
            let mut attempts = attempts.lock().unwrap();
            let count = attempts.entry(label.clone()).or_default();
            *count += 1;
            *count
        };
        match label.as_str() {
            "failing" => ChatReply::error(500, "model overloaded"),
            "slow" if attempt == 1 => ChatReply::message(&format!("\"{ANSWER}\"")).after(SLOW),
            _ => ChatReply::message(&format!("\"{ANSWER}\"")),
        }
    })
    .await
}

/// The request bodies `vlm` saw, by label.
fn requests_by_label(vlm: &ChatEndpoint) -> HashMap<String, Vec<Value>> {
    let mut by_label = HashMap::<String, Vec<Value>>::new();
    for body in vlm.bodies() {
        by_label.entry(label_of(&body)).or_default().push(body);
    }
    by_label
}

/// The label line of a request's user turn.
fn label_of(body: &Value) -> String {
    let parts = body["messages"][1]["content"].as_array().unwrap();
    let text = parts.iter().find(|p| p["type"] == "text").unwrap()["text"]
        .as_str()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("Category label: "))
        .unwrap_or_else(|| panic!("no label line in the user turn: {text}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlm_requests_carry_label_image_and_instruction_and_failures_are_rejections() {
    let vlm = start_vlm().await;
    let dir = tempfile::tempdir().unwrap();
    let photos = shared_data("photos");
    for (folder, photo) in [
        ("common_sunflower", "flower.jpg"),
        ("failing", "rocket.jpg"),
        ("slow", "chelsea.png"),
    ] {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
        std::fs::copy(photos.join(photo), dir.path().join(folder).join(photo)).unwrap();
    }
    // A sidecar is ignored when captions come from the VLM.
    std::fs::write(
        dir.path().join("common_sunflower/flower.txt"),
        "A sidecar caption.",
    )
    .unwrap();

    let mut config = common::config();
    config.ingest.captions = CaptionSource::Vlm;
    config.ingest.vlm.endpoint = vlm.url().to_owned();
    config.ingest.vlm.model = MODEL.into();
    config.ingest.vlm.timeout = TIMEOUT;
    config.ingest.vlm.retries = 2;
    let harness = common::Harness::new(config).await;
    let options = IngestOptions {
        recursive: true,
        captions: None,
    };
    let report = harness.ingest("vlm", dir.path(), options).await;
    let status = |name: &str| {
        report
            .status_of(name)
            .unwrap_or_else(|| panic!("{name} is not in the reply"))
    };

    let requests = requests_by_label(&vlm);
    assert_eq!(requests["common sunflower"].len(), 1);
    assert_eq!(requests["failing"].len(), 2, "retried once, then refused");
    assert_eq!(requests["slow"].len(), 2, "timed out once, then answered");
    for request in requests.values().flatten() {
        assert_eq!(request["model"], MODEL);
        assert_eq!(request["messages"][0]["role"], "system");
        assert_eq!(request["messages"][0]["content"], BOTANICAL_INSTRUCTION);
        assert_eq!(request["messages"][1]["role"], "user");
        let parts = request["messages"][1]["content"].as_array().unwrap();
        let url = parts.iter().find(|p| p["type"] == "image_url").unwrap()["image_url"]["url"]
            .as_str()
            .unwrap();
        assert!(
            url.starts_with("data:image/png;base64,"),
            "the bucket-sized PNG is sent as a data URL"
        );
    }

    let dataset = Dataset::new(harness.store.clone(), "vlm").unwrap();
    for (name, label) in [
        ("common_sunflower/flower.jpg", "common sunflower"),
        ("slow/chelsea.png", "slow"),
    ] {
        let FileStatus::Accepted { sample_id, .. } = status(name) else {
            panic!("{name}: {:?}", status(name));
        };
        let record = dataset.sample(sample_id).await.unwrap();
        assert_eq!(record.label.as_deref(), Some(label));
        assert_eq!(
            dataset.caption(&record).await.unwrap().as_deref(),
            Some(ANSWER),
            "{name}: the cleaned answer is the caption"
        );
    }
    let FileStatus::Rejected { reason } = status("failing/rocket.jpg") else {
        panic!("failing/rocket.jpg: {:?}", status("failing/rocket.jpg"));
    };
    assert!(
        reason.contains("captioning failed") && reason.contains("HTTP 500 after 2 attempts"),
        "{reason}"
    );
    let rejects = dataset.rejects().await.unwrap();
    assert_eq!(rejects.len(), 1);
    assert!(rejects[0].file.ends_with("failing/rocket.jpg"));
    assert_eq!(rejects[0].reason, *reason);
    assert!(
        rejects[0].sample_id.is_some(),
        "the image itself was fine: the refusal names its sample id"
    );
}

#[tokio::test]
async fn folder_label_mode_uses_the_label_as_the_caption() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("pink-primrose");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(
        shared_data("photos").join("chelsea.png"),
        folder.join("a.png"),
    )
    .unwrap();
    let harness = common::Harness::new(common::config()).await;
    let options = IngestOptions {
        recursive: true,
        captions: Some(CaptionMode::FolderLabel),
    };
    let report = harness.ingest("labels", dir.path(), options).await;
    let FileStatus::Accepted { sample_id, .. } = &report.files[0].status else {
        panic!("{report:#?}");
    };
    let dataset = Dataset::new(harness.store.clone(), "labels").unwrap();
    let record = dataset.sample(sample_id).await.unwrap();
    assert_eq!(
        dataset.caption(&record).await.unwrap().as_deref(),
        Some("pink primrose")
    );
}
