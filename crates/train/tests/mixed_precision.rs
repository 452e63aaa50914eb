//! Mixed precision (`models.precision` on a GPU): the forward computes in a
//! cast of the f32 model, gradients and weights stay f32.
//!
//! Two stand-ins for the GPU's bf16. f64 on NdArray: NdArray panics on any
//! operation that mixes f32 and f64, so a tensor the step forgets to cast
//! (the model's tables, the Self-E teacher, the EMA) fails here as it would
//! on a GPU, and the run must track f32 closely. And real bf16 on burn's
//! Flex CPU backend (NdArray has no bf16): every operation of the step must
//! exist in bf16, and the run must track f32 within bf16's precision.
//!
//! Alone in its test binary: block dropout seeds the backend's global RNG,
//! which a concurrent test would disturb.

mod common;

use burn::backend::Autodiff;
use burn::tensor::DType;
use burn::tensor::backend::AutodiffBackend;
use burn_flex::Flex;
use common::{AB, Fixture};
use ssdit_core::config::{SelfEvalConfig, TrainConfig};
use ssdit_train::synthetic::SyntheticDataset;
use ssdit_train::{StepReport, Trainer};

/// The autodiff CPU backend with bf16 tensors.
type FlexAB = Autodiff<Flex>;

/// Trains to the end of the run; returns the step reports.
fn train<B: AutodiffBackend>(trainer: &mut Trainer<B>) -> Vec<StepReport> {
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

/// Two epochs of two steps, the Self-E loss (EMA teacher) on in the second.
fn two_epochs_with_self_eval() -> TrainConfig {
    TrainConfig {
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
    }
}

/// Runs [`two_epochs_with_self_eval`] in f32 and computing in `dtype` on the
/// backend `B`: the losses and gradient norms agree within `tolerance`
/// (relative), yet differ (a cast happened), and the master and EMA
/// weights stay f32.
fn assert_tracks_f32<B: AutodiffBackend>(name: &str, dtype: DType, tolerance: f64) {
    let fixture = Fixture::new(SyntheticDataset::tiny(name, 4));
    let config = two_epochs_with_self_eval();
    let data = || fixture.training_set(true);
    let mut f32_run = fixture.trainer_on::<B>(&config, None, data());
    let mut mixed = fixture.trainer_computing_in::<B>(&config, None, data(), dtype);
    assert_eq!(mixed.compute_dtype(), dtype);

    let want = train(&mut f32_run);
    let got = train(&mut mixed);
    assert_eq!(got.len(), 4);
    assert!(got.iter().any(|report| report.self_eval));
    let mut differs = false;
    for (step, (a, b)) in want.iter().zip(&got).enumerate() {
        eprintln!(
            "step {step}: loss {:.6} in f32, {:.6} in {dtype:?}; gradient norm {:.6}, {:.6}",
            a.loss, b.loss, a.grad_norm, b.grad_norm
        );
        assert!(
            relative(a.loss, b.loss) < tolerance,
            "step {step}: loss {} in f32, {} in {dtype:?}",
            a.loss,
            b.loss
        );
        assert!(
            relative(a.grad_norm, b.grad_norm) < tolerance,
            "step {step}: gradient norm {} in f32, {} in {dtype:?}",
            a.grad_norm,
            b.grad_norm
        );
        differs |= a.loss != b.loss || a.grad_norm != b.grad_norm;
    }
    assert!(
        differs,
        "the {dtype:?} run computed exactly as f32: no cast happened"
    );
    assert_eq!(mixed.model().unwrap().dtype(), DType::F32, "master weights");
    assert_eq!(
        mixed.ema_model().unwrap().dtype(),
        DType::F32,
        "EMA weights"
    );
}

#[test]
fn a_step_computing_in_another_dtype_tracks_f32_with_f32_master_weights() {
    assert_tracks_f32::<AB>("mixed-precision", DType::F64, 1e-3);
}

#[test]
fn a_step_computing_in_bf16_tracks_f32_within_bf16_precision() {
    // bf16 keeps 8 significant bits (relative rounding 2⁻⁹ ≈ 0.2 %); a
    // step's loss and gradient norm sum many rounded terms.
    assert_tracks_f32::<FlexAB>("bf16", DType::BF16, 1e-2);
}
