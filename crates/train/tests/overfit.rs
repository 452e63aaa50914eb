//! The seed's `sanity_check.py` as a test: one cached sample, a small model,
//! the CPU — the loss must fall below a tenth of its start and a sampled
//! latent must approach the target; the same computing in real bf16 (burn's
//! Flex CPU backend) with f32 master weights, as on a GPU. And the 8-bit
//! AdamW must track the f32 one on the same task.

mod common;

use std::ops::ControlFlow;

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, ElementConversion};
use burn_flex::Flex;
use common::{Fixture, mean};
use ssdit_core::config::{OptimizerKind, TrainConfig};
use ssdit_dataset::Bucket;
use ssdit_train::Trainer;
use ssdit_train::rng::{Purpose, Streams, normal};
use ssdit_train::synthetic::SyntheticDataset;
use ssdit_train::validate::sampler;

/// Optimizer steps of the overfit (one sample: one step per epoch).
const STEPS: usize = 400;
/// Optimizer steps of each run of the 8-bit comparison.
const COMPARE_STEPS: usize = 200;

/// One sample: a 4-channel 4×4 latent (2×2 tokens) and an 8-token caption.
fn one_sample() -> Fixture {
    let mut spec = SyntheticDataset::tiny("one", 1);
    spec.channels = 4;
    spec.buckets = vec![Bucket {
        width: 32,
        height: 32,
    }];
    Fixture::new(spec)
}

/// The overfit settings: one sample per batch, no accumulation, no caption
/// dropout or block dropout (the seed's sanity check trains the same way).
fn overfit_config(optimizer: OptimizerKind, steps: usize) -> TrainConfig {
    TrainConfig {
        learning_rate: 3e-3,
        epochs: steps,
        batch_size: 1,
        accum_steps: 1,
        text_dropout: 0.0,
        dropout: 0.0,
        ema_decay: 0.9,
        validate_steps: 20,
        validate_cfg: 1.0,
        optimizer,
        ..TrainConfig::default()
    }
}

/// Trains every step; returns the losses.
fn train<B: AutodiffBackend>(trainer: &mut Trainer<B>) -> Vec<f64> {
    let mut losses = Vec::new();
    while !trainer.finished() {
        losses.push(trainer.step().unwrap().loss);
    }
    losses
}

/// Mean squared distance between the EMA model's Euler sample of the
/// sample's caption (fixed noise, no guidance, computing in the trainer's
/// dtype) and the sample's latent.
fn sample_error<B: AutodiffBackend>(trainer: &Trainer<B>) -> f64 {
    let device = trainer.device().clone();
    let tensors = trainer.data().tensors(&[0]).unwrap().remove(0);
    let [c, h, w] = tensors.latent_shape;
    let [l, d] = tensors.embedding_shape;
    let noise = normal(
        &mut Streams::new(1).rng(Purpose::Validation, 0, 0),
        c * h * w,
    );
    let x0 = Tensor::<B::InnerBackend, 4>::from_data(TensorData::new(noise, [1, c, h, w]), &device);
    let text = Tensor::<B::InnerBackend, 3>::from_data(
        TensorData::new(tensors.embedding, [1, l, d]),
        &device,
    );
    let target = Tensor::<B::InnerBackend, 4>::from_data(
        TensorData::new(tensors.latent, [1, c, h, w]),
        &device,
    );
    let model = trainer
        .ema_model()
        .unwrap()
        .with_dtype(trainer.compute_dtype());
    let sampler = sampler(trainer.config()).unwrap();
    let guidance = sampler.guidance(text).unwrap();
    let velocity = |x, t, text| model.forward(x, t, text);
    let sample = sampler
        .sample(&velocity, x0, &guidance, |_| ControlFlow::Continue(()))
        .unwrap();
    (sample - target).powi_scalar(2).mean().into_scalar().elem()
}

/// Trains `trainer` to the end: the loss falls below a tenth of its start
/// and the sample error below a tenth of the untrained model's.
fn assert_overfits<B: AutodiffBackend>(trainer: &mut Trainer<B>) {
    let before = sample_error(trainer);
    let losses = train(trainer);
    let start = mean(&losses[..5]);
    let end = mean(&losses[losses.len() - 20..]);
    let after = sample_error(trainer);
    eprintln!(
        "{:?}: loss {start:.4} -> {end:.4}; sample error {before:.4} -> {after:.4}",
        trainer.compute_dtype()
    );
    assert!(end < 0.1 * start, "loss {start} -> {end}");
    assert!(after < 0.1 * before, "sample error {before} -> {after}");
}

#[test]
fn overfitting_one_sample_drives_the_loss_down_and_the_sample_to_the_target() {
    let fixture = one_sample();
    let mut trainer = fixture.trainer(&overfit_config(OptimizerKind::Adamw, STEPS), None);
    assert_overfits(&mut trainer);
}

#[test]
fn overfitting_computing_in_bf16_drives_the_loss_down_and_the_sample_to_the_target() {
    let fixture = one_sample();
    let config = overfit_config(OptimizerKind::Adamw, STEPS);
    let data = fixture.training_set(true);
    let mut trainer =
        fixture.trainer_computing_in::<Autodiff<Flex>>(&config, None, data, DType::BF16);
    assert_overfits(&mut trainer);
}

#[test]
fn eight_bit_adamw_tracks_f32_adamw_on_the_overfit() {
    let fixture = one_sample();
    let config = |optimizer| overfit_config(optimizer, COMPARE_STEPS);
    let f32_losses = train(&mut fixture.trainer(&config(OptimizerKind::Adamw), None));
    let q8_losses = train(&mut fixture.trainer(&config(OptimizerKind::Adamw8bit), None));
    let window = |losses: &[f64], at: usize| mean(&losses[at - 20..at]);
    for at in [COMPARE_STEPS / 4, COMPARE_STEPS / 2, COMPARE_STEPS] {
        let (full, quantised) = (window(&f32_losses, at), window(&q8_losses, at));
        eprintln!("steps {at}: f32 {full:.4}, 8-bit {quantised:.4}");
        assert!(
            (quantised - full).abs() < 0.25 * full + 0.01,
            "at step {at} the 8-bit loss {quantised} strays from the f32 loss {full}"
        );
    }
    let (start, end) = (mean(&q8_losses[..5]), window(&q8_losses, COMPARE_STEPS));
    assert!(
        end < 0.5 * start,
        "the 8-bit run did not learn: {start} -> {end}"
    );
}
