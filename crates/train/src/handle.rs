//! Training on its own OS thread, controlled from async code: start, stop
//! at the next step boundary (with a final checkpoint), progress broadcast
//! and status.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use ssdit_core::backend::{ComputeBackend, DeviceSpec, TrainBackend};
use ssdit_core::config::GradientCheckpointing;
use ssdit_core::panic_message;
use tokio::sync::{broadcast, watch};

use crate::metrics::RunMetrics;
use crate::session::{self, Outcome, RunControl, RunRequest, RunSummary, TrainContext, TrainEvent};
use crate::{Error, Result, config_error};

/// The autodiff backend with burn's balanced checkpointing: memory-bound
/// operations are recomputed in the backward pass instead of kept
/// (`train.gradient_checkpointing = "operations"`).
pub type CheckpointedTrainBackend = Autodiff<ComputeBackend, BalancedCheckpointing>;

/// Progress events buffered per subscriber before the slowest one lags.
const EVENT_BUFFER: usize = 1024;

/// The life cycle of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Loading data and model.
    Pending,
    Running,
    /// A stop was requested; the run saves a checkpoint and stops.
    Stopping,
    Stopped,
    Completed,
    Failed,
}

impl RunState {
    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Stopped | Self::Completed | Self::Failed)
    }
}

/// Where a run stands, for `GetRun`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStatus {
    pub state: RunState,
    pub step: u64,
    pub epoch: u64,
    pub total_steps: u64,
    /// Key of the EMA weights of the newest committed checkpoint.
    pub latest_checkpoint: Option<String>,
    pub error: Option<String>,
}

impl RunStatus {
    fn pending() -> Self {
        Self {
            state: RunState::Pending,
            step: 0,
            epoch: 0,
            total_steps: 0,
            latest_checkpoint: None,
            error: None,
        }
    }
}

/// What subscribers receive: a training event, or the end of the run.
#[derive(Debug, Clone, PartialEq)]
pub enum RunUpdate {
    Event(TrainEvent),
    /// The run ended in `status.state`.
    Finished(RunStatus),
}

/// A run training on its own thread.
pub struct RunHandle {
    request: RunRequest,
    control: RunControl,
    events: broadcast::Sender<RunUpdate>,
    status: watch::Receiver<RunStatus>,
}

impl std::fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHandle")
            .field("run_id", &self.request.run_id)
            .field("status", &*self.status.borrow())
            .finish()
    }
}

/// Starts `request` on a new thread (named `train-<run>`), on the device
/// `models.device` names, on burn's checkpointing backend if
/// `train.gradient_checkpointing` asks for its operations. The
/// thread ends on its own once the run has ended and said so.
pub fn spawn(ctx: TrainContext, request: RunRequest) -> Result<RunHandle> {
    request.validate()?;
    let device = DeviceSpec::parse(&request.models.device)
        .and_then(DeviceSpec::device)
        .map_err(|e| config_error("models.device", e.to_string()))?;
    let control = RunControl::default();
    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let (status_tx, status) = watch::channel(RunStatus::pending());
    {
        let (request, control, events) = (request.clone(), control.clone(), events.clone());
        std::thread::Builder::new()
            .name(format!("train-{}", request.run_id))
            .spawn(move || {
                let mut observe = |event: TrainEvent| {
                    status_tx.send_modify(|status| apply(status, &event, &control));
                    let _ = events.send(RunUpdate::Event(event));
                };
                let result = guarded(|| {
                    if request.train.gradient_checkpointing == GradientCheckpointing::Operations {
                        session::run::<CheckpointedTrainBackend>(
                            &ctx,
                            &request,
                            device,
                            &control,
                            &mut observe,
                        )
                    } else {
                        session::run::<TrainBackend>(&ctx, &request, device, &control, &mut observe)
                    }
                });
                status_tx.send_modify(|status| finish(status, result));
                let _ = events.send(RunUpdate::Finished(status_tx.borrow().clone()));
            })
            .map_err(|e| Error::Thread(format!("cannot start the training thread: {e}")))?;
    }
    Ok(RunHandle {
        request,
        control,
        events,
        status,
    })
}

/// `run`'s result, or its panic as an error: a run that panics (out of GPU
/// memory, say) ends Failed with the panic's message instead of staying
/// Running with no thread behind it.
fn guarded(run: impl FnOnce() -> Result<RunSummary>) -> Result<RunSummary> {
    catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|panic| {
        let message = panic_message(&*panic);
        tracing::error!(panic = %message, "training run panicked");
        Err(Error::Panicked(message))
    })
}

fn apply(status: &mut RunStatus, event: &TrainEvent, control: &RunControl) {
    let running = if control.stop_requested() {
        RunState::Stopping
    } else {
        RunState::Running
    };
    match event {
        TrainEvent::Started {
            step,
            epoch,
            total_steps,
        } => {
            status.state = running;
            status.step = *step;
            status.epoch = *epoch;
            status.total_steps = *total_steps;
        }
        TrainEvent::Step(step) => {
            status.state = running;
            status.step = step.step;
            status.epoch = step.epoch;
        }
        TrainEvent::CheckpointSaved { key, .. } => status.latest_checkpoint = Some(key.clone()),
        TrainEvent::Validated { .. } => {}
    }
}

fn finish(status: &mut RunStatus, result: Result<RunSummary>) {
    match result {
        Ok(summary) => {
            status.state = match summary.outcome {
                Outcome::Completed => RunState::Completed,
                Outcome::Stopped => RunState::Stopped,
            };
            status.step = summary.step;
            status.epoch = summary.epoch;
            status.total_steps = summary.total_steps;
        }
        Err(error) => {
            status.state = RunState::Failed;
            status.error = Some(error.to_string());
        }
    }
}

impl RunHandle {
    /// The request it runs.
    pub fn request(&self) -> &RunRequest {
        &self.request
    }

    /// Asks the run to stop at the next step boundary, after a checkpoint.
    pub fn stop(&self) {
        self.control.stop();
    }

    /// The run's status now (Stopping while a stop is pending).
    pub fn status(&self) -> RunStatus {
        let mut status = self.status.borrow().clone();
        if self.control.stop_requested() && !status.state.is_terminal() {
            status.state = RunState::Stopping;
        }
        status
    }

    /// Progress from now on; a terminated run sends nothing more, so check
    /// [`status`](Self::status) after subscribing.
    pub fn subscribe(&self) -> broadcast::Receiver<RunUpdate> {
        self.events.subscribe()
    }

    /// The run's live metrics.
    pub fn metrics(&self) -> Arc<RunMetrics> {
        self.control.metrics.clone()
    }

    /// Waits until the run has ended (its last checkpoint committed) and
    /// returns its final status.
    pub async fn wait(&self) -> RunStatus {
        let mut status = self.status.clone();
        let _ = status.wait_for(|s| s.state.is_terminal()).await;
        self.status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_run_fails_with_the_panics_message() {
        let result = guarded(|| panic!("out of memory allocating 2 GiB"));
        let mut status = RunStatus::pending();
        finish(&mut status, result);
        assert_eq!(status.state, RunState::Failed);
        let error = status.error.unwrap();
        assert!(
            error.contains("panic: out of memory allocating 2 GiB")
                && error.contains("resume from it"),
            "{error}"
        );
    }
}
