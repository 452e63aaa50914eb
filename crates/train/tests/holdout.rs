//! The held-out validation loss (`train.validation_holdout`): the held-out
//! samples are left out of training and the loss is computed on them, the
//! same seed gives the same losses, and they are written to the metrics CSV
//! (on the validated steps' rows) and the Prometheus values.
//!
//! Alone in its test binary, like every test that compares trainings.

mod common;

use common::{AB, Fixture};
use ssdit_core::config::{ModelsConfig, TrainConfig};
use ssdit_train::metrics::{HoldoutLoss, MetricsLog};
use ssdit_train::session::{self, Resume, RunControl, RunRequest, TrainContext, TrainEvent};
use ssdit_train::synthetic::SyntheticDataset;

/// A run of `config` on the fixture's data under `run_id`; returns the
/// held-out losses it reported and its Prometheus values' last one.
fn run_validated(
    fixture: &Fixture,
    config: &TrainConfig,
    run_id: &str,
) -> (Vec<(u64, HoldoutLoss)>, Option<HoldoutLoss>) {
    let ctx = TrainContext {
        store: fixture.store.clone(),
        bus: None,
        runtime: fixture.runtime.handle().clone(),
    };
    let request = RunRequest {
        run_id: run_id.into(),
        dataset: fixture.spec.name.clone(),
        train: config.clone(),
        // The weight-free preview codec decodes the validation samples.
        models: ModelsConfig {
            vae: "preview".into(),
            ..ModelsConfig::tiny()
        },
        max_text_length: fixture.spec.text_tokens,
        encodings: Some(fixture.encodings.clone()),
        resume: Resume::Fresh,
    };
    let control = RunControl::default();
    let mut reported = Vec::new();
    session::run::<AB>(&ctx, &request, Default::default(), &control, &mut |event| {
        if let TrainEvent::Validated {
            step,
            holdout_loss_raw: Some(raw),
            holdout_loss_ema: Some(ema),
            ..
        } = event
        {
            reported.push((step, HoldoutLoss { raw, ema }));
        }
    })
    .unwrap();
    (reported, control.metrics.snapshot().holdout_loss)
}

#[test]
fn the_holdout_loss_is_of_the_held_out_samples_repeatable_and_logged() {
    let fixture = Fixture::new(SyntheticDataset::tiny("holdout", 4));
    let config = TrainConfig {
        epochs: 2,
        batch_size: 1,
        accum_steps: 1,
        dropout: 0.0,
        validation_holdout: 1,
        validate_every: 1,
        validate_steps: 2,
        validate_prompts: 1,
        ..TrainConfig::default()
    };
    let trainer = fixture.trainer(&config, None);
    assert_eq!(trainer.holdout().len(), 1);
    assert_eq!(
        trainer.plan().batches_per_epoch,
        3,
        "an epoch trains on the 3 samples that are not held out"
    );
    assert_eq!(
        fixture.trainer(&config, None).holdout(),
        trainer.holdout(),
        "the same seed holds out the same sample"
    );
    let others: Vec<Vec<usize>> = (1..8)
        .map(|seed| {
            let reseeded = TrainConfig {
                seed,
                ..config.clone()
            };
            fixture.trainer(&reseeded, None).holdout().to_vec()
        })
        .collect();
    assert!(
        others.iter().any(|h| h != trainer.holdout()),
        "the held-out sample follows the seed: {others:?}"
    );

    let (reported, last) = run_validated(&fixture, &config, "holdout-a");
    let steps: Vec<u64> = reported.iter().map(|(step, _)| *step).collect();
    assert_eq!(steps, [3, 6], "validated after each epoch");
    assert_ne!(reported[0].1, reported[1].1, "training changed the loss");
    assert_eq!(last, Some(reported[1].1));
    let (again, _) = run_validated(&fixture, &config, "holdout-b");
    assert_eq!(
        again, reported,
        "the same seed gives the same held-out losses"
    );

    let key = ssdit_store::layout::metrics("holdout-a").unwrap();
    let csv = fixture.runtime.block_on(fixture.store.get(&key)).unwrap();
    let log = MetricsLog::parse(std::str::from_utf8(&csv).unwrap(), u64::MAX);
    let logged: Vec<(u64, HoldoutLoss)> = log
        .rows()
        .iter()
        .filter_map(|row| row.holdout_loss.map(|loss| (row.step, loss)))
        .collect();
    assert_eq!(logged, reported, "the CSV holds the held-out losses");
}
