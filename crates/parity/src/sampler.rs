//! The flow-matching samplers against the reference Euler and RK4 with CFG.
//!
//! Fixture (`sampler/`): `cases.json` names each expected tensor with its
//! method, steps and guidance scale, and the DiT weights (`weights`, a path
//! relative to the folder; the model's `config.json` sits beside them);
//! `cases.safetensors` holds the starting noise `x0`, the caption `cond` and
//! one expected latent per case. Semantics (fixtures README): `t_i = i/steps`,
//! `dt = 1/steps`, unconditional = all-zero caption, `v = v_u + cfg·(v_c − v_u)`,
//! RK4 with `k2`, `k3` at `t + dt/2` and `k4` at `t + dt`. Runs on the CPU
//! (`NdArray<f32>`), or on any backend with [`check_on`].

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::prelude::*;
use serde::Deserialize;
use ssdit_flow::{Sampler, SamplerConfig, SamplerMethod};
use ssdit_model::{SingleStreamDiT, SingleStreamDiTConfig, open_checkpoint};

use crate::{Comparison, Error, Fixture, Report, Result};

/// One sampling case of `cases.json`.
#[derive(Debug, Deserialize)]
struct Case {
    method: SamplerMethod,
    steps: usize,
    cfg: f64,
}

/// Samples every case of the fixture and compares with its expected latent.
pub fn check(dir: &Path) -> Result<Report> {
    check_on::<NdArray<f32>>(dir, &Default::default())
}

/// [`check`] on the backend `B`.
pub fn check_on<B: Backend>(dir: &Path, device: &Device<B>) -> Result<Report> {
    let fixture = Fixture::open(dir)?;
    let tolerance = fixture.tolerance()?;
    let cases: BTreeMap<String, Case> = fixture.field("cases")?;
    if cases.is_empty() {
        return Err(fixture.error("cases.json lists no cases"));
    }
    let weights = fixture.resolve(&fixture.field::<String>("weights")?);
    let (config, model) = load_dit::<B>(&fixture, &weights, device)?;

    let x0 = Tensor::<B, 4>::from_data(fixture.tensor("x0")?.convert::<f32>(), device);
    let cond = Tensor::<B, 3>::from_data(fixture.tensor("cond")?.convert::<f32>(), device);
    let velocity = |x, t, text| model.forward(x, t, text);

    let mut report = Report::new(format!(
        "sampler (Euler / RK4 with CFG, seed DiT hidden {}, depth {})",
        config.hidden_size, config.depth
    ));
    for (name, case) in &cases {
        let sampler_config = SamplerConfig::new()
            .with_method(case.method)
            .with_steps(case.steps)
            .with_cfg(case.cfg);
        let flow_error = |e: ssdit_flow::Error| fixture.error(format!("case {name}: {e}"));
        let sampler = Sampler::new(&sampler_config).map_err(flow_error)?;
        let guidance = sampler.guidance(cond.clone()).map_err(flow_error)?;
        let got = sampler
            .sample(&velocity, x0.clone(), &guidance, |_| {
                ControlFlow::Continue(())
            })
            .map_err(flow_error)?;
        let want = fixture.tensor(name)?;
        if got.dims().as_slice() != want.shape.as_slice() {
            return Err(fixture.error(format!(
                "{name} has shape {:?}, sampling returned {:?}",
                want.shape.as_slice(),
                got.dims()
            )));
        }
        report.push(Comparison::new(
            format!(
                "{name} ({:?}, {} steps, cfg {})",
                case.method, case.steps, case.cfg
            ),
            &got.into_data(),
            &want,
            tolerance,
        ));
    }
    Ok(report)
}

/// The DiT whose weights are at `weights`, configured by the `config.json`
/// beside them.
pub(crate) fn load_dit<B: Backend>(
    fixture: &Fixture,
    weights: &Path,
    device: &Device<B>,
) -> Result<(SingleStreamDiTConfig, SingleStreamDiT<B>)> {
    let model_error = |e: ssdit_model::Error| Error::Model(e.to_string());
    let config_path: PathBuf = weights
        .parent()
        .map(|dir| dir.join("config.json"))
        .ok_or_else(|| {
            fixture.error(format!("weights path {} has no folder", weights.display()))
        })?;
    let config = SingleStreamDiTConfig::from_seed_file(&config_path).map_err(model_error)?;
    let checkpoint = open_checkpoint(weights, None).map_err(model_error)?;
    let model = config
        .init::<B>(device)
        .and_then(|model| model.load_checkpoint(&checkpoint))
        .map_err(model_error)?;
    Ok((config, model))
}
