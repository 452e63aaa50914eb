//! A scripted OpenAI-compatible chat-completions endpoint: the stand-in for
//! a vision-language model server in captioning tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the endpoint answers to one request.
#[derive(Debug, Clone)]
pub struct ChatReply {
    status: u16,
    body: Value,
    delay: Duration,
}

impl ChatReply {
    /// HTTP 200 with `content` as the assistant's message.
    pub fn message(content: &str) -> Self {
        let body = json!({"choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }]});
        Self {
            status: 200,
            body,
            delay: Duration::ZERO,
        }
    }

    /// HTTP `status` with an OpenAI-style error carrying `message`.
    pub fn error(status: u16, message: &str) -> Self {
        Self {
            status,
            body: json!({"error": {"message": message}}),
            delay: Duration::ZERO,
        }
    }

    /// The same reply, sent after `delay`.
    pub fn after(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }
}

/// A request as the endpoint received it.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The JSON body.
    pub body: Value,
    /// When it had arrived in full.
    pub at: Instant,
}

type Script = dyn Fn(&Value, usize) -> ChatReply + Send + Sync;

/// The endpoint on a free loopback port, serving until the test's runtime
/// ends. Every `POST /v1/chat/completions` is recorded and answered by the
/// script; a request that is not one fails the test.
pub struct ChatEndpoint {
    url: String,
    requests: Arc<Mutex<Vec<ChatRequest>>>,
    max_in_flight: Arc<AtomicUsize>,
}

impl ChatEndpoint {
    /// Starts the endpoint; `script` answers each request's body, given its
    /// 0-based arrival number.
    pub async fn start(
        script: impl Fn(&Value, usize) -> ChatReply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the chat endpoint");
        let url = format!(
            "http://{}/v1",
            listener.local_addr().expect("a bound address")
        );
        let endpoint = Self {
            url,
            requests: Arc::default(),
            max_in_flight: Arc::default(),
        };
        let script: Arc<Script> = Arc::new(script);
        let (requests, max_in_flight) = (endpoint.requests.clone(), endpoint.max_in_flight.clone());
        let in_flight = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (script, requests) = (script.clone(), requests.clone());
                let (in_flight, max_in_flight) = (in_flight.clone(), max_in_flight.clone());
                tokio::spawn(async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max_in_flight.fetch_max(now, Ordering::SeqCst);
                    answer(stream, &*script, &requests).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        endpoint
    }

    /// The base URL a client is configured with (`http://127.0.0.1:PORT/v1`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// The request bodies so far, in arrival order.
    pub fn bodies(&self) -> Vec<Value> {
        self.requests().into_iter().map(|r| r.body).collect()
    }

    /// The most requests that were open at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

/// Reads one request, records it, and sends the script's reply.
async fn answer(mut stream: TcpStream, script: &Script, requests: &Mutex<Vec<ChatRequest>>) {
    let Some(body) = read_request(&mut stream).await else {
        return;
    };
    let index = {
        let mut requests = requests.lock().expect("requests lock");
        requests.push(ChatRequest {
            body: body.clone(),
            at: Instant::now(),
        });
        requests.len() - 1
    };
    let reply = script(&body, index);
    tokio::time::sleep(reply.delay).await;
    let payload = reply.body.to_string();
    let response = format!(
        "HTTP/1.1 {} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
        reply.status,
        payload.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The JSON body of one HTTP/1.1 chat-completions request, or `None` when
/// the client hung up first.
async fn read_request(stream: &mut TcpStream) -> Option<Value> {
    let mut data = Vec::new();
    let mut buf = [0u8; 16384];
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
        .and_then(|v| v.trim().parse().ok())
        .expect("a content-length header");
    while data.len() < header_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some(serde_json::from_slice(&data[header_end..header_end + length]).expect("a JSON body"))
}
