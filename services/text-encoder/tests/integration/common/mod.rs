//! Shared set-up of the text-encoder tests: the test configuration, stored
//! captioned samples and a served instance (the rest is `ssdit-testkit`'s).

use std::time::Duration;

use bytes::Bytes;
use ssdit_core::Config;
use ssdit_dataset::Bucket;
use ssdit_proto::v1::SampleIngested;
use ssdit_server::ServiceContext;
use ssdit_server::grpc::GrpcOptions;
use ssdit_store::Store;
use ssdit_testkit::Served;
use ssdit_text_encoder::TextEncoderService;

pub const DATASET: &str = "flowers";

/// The test configuration: the tiny encoder at 16 tokens, small batches and
/// request limits, a short ack wait.
pub fn config() -> Config {
    let mut config = Config::default();
    config.models.text_encoder = "tiny".into();
    config.store.url = "memory://".into();
    config.encode.max_text_length = 16;
    config.encode.batch_size = 4;
    config.encode.max_request_items = 4;
    config.encode.max_prompt_bytes = 256;
    config.bus.ack_wait = Duration::from_millis(800);
    config
}

/// Stores a sample (a placeholder image; the text encoder never reads it)
/// with `caption`, and returns its event.
pub async fn captioned_sample(store: &Store, id: &str, caption: Option<&str>) -> SampleIngested {
    let bucket = Bucket {
        width: 64,
        height: 64,
    };
    let image = Bytes::from_static(b"image");
    ssdit_testkit::store_sample(store, DATASET, id, image, bucket, caption).await
}

/// A served text-encoder (bus worker + gRPC on 127.0.0.1:0).
pub type Running = Served<TextEncoderService, ssdit_text_encoder::Error>;

/// Loads and serves the text-encoder on `ctx`.
pub async fn start(ctx: ServiceContext) -> Running {
    let service = TextEncoderService::load(ctx).await.unwrap();
    Served::start(service, |service, listener, stop| async move {
        service.serve(listener, GrpcOptions::default(), stop).await
    })
    .await
}
