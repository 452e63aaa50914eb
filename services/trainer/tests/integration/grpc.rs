//! The trainer over gRPC: a tiny run on a synthetic dataset, watched to its
//! end, its checkpoints, event, metrics and plots; and requests that must be
//! refused with the right status.

use crate::common;

use std::time::Duration;

use common::{DATASET, Running, context};
use ssdit_bus::ConsumerConfig;
use ssdit_proto::Event;
use ssdit_proto::v1::{CheckpointSaved, RunId, RunSpec, RunState, run_progress};
use ssdit_store::layout;
use ssdit_train::checkpoint::{self, CheckpointRef};
use ssdit_train::metrics::MetricsLog;
use tonic::Code;

fn id(id: &str) -> RunId {
    RunId { id: id.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_trains_reports_progress_and_saves_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), 6).await;
    let (store, bus) = (ctx.store.clone(), ctx.bus.clone());
    let events = bus
        .consumer(ConsumerConfig::new("test-sampler", CheckpointSaved::NAME))
        .await
        .unwrap();
    let server = Running::start(ctx).await;
    let mut client = server.client().await;

    let run = client
        .start_run(RunSpec {
            run_id: "tiny-1".into(),
            dataset: DATASET.into(),
            config_toml: "learning_rate = 1e-3".into(),
            resume_from: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.id.unwrap().id, "tiny-1");
    // 6 samples in batches of 2: 3 steps per epoch, 3 epochs.
    let mut stream = client.watch_run(id("tiny-1")).await.unwrap().into_inner();
    let (mut steps, mut saved, mut finished) = (Vec::new(), Vec::new(), None);
    while let Some(message) = tokio::time::timeout(Duration::from_secs(120), stream.message())
        .await
        .expect("progress within 2 minutes")
        .unwrap()
    {
        match message.event.unwrap() {
            run_progress::Event::Step(step) => steps.push(step),
            run_progress::Event::CheckpointSaved(c) => saved.push(c),
            run_progress::Event::Finished(f) => finished = Some(f),
        }
    }
    let finished = finished.expect("the stream ends with RunFinished");
    assert_eq!(finished.state, RunState::Completed as i32, "{finished:?}");
    assert_eq!(finished.step, 9);
    assert!(
        !steps.is_empty() && steps.last().unwrap().step == 9,
        "{steps:?}"
    );
    assert!(steps.iter().all(|s| s.loss.is_finite() && s.lr >= 0.0));
    assert!(
        steps.iter().all(|s| s.memory_bytes.is_some_and(|b| b > 0)),
        "every step reports the memory in use: {steps:?}"
    );
    let steps_saved: Vec<u64> = saved.iter().map(|c| c.step).collect();
    assert_eq!(steps_saved, vec![3, 6, 9], "a checkpoint per epoch");

    let run = client.get_run(id("tiny-1")).await.unwrap().into_inner();
    assert_eq!(run.state, RunState::Completed as i32);
    assert_eq!((run.step, run.total_steps), (9, 9));
    let latest = run.latest_checkpoint.unwrap();
    assert_eq!(latest, saved.last().unwrap().key);
    let files = checkpoint::read(&store, &CheckpointRef::parse(&latest).unwrap())
        .await
        .unwrap();
    assert_eq!(files.checkpoint.step, 9);
    let kept: Vec<u64> = checkpoint::committed(&store, "tiny-1")
        .await
        .unwrap()
        .iter()
        .map(|c| c.step)
        .collect();
    assert_eq!(kept, vec![6, 9], "keep_last = 2");

    // The sampler's event arrived on the bus.
    let deliveries = events.fetch(8, Duration::from_secs(5)).await.unwrap();
    let announced: Vec<u64> = deliveries
        .iter()
        .map(|d| d.decode::<CheckpointSaved>().unwrap().step)
        .collect();
    assert_eq!(announced, vec![3, 6, 9]);

    // Metrics, plots and validation samples are in the store.
    let csv = store
        .get(&layout::metrics("tiny-1").unwrap())
        .await
        .unwrap();
    let csv = String::from_utf8(csv.to_vec()).unwrap();
    assert!(csv.starts_with("Epoch,Global_Step,Loss,LR,Fourier_Gate_Avg"));
    assert_eq!(csv.lines().count(), 1 + 9);
    let rows = MetricsLog::parse(&csv, u64::MAX);
    assert!(
        rows.rows().iter().all(|row| row.memory_mb > 1.0),
        "every step reports the memory in use (the resident set on the CPU): {csv}"
    );
    for plot in ["loss.png", "lr.png", "fourier_gate.png", "progress.gif"] {
        let bytes = store
            .get(&layout::plot("tiny-1", plot).unwrap())
            .await
            .unwrap();
        assert!(image::load_from_memory(&bytes).is_ok(), "{plot}");
    }
    let page = server.metrics().await;
    assert!(page.contains("200 OK"), "{page}");
    assert!(
        page.contains("ssdit_train_step{run=\"tiny-1\"} 9"),
        "{page}"
    );
    assert!(
        page.contains("ssdit_train_running{run=\"tiny-1\"} 0"),
        "{page}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(context(dir.path(), 2).await).await;
    let mut client = server.client().await;
    let code = |result: Result<tonic::Response<_>, tonic::Status>| match result {
        Ok(_) => panic!("accepted"),
        Err(status) => (status.code(), status.message().to_string()),
    };
    let spec = |dataset: &str, config: &str, resume: Option<&str>| RunSpec {
        run_id: "r".into(),
        dataset: dataset.into(),
        config_toml: config.into(),
        resume_from: resume.map(str::to_string),
    };

    let (c, m) = code(client.get_run(id("nope")).await);
    assert_eq!(c, Code::NotFound, "{m}");
    assert!(m.contains("run nope not found"), "{m}");
    assert_eq!(code(client.stop_run(id("nope")).await).0, Code::NotFound);
    assert_eq!(
        client.watch_run(id("nope")).await.err().unwrap().code(),
        Code::NotFound
    );
    assert_eq!(
        code(client.get_run(id("../x")).await).0,
        Code::InvalidArgument
    );

    let (c, m) = code(client.start_run(spec("", "", None)).await);
    assert_eq!(c, Code::InvalidArgument, "{m}");
    assert!(m.contains("dataset"), "{m}");
    let (c, m) = code(client.start_run(spec("unknown", "", None)).await);
    assert_eq!(c, Code::NotFound, "{m}");
    assert!(m.contains("dataset unknown has no samples"), "{m}");
    let (c, m) = code(
        client
            .start_run(spec(DATASET, "epochs = \"many\"", None))
            .await,
    );
    assert_eq!(c, Code::InvalidArgument, "{m}");
    assert!(m.contains("epochs"), "{m}");
    let missing = "runs/r/checkpoints/step-0000000005";
    let (c, m) = code(client.start_run(spec(DATASET, "", Some(missing))).await);
    assert_eq!(c, Code::NotFound, "{m}");
    let (c, m) = code(
        client
            .start_run(spec(DATASET, "", Some("runs/r/metrics.csv")))
            .await,
    );
    assert_eq!(c, Code::InvalidArgument, "{m}");
    server.stop().await;
}
