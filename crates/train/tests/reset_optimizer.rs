//! Resuming with `train.reset_optimizer`: the weights, the EMA and the step
//! count continue from the checkpoint, while the AdamW moments start afresh
//! and the learning-rate schedule restarts over the remaining epochs.
//! Without it the moments and the schedule continue.

mod common;

use common::{AB, Fixture, checkpoint, max_difference, weights};
use ssdit_core::config::TrainConfig;
use ssdit_optim::{CosineWithWarmup, StateMeta};
use ssdit_train::Trainer;
use ssdit_train::checkpoint::OPTIMIZER_META_FILE;
use ssdit_train::synthetic::SyntheticDataset;

/// The AdamW step count of every parameter with moments (none: fresh moments).
fn moment_steps(trainer: &Trainer<AB>) -> Vec<u64> {
    let files = trainer.checkpoint_files().unwrap();
    let (_, meta) = files
        .iter()
        .find(|(name, _)| *name == OPTIMIZER_META_FILE)
        .unwrap();
    let meta: StateMeta = serde_json::from_slice(meta).unwrap();
    meta.params.values().map(|param| param.step).collect()
}

#[test]
fn reset_optimizer_restarts_the_moments_and_continues_weights_and_step() {
    let fixture = Fixture::new(SyntheticDataset::tiny("reset", 4));
    let config = TrainConfig {
        epochs: 4,
        batch_size: 2,
        accum_steps: 1,
        dropout: 0.0,
        ..TrainConfig::default()
    };
    // 2 steps per epoch: the checkpoint after 2 epochs is at step 4 of 8.
    let mut first = fixture.trainer(&config, None);
    for _ in 0..4 {
        first.step().unwrap();
    }
    let files = checkpoint(&first);
    let reset_config = TrainConfig {
        reset_optimizer: true,
        ..config.clone()
    };
    let mut reset = fixture.trainer(&reset_config, Some(&files));
    let mut kept = fixture.trainer(&config, Some(&files));

    assert_eq!(reset.position(), first.position());
    let saved = weights(first.model().unwrap());
    assert_eq!(
        max_difference(&saved, &weights(reset.model().unwrap())).0,
        0.0
    );
    let saved_ema = weights(&first.ema_model().unwrap());
    assert_eq!(
        max_difference(&saved_ema, &weights(&reset.ema_model().unwrap())).0,
        0.0
    );
    assert!(moment_steps(&reset).is_empty(), "the moments start afresh");
    let kept_steps = moment_steps(&kept);
    assert!(
        !kept_steps.is_empty() && kept_steps.iter().all(|&s| s == 4),
        "{kept_steps:?}"
    );

    let (after_reset, after_kept) = (reset.step().unwrap(), kept.step().unwrap());
    assert_eq!(
        (after_reset.step, after_kept.step),
        (5, 5),
        "the step count continues"
    );
    assert!(moment_steps(&reset).iter().all(|&s| s == 1));
    assert!(moment_steps(&kept).iter().all(|&s| s == 5));
    // The schedule restarts over the 2 remaining epochs (4 steps); kept, it is at step 4 of 8.
    let restarted = CosineWithWarmup::with_warmup_fraction(config.learning_rate, 4, config.warmup)
        .unwrap()
        .lr(0);
    let continued = CosineWithWarmup::with_warmup_fraction(config.learning_rate, 8, config.warmup)
        .unwrap()
        .lr(4);
    assert!(
        (after_reset.lr - restarted).abs() < 1e-12,
        "{} vs {restarted}",
        after_reset.lr
    );
    assert!(
        (after_kept.lr - continued).abs() < 1e-12,
        "{} vs {continued}",
        after_kept.lr
    );
    let (apart, _) = max_difference(
        &weights(reset.model().unwrap()),
        &weights(kept.model().unwrap()),
    );
    assert!(apart > 0.0, "fresh moments take a different step");
}
