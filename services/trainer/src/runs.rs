//! The runs this trainer knows: the live ones (their [`RunHandle`]s) and,
//! through `runs/<run>/run.json`, those of earlier trainer processes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use ssdit_proto::v1::{self, RunId, RunSpec};
use ssdit_store::{Store, layout};
use ssdit_train::{RunHandle, RunState, RunStatus};

use crate::{Error, Result};

/// A run as recorded in `runs/<run>/run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub dataset: String,
    pub config_toml: String,
    pub resume_from: Option<String>,
    pub state: String,
    pub step: u64,
    pub epoch: u64,
    pub total_steps: u64,
    pub latest_checkpoint: Option<String>,
    pub error: Option<String>,
    pub created_unix_ms: u64,
}

impl RunRecord {
    /// The record of a run with `spec` in `status`.
    pub fn new(spec: &RunSpec, status: &RunStatus, created_unix_ms: u64) -> Self {
        Self {
            run_id: spec.run_id.clone(),
            dataset: spec.dataset.clone(),
            config_toml: spec.config_toml.clone(),
            resume_from: spec.resume_from.clone(),
            state: state_name(status.state).to_string(),
            step: status.step,
            epoch: status.epoch,
            total_steps: status.total_steps,
            latest_checkpoint: status.latest_checkpoint.clone(),
            error: status.error.clone(),
            created_unix_ms,
        }
    }

    /// The gRPC view. A record left running by a trainer that is gone is
    /// reported failed, with the way to continue it.
    pub fn to_proto(&self, live: bool) -> v1::Run {
        let mut state = parse_state(&self.state);
        let mut error = self.error.clone();
        if !live && !state.is_terminal() {
            state = RunState::Failed;
            error = Some("the trainer process running it ended; StartRun with this run id resumes it from its last checkpoint".into());
        }
        v1::Run {
            id: Some(RunId {
                id: self.run_id.clone(),
            }),
            spec: Some(RunSpec {
                run_id: self.run_id.clone(),
                dataset: self.dataset.clone(),
                config_toml: self.config_toml.clone(),
                resume_from: self.resume_from.clone(),
            }),
            state: proto_state(state) as i32,
            step: self.step,
            epoch: u32::try_from(self.epoch).unwrap_or(u32::MAX),
            total_steps: self.total_steps,
            latest_checkpoint: self.latest_checkpoint.clone(),
            error,
            created_unix_ms: self.created_unix_ms,
        }
    }

    /// Writes it to `runs/<run>/run.json`.
    pub async fn save(&self, store: &Store) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("run records serialise");
        store
            .put(&layout::run_record(&self.run_id)?, bytes.into())
            .await?;
        Ok(())
    }

    /// Reads `runs/<run>/run.json`, if there is one.
    pub async fn load(store: &Store, run_id: &str) -> Result<Option<Self>> {
        let Some(bytes) = store.get_opt(&layout::run_record(run_id)?).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::InvalidArgument {
                field: "run_id",
                reason: format!("run {run_id} has an unreadable run.json: {e}"),
            })
    }
}

/// A live run.
pub struct LiveRun {
    pub spec: RunSpec,
    pub handle: RunHandle,
    pub created_unix_ms: u64,
}

impl LiveRun {
    /// Its record now.
    pub fn record(&self) -> RunRecord {
        RunRecord::new(&self.spec, &self.handle.status(), self.created_unix_ms)
    }
}

/// The live runs, by id.
#[derive(Clone, Default)]
pub struct Runs {
    live: Arc<Mutex<HashMap<String, Arc<LiveRun>>>>,
}

impl Runs {
    /// The live run `id`, if any.
    pub fn get(&self, id: &str) -> Option<Arc<LiveRun>> {
        self.lock().get(id).cloned()
    }

    /// Every live run.
    pub fn all(&self) -> Vec<Arc<LiveRun>> {
        self.lock().values().cloned().collect()
    }

    /// The run still training, if one is.
    pub fn active(&self) -> Option<Arc<LiveRun>> {
        self.lock()
            .values()
            .find(|run| !run.handle.status().state.is_terminal())
            .cloned()
    }

    /// Registers a run, unless another one is still training (the trainer
    /// has one device: RESOURCE_EXHAUSTED). `start` runs under the lock, so
    /// two concurrent starts cannot both pass the check.
    pub fn start(&self, start: impl FnOnce() -> Result<LiveRun>) -> Result<Arc<LiveRun>> {
        let mut live = self.lock();
        if let Some(active) = live
            .values()
            .find(|r| !r.handle.status().state.is_terminal())
        {
            return Err(Error::Busy {
                active: active.spec.run_id.clone(),
            });
        }
        let run = Arc::new(start()?);
        live.insert(run.spec.run_id.clone(), run.clone());
        Ok(run)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveRun>>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The proto enum of a run state.
pub fn proto_state(state: RunState) -> v1::RunState {
    match state {
        RunState::Pending => v1::RunState::Pending,
        RunState::Running => v1::RunState::Running,
        RunState::Stopping => v1::RunState::Stopping,
        RunState::Stopped => v1::RunState::Stopped,
        RunState::Completed => v1::RunState::Completed,
        RunState::Failed => v1::RunState::Failed,
    }
}

fn state_name(state: RunState) -> &'static str {
    match state {
        RunState::Pending => "pending",
        RunState::Running => "running",
        RunState::Stopping => "stopping",
        RunState::Stopped => "stopped",
        RunState::Completed => "completed",
        RunState::Failed => "failed",
    }
}

fn parse_state(name: &str) -> RunState {
    match name {
        "pending" => RunState::Pending,
        "running" => RunState::Running,
        "stopping" => RunState::Stopping,
        "stopped" => RunState::Stopped,
        "completed" => RunState::Completed,
        _ => RunState::Failed,
    }
}
