//! What the import tests share: the fixture folder (made with PyTorch by
//! `tests/data/make_fixtures.py`) and the values PyTorch wrote beside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `tests/data`.
pub fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// A file under `tests/data`.
pub fn data_file(relative: &str) -> PathBuf {
    data().join(relative)
}

/// One expected tensor: its PyTorch shape and values (widened to f32 by PyTorch).
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Every tensor of `expected.safetensors`, by name.
pub fn expected_tensors() -> BTreeMap<String, Expected> {
    safetensors_f32(&std::fs::read(data_file("expected.safetensors")).unwrap())
}

/// `expected.json`: sizes, parameter order, optimizer settings, statistics.
pub fn expected_json() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(data_file("expected.json")).unwrap()).unwrap()
}

/// The tensors of a safetensors file as f32, by name.
pub fn safetensors_f32(bytes: &[u8]) -> BTreeMap<String, Expected> {
    let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let tensor = Expected {
                shape: view.shape().to_vec(),
                values,
            };
            (name, tensor)
        })
        .collect()
}
