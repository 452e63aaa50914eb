//! Where a run stands, as saved in a checkpoint's `state.json`.

use serde::{Deserialize, Serialize};
use ssdit_core::config::TrainConfig;
use ssdit_optim::CosineWithWarmup;

/// Format tag of `state.json`.
pub const STATE_FORMAT: &str = "ssdit.train-state.v1";

/// A position in the data: which epoch, how many of its micro-batches are
/// consumed, how many optimizer steps were taken in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Position {
    /// The epoch in progress (0-based).
    pub epoch: u64,
    /// Micro-batches of that epoch already trained on (a multiple of the
    /// accumulation steps).
    pub batch: u64,
    /// Optimizer steps taken since the run began.
    pub global_step: u64,
}

/// How many steps the run takes, as the seed computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Full batches per epoch (`BucketBatchSampler.__len__`).
    pub batches_per_epoch: u64,
    /// `batches_per_epoch / accum_steps`: a partial accumulation at the end
    /// of an epoch is dropped, as the seed's `zero_grad` at each epoch start does.
    pub steps_per_epoch: u64,
    /// `steps_per_epoch × epochs`.
    pub total_steps: u64,
}

/// The learning-rate schedule in force and the global step it started at
/// (a `reset_optimizer` resume starts a new one over the remaining epochs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    pub schedule: CosineWithWarmup,
    pub start_step: u64,
}

impl ScheduleState {
    /// The learning rate of the optimizer step that follows `global_step`
    /// steps (transformers' `LambdaLR`: the first step uses `lr(0)`).
    pub fn lr(&self, global_step: u64) -> f64 {
        self.schedule
            .lr(global_step.saturating_sub(self.start_step))
    }
}

/// Everything of a run's progress that is not a tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    pub format: String,
    pub run_id: String,
    pub dataset: String,
    pub position: Position,
    pub plan: Plan,
    pub schedule: ScheduleState,
    /// EMA updates so far (AveragedModel's `n_averaged`).
    pub ema_updates: u64,
    /// Samples in training (held-out ones excluded).
    pub train_samples: usize,
    /// The training settings of the run.
    pub config: TrainConfig,
    /// Milliseconds since the Unix epoch when it was saved.
    pub saved_unix_ms: u64,
}

/// Milliseconds since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(start_step: u64) -> ScheduleState {
        ScheduleState {
            schedule: CosineWithWarmup::with_warmup_fraction(2e-4, 105, 0.05).unwrap(),
            start_step,
        }
    }

    #[test]
    fn the_schedule_warms_up_decays_and_restarts_at_its_start_step() {
        let s = schedule(0);
        assert_eq!(
            s.lr(0),
            0.0,
            "the first warmup step uses lr(0), as LambdaLR"
        );
        assert!(
            (s.lr(5) - 2e-4).abs() < 1e-18,
            "warmup is ⌊5% of 105⌋ steps"
        );
        assert!((s.lr(4) - 2e-4 * 0.8).abs() < 1e-18);
        assert!((s.lr(55) - 1e-4).abs() < 1e-15, "half-way down the cosine");
        assert!(s.lr(105) < 1e-12);
        // A schedule restarted at step 40 (reset_optimizer) is the same curve shifted.
        let restarted = schedule(40);
        assert_eq!(restarted.lr(40), 0.0);
        assert_eq!(restarted.lr(45), s.lr(5));
        assert_eq!(
            restarted.lr(10),
            0.0,
            "steps before its start read as its first"
        );
    }

    #[test]
    fn training_state_round_trips_through_json() {
        let state = TrainingState {
            format: STATE_FORMAT.into(),
            run_id: "r".into(),
            dataset: "d".into(),
            position: Position {
                epoch: 3,
                batch: 4,
                global_step: 17,
            },
            plan: Plan {
                batches_per_epoch: 9,
                steps_per_epoch: 4,
                total_steps: 40,
            },
            schedule: schedule(7),
            ema_updates: 17,
            train_samples: 19,
            config: TrainConfig::default(),
            saved_unix_ms: now_unix_ms(),
        };
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<TrainingState>(&json).unwrap(), state);
    }
}
