//! The VLM client against a local OpenAI-compatible server started by the
//! test on 127.0.0.1:0: a raw HTTP/1.1 responder that checks each request
//! (model, system instruction, image as a data URL, label in the user turn)
//! and answers as each test scripts it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use ssdit_caption::vlm::{CaptionRequest, Captioner, OverlongPolicy, VlmConfig};
use ssdit_caption::{BOTANICAL_INSTRUCTION, Error, Fix};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MODEL: &str = "test-vlm";
const GOOD: &str = "A macro shot of a sunflower, having bright yellow petals, the center is a brown disk, the background is blue sky, natural lighting.";

/// What the server answers to the n-th request (0-based).
struct Reply {
    status: u16,
    content: String,
    delay: Duration,
}

impl Reply {
    fn caption(text: &str) -> Self {
        Self {
            status: 200,
            content: text.to_owned(),
            delay: Duration::ZERO,
        }
    }

    fn status(status: u16) -> Self {
        Self {
            status,
            content: String::new(),
            delay: Duration::ZERO,
        }
    }

    fn slow(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }
}

type Script = Box<dyn Fn(usize) -> Reply + Send + Sync>;

/// A request as the server saw it.
struct Seen {
    body: Value,
    at: Instant,
}

struct Server {
    endpoint: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    max_in_flight: Arc<AtomicUsize>,
}

impl Server {
    async fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}/v1", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let state = (
            Arc::new(Box::new(script) as Script),
            seen.clone(),
            Arc::new(AtomicUsize::new(0)),
            max_in_flight.clone(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (script, seen, in_flight, max) = state.clone();
                tokio::spawn(async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(now, Ordering::SeqCst);
                    serve(stream, &script, &seen).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            endpoint,
            seen,
            max_in_flight,
        }
    }

    fn requests(&self) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.body.clone())
            .collect()
    }
}

/// Reads one request, checks it, answers as scripted.
async fn serve(mut stream: TcpStream, script: &Script, seen: &Mutex<Vec<Seen>>) {
    let Some(body) = read_request(&mut stream).await else {
        return;
    };
    let (status, payload, delay) = match check_request(&body) {
        Err(problem) => (400, json!({"error": problem}).to_string(), Duration::ZERO),
        Ok(()) => {
            let index = {
                let mut seen = seen.lock().unwrap();
                seen.push(Seen {
                    body,
                    at: Instant::now(),
                });
                seen.len() - 1
            };
            let reply = script(index);
            let payload = if reply.status == 200 {
                json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content}, "finish_reason": "stop"}]}).to_string()
            } else {
                json!({"error": {"message": "scripted failure"}}).to_string()
            };
            (reply.status, payload, reply.delay)
        }
    };
    tokio::time::sleep(delay).await;
    let head = format!(
        "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        payload.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(payload.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The JSON body of one HTTP/1.1 request with a content-length.
async fn read_request(stream: &mut TcpStream) -> Option<Value> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
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
        .and_then(|v| v.trim().parse().ok())?;
    while data.len() < header_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    serde_json::from_slice(&data[header_end..header_end + length]).ok()
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

fn config(server: &Server) -> VlmConfig {
    VlmConfig {
        endpoint: server.endpoint.clone(),
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
    let server = Server::start(|_| Reply::caption(GOOD)).await;
    let captioner = Captioner::new(config(&server)).unwrap();
    let outcome = captioner
        .caption(&request(Some("sunflower")))
        .await
        .unwrap();
    assert_eq!(outcome.caption, GOOD);
    assert_eq!(outcome.attempts, 1);
    assert_eq!(outcome.fixes, []);

    let seen = server.requests();
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
    let server = Server::start(|_| Reply::caption(GOOD)).await;
    let captioner = Captioner::new(VlmConfig {
        system_prompt_file: Some(prompt),
        ..config(&server)
    })
    .unwrap();
    captioner.caption(&request(None)).await.unwrap();
    let body = &server.requests()[0];
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
    let server = Server::start(|n| {
        if n == 0 {
            Reply::status(500)
        } else {
            Reply::caption(GOOD)
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
    let server = Server::start(|_| Reply::status(404)).await;
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
    assert_eq!(server.requests().len(), 1);

    let server = Server::start(|_| Reply::status(503)).await;
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
    let server = Server::start(move |n| {
        let reply = Reply::caption(GOOD);
        if n == 0 { reply.slow(slow) } else { reply }
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

    let always_slow = Server::start(move |_| Reply::caption(GOOD).slow(slow)).await;
    let config = VlmConfig {
        endpoint: always_slow.endpoint.clone(),
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
    let server = Server::start(move |_| Reply::caption(messy)).await;
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
    let server =
        Server::start(move |n| Reply::caption(if n == 0 { &long_first } else { GOOD })).await;
    let outcome = Captioner::new(config(&server))
        .unwrap()
        .caption(&request(None))
        .await
        .unwrap();
    assert_eq!((outcome.attempts, outcome.truncated), (2, false));
    assert_eq!(outcome.caption, GOOD);

    let long_always = long.clone();
    let server = Server::start(move |_| Reply::caption(&long_always)).await;
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
    let server = Server::start(|_| Reply::caption(GOOD).slow(Duration::from_millis(150))).await;
    let captioner = Captioner::new(VlmConfig {
        max_concurrency: 2,
        ..config(&server)
    })
    .unwrap();
    let requests: Vec<_> = (0..6).map(|_| request(None)).collect();
    let results = captioner.caption_all(&requests).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(server.max_in_flight.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn rate_limit_spaces_request_starts() {
    let server = Server::start(|_| Reply::caption(GOOD)).await;
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
    let mut times: Vec<Instant> = server.seen.lock().unwrap().iter().map(|s| s.at).collect();
    times.sort();
    // 20 per second: starts at least 50 ms apart (a little slack for arrival jitter).
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(40), "requests {gap:?} apart");
    }
}
