//! T5Gemma2 text encoder against transformers.
//!
//! Fixture (`t5gemma2/`): `config.json` and `model.safetensors` as
//! `T5Gemma2ForConditionalGeneration.save_pretrained` writes them (vision
//! tower and decoder included, and skipped by our loader), and
//! `cases.safetensors` with `input_ids`, `attention_mask` and
//! `expected_last_hidden_state` — transformers'
//! `get_encoder()(input_ids, attention_mask).last_hidden_state` in float64,
//! every position, padding included. Ours runs in f32 on the CPU
//! (`NdArray<f32>`), or on any backend with [`check_on`].

use std::path::Path;

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::{Bool, Int, TensorData};
use ssdit_text::loader::load_weights;
use ssdit_text::t5gemma2::T5Gemma2EncoderConfig;
use ssdit_weights::Checkpoint;

use crate::{Comparison, Error, Fixture, Report, Result};

/// Runs the encoder on the fixture's batch and compares the hidden states:
/// all positions, then real tokens and padded positions separately.
pub fn check(dir: &Path) -> Result<Report> {
    check_on::<NdArray<f32>>(dir, &Default::default())
}

/// [`check`] on the backend `B`.
pub fn check_on<B: Backend>(dir: &Path, device: &Device<B>) -> Result<Report> {
    let fixture = Fixture::open(dir)?;
    let tolerance = fixture.tolerance()?;
    let model_error = |e: &dyn std::fmt::Display| Error::Model(e.to_string());
    let config = T5Gemma2EncoderConfig::from_hf_file(&fixture.resolve("config.json"))
        .map_err(|e| model_error(&e))?;
    let checkpoint =
        Checkpoint::open(&fixture.resolve("model.safetensors")).map_err(|e| model_error(&e))?;
    let model = load_weights::<B>(&config, &checkpoint, device).map_err(|e| model_error(&e))?;

    let ids = fixture.tensor("input_ids")?;
    let mask = fixture.tensor("attention_mask")?;
    let want = fixture.tensor("expected_last_hidden_state")?;
    let [batch, len] = dims2(&fixture, &ids, "input_ids")?;
    if dims2(&fixture, &mask, "attention_mask")? != [batch, len] {
        return Err(fixture.error("attention_mask and input_ids differ in shape"));
    }
    let real: Vec<bool> = mask
        .clone()
        .convert::<i64>()
        .to_vec::<i64>()
        .map_err(|e| fixture.error(format!("attention_mask: {e:?}")))?
        .into_iter()
        .map(|m| m != 0)
        .collect();
    let got = model
        .forward(
            Tensor::<B, 2, Int>::from_data(ids.convert::<i64>(), device),
            Tensor::<B, 2, Bool>::from_data(TensorData::new(real.clone(), [batch, len]), device),
        )
        .into_data();
    if got.shape != want.shape {
        return Err(fixture.error(format!(
            "expected_last_hidden_state has shape {:?}, the encoder gives {:?}",
            want.shape, got.shape
        )));
    }

    let mut report = Report::new("t5gemma2 encoder (transformers last_hidden_state)");
    report.push(Comparison::new("last_hidden_state", &got, &want, tolerance));
    for (label, keep) in [("real tokens", true), ("padded positions", false)] {
        let positions: Vec<usize> = (0..batch * len).filter(|&p| real[p] == keep).collect();
        if !positions.is_empty() {
            report.push(Comparison::new(
                format!("last_hidden_state at {label}"),
                &rows(&got, &positions),
                &rows(&want, &positions),
                tolerance,
            ));
        }
    }
    Ok(report)
}

fn dims2(fixture: &Fixture, data: &TensorData, name: &str) -> Result<[usize; 2]> {
    match data.shape.as_slice() {
        &[a, b] => Ok([a, b]),
        other => Err(fixture.error(format!("{name} has shape {other:?}, expected [batch, len]"))),
    }
}

/// The hidden-state rows (flattened batch × position) at `positions`.
fn rows(data: &TensorData, positions: &[usize]) -> TensorData {
    let width = data.shape[data.shape.len() - 1];
    let values = data
        .clone()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("converted to f64");
    let picked: Vec<f64> = positions
        .iter()
        .flat_map(|&p| values[p * width..(p + 1) * width].iter().copied())
        .collect();
    TensorData::new(picked, [positions.len(), width])
}
