//! `ssdit.v1.TrainerService`: start, inspect, stop and watch training runs.
//! One run trains at a time per trainer (one device): a second `StartRun`
//! while one is training is RESOURCE_EXHAUSTED.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use ssdit_proto::v1::trainer_service_server::{TrainerService, TrainerServiceServer};
use ssdit_proto::v1::{
    self, CheckpointSaved, RunFinished, RunId, RunProgress, RunSpec, StepProgress, run_progress,
};
use ssdit_server::ServiceContext;
use ssdit_store::layout;
use ssdit_train::checkpoint::{self, CheckpointRef};
use ssdit_train::metrics::render_prometheus;
use ssdit_train::{
    Resume, RunRequest, RunStatus, RunUpdate, TrainContext, TrainEvent, state::now_unix_ms,
};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::overrides;
use crate::runs::{LiveRun, RunRecord, Runs, proto_state};
use crate::{Error, Result};

/// Progress messages buffered per watcher.
const WATCH_BUFFER: usize = 64;

/// The trainer: its deployment and its runs. Clones share the runs.
#[derive(Clone)]
pub struct Trainer {
    ctx: ServiceContext,
    runs: Runs,
}

impl Trainer {
    /// A trainer working in `ctx`'s store and bus with `ctx.config`'s settings.
    pub fn new(ctx: ServiceContext) -> Self {
        Self {
            ctx,
            runs: Runs::default(),
        }
    }

    /// The gRPC service.
    pub fn grpc(&self) -> TrainerServiceServer<Self> {
        TrainerServiceServer::new(self.clone())
    }

    /// Validates `spec` and starts the run on its training thread.
    pub async fn start(&self, mut spec: RunSpec) -> Result<v1::Run> {
        let invalid = |field, reason: String| Error::InvalidArgument { field, reason };
        if spec.dataset.is_empty() {
            return Err(invalid(
                "dataset",
                "empty; name the dataset to train on".into(),
            ));
        }
        layout::dataset_root(&spec.dataset).map_err(|e| invalid("dataset", e.to_string()))?;
        if spec.run_id.is_empty() {
            spec.run_id = format!("{}-{}", spec.dataset, now_unix_ms());
        }
        layout::run_root(&spec.run_id).map_err(|e| invalid("run_id", e.to_string()))?;
        let train = overrides::apply(&self.ctx.config, &spec.config_toml)?;
        let resume = match &spec.resume_from {
            None => Resume::Auto,
            Some(key) => {
                let reference =
                    CheckpointRef::parse(key).map_err(|e| invalid("resume_from", e.to_string()))?;
                let committed = checkpoint::committed(&self.ctx.store, &reference.run_id).await?;
                if !committed.contains(&reference) {
                    return Err(Error::NotFound {
                        what: "checkpoint",
                        id: key.clone(),
                    });
                }
                Resume::From(key.clone())
            }
        };
        let samples = self
            .ctx
            .store
            .list(&layout::samples_prefix(&spec.dataset)?)
            .await?;
        if samples.is_empty() {
            return Err(Error::NoSamples {
                dataset: spec.dataset.clone(),
            });
        }
        let mut request = RunRequest::from_config(&spec.run_id, &spec.dataset, &self.ctx.config);
        request.train = train;
        request.resume = resume;
        let run = self.launch(spec, request).await?;
        Ok(run.record().to_proto(true))
    }

    /// Trains `request`, prepared by an in-process caller (`ssdit run`), as
    /// one of this trainer's runs: GetRun, StopRun and WatchRun see it as
    /// they see a `StartRun`'s, and `run.json` records it with its whole
    /// `[train]` section as `config_toml`. The caller watches the returned
    /// run's handle.
    pub async fn train(&self, request: RunRequest) -> Result<Arc<LiveRun>> {
        let config_toml = toml::to_string(&request.train).map_err(|e| Error::InvalidArgument {
            field: "config_toml",
            reason: format!("the [train] settings do not serialise: {e}"),
        })?;
        let spec = RunSpec {
            run_id: request.run_id.clone(),
            dataset: request.dataset.clone(),
            config_toml,
            resume_from: match &request.resume {
                Resume::From(key) => Some(key.clone()),
                Resume::Auto | Resume::Fresh => None,
            },
        };
        self.launch(spec, request).await
    }

    /// Starts `request` on its training thread as the run `spec` describes,
    /// unless another run is training, and keeps its `run.json` current.
    async fn launch(&self, spec: RunSpec, request: RunRequest) -> Result<Arc<LiveRun>> {
        let context = TrainContext {
            store: self.ctx.store.clone(),
            bus: Some(self.ctx.bus.clone()),
            runtime: tokio::runtime::Handle::current(),
        };
        let run = self.runs.start(|| {
            Ok(LiveRun {
                handle: ssdit_train::spawn(context, request)?,
                spec: spec.clone(),
                created_unix_ms: now_unix_ms(),
            })
        })?;
        tracing::info!(run_id = %spec.run_id, dataset = %spec.dataset, "run started");
        if let Err(error) = run.record().save(&self.ctx.store).await {
            tracing::warn!(run_id = %spec.run_id, %error, "could not write run.json");
        }
        tokio::spawn(keep_record(self.ctx.store.clone(), run.clone()));
        Ok(run)
    }

    /// The run `id`: live, or as an earlier trainer recorded it.
    pub async fn get(&self, id: &str) -> Result<v1::Run> {
        if let Some(run) = self.runs.get(id) {
            return Ok(run.record().to_proto(true));
        }
        Ok(self.recorded(id).await?.to_proto(false))
    }

    /// Asks run `id` to stop at its next step boundary (it saves a checkpoint).
    pub async fn stop(&self, id: &str) -> Result<v1::Run> {
        match self.runs.get(id) {
            Some(run) => {
                run.handle.stop();
                tracing::info!(run_id = id, "stop requested");
                Ok(run.record().to_proto(true))
            }
            None => Ok(self.recorded(id).await?.to_proto(false)),
        }
    }

    /// Progress of run `id` until it ends; always ends with `RunFinished`.
    pub async fn watch(&self, id: &str) -> Result<ReceiverStream<Result<RunProgress, Status>>> {
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let Some(run) = self.runs.get(id) else {
            let record = self.recorded(id).await?;
            let run = record.to_proto(false);
            let finished = RunFinished {
                state: run.state,
                step: run.step,
                error: run.error,
            };
            let _ = tx
                .send(Ok(progress(id, run_progress::Event::Finished(finished))))
                .await;
            return Ok(ReceiverStream::new(rx));
        };
        let updates = run.handle.subscribe();
        let status = run.handle.status();
        tokio::spawn(forward(id.to_string(), updates, status, tx));
        Ok(ReceiverStream::new(rx))
    }

    /// The Prometheus exposition of every run this process has run.
    pub fn metrics_text(&self) -> String {
        let runs: Vec<(String, ssdit_train::metrics::MetricValues)> = self
            .runs
            .all()
            .iter()
            .map(|run| (run.spec.run_id.clone(), run.handle.metrics().snapshot()))
            .collect();
        render_prometheus(&runs)
    }

    /// Stops every live run and waits until each has saved its checkpoint.
    pub async fn shutdown(&self) {
        let runs = self.runs.all();
        for run in &runs {
            run.handle.stop();
        }
        for run in runs {
            let status = run.handle.wait().await;
            tracing::info!(run_id = %run.spec.run_id, state = ?status.state, step = status.step, "run ended at shutdown");
        }
    }

    async fn recorded(&self, id: &str) -> Result<RunRecord> {
        layout::run_root(id).map_err(|e| Error::InvalidArgument {
            field: "run_id",
            reason: e.to_string(),
        })?;
        RunRecord::load(&self.ctx.store, id)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "run",
                id: id.to_string(),
            })
    }
}

fn progress(run_id: &str, event: run_progress::Event) -> RunProgress {
    RunProgress {
        run_id: run_id.to_string(),
        event: Some(event),
    }
}

fn finished(status: &RunStatus) -> run_progress::Event {
    run_progress::Event::Finished(RunFinished {
        state: proto_state(status.state) as i32,
        step: status.step,
        error: status.error.clone(),
    })
}

/// Sends a run's updates to one watcher until the run ends or the watcher leaves.
async fn forward(
    run_id: String,
    mut updates: broadcast::Receiver<RunUpdate>,
    status: RunStatus,
    tx: mpsc::Sender<Result<RunProgress, Status>>,
) {
    if status.state.is_terminal() {
        let _ = tx.send(Ok(progress(&run_id, finished(&status)))).await;
        return;
    }
    loop {
        let event = match updates.recv().await {
            Ok(RunUpdate::Event(TrainEvent::Step(step))) => {
                run_progress::Event::Step(StepProgress {
                    step: step.step,
                    epoch: u32::try_from(step.epoch).unwrap_or(u32::MAX),
                    loss: step.loss as f32,
                    lr: step.lr,
                    grad_norm: step.grad_norm as f32,
                    fourier_gate_avg: step.gate as f32,
                    samples_per_second: step.samples_per_second as f32,
                    memory_bytes: step.memory_bytes,
                })
            }
            Ok(RunUpdate::Event(TrainEvent::CheckpointSaved { step, key })) => {
                run_progress::Event::CheckpointSaved(CheckpointSaved {
                    run_id: run_id.clone(),
                    step,
                    key,
                })
            }
            Ok(RunUpdate::Event(_)) => continue,
            Ok(RunUpdate::Finished(status)) => {
                let _ = tx.send(Ok(progress(&run_id, finished(&status)))).await;
                return;
            }
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                tracing::debug!(run_id, skipped, "watcher lagged; skipping progress");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => {
                let _ = tx
                    .send(Err(Status::internal(
                        "the run's progress channel closed unexpectedly",
                    )))
                    .await;
                return;
            }
        };
        if tx.send(Ok(progress(&run_id, event))).await.is_err() {
            return;
        }
    }
}

/// Keeps `runs/<run>/run.json` current: after each checkpoint and at the end.
async fn keep_record(store: ssdit_store::Store, run: Arc<LiveRun>) {
    let mut updates = run.handle.subscribe();
    loop {
        let end = match updates.recv().await {
            Ok(RunUpdate::Event(TrainEvent::CheckpointSaved { .. })) => false,
            Ok(RunUpdate::Finished(_)) | Err(broadcast::error::RecvError::Closed) => true,
            Ok(RunUpdate::Event(_)) | Err(broadcast::error::RecvError::Lagged(_)) => {
                if !run.handle.status().state.is_terminal() {
                    continue;
                }
                true
            }
        };
        if let Err(error) = run.record().save(&store).await {
            tracing::warn!(run_id = %run.spec.run_id, %error, "could not write run.json");
        }
        if end {
            return;
        }
    }
}

/// Checks a run id of a request.
fn run_id(request: Request<RunId>) -> std::result::Result<String, Status> {
    let id = request.into_inner().id;
    layout::run_root(&id).map_err(|e| {
        Status::from(Error::InvalidArgument {
            field: "id",
            reason: e.to_string(),
        })
    })?;
    Ok(id)
}

#[tonic::async_trait]
impl TrainerService for Trainer {
    async fn start_run(
        &self,
        request: Request<RunSpec>,
    ) -> std::result::Result<Response<v1::Run>, Status> {
        Ok(Response::new(self.start(request.into_inner()).await?))
    }

    async fn get_run(
        &self,
        request: Request<RunId>,
    ) -> std::result::Result<Response<v1::Run>, Status> {
        Ok(Response::new(self.get(&run_id(request)?).await?))
    }

    async fn stop_run(
        &self,
        request: Request<RunId>,
    ) -> std::result::Result<Response<v1::Run>, Status> {
        Ok(Response::new(self.stop(&run_id(request)?).await?))
    }

    type WatchRunStream =
        Pin<Box<dyn Stream<Item = std::result::Result<RunProgress, Status>> + Send>>;

    async fn watch_run(
        &self,
        request: Request<RunId>,
    ) -> std::result::Result<Response<Self::WatchRunStream>, Status> {
        let stream = self.watch(&run_id(request)?).await?;
        Ok(Response::new(Box::pin(stream)))
    }
}
