//! At the seed's full settings the model's state dict has exactly the names,
//! shapes and parameter count of the reference
//! (`fixtures/dit/default_config_tensors.json`). Listed from lazy shapes:
//! nothing is drawn or allocated.

use std::collections::BTreeMap;

use burn::backend::NdArray;
use serde::Deserialize;
use ssdit_model::SingleStreamDiTConfig;
use ssdit_parity::fixtures_root;

#[derive(Deserialize)]
struct Reference {
    config: BTreeMap<String, serde_json::Value>,
    parameters: usize,
    tensors: BTreeMap<String, Vec<usize>>,
}

#[test]
fn seed_default_has_the_reference_state_dict() {
    let path = fixtures_root().join("dit/default_config_tensors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reference: Reference = serde_json::from_str(&text).unwrap();

    let config = SingleStreamDiTConfig::seed_default();
    let args = serde_json::to_string(&reference.config).unwrap();
    let from_reference = SingleStreamDiTConfig::from_seed_json(&args).unwrap();
    assert_eq!(
        from_reference.with_dropout(config.dropout),
        config,
        "reference constructor arguments"
    );

    let model = config.init::<NdArray<f32>>(&Default::default()).unwrap();
    let listed = model.named_shapes();
    let ours: BTreeMap<String, Vec<usize>> = listed.iter().cloned().collect();
    assert_eq!(ours.len(), listed.len(), "names are unique");
    let missing: Vec<_> = reference
        .tensors
        .keys()
        .filter(|k| !ours.contains_key(*k))
        .collect();
    let surplus: Vec<_> = ours
        .keys()
        .filter(|k| !reference.tensors.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty() && surplus.is_empty(),
        "missing {missing:?}, surplus {surplus:?}"
    );
    for (name, shape) in &reference.tensors {
        assert_eq!(&ours[name], shape, "{name}");
    }
    assert_eq!(model.parameter_count(), reference.parameters);
    assert_eq!(model.parameter_count(), 271_150_802);
}
