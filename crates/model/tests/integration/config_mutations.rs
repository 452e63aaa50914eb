//! The short mutation campaign CI runs on the seed's `config.json` (`cargo
//! fuzz run config_json` is the long one): mutants end in a configuration
//! within the size limits or in an error naming the problem, never a panic.

use burn::backend::NdArray;
use ssdit_model::SingleStreamDiTConfig;
use ssdit_weights::limits::MAX_PARAMETERS;

/// Parses `bytes` as constructor arguments; an accepted configuration must
/// build (lazily, nothing is drawn) a model within the parameter limit.
fn read(bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let config = SingleStreamDiTConfig::from_seed_json(text).map_err(|e| e.to_string())?;
    let model = config
        .init::<NdArray>(&Default::default())
        .map_err(|e| e.to_string())?;
    let count = model.parameter_count() as f64;
    assert!(count <= MAX_PARAMETERS, "{config:?} has {count} parameters");
    Ok(())
}

#[test]
fn mutated_configs_never_panic() {
    let valid = [
        r#"{"in_channels": 16, "patch_size": 2, "hidden_size": 768, "num_heads": 12,
            "depth": 16, "refiner_depth": 2, "text_embed_dim": 1152, "max_token_length": 128,
            "rope_base": 10000.0, "dropout": 0.05, "gradient_checkpointing": true}"#,
        r#"{"hidden_size": 64, "num_heads": 4, "depth": 2, "refiner_depth": 1, "text_embed_dim": 128}"#,
    ]
    .map(|json| json.as_bytes().to_vec());
    let outcome = ssdit_mutate::campaign("dit_config_json", &valid, 30_000, 17, read);
    assert!(
        outcome.accepted > valid.len() && outcome.refused > 0,
        "mutants should reach both the model and the refusals: {outcome:?}"
    );
}
