//! A private S3-compatible server for one test: moto's server mode
//! (`python3 -m moto.server`) on a free loopback port, killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{INSTALL_HINT, free_port, wait_for_port};

/// Credentials moto accepts (any are accepted; these are what the services
/// are given through the usual AWS variables).
pub const ACCESS_KEY: &str = "testing";
/// See [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "testing";
/// The region the buckets live in.
pub const REGION: &str = "us-east-1";

/// A running S3-compatible server.
pub struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    /// Starts moto on a free port and creates `bucket`.
    pub async fn start(bucket: &str) -> Self {
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new("python3")
                .args([
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawning moto: {e} ({INSTALL_HINT})"));
            if wait_for_port(port, Duration::from_secs(30)).await {
                let server = Self { child, port };
                server.create_bucket(bucket).await;
                return server;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("moto's S3 server did not start ({INSTALL_HINT})");
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment a client of this server needs (credentials, region).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_REGION", REGION.into()),
        ]
    }

    /// Kills the server (its objects are lost: moto keeps them in memory).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn create_bucket(&self, bucket: &str) {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connecting to moto");
        let request = format!(
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("sending CreateBucket");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("reading CreateBucket's answer");
        assert!(
            response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
            "creating bucket {bucket} on moto failed: {}",
            response.lines().next().unwrap_or_default()
        );
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
