//! The caption tokenizer against transformers' fast tokenizer.
//!
//! Fixture (`tokenizer/`): `tokenizer.json` and `cases.json` — for each
//! text, transformers' `PreTrainedTokenizerFast(tokenizer.json)(text,
//! max_length=n, padding="max_length", truncation=True)` ids and attention
//! mask. Ids and masks must match exactly.

use std::path::Path;

use burn::tensor::TensorData;
use serde::Deserialize;
use ssdit_text::HfTokenizer;

use crate::{Comparison, Error, Fixture, Report, Result, Tolerance};

#[derive(Deserialize)]
struct Case {
    text: String,
    input_ids: Vec<i64>,
    attention_mask: Vec<i64>,
}

/// Exact equality.
const EXACT: Tolerance = Tolerance {
    max_abs: Some(0.0),
    max_rel_l2: Some(0.0),
};

/// Tokenizes every case and compares ids and masks; a mismatch (a differing
/// token, or a row of another length) is a failing comparison.
pub fn check(dir: &Path) -> Result<Report> {
    let fixture = Fixture::open(dir)?;
    let max_length: usize = fixture.field("max_length")?;
    let cases: Vec<Case> = fixture.field("cases")?;
    let tokenizer = HfTokenizer::from_file(&fixture.resolve("tokenizer.json"), max_length)
        .map_err(|e| Error::Model(e.to_string()))?;
    let texts: Vec<String> = cases.iter().map(|c| c.text.clone()).collect();
    let batch = tokenizer
        .encode(&texts)
        .map_err(|e| Error::Model(e.to_string()))?;

    let mut report = Report::new(format!("tokenizer (transformers, max_length {max_length})"));
    for (i, case) in cases.iter().enumerate() {
        let label = format!("case {i} {:?}", preview(&case.text));
        report.push(exact(
            format!("{label} input_ids"),
            &batch.input_ids[i],
            &case.input_ids,
        ));
        report.push(exact(
            format!("{label} attention_mask"),
            &batch.attention_mask[i],
            &case.attention_mask,
        ));
    }
    Ok(report)
}

fn exact(name: String, got: &[u32], want: &[i64]) -> Comparison {
    if got.len() != want.len() {
        return Comparison {
            name: format!("{name} ({} tokens, expected {})", got.len(), want.len()),
            max_abs: f64::INFINITY,
            rel_l2: f64::INFINITY,
            tolerance: EXACT,
        };
    }
    let got: Vec<i64> = got.iter().map(|&v| i64::from(v)).collect();
    Comparison::new(
        name,
        &TensorData::new(got, [want.len()]),
        &TensorData::new(want.to_vec(), [want.len()]),
        EXACT,
    )
}

fn preview(text: &str) -> String {
    let mut short: String = text.chars().take(24).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}
