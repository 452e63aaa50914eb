//! Shared set-up of the sampler tests: the tiny models on a memory store and
//! an in-process bus (`ssdit-testkit`'s), a served instance, a client, and
//! stored checkpoints.

use std::time::Duration;

use bytes::Bytes;
use ssdit_core::Config;
use ssdit_core::config::ModelsConfig;
use ssdit_model::SingleStreamDiTConfig;
use ssdit_proto::v1::generate_progress::Event;
use ssdit_proto::v1::sampler_service_client::SamplerServiceClient;
use ssdit_proto::v1::{GenerateRequest, GeneratedImage, SamplingStep};
use ssdit_sampler::{EngineInfo, SamplingService, random_model};
use ssdit_server::ServiceContext;
use ssdit_server::grpc::GrpcOptions;
use ssdit_store::{Store, layout};
use ssdit_testkit::Served;
use tonic::transport::Channel;

/// The test configuration: tiny models, 16 caption tokens, small images and
/// few steps by default, a queue of 8 taken 4 at a time.
pub fn config() -> Config {
    let mut config = Config {
        models: ModelsConfig::tiny(),
        ..Config::default()
    };
    config.store.url = "memory://".into();
    config.encode.max_text_length = 16;
    config.sampler.width = 32;
    config.sampler.height = 32;
    config.sampler.steps = 3;
    config.sampler.max_steps = 20;
    config.sampler.max_side = 256;
    config.sampler.max_queue = 8;
    config.sampler.max_batch = 4;
    config.sampler.max_prompt_bytes = 256;
    config.bus.ack_wait = Duration::from_millis(800);
    config
}

/// A served sampler (gRPC on 127.0.0.1:0).
pub type Running = Served<SamplingService, ssdit_sampler::Error>;

/// Loads and serves the sampler on `ctx`.
pub async fn start(ctx: ServiceContext) -> Running {
    let service = SamplingService::load(ctx, Some("test".into()))
        .await
        .unwrap();
    Served::start(service, |service, listener, stop| async move {
        service.serve(listener, GrpcOptions::default(), stop).await
    })
    .await
}

/// A client of `running`'s server.
pub async fn connect(running: &Running) -> SamplerServiceClient<Channel> {
    SamplerServiceClient::connect(running.url.clone())
        .await
        .unwrap()
}

/// A request for `prompt` with everything else the server's default.
pub fn prompt(prompt: &str) -> GenerateRequest {
    GenerateRequest {
        prompt: prompt.into(),
        ..GenerateRequest::default()
    }
}

/// What one `Generate` stream carried.
#[derive(Debug)]
pub struct Generated {
    pub steps: Vec<SamplingStep>,
    pub image: GeneratedImage,
}

/// Calls `Generate` and reads the whole stream; the status if refused or failed.
pub async fn generate(
    client: &mut SamplerServiceClient<Channel>,
    request: GenerateRequest,
) -> Result<Generated, tonic::Status> {
    let mut stream = client.generate(request).await?.into_inner();
    let mut steps = Vec::new();
    let mut image = None;
    while let Some(message) = stream.message().await? {
        match message.event {
            Some(Event::Step(step)) => {
                assert!(image.is_none(), "a step after the image");
                steps.push(step);
            }
            Some(Event::Image(generated)) => {
                assert!(image.is_none(), "two images in one stream");
                image = Some(generated);
            }
            None => panic!("an empty progress message"),
        }
    }
    Ok(Generated {
        steps,
        image: image.expect("the stream ended without an image"),
    })
}

/// Width and height of a PNG file.
pub fn png_size(png: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png).unwrap();
    (image.width(), image.height())
}

/// The DiT architecture the sampler builds for the tiny preset.
pub fn tiny_dit(info: &EngineInfo) -> SingleStreamDiTConfig {
    SingleStreamDiTConfig::tiny()
        .with_in_channels(info.channels)
        .with_text_embed_dim(info.text_dim)
        .with_max_token_length(info.text_length)
}

/// Safetensors weights of the tiny DiT drawn from `seed`.
pub fn tiny_weights(info: &EngineInfo, seed: u64) -> Vec<u8> {
    let device = Default::default();
    random_model::<burn::backend::NdArray<f32>>(&tiny_dit(info), seed, &device)
        .unwrap()
        .to_safetensors()
        .unwrap()
}

/// Writes a trainer-style checkpoint folder: `ema.safetensors`, then the
/// commit marker with its size and hash (of `committed_bytes`, which tests
/// make differ from `weights` to fake a corrupt file).
pub async fn write_checkpoint(
    store: &Store,
    run: &str,
    step: u64,
    weights: Vec<u8>,
    committed_bytes: &[u8],
) -> String {
    let weights_key = layout::checkpoint_file(run, step, "ema.safetensors").unwrap();
    store.put(&weights_key, Bytes::from(weights)).await.unwrap();
    let commit = serde_json::json!({
        "format": "ssdit.checkpoint.v1",
        "run_id": run,
        "step": step,
        "files": {
            "ema.safetensors": {
                "bytes": committed_bytes.len(),
                "blake3": blake3::hash(committed_bytes).to_hex().to_string(),
            }
        }
    });
    store
        .put(
            &layout::checkpoint_file(run, step, "commit.json").unwrap(),
            Bytes::from(commit.to_string()),
        )
        .await
        .unwrap();
    layout::checkpoint_dir(run, step).unwrap().to_string()
}
