//! A loopback TCP proxy whose link can be cut and restored: put it between
//! the services and a server (moto, NATS) to make that server unreachable
//! for a while without stopping it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// What the proxy has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyCounts {
    /// Connections forwarded to the target.
    pub forwarded: u64,
    /// Connections closed at once because the link was cut.
    pub refused: u64,
    /// Open connections severed by [`TcpProxy::cut`].
    pub severed: u64,
}

#[derive(Default)]
struct Link {
    up: AtomicBool,
    forwarded: AtomicU64,
    refused: AtomicU64,
    severed: AtomicU64,
    open: Mutex<Vec<AbortHandle>>,
}

/// A running proxy from its own free port to `target`; stopped on drop.
pub struct TcpProxy {
    port: u16,
    link: Arc<Link>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards every connection to
    /// `127.0.0.1:target_port`. Must be called inside a Tokio runtime.
    pub async fn start(target_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy on 127.0.0.1:0");
        let port = listener.local_addr().expect("proxy address").port();
        let link = Arc::new(Link::default());
        link.up.store(true, Ordering::SeqCst);
        let target = SocketAddr::from(([127, 0, 0, 1], target_port));
        let accept = tokio::spawn(accept_loop(listener, target, link.clone()));
        Self { port, link, accept }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`, for HTTP servers such as moto.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Cuts the link: open connections are severed (as a network partition
    /// resets them) and new ones are closed as soon as they are accepted.
    pub fn cut(&self) {
        self.link.up.store(false, Ordering::SeqCst);
        let open = std::mem::take(&mut *self.link.open.lock().expect("proxy connection list"));
        for connection in open {
            if !connection.is_finished() {
                self.link.severed.fetch_add(1, Ordering::Relaxed);
            }
            connection.abort();
        }
    }

    /// Restores the link: new connections are forwarded again.
    pub fn restore(&self) {
        self.link.up.store(true, Ordering::SeqCst);
    }

    /// The counters now.
    pub fn counts(&self) -> ProxyCounts {
        ProxyCounts {
            forwarded: self.link.forwarded.load(Ordering::Relaxed),
            refused: self.link.refused.load(Ordering::Relaxed),
            severed: self.link.severed.load(Ordering::Relaxed),
        }
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, link: Arc<Link>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if !link.up.load(Ordering::SeqCst) {
            link.refused.fetch_add(1, Ordering::Relaxed);
            drop(client);
            continue;
        }
        link.forwarded.fetch_add(1, Ordering::Relaxed);
        let task = tokio::spawn(forward(client, target));
        let mut open = link.open.lock().expect("proxy connection list");
        open.retain(|connection| !connection.is_finished());
        open.push(task.abort_handle());
    }
}

/// Copies both ways until either side closes (or the task is aborted).
async fn forward(mut client: TcpStream, target: SocketAddr) {
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// An echo server on a free port.
    async fn echo() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = socket.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        port
    }

    async fn round_trip(port: u16) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"ping").await?;
        let mut answer = vec![0u8; 4];
        tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut answer))
            .await
            .map_err(|_| std::io::Error::other("timed out"))??;
        Ok(answer)
    }

    #[tokio::test]
    async fn forwards_cuts_and_restores() {
        let proxy = TcpProxy::start(echo().await).await;
        assert_eq!(round_trip(proxy.port()).await.unwrap(), b"ping");

        let mut held = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap();
        held.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        held.read_exact(&mut one).await.unwrap();

        proxy.cut();
        assert!(
            round_trip(proxy.port()).await.is_err(),
            "the cut link answered"
        );
        let severed = tokio::time::timeout(Duration::from_secs(2), held.read(&mut one))
            .await
            .expect("a severed connection is closed, not left hanging");
        assert!(matches!(severed, Ok(0) | Err(_)), "{severed:?}");

        proxy.restore();
        assert_eq!(round_trip(proxy.port()).await.unwrap(), b"ping");
        let counts = proxy.counts();
        assert_eq!(counts.forwarded, 3, "{counts:?}");
        assert_eq!(counts.refused, 1, "{counts:?}");
        assert_eq!(counts.severed, 1, "{counts:?}");
    }
}
