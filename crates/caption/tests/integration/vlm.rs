//! The VLM client against a local OpenAI-compatible endpoint started by the
//! test on 127.0.0.1:0 (`ssdit_testkit::ChatEndpoint`), which checks each
//! request (model, system instruction, image as a data URL, label in the
//! user turn) and answers as each test scripts it.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;
use ssdit_caption::vlm::{CaptionRequest, Captioner, OverlongPolicy, VlmConfig};
use ssdit_caption::{BOTANICAL_INSTRUCTION, Error, Fix};
use ssdit_testkit::{ChatEndpoint, ChatReply};

const MODEL: &str = "test-vlm";
const GOOD: &str = "A macro shot of a sunflower, having bright yellow petals, the center is a brown disk, the background is blue sky, natural lighting.";

/// An endpoint that answers every well-formed captioning request as
/// `script` says for the n-th request (0-based), and a malformed one with
/// HTTP 400 naming the problem.
async fn start(script: impl Fn(usize) -> ChatReply + Send + Sync + 'static) -> ChatEndpoint {
    ChatEndpoint::start(move |body, n| match check_request(body) {
        Ok(()) => script(n),
        Err(problem) => ChatReply::error(400, &problem),
    })
    .await
}

/// HTTP `status` with an error body.
fn failure(status: u16) -> ChatReply {
    ChatReply::error(status, "scripted failure")
}

/// What every captioning request must hold.
fn check_request(body: &Value) -> Result<(), String> {
    if body["model"] != MODEL {
        return Err(format!("model is {}", body["model"]));
    }
    let system = &body["messages"][0];
    if system["role"] != "system" || system["content"].as_str().is_none_or(str::is_empty) {
        return Err("no system instruction".into());
    }
    let user = &body["messages"][1];
    let parts = user["content"]
        .as_array()
        .ok_or("user content is not a list")?;
    let text = parts
        .iter()
        .find(|p| p["type"] == "text")
        .ok_or("no text part")?;
    if !text["text"]
        .as_str()
        .unwrap_or("")
        .contains("Category label: ")
    {
        return Err("no label line in the user turn".into());
    }
    let image = parts
        .iter()
        .find(|p| p["type"] == "image_url")
        .ok_or("no image part")?;
    let url = image["image_url"]["url"].as_str().unwrap_or("");
    if !(url.starts_with("data:image/") && url.contains(";base64,")) {
        return Err(format!("image is not a base64 data URL: {:.40}", url));
    }
    Ok(())
}

fn config(server: &ChatEndpoint) -> VlmConfig {
    VlmConfig {
        endpoint: server.url().to_owned(),
        model: MODEL.to_owned(),
        timeout_ms: 2_000,
        max_attempts: 3,
        backoff_initial_ms: 10,
        backoff_max_ms: 40,
        ..VlmConfig::default()
    }
}

/// A tiny PNG to send.
fn png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(4, 4, image::Rgb([200, 180, 20]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn request(label: Option<&str>) -> CaptionRequest {
    CaptionRequest {
        input: "sunflower/0001.png".to_owned(),
        image: png(),
        label: label.map(str::to_owned),
    }
}

#[tokio::test]
async fn request_carries_model_instruction_image_and_label() {
    let server = start(|_| ChatReply::message(GOOD)).await;
    let captioner = Captioner::new(config(&server)).unwrap();
    let outcome = captioner
        .caption(&request(Some("sunflower")))
        .await
        .unwrap();
    assert_eq!(outcome.caption, GOOD);
    assert_eq!(outcome.attempts, 1);
    assert_eq!(outcome.fixes, []);

    let seen = server.bodies();
    assert_eq!(seen.len(), 1);
    let body = &seen[0];
    assert_eq!(body["messages"][0]["content"], BOTANICAL_INSTRUCTION);
    let parts = body["messages"][1]["content"].as_array().unwrap();
    assert!(
        parts[0]["text"]
            .as_str()
            .unwrap()
            .contains("Category label: sunflower")
    );
    let url = parts[1]["image_url"]["url"].as_str().unwrap();
    let encoded = url
        .strip_prefix("data:image/png;base64,")
        .expect("PNG data URL");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    assert_eq!(decoded, png());
    assert!(body["max_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_custom_instruction_file_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let prompt = dir.path().join("prompt.txt");
    std::fs::write(&prompt, "Caption the flower in one line.\n").unwrap();
    let server = start(|_| ChatReply::message(GOOD)).await;
    let captioner = Captioner::new(VlmConfig {
        system_prompt_file: Some(prompt),
        ..config(&server)
    })
    .unwrap();
    captioner.caption(&request(None)).await.unwrap();
    let body = &server.bodies()[0];
    assert_eq!(
        body["messages"][0]["content"],
        "Caption the flower in one line."
    );
    assert!(
        body["messages"][1]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Category label: none")
    );
}

#[tokio::test]
async fn server_error_then_success_is_retried() {
    let server = start(|n| {
        if n == 0 {
            failure(500)
        } else {
            ChatReply::message(GOOD)
        }
    })
    .await;
    let captioner = Captioner::new(config(&server)).unwrap();
    let outcome = captioner
        .caption(&request(Some("sunflower")))
        .await
        .unwrap();
    assert_eq!(outcome.attempts, 2);
    assert_eq!(outcome.caption, GOOD);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_persistent_5xx_is_reported() {
    let server = start(|_| failure(404)).await;
    let err = Captioner::new(config(&server))
        .unwrap()
        .caption(&request(None))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Http {
                status: 404,
                attempts: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(server.bodies().len(), 1);

    let server = start(|_| failure(503)).await;
    let err = Captioner::new(config(&server))
        .unwrap()
        .caption(&request(None))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Http {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("sunflower/0001.png"), "{err}");
}

#[tokio::test]
async fn slow_response_times_out_and_is_retried_or_reported() {
    let slow = Duration::from_millis(1_500);
    let server = start(move |n| {
        let reply = ChatReply::message(GOOD);
        if n == 0 { reply.after(slow) } else { reply }
    })
    .await;
    let fast_timeout = VlmConfig {
        timeout_ms: 250,
        ..config(&server)
    };
    let outcome = Captioner::new(fast_timeout.clone())
        .unwrap()
        .caption(&request(None))
        .await
        .unwrap();
    assert_eq!(outcome.attempts, 2);

    let always_slow = start(move |_| ChatReply::message(GOOD).after(slow)).await;
    let config = VlmConfig {
        endpoint: always_slow.url().to_owned(),
        max_attempts: 2,
        ..fast_timeout
    };
    let started = Instant::now();
    let err = Captioner::new(config)
        .unwrap()
        .caption(&request(None))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { attempts: 2, .. }), "{err}");
    assert!(
        started.elapsed() < slow * 2,
        "the timeout cut the waits short"
    );
}

#[tokio::test]
async fn rule_breaking_caption_is_cleaned() {
    let messy = "**Caption:** \"A macro shot of a sunflower,\nhaving bright yellow petals,\nnatural lighting.\"";
    let server = start(move |_| ChatReply::message(messy)).await;
    let outcome = Captioner::new(config(&server))
        .unwrap()
        .caption(&request(None))
        .await
        .unwrap();
    assert_eq!(
        outcome.caption,
        "A macro shot of a sunflower, having bright yellow petals, natural lighting."
    );
    assert_eq!(outcome.attempts, 1);
    for fix in [Fix::Markdown, Fix::Lines, Fix::Quotes] {
        assert!(
            outcome.fixes.contains(&fix),
            "{fix:?} in {:?}",
            outcome.fixes
        );
    }
}

#[tokio::test]
async fn overlong_caption_is_asked_again_then_truncated_or_refused() {
    let long = format!("{GOOD} {}", "with many more details,".repeat(15));
    let long_first = long.clone();
    let server = start(move |n| ChatReply::message(if n == 0 { &long_first } else { GOOD })).await;
    let outcome = Captioner::new(config(&server))
        .unwrap()
        .caption(&request(None))
        .await
        .unwrap();
    assert_eq!((outcome.attempts, outcome.truncated), (2, false));
    assert_eq!(outcome.caption, GOOD);

    let long_always = long.clone();
    let server = start(move |_| ChatReply::message(&long_always)).await;
    let outcome = Captioner::new(config(&server))
        .unwrap()
        .caption(&request(None))
        .await
        .unwrap();
    assert!(outcome.truncated);
    assert_eq!(outcome.attempts, 3);
    assert!(
        outcome.caption.split_whitespace().count() <= 50,
        "{}",
        outcome.caption
    );
    assert!(outcome.caption.starts_with("A macro shot of a sunflower"));

    let refuse = VlmConfig {
        overlong: OverlongPolicy::Reject,
        ..config(&server)
    };
    let err = Captioner::new(refuse)
        .unwrap()
        .caption(&request(None))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rules { attempts: 3, .. }), "{err}");
}

#[tokio::test]
async fn concurrency_limit_holds() {
    let server = start(|_| ChatReply::message(GOOD).after(Duration::from_millis(150))).await;
    let captioner = Captioner::new(VlmConfig {
        max_concurrency: 2,
        ..config(&server)
    })
    .unwrap();
    let requests: Vec<_> = (0..6).map(|_| request(None)).collect();
    let results = captioner.caption_all(&requests).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(server.max_in_flight(), 2);
}

#[tokio::test]
async fn rate_limit_spaces_request_starts() {
    let server = start(|_| ChatReply::message(GOOD)).await;
    let captioner = Captioner::new(VlmConfig {
        max_concurrency: 8,
        requests_per_second: Some(20.0),
        ..config(&server)
    })
    .unwrap();
    let requests: Vec<_> = (0..5).map(|_| request(None)).collect();
    assert!(
        captioner
            .caption_all(&requests)
            .await
            .iter()
            .all(Result::is_ok)
    );
    let mut times: Vec<Instant> = server.requests().iter().map(|r| r.at).collect();
    times.sort();
    // 20 per second: starts at least 50 ms apart (a little slack for arrival jitter).
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(40), "requests {gap:?} apart");
    }
}
