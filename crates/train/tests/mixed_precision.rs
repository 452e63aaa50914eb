//! Mixed precision (`models.precision` on a GPU): the forward computes in a
//! cast of the f32 model, gradients and weights stay f32. The CPU backend
//! has no bf16, so f64 stands in for it: NdArray panics on any operation
//! that mixes f32 and f64, so a tensor the step forgets to cast (the model's
//! tables, the Self-E teacher, the EMA) fails here as it would on a GPU.
//!
//! Alone in its test binary: block dropout seeds the backend's global RNG,
//! which a concurrent test would disturb.

mod common;

use burn::tensor::DType;
use common::{AB, Fixture};
use ssdit_core::config::{SelfEvalConfig, TrainConfig};
use ssdit_train::synthetic::SyntheticDataset;
use ssdit_train::{StepReport, Trainer};

/// Trains to the end of the run; returns the step reports.
fn train(trainer: &mut Trainer<AB>) -> Vec<StepReport> {
    let mut reports = Vec::new();
    while !trainer.finished() {
        reports.push(trainer.step().unwrap());
    }
    reports
}

/// `|a − b|` relative to `|a|` (at least 1).
fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(1.0)
}

#[test]
fn a_step_computing_in_another_dtype_tracks_f32_with_f32_master_weights() {
    let fixture = Fixture::new(SyntheticDataset::tiny("mixed-precision", 4));
    // Two epochs of two steps, the Self-E loss (EMA teacher) on in the second.
    let config = TrainConfig {
        epochs: 2,
        batch_size: 2,
        accum_steps: 1,
        dropout: 0.0,
        self_eval: SelfEvalConfig {
            enabled: true,
            start: 0.0,
            ..SelfEvalConfig::default()
        },
        ..TrainConfig::default()
    };
    let data = || fixture.training_set(true);
    let mut f32_run = fixture.trainer_on(&config, None, data());
    let mut mixed = fixture.trainer_computing_in(&config, None, data(), DType::F64);
    assert_eq!(mixed.compute_dtype(), DType::F64);

    let want = train(&mut f32_run);
    let got = train(&mut mixed);
    assert_eq!(got.len(), 4);
    assert!(got.iter().any(|report| report.self_eval));
    let mut differs = false;
    for (step, (a, b)) in want.iter().zip(&got).enumerate() {
        assert!(
            relative(a.loss, b.loss) < 1e-3,
            "step {step}: loss {} in f32, {} mixed",
            a.loss,
            b.loss
        );
        assert!(
            relative(a.grad_norm, b.grad_norm) < 1e-3,
            "step {step}: gradient norm {} in f32, {} mixed",
            a.grad_norm,
            b.grad_norm
        );
        differs |= a.loss != b.loss || a.grad_norm != b.grad_norm;
    }
    assert!(
        differs,
        "the mixed run computed exactly as f32: no cast happened"
    );
    assert_eq!(mixed.model().unwrap().dtype(), DType::F32, "master weights");
    assert_eq!(
        mixed.ema_model().unwrap().dtype(),
        DType::F32,
        "EMA weights"
    );
}
