//! A private `nats-server -js` for one test: free loopback port, temporary store
//! directory, killed on drop. Never the machine's own server.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::io::AsyncReadExt;

const INSTALL_HINT: &str = "run .ci/install-test-deps.sh to install nats-server";

/// A running nats-server with JetStream.
pub struct NatsServer {
    child: Child,
    port: u16,
    store: TempDir,
}

fn binary() -> PathBuf {
    let candidates = [
        std::env::var_os("NATS_SERVER_BIN").map(PathBuf::from),
        Some(PathBuf::from("/usr/sbin/nats-server")),
        Some(PathBuf::from("/usr/bin/nats-server")),
        Some(PathBuf::from("/usr/local/bin/nats-server")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("nats-server not found: {INSTALL_HINT}"))
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

impl NatsServer {
    /// Starts a server on a free port (retrying if another process takes the port).
    pub async fn start() -> Self {
        let store = tempfile::tempdir().expect("temporary store directory");
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn(port, store.path()).await {
                return Self { child, port, store };
            }
        }
        panic!("nats-server did not start after 5 attempts ({INSTALL_HINT})");
    }

    /// Restarts the server on the same port and store directory (its streams survive).
    pub async fn restart(&mut self) {
        self.stop();
        self.child = spawn(self.port, self.store.path())
            .await
            .expect("nats-server restart on the same port");
    }

    /// Kills the server.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

/// Starts nats-server and waits until it accepts clients; `None` if it exits (port taken)
/// or does not answer within 10 s.
async fn spawn(port: u16, store: &Path) -> Option<Child> {
    let mut child = Command::new(binary())
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning nats-server: {e} ({INSTALL_HINT})"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return None;
        }
        if ready(port).await {
            return Some(child);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// The server greets every client with an `INFO` line once it accepts connections.
async fn ready(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut greeting = [0u8; 4];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut greeting)).await,
        Ok(Ok(_)) if &greeting == b"INFO"
    )
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
