//! The DiT forward against the seed's PyTorch `SingleStreamDiTV2`.
//!
//! Fixture (`dit/`): `config.json` (the seed's constructor arguments),
//! `dit.safetensors` (its state dict, PyTorch names), `cases.safetensors`
//! (`x [B,C,H,W]`, `t [B]`, `text_embeds [B,L,D]`, `expected_v` = the seed's
//! `forward(x, t, text_embeds)` in eval mode, float32) and the tolerance in
//! `cases.json`. Our forward runs in f32 on the CPU (`NdArray<f32>`, where
//! dropout is off), or on any backend with [`check_on`].

use std::path::Path;

use burn::backend::NdArray;
use burn::prelude::*;
use ssdit_model::{SingleStreamDiTConfig, open_checkpoint};

use crate::{Comparison, Error, Fixture, Report, Result};

/// Loads the fixture's model and compares our velocity with `expected_v`.
pub fn check(dir: &Path) -> Result<Report> {
    check_on::<NdArray<f32>>(dir, &Default::default())
}

/// [`check`] on the backend `B`.
pub fn check_on<B: Backend>(dir: &Path, device: &Device<B>) -> Result<Report> {
    let fixture = Fixture::open(dir)?;
    let tolerance = fixture.tolerance()?;
    let model_error = |e: ssdit_model::Error| Error::Model(e.to_string());
    let config = SingleStreamDiTConfig::from_seed_file(&fixture.resolve("config.json"))
        .map_err(model_error)?;
    let checkpoint =
        open_checkpoint(&fixture.resolve("dit.safetensors"), None).map_err(model_error)?;
    let model = config
        .init::<B>(device)
        .and_then(|model| model.load_checkpoint(&checkpoint))
        .map_err(model_error)?;

    let x = Tensor::<B, 4>::from_data(as_f32(fixture.tensor("x")?), device);
    let t = Tensor::<B, 1>::from_data(as_f32(fixture.tensor("t")?), device);
    let text = Tensor::<B, 3>::from_data(as_f32(fixture.tensor("text_embeds")?), device);
    let want = fixture.tensor("expected_v")?;
    let got = model.try_forward(x, t, text).map_err(model_error)?;
    if got.dims().as_slice() != want.shape.as_slice() {
        return Err(fixture.error(format!(
            "expected_v has shape {:?}, the model returned {:?}",
            want.shape.as_slice(),
            got.dims()
        )));
    }

    let mut report = Report::new(format!(
        "dit (seed SingleStreamDiTV2, hidden {}, depth {}, {} parameters)",
        config.hidden_size,
        config.depth,
        model.parameter_count()
    ));
    report.push(Comparison::new(
        "expected_v",
        &got.into_data(),
        &want,
        tolerance,
    ));
    Ok(report)
}

fn as_f32(data: TensorData) -> TensorData {
    data.convert::<f32>()
}
