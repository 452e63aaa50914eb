//! A service under test in this process: a memory store and an in-process
//! bus, and the service served on a free loopback port until stopped.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ssdit_bus::{InProcessBus, StreamConfig};
use ssdit_core::Config;
use ssdit_server::ServiceContext;
use ssdit_store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a served service may take to stop.
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// The future a served service stops on.
pub type StopSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A context on a fresh memory store and in-process bus.
pub async fn memory_context(config: Config) -> ServiceContext {
    ServiceContext {
        config: Arc::new(config),
        store: Store::open("memory://").await.unwrap(),
        bus: Arc::new(InProcessBus::new(StreamConfig::default()).unwrap()),
    }
}

/// A service `S` served on `127.0.0.1:0` by a task that ends with `E`'s
/// result.
pub struct Served<S, E> {
    /// The server's `http://` address.
    pub url: String,
    /// The served service, for in-process calls and counters.
    pub service: S,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), E>>,
}

impl<S, E> Served<S, E>
where
    S: Clone + Send + 'static,
    E: Debug + Send + 'static,
{
    /// Serves `service` with `serve` (given a clone of it, the listener and
    /// the signal to stop on).
    pub async fn start<F>(service: S, serve: impl FnOnce(S, TcpListener, StopSignal) -> F) -> Self
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let signal: StopSignal = Box::pin(async {
            let _ = stopped.await;
        });
        let task = tokio::spawn(serve(service.clone(), listener, signal));
        Self {
            url,
            service,
            stop: Some(stop),
            task,
        }
    }

    /// Shuts down and waits for the service to finish, failing when it
    /// fails or takes longer than 30 s.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(STOP_WITHIN, self.task)
            .await
            .expect("shutdown within 30 s")
            .unwrap()
            .unwrap();
    }
}
