//! Round trips and every error a user can meet loading weights.

use std::collections::BTreeMap;

use burn::backend::NdArray;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use ssdit_weights::{Checkpoint, Error, KeyMap, save_safetensors};

type B = NdArray<f32>;

#[derive(Module, Debug)]
struct Tiny<B: Backend> {
    proj: Linear<B>,
    layers: Vec<Linear<B>>,
}

fn tiny(device: &Device<B>, width: usize) -> Tiny<B> {
    Tiny {
        proj: LinearConfig::new(3, width).init(device),
        layers: vec![LinearConfig::new(width, 2).init(device)],
    }
}

/// The checkpoint calls `layers.N` `mlp.N.1` (an nn.Sequential index).
fn keys() -> KeyMap {
    KeyMap::new().rename(
        r"^mlp\.(\d+)\.1\.",
        "layers.$1.",
        r"^layers\.(\d+)\.",
        "mlp.$1.1.",
    )
}

fn save(module: &Tiny<B>, dir: &std::path::Path) -> std::path::PathBuf {
    let bytes = save_safetensors(module, &keys(), BTreeMap::new()).unwrap();
    let path = dir.join("model.safetensors");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn saves_pytorch_names_and_layouts_and_loads_them_back() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let original = tiny(&device, 4);
    let path = save(&original, dir.path());

    let ckpt = Checkpoint::open(dir.path()).unwrap();
    let names: Vec<_> = ckpt.names().collect();
    assert_eq!(
        names,
        ["mlp.0.1.bias", "mlp.0.1.weight", "proj.bias", "proj.weight"]
    );
    assert_eq!(
        ckpt.shape("proj.weight"),
        Some(&[4, 3][..]),
        "PyTorch [out, in]"
    );

    let loaded = Checkpoint::open(&path)
        .unwrap()
        .load_into(tiny(&device, 4), &keys())
        .unwrap();
    let x = Tensor::<B, 2>::ones([1, 3], &device);
    let want = original.layers[0].forward(original.proj.forward(x.clone()));
    let got = loaded.layers[0].forward(loaded.proj.forward(x));
    want.into_data()
        .assert_approx_eq::<f32>(&got.into_data(), Default::default());
}

#[test]
fn wrong_shape_is_named() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    save(&tiny(&device, 4), dir.path());
    let err = Checkpoint::open(dir.path())
        .unwrap()
        .load_into(tiny(&device, 5), &keys())
        .unwrap_err();
    assert!(
        matches!(&err, Error::ShapeMismatch { name, .. } if name.starts_with("proj.") || name.starts_with("mlp.")),
        "{err}"
    );
}

#[test]
fn missing_and_unexpected_tensors_are_named() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    save(&tiny(&device, 4), dir.path());
    let ckpt = Checkpoint::open(dir.path()).unwrap();

    let err = ckpt
        .load_into(tiny(&device, 4), &KeyMap::new())
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::MissingTensors { .. }), "{text}");
    assert!(text.contains("layers.0.weight"), "{text}");

    let ignoring_layers = keys().ignore(r"^mlp\.");
    let only_proj = ckpt
        .load_into(tiny(&device, 4), &ignoring_layers)
        .unwrap_err();
    assert!(
        only_proj.to_string().contains("mlp.0.1.weight"),
        "{only_proj}"
    );
}

#[test]
fn surplus_tensor_is_an_error_unless_ignored() {
    #[derive(Module, Debug)]
    struct ProjOnly<B: Backend> {
        proj: Linear<B>,
    }
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    save(&tiny(&device, 4), dir.path());
    let ckpt = Checkpoint::open(dir.path()).unwrap();
    let proj_only = || ProjOnly {
        proj: LinearConfig::new(3, 4).init::<B>(&device),
    };
    let err = ckpt.load_into(proj_only(), &keys()).unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedTensors { names, .. } if names.contains(&"mlp.0.1.weight".to_string())),
        "{err}"
    );
    ckpt.load_into(proj_only(), &keys().ignore(r"^mlp\."))
        .unwrap();
}

#[test]
fn malformed_and_missing_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Checkpoint::open(&dir.path().join("nope.safetensors")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");

    let bad = dir.path().join("bad.safetensors");
    // A header length far beyond the file.
    std::fs::write(&bad, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, b'{', b'}']).unwrap();
    let err = Checkpoint::open(&bad).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");

    let truncated = dir.path().join("truncated.safetensors");
    let device = Default::default();
    let bytes = save_safetensors(&tiny(&device, 4), &keys(), BTreeMap::new()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 8]).unwrap();
    let err = Checkpoint::open(&truncated).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn sharded_index_merges_shards_and_rejects_escapes() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let module = tiny(&device, 4);
    let bytes = save_safetensors(&module, &keys(), BTreeMap::new()).unwrap();
    std::fs::write(dir.path().join("shard-1.safetensors"), &bytes).unwrap();
    std::fs::write(dir.path().join("shard-2.safetensors"), &bytes).unwrap();
    let index = serde_json::json!({"metadata": {}, "weight_map": {
        "proj.weight": "shard-1.safetensors", "proj.bias": "shard-1.safetensors",
        "mlp.0.1.weight": "shard-2.safetensors", "mlp.0.1.bias": "shard-2.safetensors"}});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let ckpt = Checkpoint::open(dir.path()).unwrap();
    assert_eq!(ckpt.len(), 4);
    ckpt.load_into(tiny(&device, 4), &keys()).unwrap();

    let escape = serde_json::json!({"weight_map": {"proj.weight": "../elsewhere.safetensors"}});
    let escape_path = dir.path().join("escape.safetensors.index.json");
    std::fs::write(&escape_path, escape.to_string()).unwrap();
    let err = Checkpoint::open(&escape_path).unwrap_err();
    assert!(
        err.to_string().contains("outside the model directory"),
        "{err}"
    );
}
