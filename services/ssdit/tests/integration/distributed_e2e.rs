//! The whole pipeline distributed: each service its own `ssdit serve`
//! process, talking through a real nats-server with JetStream and keeping
//! everything in a real S3-compatible server (moto), all on loopback.
//!
//! Photos + captions → `IngestUri` → vae-encoder and text-encoder workers →
//! `StartRun` for a few steps → `Generate` returns a PNG of the requested
//! size, also when the request names the run's checkpoint explicitly; the
//! store holds exactly one latent per sample and one embedding per caption.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ssdit_dataset::CaptionHash;
use ssdit_proto::v1::ingest_service_client::IngestServiceClient;
use ssdit_proto::v1::sampler_service_client::SamplerServiceClient;
use ssdit_proto::v1::trainer_service_client::TrainerServiceClient;
use ssdit_proto::v1::{
    CaptionSource, GenerateRequest, GeneratedImage, IngestUriRequest, RunId, RunSpec, RunState,
    generate_progress, run_progress,
};
use ssdit_store::{Key, Store, StoreOptions};
use ssdit_testkit::{NatsServer, S3Server, ServiceProcess, shared_data};

const BUCKET: &str = "ssdit-e2e";
const DATASET: &str = "photos";

/// The test pairs each photo with a caption of what it shows.
const CAPTIONS: [(&str, &str); 6] = [
    (
        "astronaut.png",
        "portrait of an astronaut in a white suit, american flag behind",
    ),
    (
        "chelsea.png",
        "a tabby cat looking to the side, soft indoor light",
    ),
    (
        "china.jpg",
        "a chinese temple roof among green trees, blue sky",
    ),
    (
        "coffee.png",
        "a cup of coffee on a saucer with a spoon, top view",
    ),
    (
        "flower.jpg",
        "a pink flower in close-up, yellow centre, green leaves",
    ),
    ("rocket.jpg", "a rocket on its launch pad under a clear sky"),
];

/// The photos, each with its caption in a sidecar `.txt`.
fn captioned_photos(dir: &Path) -> PathBuf {
    let folder = dir.join("photos");
    std::fs::create_dir_all(&folder).unwrap();
    for (file, caption) in CAPTIONS {
        std::fs::copy(shared_data("photos").join(file), folder.join(file)).unwrap();
        let stem = Path::new(file).file_stem().unwrap().to_str().unwrap();
        std::fs::write(folder.join(format!("{stem}.txt")), caption).unwrap();
    }
    folder
}

fn write_config(dir: &Path, nats: &NatsServer, s3: &S3Server) -> PathBuf {
    let path = dir.join("ssdit.toml");
    let config = format!(
        r#"
[store]
url = "s3://{BUCKET}/e2e"
endpoint = "{endpoint}"
region = "us-east-1"

[bus]
kind = "nats"
url = "{nats}"
ack_wait = "20s"

[ingest]
target_resolution = 128

[encode]
batch_size = 4

[train]
metrics_port = 0

[sampler]
run = "e2e"
"#,
        endpoint = s3.endpoint(),
        nats = nats.url(),
    );
    std::fs::write(&path, config).unwrap();
    path
}

async fn serve(
    service: &str,
    config: &Path,
    env: &[(&str, String)],
    logs: &Path,
) -> ServiceProcess {
    let config = config.to_str().unwrap();
    ServiceProcess::start(
        service,
        Path::new(env!("CARGO_BIN_EXE_ssdit")),
        &["serve", service, "--tiny", "--config", config],
        env,
        logs,
        Duration::from_secs(120),
    )
    .await
}

/// The names of the objects under `prefix`: sample ids for latents, caption
/// hashes for embeddings.
async fn sample_ids_under(store: &Store, prefix: &str) -> Vec<String> {
    store
        .list(&Key::parse(prefix).unwrap())
        .await
        .unwrap()
        .iter()
        .filter_map(|object| {
            let name = object.key.as_str().rsplit('/').next()?;
            name.strip_suffix(".safetensors").map(str::to_string)
        })
        .collect()
}

/// Calls `Generate` on the sampler at `url` and returns its image; panics
/// with the services' logs when refused.
async fn generate(
    url: String,
    request: GenerateRequest,
    logs: impl Fn() -> String,
) -> GeneratedImage {
    let mut stream = SamplerServiceClient::connect(url)
        .await
        .unwrap()
        .generate(request)
        .await
        .unwrap_or_else(|status| panic!("Generate: {status}\n{}", logs()))
        .into_inner();
    loop {
        match stream.message().await.unwrap().and_then(|m| m.event) {
            Some(generate_progress::Event::Step(_)) => {}
            Some(generate_progress::Event::Image(image)) => return image,
            None => panic!("Generate ended without an image\n{}", logs()),
        }
    }
}

fn exactly_once(ids: &[String]) -> BTreeSet<String> {
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "a sample was encoded twice: {ids:?}"
    );
    unique
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_runs_distributed_over_nats_and_s3() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start().await;
    let s3 = S3Server::start(BUCKET).await;
    let config = write_config(dir.path(), &nats, &s3);
    let env = s3.env();
    let logs = dir.path();

    let ingest = serve("captioning-ingest", &config, &env, logs).await;
    let vae = serve("vae-encoder", &config, &env, logs).await;
    let text = serve("text-encoder", &config, &env, logs).await;
    let trainer = serve("trainer", &config, &env, logs).await;
    let sampler = serve("sampler", &config, &env, logs).await;
    let all_logs = || {
        [&ingest, &vae, &text, &trainer, &sampler]
            .iter()
            .map(|p| p.log_tail())
            .collect::<Vec<_>>()
            .join("\n")
    };

    let folder = captioned_photos(dir.path());
    let reply = IngestServiceClient::connect(ingest.url())
        .await
        .unwrap()
        .ingest_uri(IngestUriRequest {
            uri: folder.to_str().unwrap().to_string(),
            dataset: DATASET.into(),
            recursive: false,
            caption_source: CaptionSource::Sidecar as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.samples.len(), CAPTIONS.len(), "{reply:?}");
    assert!(reply.rejected.is_empty(), "{reply:?}");
    let ingested: BTreeSet<String> = reply.samples.iter().map(|s| s.sample_id.clone()).collect();

    let store = Store::open_with(
        &format!("s3://{BUCKET}/e2e"),
        &StoreOptions {
            from_env: false,
            options: vec![
                ("aws_endpoint".into(), s3.endpoint()),
                ("aws_region".into(), "us-east-1".into()),
                ("aws_access_key_id".into(), "testing".into()),
                ("aws_secret_access_key".into(), "testing".into()),
            ],
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let (latents, embeddings) = loop {
        let latents = sample_ids_under(&store, "cache/latents").await;
        let embeddings = sample_ids_under(&store, "cache/embeddings").await;
        if latents.len() >= ingested.len() && embeddings.len() >= ingested.len() {
            break (latents, embeddings);
        }
        assert!(
            Instant::now() < deadline,
            "encoding did not finish: {} latents, {} embeddings of {}\n{}",
            latents.len(),
            embeddings.len(),
            ingested.len(),
            all_logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(exactly_once(&latents), ingested, "latents");
    let captions: BTreeSet<String> = CAPTIONS
        .iter()
        .map(|(_, caption)| CaptionHash::of(caption).to_string())
        .collect();
    assert_eq!(exactly_once(&embeddings), captions, "embeddings");
    println!(
        "ingested {}, latents {}, embeddings {}, duplicates 0, missing 0",
        ingested.len(),
        latents.len(),
        embeddings.len()
    );

    let mut trainer_client = TrainerServiceClient::connect(trainer.url()).await.unwrap();
    let started = trainer_client
        .start_run(RunSpec {
            run_id: "e2e".into(),
            dataset: DATASET.into(),
            config_toml: "epochs = 2\nbatch_size = 2\naccum_steps = 1\nsave_every = 1\nvalidate_every = 1000\n".into(),
            resume_from: None,
        })
        .await
        .unwrap_or_else(|status| panic!("StartRun: {status}\n{}", all_logs()))
        .into_inner();
    assert_eq!(started.id.map(|id| id.id).as_deref(), Some("e2e"));
    let mut progress = trainer_client
        .watch_run(RunId { id: "e2e".into() })
        .await
        .unwrap()
        .into_inner();
    let mut steps = 0;
    let finished = loop {
        let message = tokio::time::timeout(Duration::from_secs(300), progress.message())
            .await
            .expect("training progress stalled")
            .unwrap();
        match message.and_then(|m| m.event) {
            Some(run_progress::Event::Step(step)) => {
                assert!(step.loss.is_finite(), "{step:?}");
                steps += 1;
            }
            Some(run_progress::Event::Finished(finished)) => break finished,
            Some(run_progress::Event::CheckpointSaved(_)) => {}
            None => panic!("the progress stream ended early\n{}", all_logs()),
        }
    };
    assert_eq!(
        finished.state,
        RunState::Completed as i32,
        "{finished:?}\n{}",
        all_logs()
    );
    assert!(steps > 0, "no step progress was streamed");
    let run = trainer_client
        .get_run(RunId { id: "e2e".into() })
        .await
        .unwrap()
        .into_inner();
    let checkpoint = run.latest_checkpoint.expect("the run saved a checkpoint");

    let request = GenerateRequest {
        prompt: CAPTIONS[4].1.into(),
        width: Some(128),
        height: Some(96),
        steps: Some(4),
        seed: Some(7),
        ..GenerateRequest::default()
    };
    let image = generate(sampler.url(), request.clone(), &all_logs).await;
    let decoded = image::load_from_memory(&image.png).expect("a decodable PNG");
    assert_eq!((decoded.width(), decoded.height()), (128, 96));
    let served = image.metadata.unwrap().checkpoint;
    assert!(
        served.contains("e2e"),
        "the sampler follows run e2e and serves its checkpoint {checkpoint}, not {served}"
    );

    // The run's checkpoint named explicitly (the one served, or about to be).
    let named = GenerateRequest {
        checkpoint: Some(checkpoint.clone()),
        ..request
    };
    let image = generate(sampler.url(), named, &all_logs).await;
    assert_eq!(image.metadata.unwrap().checkpoint, checkpoint);
    let decoded = image::load_from_memory(&image.png).expect("a decodable PNG");
    assert_eq!((decoded.width(), decoded.height()), (128, 96));
}
