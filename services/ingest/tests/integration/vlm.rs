//! Captions from a VLM: a local OpenAI-compatible endpoint started by the test
//! on 127.0.0.1:0 answers each chat completion as the image's label (its
//! folder name) scripts it — a good caption, a persistent failure, or a slow
//! first answer. Each request must carry the model, the botanical system
//! instruction, the bucket-sized image as a data URL and the label in the user
//! turn; a good answer (cleaned) becomes the stored caption, a failure is a
//! rejection with its reason, and neither affects the other images.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use ssdit_caption::BOTANICAL_INSTRUCTION;
use ssdit_core::config::CaptionSource;
use ssdit_dataset::Dataset;
use ssdit_ingest::{CaptionMode, FileStatus, IngestOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MODEL: &str = "test-vlm";
const ANSWER: &str = "A macro shot of a sunflower, having bright yellow petals, the center is a brown disk, the background is blue sky, natural lighting.";
/// The client's timeout per attempt in these tests.
const TIMEOUT: Duration = Duration::from_millis(400);
/// How long the endpoint takes over the first request for a `slow` image.
const SLOW: Duration = Duration::from_millis(1_500);

/// The request bodies the endpoint saw, by label.
type Seen = Arc<Mutex<HashMap<String, Vec<Value>>>>;

/// Starts the endpoint; returns its base URL and the requests it saw.
async fn start_vlm() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Seen::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move { answer(stream, &log).await });
        }
    });
    (endpoint, seen)
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

/// Reads one request, records it under its label, and answers as the label
/// scripts it: `failing` always gets HTTP 500, `slow` gets its first answer
/// after `SLOW`, anything else a quoted caption (which the client unquotes).
async fn answer(mut stream: TcpStream, seen: &Mutex<HashMap<String, Vec<Value>>>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 16384];
    let header_end = loop {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..header_end]).to_lowercase();
    assert!(head.starts_with("post /v1/chat/completions "), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a content-length header");
    while data.len() < header_end + length {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let body: Value = serde_json::from_slice(&data[header_end..header_end + length]).unwrap();
    let label = label_of(&body);
    let attempt = {
        let mut seen = seen.lock().unwrap();
        let requests = seen.entry(label.clone()).or_default();
        requests.push(body);
        requests.len()
    };
    let (status, payload) = match label.as_str() {
        "failing" => (500, json!({"error": {"message": "model overloaded"}})),
        _ => {
            if label == "slow" && attempt == 1 {
                tokio::time::sleep(SLOW).await;
            }
            let content = format!("\"{ANSWER}\"");
            (
                200,
                json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}),
            )
        }
    };
    let payload = payload.to_string();
    let reply = format!(
        "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
        payload.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlm_requests_carry_label_image_and_instruction_and_failures_are_rejections() {
    let (endpoint, seen) = start_vlm().await;
    let dir = tempfile::tempdir().unwrap();
    let photos = common::data_root().join("photos");
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
    config.ingest.vlm.endpoint = endpoint;
    config.ingest.vlm.model = MODEL.into();
    config.ingest.vlm.timeout = TIMEOUT;
    config.ingest.vlm.retries = 2;
    let harness = common::Harness::new(config).await;
    let options = IngestOptions {
        recursive: true,
        captions: None,
    };
    let report = harness
        .ingester
        .ingest_folder("vlm", dir.path(), options)
        .await
        .unwrap();
    for outcome in &report.files {
        println!("{}: {:?}", outcome.file, outcome.status);
    }
    let status = |name: &str| {
        &report
            .files
            .iter()
            .find(|o| o.file == name)
            .unwrap_or_else(|| panic!("{name} is not in the reply"))
            .status
    };

    let requests = seen.lock().unwrap().clone();
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
        common::data_root().join("photos/chelsea.png"),
        folder.join("a.png"),
    )
    .unwrap();
    let harness = common::Harness::new(common::config()).await;
    let options = IngestOptions {
        recursive: true,
        captions: Some(CaptionMode::FolderLabel),
    };
    let report = harness
        .ingester
        .ingest_folder("labels", dir.path(), options)
        .await
        .unwrap();
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
