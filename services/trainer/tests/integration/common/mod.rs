//! Shared set-up of the trainer service tests: a synthetic encoded dataset
//! in a temporary local store, an in-process bus, and a served trainer
//! (gRPC and `/metrics` on 127.0.0.1:0).

use std::sync::Arc;
use std::time::Duration;

use ssdit_bus::{InProcessBus, StreamConfig};
use ssdit_core::Config;
use ssdit_proto::v1::trainer_service_client::TrainerServiceClient;
use ssdit_server::ServiceContext;
use ssdit_server::grpc::GrpcOptions;
use ssdit_store::Store;
use ssdit_train::synthetic::SyntheticDataset;
use ssdit_trainer::Trainer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

pub const DATASET: &str = "patterns";

/// The test configuration: the tiny DiT over tiny-encoder-sized captions,
/// the preview codec for validation images, small quick runs.
pub fn config(store_url: &str) -> Config {
    let mut config = Config::default();
    config.store.url = store_url.into();
    config.models.dit = "tiny".into();
    config.models.vae = "preview".into();
    config.models.text_encoder = "tiny".into();
    config.encode.max_text_length = 8;
    let train = &mut config.train;
    train.epochs = 3;
    train.batch_size = 2;
    train.accum_steps = 1;
    train.save_every = 1;
    train.keep_last = 2;
    train.validate_every = 2;
    train.validate_steps = 2;
    train.validate_prompts = 2;
    config
}

/// A context on the local store in `dir` and a fresh in-process bus, with
/// the synthetic dataset ([`DATASET`], `samples` samples) written as the
/// configured encoders would have.
pub async fn context(dir: &std::path::Path, samples: usize) -> ServiceContext {
    let url = dir.to_str().unwrap();
    let config = config(url);
    let store = Store::open(url).await.unwrap();
    let spec = SyntheticDataset::tiny(DATASET, samples);
    let encodings = spec.encodings_for(&config.models).unwrap();
    spec.write(&store, &encodings).await.unwrap();
    ServiceContext {
        config: Arc::new(config),
        store,
        bus: Arc::new(InProcessBus::new(StreamConfig::default()).unwrap()),
    }
}

/// A served trainer.
pub struct Running {
    pub url: String,
    pub metrics_addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<ssdit_trainer::Result<()>>,
}

impl Running {
    /// Serves a trainer on `ctx`.
    pub async fn start(ctx: ServiceContext) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let metrics_addr = metrics.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ssdit_trainer::run(
            Trainer::new(ctx),
            listener,
            Some(metrics),
            GrpcOptions::default(),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            url,
            metrics_addr,
            stop: Some(stop),
            task,
        }
    }

    /// A gRPC client.
    pub async fn client(&self) -> TrainerServiceClient<Channel> {
        TrainerServiceClient::connect(self.url.clone())
            .await
            .unwrap()
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.metrics_addr)
            .await
            .unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    /// Shuts down (stopping runs at a step boundary) and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("shutdown within 60 s")
            .unwrap()
            .unwrap();
    }
}
