//! Loading a T5Gemma2 model directory: success (single file and sharded,
//! other towers skipped) and every error a user can meet, each naming the
//! file or tensor at fault.

use crate::common;

use std::collections::BTreeMap;

use burn::prelude::*;
use common::{B, Stored, f32_tensor, tiny_checkpoint, tiny_model_dir, write};
use ssdit_text::loader::{ModelFiles, load_encoder};
use ssdit_text::tiny::tiny_encoder;
use ssdit_text::{Error, TextEncoder};
use ssdit_weights::ModelSource;

fn local(dir: &std::path::Path) -> ModelSource {
    ModelSource::Local(dir.to_path_buf())
}

fn load_error(edit: impl FnOnce(&mut BTreeMap<String, Stored>)) -> String {
    let dir = tempfile::tempdir().unwrap();
    tiny_model_dir(dir.path());
    let mut tensors = tiny_checkpoint();
    edit(&mut tensors);
    write(&dir.path().join("model.safetensors"), &tensors);
    let files = ModelFiles::resolve(&local(dir.path())).unwrap();
    load_encoder::<B>(&files, &Default::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn loads_the_encoder_weights_and_skips_the_other_towers() {
    let dir = tempfile::tempdir().unwrap();
    tiny_model_dir(dir.path());
    let device = Default::default();
    let files = ModelFiles::resolve(&local(dir.path())).unwrap();
    let loaded = load_encoder::<B>(&files, &device).unwrap();
    let original = tiny_encoder::<B>(&device);
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::from([[2i64, 40, 41, 260, 0]]), &device);
    let mask = Tensor::<B, 2, Bool>::from_data(
        TensorData::from([[true, true, true, true, false]]),
        &device,
    );
    let want = original.forward(ids.clone(), mask.clone()).into_data();
    let got = loaded.forward(ids, mask).into_data();
    assert_eq!(
        got, want,
        "weights survive the checkpoint round trip bit for bit"
    );
}

#[test]
fn text_encoder_from_a_model_directory() {
    let dir = tempfile::tempdir().unwrap();
    tiny_model_dir(dir.path());
    let encoder = TextEncoder::<B>::t5gemma2(&local(dir.path()), 6, &Default::default()).unwrap();
    assert_eq!((encoder.dim(), encoder.max_length()), (128, 6));
    assert_eq!(encoder.fingerprint().len(), 16);
    let tokenizer = dir.path().join("tokenizer.json");
    assert_eq!(
        encoder.tokenizer_fingerprint(),
        ssdit_weights::fingerprint_files(&[&tokenizer]).unwrap(),
        "the tokenizer is fingerprinted on its own"
    );
    let out = encoder
        .encode(&["a red flower".into(), "petal".into()])
        .unwrap();
    assert_eq!(out.embeddings.dims(), [2, 6, 128]);
    assert_eq!(
        out.mask.into_data().to_vec::<i64>().unwrap(),
        [1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0]
    );
}

#[test]
fn sharded_checkpoint_loads_and_fingerprints_every_shard() {
    let dir = tempfile::tempdir().unwrap();
    tiny_model_dir(dir.path());
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let tensors = tiny_checkpoint();
    let (first, second): (BTreeMap<_, _>, BTreeMap<_, _>) = tensors
        .into_iter()
        .partition(|(name, _)| name.contains("layers.0.") || name.contains("embed"));
    let mut weight_map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", &first),
        ("model-00002-of-00002.safetensors", &second),
    ] {
        write(&dir.path().join(file), part);
        for name in part.keys() {
            weight_map.insert(name.clone(), file.into());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();

    let files = ModelFiles::resolve(&local(dir.path())).unwrap();
    assert_eq!(files.weight_files.len(), 2);
    load_encoder::<B>(&files, &Default::default()).unwrap();
    let before = files.fingerprint().unwrap();
    write(&dir.path().join("model-00002-of-00002.safetensors"), &{
        let mut part = second.clone();
        part.insert("model.decoder.extra".into(), f32_tensor(&[1], &[0.0]));
        part
    });
    assert_ne!(
        files.fingerprint().unwrap(),
        before,
        "a changed shard changes the fingerprint"
    );
}

#[test]
fn missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    tiny_model_dir(dir.path());
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = ModelFiles::resolve(&local(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.safetensors"), "{err}");

    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let err = TextEncoder::<B>::t5gemma2(&local(dir.path()), 8, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.json"), "{err}");

    let err = ModelFiles::resolve(&local(&dir.path().join("nowhere")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nowhere"), "{err}");
}

#[test]
fn missing_tensor_is_named() {
    let err = load_error(|t| {
        t.remove("model.encoder.layers.1.mlp.up_proj.weight");
    });
    assert!(
        err.contains("missing") && err.contains("model.encoder.layers.1.mlp.up_proj.weight"),
        "{err}"
    );
}

#[test]
fn wrong_shape_is_named() {
    let err = load_error(|t| {
        t.insert(
            "model.encoder.norm.weight".into(),
            f32_tensor(&[3], &[0.0; 3]),
        );
    });
    assert!(
        err.contains("model.encoder.norm.weight") && err.contains("[3]"),
        "{err}"
    );
}

#[test]
fn unexpected_tensor_is_named() {
    let err = load_error(|t| {
        t.insert(
            "model.encoder.layers.0.self_attn.extra.weight".into(),
            f32_tensor(&[1], &[0.0]),
        );
    });
    assert!(
        err.contains("does not have")
            && err.contains("model.encoder.layers.0.self_attn.extra.weight"),
        "{err}"
    );
}

#[test]
fn bad_config_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    tiny_model_dir(dir.path());
    let path = dir.path().join("config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "\"attn_logit_softcapping\":null",
            "\"attn_logit_softcapping\":30.0",
        ),
    )
    .unwrap();
    let err = TextEncoder::<B>::t5gemma2(&local(dir.path()), 8, &Default::default()).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err}");
    assert!(err.to_string().contains("attn_logit_softcapping"), "{err}");
}

#[test]
fn token_ids_outside_the_vocabulary_are_rejected() {
    // A tokenizer with more ids than the model's embedding table.
    let dir = tempfile::tempdir().unwrap();
    tiny_model_dir(dir.path());
    let words: Vec<String> = (0..300).map(|i| format!("w{i}")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    std::fs::write(
        dir.path().join("tokenizer.json"),
        common::word_tokenizer_json(&words),
    )
    .unwrap();
    let encoder = TextEncoder::<B>::t5gemma2(&local(dir.path()), 8, &Default::default()).unwrap();
    encoder.encode(&["w0 w1".into()]).unwrap();
    let err = encoder.encode(&["w0 w299".into()]).unwrap_err().to_string();
    assert!(err.contains("303") && err.contains("vocabulary"), "{err}");
    let err = encoder.encode(&[]).unwrap_err().to_string();
    assert!(err.contains("no captions"), "{err}");
}
