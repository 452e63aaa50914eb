//! Gradient checkpointing (`train.gradient_checkpointing`) trades time for
//! memory only: with the blocks run again in the backward pass (`blocks`)
//! or with burn's balanced checkpointing (`operations`), the same steps give
//! the same losses, gradient norms and weights as without it (within float
//! tolerance: the backward pass sums in another order).
//!
//! Alone in its test binary, its tests one at a time: block dropout seeds
//! the backend's global RNG, which a concurrent test would disturb.

mod common;

use std::sync::{Mutex, PoisonError};

use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::AutodiffBackend;
use common::{AB, Fixture, max_difference, weights};
use ssdit_core::config::{GradientCheckpointing, TrainConfig};
use ssdit_train::synthetic::SyntheticDataset;
use ssdit_train::{StepReport, Trainer};

/// What `ssdit_train::CheckpointedTrainBackend` is on the CPU.
type Checkpointed = Autodiff<NdArray<f32>, BalancedCheckpointing>;

/// Optimizer steps compared.
const STEPS: usize = 3;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Trains `STEPS` steps; returns their reports.
fn train<B: AutodiffBackend>(trainer: &mut Trainer<B>) -> Vec<StepReport> {
    (0..STEPS).map(|_| trainer.step().unwrap()).collect()
}

/// Two accumulated micro-batches per step, block dropout on (so that a
/// recomputed forward drawing new masks would show), checkpointing as given.
fn config(gradient_checkpointing: GradientCheckpointing) -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 2,
        accum_steps: 2,
        dropout: 0.1,
        gradient_checkpointing,
        ..TrainConfig::default()
    }
}

/// Trains without checkpointing on `AB` and with `checkpointing` on `C`
/// (the backend `ssdit_train::spawn` picks for it), and compares.
fn assert_same_training<C: AutodiffBackend>(checkpointing: GradientCheckpointing) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let fixture = Fixture::new(SyntheticDataset::tiny("checkpointing", 8));
    let mut plain: Trainer<AB> = fixture.trainer_on(
        &config(GradientCheckpointing::Off),
        None,
        fixture.training_set(true),
    );
    let mut checkpointed: Trainer<C> =
        fixture.trainer_on(&config(checkpointing), None, fixture.training_set(true));
    let start = weights(plain.model().unwrap());
    let (differ, _) = max_difference(&start, &weights(checkpointed.model().unwrap()));
    assert_eq!(differ, 0.0, "both start from the seeded initialisation");

    let plain_reports = train(&mut plain);
    let checkpointed_reports = train(&mut checkpointed);
    for (step, (a, b)) in plain_reports.iter().zip(&checkpointed_reports).enumerate() {
        assert!(
            (a.loss - b.loss).abs() <= 1e-6 * a.loss.abs().max(1.0),
            "step {step}: loss {} without checkpointing, {} with",
            a.loss,
            b.loss
        );
        assert!(
            (a.grad_norm - b.grad_norm).abs() <= 1e-5 * a.grad_norm.max(1.0),
            "step {step}: gradient norm {} without checkpointing, {} with",
            a.grad_norm,
            b.grad_norm
        );
    }
    let trained = weights(plain.model().unwrap());
    let (diff, name) = max_difference(&trained, &weights(checkpointed.model().unwrap()));
    assert!(diff < 1e-5, "weights differ by {diff} at {name}");
    let (moved, _) = max_difference(&start, &trained);
    assert!(
        moved > 1e-4,
        "training left the weights where they were ({moved})"
    );
}

#[test]
fn recomputing_blocks_changes_neither_losses_nor_gradients_nor_weights() {
    assert_same_training::<AB>(GradientCheckpointing::Blocks);
}

#[test]
fn burns_checkpointing_changes_neither_losses_nor_gradients_nor_weights() {
    assert_same_training::<Checkpointed>(GradientCheckpointing::Operations);
}
