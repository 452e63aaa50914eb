//! Shared set-up of the vae-encoder tests: a memory store, an in-process bus,
//! stored samples, a served instance, and an observer of the events.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use image::RgbImage;
use ssdit_bus::{Bus, BusExt, Consumer, ConsumerConfig, InProcessBus, StreamConfig};
use ssdit_core::Config;
use ssdit_dataset::{Bucket, Dataset, SampleRecord};
use ssdit_proto::Event;
use ssdit_proto::v1::SampleIngested;
use ssdit_render::encode_png;
use ssdit_server::ServiceContext;
use ssdit_server::grpc::GrpcOptions;
use ssdit_store::Store;
use ssdit_vae_encoder::VaeEncoder;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const DATASET: &str = "flowers";

/// The test configuration: preview codec, small batches, a short ack wait.
pub fn config() -> Config {
    let mut config = Config::default();
    config.models.vae = "preview".into();
    config.store.url = "memory://".into();
    config.encode.batch_size = 4;
    config.encode.max_request_items = 4;
    config.bus.ack_wait = Duration::from_millis(800);
    config
}

/// A context on a fresh memory store and in-process bus.
pub async fn context(config: Config) -> ServiceContext {
    ServiceContext {
        config: Arc::new(config),
        store: Store::open("memory://").await.unwrap(),
        bus: Arc::new(InProcessBus::new(StreamConfig::default()).unwrap()),
    }
}

/// A deterministic picture of `width × height` varying with `seed`.
pub fn picture(width: u32, height: u32, seed: u8) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x as u8).wrapping_mul(7).wrapping_add(seed),
            (y as u8).wrapping_mul(5).wrapping_add(seed.wrapping_mul(3)),
            ((x + y) as u8).wrapping_add(seed.wrapping_mul(11)),
        ])
    })
}

/// Stores a sample whose image file holds `bytes` and returns its event.
pub async fn store_sample(
    store: &Store,
    id: &str,
    bytes: Vec<u8>,
    bucket: Bucket,
) -> SampleIngested {
    let dataset = Dataset::new(store.clone(), DATASET).unwrap();
    let record = SampleRecord {
        id: id.into(),
        source: format!("{id}.png"),
        image_key: String::new(),
        caption_key: None,
        bucket,
        original_size: [bucket.width, bucket.height],
        label: None,
    };
    let record = dataset
        .add_sample(record, Bytes::from(bytes), "png", Some("a flower"))
        .await
        .unwrap();
    SampleIngested {
        dataset: DATASET.into(),
        sample_id: id.into(),
        image_key: record.image_key,
        caption_key: record.caption_key.unwrap_or_default(),
        bucket_width: bucket.width,
        bucket_height: bucket.height,
    }
}

/// Stores a bucket-sized PNG sample.
pub async fn png_sample(
    store: &Store,
    id: &str,
    width: u32,
    height: u32,
    seed: u8,
) -> SampleIngested {
    let png = encode_png(&picture(width, height, seed)).unwrap();
    store_sample(store, id, png, Bucket { width, height }).await
}

/// A sample id (hex, as ingest makes them) from a small number.
pub fn sample_id(n: u32) -> String {
    format!("{n:064x}")
}

/// Publishes every event.
pub async fn publish(bus: &dyn Bus, events: &[SampleIngested]) {
    for event in events {
        bus.publish_event(event).await.unwrap();
    }
}

/// A consumer of `E` events opened before they are published (the in-process bus and
/// JetStream both keep earlier events, so opening it later also works).
pub async fn observer<E: Event>(bus: &dyn Bus, name: &str) -> Consumer {
    bus.consumer(ConsumerConfig::new(name, E::NAME))
        .await
        .unwrap()
}

/// Collects `n` events from `consumer` (acking them), failing after `within`.
pub async fn collect<E: Event>(consumer: &Consumer, n: usize, within: Duration) -> Vec<E> {
    let deadline = tokio::time::Instant::now() + within;
    let mut events = Vec::new();
    while events.len() < n {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "only {} of {n} {} events",
            events.len(),
            E::NAME
        );
        for delivery in consumer
            .fetch(n - events.len(), left.min(Duration::from_millis(200)))
            .await
            .unwrap()
        {
            events.push(delivery.decode::<E>().unwrap());
            delivery.ack().await.unwrap();
        }
    }
    events
}

/// Asserts that no further event arrives on `consumer` within `wait`.
pub async fn assert_quiet(consumer: &Consumer, wait: Duration) {
    let extra = consumer.fetch(8, wait).await.unwrap();
    assert!(extra.is_empty(), "unexpected events: {extra:?}");
}

/// A served vae-encoder (bus worker + gRPC on 127.0.0.1:0).
pub struct Running {
    pub url: String,
    pub service: VaeEncoder,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<ssdit_vae_encoder::Result<()>>,
}

impl Running {
    /// Loads and serves the vae-encoder on `ctx`.
    pub async fn start(ctx: ServiceContext) -> Self {
        let service = VaeEncoder::load(ctx).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = service.clone();
        let task = tokio::spawn(async move {
            serving
                .serve(listener, GrpcOptions::default(), async {
                    let _ = stopped.await;
                })
                .await
        });
        Self {
            url,
            service,
            stop: Some(stop),
            task,
        }
    }

    /// Shuts down and waits for the worker and server to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("shutdown within 10 s")
            .unwrap()
            .unwrap();
    }
}
