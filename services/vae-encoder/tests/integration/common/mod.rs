//! Shared set-up of the vae-encoder tests: the test configuration, stored
//! samples and a served instance (the rest is `ssdit-testkit`'s).

use std::time::Duration;

use bytes::Bytes;
use image::RgbImage;
use ssdit_core::Config;
use ssdit_dataset::Bucket;
use ssdit_proto::v1::SampleIngested;
use ssdit_render::encode_png;
use ssdit_server::ServiceContext;
use ssdit_server::grpc::GrpcOptions;
use ssdit_store::Store;
use ssdit_testkit::Served;
use ssdit_vae_encoder::VaeEncoder;

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
    let image = Bytes::from(bytes);
    ssdit_testkit::store_sample(store, DATASET, id, image, bucket, Some("a flower")).await
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

/// A served vae-encoder (bus worker + gRPC on 127.0.0.1:0).
pub type Running = Served<VaeEncoder, ssdit_vae_encoder::Error>;

/// Loads and serves the vae-encoder on `ctx`.
pub async fn start(ctx: ServiceContext) -> Running {
    let service = VaeEncoder::load(ctx).await.unwrap();
    Served::start(service, |service, listener, stop| async move {
        service.serve(listener, GrpcOptions::default(), stop).await
    })
    .await
}
