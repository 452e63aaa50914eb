//! A trainer process killed mid-run (SIGKILL, not asked to stop) leaves no
//! corrupted file in the store, and a new trainer process resumes the run
//! from its last committed checkpoint.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::DATASET;
use ssdit_proto::v1::trainer_service_client::TrainerServiceClient;
use ssdit_proto::v1::{RunId, RunSpec, RunState, run_progress};
use ssdit_store::{Store, layout};
use ssdit_train::checkpoint;
use tonic::transport::Channel;

const RUN: &str = "killed";

/// A free local port (bound and released; the trainer binds it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the `trainer` binary with `config` on `port`.
fn spawn_trainer(config: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ])
        .args(["--metrics-port", "0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// A client of the trainer on `port`, once it accepts connections.
async fn connect(port: u16) -> TrainerServiceClient<Channel> {
    for _ in 0..300 {
        if let Ok(client) = TrainerServiceClient::connect(format!("http://127.0.0.1:{port}")).await
        {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the trainer did not start listening on port {port}");
}

/// Starts (or resumes) the run and waits for `checkpoints` checkpoint
/// events; returns the first step trained and the checkpointed steps.
async fn train_until(
    client: &mut TrainerServiceClient<Channel>,
    checkpoints: usize,
) -> (u64, Vec<u64>) {
    client
        .start_run(RunSpec {
            run_id: RUN.into(),
            dataset: DATASET.into(),
            config_toml: String::new(),
            resume_from: None,
        })
        .await
        .unwrap();
    let mut stream = client
        .watch_run(RunId { id: RUN.into() })
        .await
        .unwrap()
        .into_inner();
    let (mut first_step, mut saved) = (None, Vec::new());
    while saved.len() < checkpoints {
        let message = tokio::time::timeout(Duration::from_secs(120), stream.message())
            .await
            .expect("progress within 2 minutes")
            .unwrap()
            .expect("the run goes on");
        match message.event.unwrap() {
            run_progress::Event::Step(step) => {
                first_step.get_or_insert(step.step);
            }
            run_progress::Event::CheckpointSaved(c) => saved.push(c.step),
            run_progress::Event::Finished(f) => panic!("the run ended: {f:?}"),
        }
    }
    (first_step.unwrap(), saved)
}

/// Every committed checkpoint of the run verifies against its marker.
async fn committed_steps_verify(store: &Store) -> Vec<u64> {
    let committed = checkpoint::committed(store, RUN).await.unwrap();
    for c in &committed {
        checkpoint::read(store, c)
            .await
            .unwrap_or_else(|e| panic!("checkpoint {} is corrupted: {e}", c.step));
    }
    committed.iter().map(|c| c.step).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_trainer_resumes_from_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let ctx = common::context(&store_dir, 4).await;
    let mut config = (*ctx.config).clone();
    // Long enough never to finish here; no validation; a checkpoint per epoch (2 steps).
    config.train.epochs = 10_000;
    config.train.validate_every = 10_000;
    config.train.keep_last = 3;
    let config_path = dir.path().join("ssdit.toml");
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
    let store = ctx.store.clone();

    let port = free_port();
    let mut first = spawn_trainer(&config_path, port);
    let mut client = connect(port).await;
    let (_, saved) = train_until(&mut client, 2).await;
    first.kill().unwrap();
    first.wait().unwrap();

    let committed = committed_steps_verify(&store).await;
    assert!(
        committed.last() >= Some(&saved[1]),
        "committed {committed:?}, announced {saved:?}"
    );
    let last = *committed.last().unwrap();
    let csv = store.get(&layout::metrics(RUN).unwrap()).await.unwrap();
    assert!(
        String::from_utf8(csv.to_vec())
            .unwrap()
            .starts_with("Epoch,Global_Step")
    );

    let port = free_port();
    let mut second = spawn_trainer(&config_path, port);
    let mut client = connect(port).await;
    let orphan = client
        .get_run(RunId { id: RUN.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(orphan.state, RunState::Failed as i32, "{orphan:?}");
    assert!(orphan.error.unwrap().contains("resumes it"));
    let (first_step, saved_again) = train_until(&mut client, 1).await;
    assert_eq!(
        first_step,
        last + 1,
        "resumed right after checkpoint {last}"
    );
    assert!(saved_again[0] > last);
    let stopped = client
        .stop_run(RunId { id: RUN.into() })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(stopped.state, RunState::Failed as i32);
    second.kill().unwrap();
    second.wait().unwrap();
    committed_steps_verify(&store).await;
}
