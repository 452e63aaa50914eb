//! Resuming continues the same curve: 2×N steps in one run and N steps,
//! a checkpoint, a new trainer resumed from it and N more steps give the
//! same weights, EMA and losses within float tolerance on the CPU.
//!
//! Alone in its test binary: block dropout seeds the backend's global RNG,
//! which a concurrent test would disturb.

mod common;

use common::{Fixture, checkpoint, max_difference, weights};
use ssdit_core::config::TrainConfig;
use ssdit_dataset::Bucket;
use ssdit_train::synthetic::SyntheticDataset;

/// Steps of the whole run; the resume is halfway, in the middle of an epoch.
const STEPS: u64 = 6;

#[test]
fn two_n_steps_equal_n_steps_resumed_for_n_more() {
    // Two buckets, so batches and epochs are shuffled; a partial batch and a
    // partial accumulation are dropped each epoch.
    let mut spec = SyntheticDataset::tiny("resume", 5);
    spec.buckets.push(Bucket {
        width: 80,
        height: 48,
    });
    let fixture = Fixture::new(spec);
    let config = TrainConfig {
        epochs: 3,
        batch_size: 2,
        accum_steps: 2,
        dropout: 0.1,
        flip: true,
        self_eval: ssdit_core::config::SelfEvalConfig {
            enabled: true,
            start: 0.5,
            ..Default::default()
        },
        ..TrainConfig::default()
    };
    // 2 buckets × ⌊5/2⌋ = 4 batches per epoch, 2 steps per epoch, 6 in all.
    let mut whole = fixture.trainer(&config, None);
    assert_eq!(whole.plan().total_steps, STEPS);
    let mut straight = Vec::new();
    while !whole.finished() {
        straight.push(whole.step().unwrap().loss);
    }

    let mut first = fixture.trainer(&config, None);
    let mut resumed_losses = Vec::new();
    for _ in 0..STEPS / 2 {
        resumed_losses.push(first.step().unwrap().loss);
    }
    let files = checkpoint(&first);
    drop(first);
    let mut second = fixture.trainer(&config, Some(&files));
    assert_eq!(second.position().global_step, STEPS / 2);
    assert_eq!(second.position().batch, 2, "resumed inside an epoch");
    while !second.finished() {
        resumed_losses.push(second.step().unwrap().loss);
    }

    assert_eq!(straight.len(), resumed_losses.len());
    for (step, (a, b)) in straight.iter().zip(&resumed_losses).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1.0),
            "step {step}: loss {a} vs {b}"
        );
    }
    let (diff, name) = max_difference(
        &weights(whole.model().unwrap()),
        &weights(second.model().unwrap()),
    );
    assert!(diff < 1e-5, "weights differ by {diff} at {name}");
    let (diff, name) = max_difference(
        &weights(&whole.ema_model().unwrap()),
        &weights(&second.ema_model().unwrap()),
    );
    assert!(diff < 1e-5, "EMA weights differ by {diff} at {name}");
    // Training moved the weights: the comparison is not between two copies of the start.
    let fresh = fixture.trainer(&config, None);
    let (moved, _) = max_difference(
        &weights(fresh.model().unwrap()),
        &weights(whole.model().unwrap()),
    );
    assert!(
        moved > 1e-4,
        "training left the weights where they were ({moved})"
    );
}
