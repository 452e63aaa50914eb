//! One training step against the seed's PyTorch step: MSE velocity loss,
//! backward, global gradient-norm clipping, `torch.optim.AdamW`.
//!
//! Fixture (`train_step/`): `cases.json` gives `lr`, `weight_decay`, `clip`,
//! the DiT weights (`weights`, relative to the folder, `config.json` beside
//! them) and the tolerances (`loss_rel`, `grad_norm_rel`, `param_max_abs`);
//! `cases.safetensors` holds `x1`, `noise`, `t`, `text_embeds`, the expected
//! loss and pre-clip gradient norm, and `after.<name>` for every parameter
//! under the seed's state-dict names. The step:
//! `x_t = (1−t)·noise + t·x1`, `loss = MSE(model(x_t, t, text), x1 − noise)`,
//! backward, clip at `clip`, one AdamW step (betas 0.9/0.999, eps 1e-8).
//! Runs on the CPU (`Autodiff<NdArray<f32>>`), or on any autodiff backend
//! with [`check_on`].

use std::collections::BTreeSet;
use std::path::Path;

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::backend::AutodiffBackend;
use serde::Deserialize;
use ssdit_flow::{Loss, interpolate, velocity_target};
use ssdit_optim::{AdamWConfig, clip_grad_norm};

use crate::sampler::load_dit;
use crate::{Comparison, Error, Fixture, Report, Result, Tolerance};

/// The tolerances of `train_step/cases.json`.
#[derive(Debug, Deserialize)]
struct StepTolerance {
    loss_rel: f64,
    grad_norm_rel: f64,
    param_max_abs: f64,
}

/// Takes the step and compares loss, gradient norm and every updated parameter.
pub fn check(dir: &Path) -> Result<Report> {
    check_on::<Autodiff<NdArray<f32>>>(dir, &Default::default())
}

/// [`check`] on the autodiff backend `B`.
pub fn check_on<B: AutodiffBackend>(dir: &Path, device: &Device<B>) -> Result<Report> {
    let fixture = Fixture::open(dir)?;
    let tolerance: StepTolerance = fixture.field("tolerance")?;
    let lr: f64 = fixture.field("lr")?;
    let weight_decay: f64 = fixture.field("weight_decay")?;
    let clip: f64 = fixture.field("clip")?;
    let weights = fixture.resolve(&fixture.field::<String>("weights")?);
    let (config, model) = load_dit::<B>(&fixture, &weights, device)?;

    let input = |name: &str| -> Result<TensorData> { Ok(fixture.tensor(name)?.convert::<f32>()) };
    let x1 = Tensor::<B, 4>::from_data(input("x1")?, device);
    let noise = Tensor::<B, 4>::from_data(input("noise")?, device);
    let t = Tensor::<B, 1>::from_data(input("t")?, device);
    let text = Tensor::<B, 3>::from_data(input("text_embeds")?, device);

    let x_t = interpolate(noise.clone(), x1.clone(), t.clone());
    let prediction = model.forward(x_t, t, text);
    let loss = Loss::Mse.compute(prediction, velocity_target(noise, x1));
    let loss_value = loss.clone().into_data();
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);

    let optim_error = |e: ssdit_optim::Error| fixture.error(e.to_string());
    let grad_norm = clip_grad_norm(&model, &mut grads, clip).map_err(optim_error)?;
    let mut optim = AdamWConfig::new()
        .with_weight_decay(weight_decay)
        .init::<B>()
        .map_err(optim_error)?;
    let model = optim.step(lr, model, grads).map_err(optim_error)?;

    let mut report = Report::new(format!(
        "train_step (MSE, clip {clip}, AdamW lr {lr} wd {weight_decay}; seed DiT hidden {}, depth {})",
        config.hidden_size, config.depth
    ));
    let relative = |limit: f64| Tolerance {
        max_abs: None,
        max_rel_l2: Some(limit),
    };
    report.push(Comparison::new(
        "expected_loss",
        &loss_value,
        &fixture.tensor("expected_loss")?,
        relative(tolerance.loss_rel),
    ));
    report.push(Comparison::new(
        "expected_grad_norm",
        &TensorData::new(vec![grad_norm as f32], [1]),
        &fixture.tensor("expected_grad_norm")?,
        relative(tolerance.grad_norm_rel),
    ));
    compare_parameters(
        &fixture,
        &model.valid(),
        tolerance.param_max_abs,
        &mut report,
    )?;
    Ok(report)
}

/// Compares every parameter of the stepped model with `after.<name>`; a
/// parameter without an expected tensor, or the reverse, is an error.
fn compare_parameters<B: Backend>(
    fixture: &Fixture,
    model: &ssdit_model::SingleStreamDiT<B>,
    max_abs: f64,
    report: &mut Report,
) -> Result<()> {
    let model_error = |e: ssdit_model::Error| Error::Model(e.to_string());
    let state = model.state_dict().map_err(model_error)?;
    let ours: BTreeSet<String> = state.names().map(str::to_string).collect();
    let expected: BTreeSet<String> = fixture
        .tensor_names("after.")
        .into_iter()
        .map(|name| name["after.".len()..].to_string())
        .collect();
    if let Some(name) = ours.symmetric_difference(&expected).next() {
        let side = if ours.contains(name) {
            "the model has it, the fixture has no after.<name>"
        } else {
            "the fixture expects it, the model has no such parameter"
        };
        return Err(fixture.error(format!("parameter {name}: {side}")));
    }
    let tolerance = Tolerance {
        max_abs: Some(max_abs),
        max_rel_l2: None,
    };
    for name in &ours {
        let got = state
            .tensor(name)
            .map_err(|e| Error::Model(e.to_string()))?;
        let want = fixture.tensor(&format!("after.{name}"))?;
        if got.shape != want.shape {
            return Err(fixture.error(format!(
                "after.{name} has shape {:?}, the model's is {:?}",
                want.shape.as_slice(),
                got.shape.as_slice()
            )));
        }
        report.push(Comparison::new(
            format!("after.{name}"),
            &got,
            &want,
            tolerance,
        ));
    }
    Ok(())
}
