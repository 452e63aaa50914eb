//! The whole pipeline in one process on the embedded default (in-process
//! bus, local store, preview codec, tiny text encoder and DiT): photos and
//! captions, plus the shared bad inputs → ingest → latents + embeddings → a
//! few training steps → `Generate` over gRPC returns decodable PNGs of the
//! requested sizes, the dataset's counts match, and the embedded trainer's
//! `GetRun` reports the run completed.

use crate::cli;
use crate::embedded;

use std::collections::HashMap;
use std::time::Duration;

use ssdit::run::job::generate_request;
use ssdit::run::{JobSpec, Pipeline, Quiet, run_job};
use ssdit_dataset::Bucket;
use ssdit_proto::v1::trainer_service_client::TrainerServiceClient;
use ssdit_proto::v1::{RunId, RunState};
use ssdit_testkit::shared_data;

/// The shared bad inputs that are images (or claim to be): each is rejected.
const BAD_IMAGES: [&str; 4] = ["bomb.png", "empty.png", "not-an-image.png", "truncated.jpg"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_to_generated_pngs_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    let captions = embedded::captioned_photos(&images);
    for name in BAD_IMAGES {
        std::fs::copy(shared_data("bad-inputs").join(name), images.join(name)).unwrap();
    }
    let mut config = embedded::embedded_config(&dir.path().join("store"));
    config.train.validate_steps = 2;
    config.train.validate_prompts = 1;
    config.sampler.steps = 4;
    let mut pipeline = Pipeline::start(config, &HashMap::new()).await.unwrap();
    let spec = JobSpec {
        dataset: "photos".into(),
        images,
        run_id: "e2e".into(),
        steps: Some(6),
        time_limit: None,
        encode_timeout: Duration::from_secs(120),
        seed: 7,
    };
    let outcome = run_job(&mut pipeline, &spec, &mut Quiet).await.unwrap();

    assert_eq!(outcome.ingest.accepted(), 6);
    assert_eq!(outcome.ingest.rejected(), BAD_IMAGES.len());
    let status = &outcome.status;
    assert_eq!(
        (
            status.ingested,
            status.captioned,
            status.latents,
            status.embeddings,
            status.ready,
            status.rejected
        ),
        (6, 6, 6, 6, 6, BAD_IMAGES.len()),
        "{status:?}"
    );
    assert!(outcome.trained.steps >= 6, "{:?}", outcome.trained);
    assert!(
        outcome
            .trained
            .checkpoint
            .starts_with("runs/e2e/checkpoints/"),
        "{}",
        outcome.trained.checkpoint
    );

    // One image per training caption, decodable, at its photo's bucket size.
    assert_eq!(outcome.results.len(), 6);
    let by_file: HashMap<&str, &str> = captions
        .iter()
        .map(|(file, caption)| (file.as_str(), caption.as_str()))
        .collect();
    for result in &outcome.results {
        let record = &result.reference.record;
        let file = record.source.rsplit('/').next().unwrap();
        assert_eq!(by_file[file], result.reference.caption);
        let png = image::load_from_memory_with_format(&result.png, image::ImageFormat::Png)
            .unwrap_or_else(|e| panic!("{file}: generated PNG does not decode: {e}"));
        assert_eq!(
            (png.width(), png.height()),
            (record.bucket.width, record.bucket.height),
            "{file}"
        );
    }

    // Any requested size (a multiple of 16), straight over gRPC.
    let requested = Bucket {
        width: 64,
        height: 48,
    };
    let reply = pipeline
        .generate(generate_request(&pipeline, "a cat", requested, 1))
        .await
        .unwrap();
    let png = image::load_from_memory_with_format(&reply.png, image::ImageFormat::Png).unwrap();
    assert_eq!((png.width(), png.height()), (64, 48));
    let metadata = reply.metadata.unwrap();
    assert_eq!((metadata.width, metadata.height), (64, 48));
    assert_eq!(metadata.prompt, "a cat");

    // The run is the served trainer's: `GetRun` over gRPC reports it completed.
    let (_, trainer) = pipeline
        .addresses()
        .into_iter()
        .find(|(service, _)| *service == "trainer")
        .expect("the trainer is served");
    let run = TrainerServiceClient::connect(format!("http://{trainer}"))
        .await
        .unwrap()
        .get_run(RunId { id: "e2e".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.state, RunState::Completed as i32, "{run:?}");
    assert_eq!(run.step, outcome.trained.status.step, "{run:?}");
    assert_eq!(
        run.latest_checkpoint.as_deref(),
        Some(outcome.trained.checkpoint.as_str())
    );
    assert_eq!(run.spec.map(|spec| spec.dataset).as_deref(), Some("photos"));

    pipeline.shutdown().await.unwrap();

    // The dataset tools read what the pipeline left, and decode its preview
    // latents with the preview codec although the configured VAE is FLUX's
    // (not downloadable here).
    let tools_config = dir.path().join("tools.toml");
    let store_url = dir.path().join("store");
    std::fs::write(
        &tools_config,
        format!("[store]\nurl = {:?}\n", store_url.to_str().unwrap()),
    )
    .unwrap();
    let sheet = dir.path().join("preview.png");
    let preview = cli::ssdit(
        &tools_config,
        &[
            "dataset",
            "preview",
            "photos",
            "--out",
            sheet.to_str().unwrap(),
        ],
    );
    let said = String::from_utf8_lossy(&preview.stdout);
    assert!(
        preview.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&preview.stderr)
    );
    assert!(said.contains("contact sheet of 6 samples"), "{said}");
    assert!(image::open(&sheet).is_ok());
}
