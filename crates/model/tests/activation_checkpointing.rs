//! Block-level activation checkpointing trades compute for memory only:
//! the training pass that runs each fusion block again in the backward gives
//! the loss and the gradients of the pass that keeps every activation, with
//! block dropout on (so a re-run block drawing new masks would show), in f32
//! on NdArray and computing in bf16 on Flex.
//!
//! A binary of its own, its tests one at a time: the passes seed the
//! backend's global RNG, which a concurrent test would disturb.

use std::sync::{Mutex, PoisonError};

use burn::backend::{Autodiff, NdArray};
use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::backend::AutodiffBackend;
use burn_flex::Flex;
use ssdit_model::{
    ActivationCheckpointing, Error, SingleStreamDiT, SingleStreamDiTConfig, TrainingPass,
};
use ssdit_parity::{Fixture, fixtures_root};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The `dit` fixture's trained weights, with block dropout `dropout`.
fn model<B: Backend>(dropout: f64, device: &Device<B>) -> SingleStreamDiT<B> {
    let dir = fixtures_root().join("dit");
    SingleStreamDiTConfig::from_seed_file(&dir.join("config.json"))
        .unwrap()
        .with_dropout(dropout)
        .init::<B>(device)
        .unwrap()
        .load_file(&dir.join("dit.safetensors"), None)
        .unwrap()
}

type Inputs<B> = (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 3>);

/// The fixture's latents, times and captions (one of them the null caption).
fn inputs<B: Backend>(device: &Device<B>) -> Inputs<B> {
    let fixture = Fixture::open(&fixtures_root().join("dit")).unwrap();
    let tensor = |name| fixture.tensor(name).unwrap();
    (
        Tensor::from_data(tensor("x"), device),
        Tensor::from_data(tensor("t"), device),
        Tensor::from_data(tensor("text_embeds"), device),
    )
}

/// The loss of one pass and every parameter's gradient (flattened), in
/// visiting order.
struct Outcome {
    loss: f32,
    grads: Vec<Vec<f32>>,
}

fn pass<AB: AutodiffBackend>(
    model: &SingleStreamDiT<AB>,
    inputs: Inputs<AB>,
    dtype: DType,
    checkpointing: ActivationCheckpointing,
) -> Outcome {
    let pass = TrainingPass {
        dtype,
        dropout_seed: 11,
        checkpointing,
    };
    let target = inputs.0.clone().flip([3]);
    let mut loss_value = f32::NAN;
    let grads = model
        .loss_gradients(inputs, pass, |v| -> Result<_, Error> {
            let loss = (v - target).powi_scalar(2).mean();
            loss_value = loss.clone().into_scalar().elem();
            Ok(loss)
        })
        .unwrap();
    let mut collect = CollectGrads {
        grads: &grads,
        values: Vec::new(),
    };
    model.visit(&mut collect);
    Outcome {
        loss: loss_value,
        grads: collect.values,
    }
}

struct CollectGrads<'a> {
    grads: &'a GradientsParams,
    values: Vec<Vec<f32>>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for CollectGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        // Empty for a parameter the forward never reads (`x_pad_token`).
        let values = self
            .grads
            .get::<AB::InnerBackend, D>(param.id)
            .map(|grad| grad.cast(DType::F32).into_data().to_vec().unwrap())
            .unwrap_or_default();
        self.values.push(values);
    }
}

/// The relative L2 distance between two passes' gradients, all parameters
/// together.
fn relative_distance(a: &Outcome, b: &Outcome) -> f32 {
    assert_eq!(a.grads.len(), b.grads.len());
    let (mut diff, mut norm) = (0f64, 0f64);
    for (x, y) in a.grads.iter().zip(&b.grads) {
        assert_eq!(x.len(), y.len(), "a gradient present in one pass only");
        for (p, q) in x.iter().zip(y) {
            diff += f64::from(p - q).powi(2);
            norm += f64::from(*p).powi(2);
        }
    }
    (diff / norm).sqrt() as f32
}

/// Both passes with dropout on, and a pass without dropout to show that
/// the masks mattered.
fn compare<AB: AutodiffBackend>(device: &Device<AB>, dtype: DType, tolerance: f32) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let dropping = model::<AB>(0.3, device);
    let kept = pass(
        &dropping,
        inputs(device),
        dtype,
        ActivationCheckpointing::Off,
    );
    let recomputed = pass(
        &dropping,
        inputs(device),
        dtype,
        ActivationCheckpointing::Blocks,
    );
    let no_dropout = pass(
        &model::<AB>(0.0, device),
        inputs(device),
        dtype,
        ActivationCheckpointing::Off,
    );

    let loss_difference = (kept.loss - recomputed.loss).abs() / kept.loss.abs();
    assert!(
        loss_difference <= tolerance,
        "loss {} keeping activations, {} recomputing blocks",
        kept.loss,
        recomputed.loss
    );
    let difference = relative_distance(&kept, &recomputed);
    let dropout_effect = relative_distance(&kept, &no_dropout);
    eprintln!(
        "{dtype:?}: gradients {difference:.2e} apart (relative L2); dropout moves them {dropout_effect:.2e}"
    );
    assert!(difference <= tolerance, "gradients {difference} apart");
    assert!(
        dropout_effect > 10.0 * tolerance,
        "dropout moved the gradients by only {dropout_effect}"
    );
}

#[test]
fn recomputing_blocks_keeps_losses_and_gradients_in_f32() {
    compare::<Autodiff<NdArray<f32>>>(&Default::default(), DType::F32, 1e-6);
}

#[test]
fn recomputing_blocks_keeps_losses_and_gradients_computing_in_bf16() {
    compare::<Autodiff<Flex>>(&Default::default(), DType::BF16, 1e-3);
}

#[test]
fn without_dropout_the_kept_pass_is_the_forward_backpropagated() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    type AB = Autodiff<NdArray<f32>>;
    let device = Default::default();
    let model = model::<AB>(0.0, &device);
    let got = pass(
        &model,
        inputs(&device),
        DType::F32,
        ActivationCheckpointing::Off,
    );

    let (x, t, text) = inputs::<AB>(&device);
    let target = x.clone().flip([3]);
    let loss = (model.forward(x, t, text) - target).powi_scalar(2).mean();
    let want_loss: f32 = loss.clone().into_scalar().elem();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut collect = CollectGrads {
        grads: &grads,
        values: Vec::new(),
    };
    model.visit(&mut collect);
    let want = Outcome {
        loss: want_loss,
        grads: collect.values,
    };
    assert_eq!(got.loss, want.loss);
    assert_eq!(relative_distance(&got, &want), 0.0);
}
