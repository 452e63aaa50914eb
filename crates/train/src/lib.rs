//! Training of the SingleStreamDiT, everything the seed's `train.py` does,
//! resumable and observable.
//!
//! - Data ([`data`]): the dataset's training manifest is checked first (every
//!   sample used has its latent and embedding, the missing ones are listed
//!   with their reasons); tensors are held in RAM or streamed; batches follow
//!   the seed's `BucketBatchSampler`; text dropout, latent flips and latent
//!   normalisation as its `TextImageDataset`.
//! - Optimisation ([`Trainer`]): AdamW (f32 or 8-bit moments) with the cosine
//!   warmup schedule over `steps/epoch × epochs`, gradient accumulation,
//!   global clipping, EMA, MSE/L1/Huber, time shift, offset noise, block
//!   dropout, and Self-E with the EMA teacher late in training.
//! - Randomness ([`rng`]): every draw derives from `(seed, purpose, epoch,
//!   micro-batch)`, so a resumed run continues exactly.
//! - State ([`checkpoint`]): model, EMA (the seed's tensor names), optimizer,
//!   schedule and position, committed atomically (a marker written last);
//!   keep-last-N cleanup; [`export_ema`].
//! - Observability ([`metrics`], drawn with `ssdit-render`): the seed's CSV
//!   columns and more, Prometheus text exposition, loss / learning-rate /
//!   gate plots, contact sheets of validation samples and their animation,
//!   all under `runs/<run>/` in the store.
//! - Control ([`spawn`] → [`RunHandle`]): training on its own thread; async
//!   code starts it, stops it at a step boundary, and watches its progress.
//! - [`synthetic`]: a small encoded dataset written straight to a store, for
//!   tests and smoke runs without images or encoders.
//!
//! # Running a training in process (what `ssdit train` / `ssdit run` call)
//!
//! ```text
//! let mut request = RunRequest::from_config("flowers-1", "flowers", &config);
//! request.resume = Resume::Auto;            // or Fresh, or From(checkpoint key)
//! let ctx = TrainContext { store, bus: Some(bus), runtime: Handle::current() };
//! let handle = spawn(ctx, request)?;        // validates, starts thread `train-<run>`
//! let mut updates = handle.subscribe();     // RunUpdate::Event(TrainEvent::…) / Finished
//! // TrainEvent::Started { step, total_steps }, Step(StepEvent { loss, lr, … }),
//! // CheckpointSaved { step, key }, Validated { sheet, … }: drive a progress bar.
//! handle.status();                          // RunStatus { state, step, total_steps, … }
//! handle.stop();                            // stop at the next step, after a checkpoint
//! let end = handle.wait().await;            // final RunStatus (Completed/Stopped/Failed)
//! ```
//!
//! `spawn` picks the device from `models.device`; `train.gradient_checkpointing`
//! picks block-level activation checkpointing (`"blocks"`, the model's
//! [`ssdit_model::TrainingPass`]) or burn's autodiff checkpointing
//! (`"operations"`). A caller with its own
//! thread and backend calls [`session::run`] directly with an observer
//! closure. [`export_ema`] returns a checkpoint's EMA weights as one
//! safetensors file with the seed's tensor names.

pub mod checkpoint;
pub mod data;
pub mod encodings;
mod error;
mod handle;
pub mod metrics;
pub mod model;
pub mod rng;
pub mod session;
pub mod state;
pub mod synthetic;
mod trainer;
pub mod validate;

pub(crate) use error::config_error;
pub use error::{Error, Result};
pub use handle::{CheckpointedTrainBackend, RunHandle, RunState, RunStatus, RunUpdate, spawn};
pub use session::{
    Outcome, Resume, RunControl, RunRequest, RunSummary, StepEvent, TrainContext, TrainEvent,
};
pub use trainer::{InnerDiT, StepReport, Trainer, TrainerParts, activation_checkpointing};

/// The EMA weights of a run's newest committed checkpoint (or of the one at
/// `step`) as one safetensors file with the seed's tensor names: loads in
/// the seed's PyTorch model and in the sampler.
pub async fn export_ema(
    store: &ssdit_store::Store,
    run_id: &str,
    step: Option<u64>,
) -> Result<bytes::Bytes> {
    let files = match step {
        None => checkpoint::latest(store, run_id)
            .await?
            .ok_or_else(|| Error::NoCheckpoint {
                run_id: run_id.to_string(),
            })?,
        Some(step) => {
            let reference = checkpoint::CheckpointRef {
                run_id: run_id.to_string(),
                step,
                dir: ssdit_store::layout::checkpoint_dir(run_id, step)?,
            };
            checkpoint::read(store, &reference).await?
        }
    };
    Ok(files.get(checkpoint::EMA_FILE)?.clone())
}
