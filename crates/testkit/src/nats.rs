//! A private `nats-server -js` for one test: free loopback port, temporary
//! store directory, killed on drop. Never the machine's own server, nor
//! another test's: each server has a unique name, which its greeting must
//! carry (a server another test started on the same port a moment earlier
//! would otherwise pass for ours).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{INSTALL_HINT, free_port};

/// A running nats-server with JetStream.
pub struct NatsServer {
    child: Child,
    port: u16,
    name: String,
    store: TempDir,
}

/// A server name no other server of this machine's tests has.
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("ssdit-test-{}-{n}", std::process::id())
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

impl NatsServer {
    /// Starts a server on a free port (retrying if another process takes the port).
    pub async fn start() -> Self {
        let store = tempfile::tempdir().expect("temporary store directory");
        let name = unique_name();
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn(port, &name, store.path()).await {
                return Self {
                    child,
                    port,
                    name,
                    store,
                };
            }
        }
        panic!("nats-server did not start after 5 attempts ({INSTALL_HINT})");
    }

    /// Restarts the server on the same port and store directory (its streams survive).
    pub async fn restart(&mut self) {
        self.stop();
        self.child = spawn(self.port, &self.name, self.store.path())
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

/// Starts nats-server `name` and waits until it greets clients; `None` if
/// it exits (port taken) or does not answer within 10 s.
async fn spawn(port: u16, name: &str, store: &Path) -> Option<Child> {
    let mut child = Command::new(binary())
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-n",
            name,
            "-js",
            "-sd",
        ])
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
        if greets(port, name).await {
            return Some(child);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Whether server `name` listens on `port`: a server greets every client
/// with an `INFO {…"server_name":"…"…}` line once it accepts connections.
async fn greets(port: u16, name: &str) -> bool {
    let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut reader = BufReader::new(stream);
    let mut greeting = Vec::new();
    let read = reader.read_until(b'\n', &mut greeting);
    let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), read).await else {
        return false;
    };
    let greeting = String::from_utf8_lossy(&greeting);
    greeting.starts_with("INFO") && greeting.contains(&format!("\"server_name\":\"{name}\""))
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
