//! The short mutation campaign CI runs on transformers' T5Gemma2
//! `config.json` (`cargo fuzz run config_json` is the long one): mutants end
//! in a configuration within the size limits or in an error naming the
//! field, never a panic.

use crate::common;

use common::hf_config_json;
use ssdit_text::t5gemma2::T5Gemma2EncoderConfig;
use ssdit_text::tiny::tiny_config;

/// Parses `bytes`; an accepted configuration must validate again.
fn read(bytes: &[u8]) -> ssdit_text::Result<()> {
    let text = String::from_utf8_lossy(bytes);
    let config = T5Gemma2EncoderConfig::from_hf_json(&text, "mutant/config.json")?;
    config.validate("mutant/config.json")
}

#[test]
fn mutated_configs_never_panic() {
    let legacy = r#"{"model_type": "t5gemma2_text", "num_hidden_layers": 7,
                     "rope_theta": 500000.0, "rope_local_base_freq": 20000.0,
                     "rope_scaling": {"rope_type": "linear", "factor": 8.0}}"#;
    let valid = vec![
        hf_config_json(&tiny_config()).into_bytes(),
        hf_config_json(&T5Gemma2EncoderConfig::t5gemma_2_1b()).into_bytes(),
        legacy.as_bytes().to_vec(),
    ];
    let outcome = ssdit_mutate::campaign("t5gemma2_config_json", &valid, 30_000, 23, read);
    assert!(
        outcome.accepted > valid.len() && outcome.refused > 0,
        "mutants should reach both the checks and the refusals: {outcome:?}"
    );
}
