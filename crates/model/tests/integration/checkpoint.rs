//! Checkpoint I/O on the seed's own weights (`fixtures/dit/dit.safetensors`):
//! saving keeps the seed's names and layouts, every supported file format
//! loads the same model, and every load error names the tensor at fault.

use crate::support;

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::prelude::*;
use ssdit_model::{Error, SingleStreamDiT, SingleStreamDiTConfig, open_checkpoint};
use ssdit_parity::{Fixture, fixtures_root};
use ssdit_weights::Checkpoint;
use support::torch_pt::{self, Contents, NamedTensor};

type B = NdArray<f32>;

fn fixture_dir() -> PathBuf {
    fixtures_root().join("dit")
}

fn weights_path() -> PathBuf {
    fixture_dir().join("dit.safetensors")
}

fn config() -> SingleStreamDiTConfig {
    SingleStreamDiTConfig::from_seed_file(&fixture_dir().join("config.json"))
        .expect("fixture config")
}

fn seed_model() -> SingleStreamDiT<B> {
    load(&weights_path(), None).expect("fixture weights load")
}

fn load(path: &Path, key: Option<&str>) -> ssdit_model::Result<SingleStreamDiT<B>> {
    config()
        .init::<B>(&Default::default())?
        .load_file(path, key)
}

/// The model's velocity on the fixture's inputs.
fn velocity(model: &SingleStreamDiT<B>) -> Vec<f32> {
    let fixture = Fixture::open(&fixture_dir()).expect("fixture cases");
    let device = Default::default();
    let x = Tensor::<B, 4>::from_data(fixture.tensor("x").unwrap(), &device);
    let t = Tensor::<B, 1>::from_data(fixture.tensor("t").unwrap(), &device);
    let text = Tensor::<B, 3>::from_data(fixture.tensor("text_embeds").unwrap(), &device);
    model.forward(x, t, text).into_data().to_vec().unwrap()
}

fn seed_tensors() -> Vec<NamedTensor> {
    let checkpoint = Checkpoint::open(&weights_path()).unwrap();
    checkpoint
        .names()
        .map(|name| {
            let data = checkpoint.tensor(name).unwrap();
            (
                name.to_string(),
                data.shape.to_vec(),
                data.to_vec::<f32>().unwrap(),
            )
        })
        .collect()
}

#[test]
fn save_keeps_the_seed_names_and_layouts_and_load_restores_outputs() {
    let model = seed_model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("saved.safetensors");
    model.save_safetensors(&path).unwrap();

    let seed = Checkpoint::open(&weights_path()).unwrap();
    let saved = Checkpoint::open(&path).unwrap();
    assert_eq!(
        saved.names().collect::<Vec<_>>(),
        seed.names().collect::<Vec<_>>()
    );
    for name in seed.names() {
        assert_eq!(
            saved.tensor(name).unwrap(),
            seed.tensor(name).unwrap(),
            "{name}"
        );
    }

    let mut listed = model.named_shapes();
    listed.sort();
    let stored: Vec<_> = saved
        .names()
        .map(|n| (n.to_string(), saved.shape(n).unwrap().to_vec()))
        .collect();
    assert_eq!(listed, stored, "named_shapes lists what is saved");

    let reloaded = load(&path, None).unwrap();
    assert_eq!(velocity(&reloaded), velocity(&model));
}

#[test]
fn pytorch_state_dicts_and_training_states_load() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = seed_tensors();
    let want = velocity(&seed_model());

    let plain = dir.path().join("ema_weights_final.pt");
    torch_pt::write(&plain, Contents::StateDict(&tensors));
    assert_eq!(velocity(&load(&plain, None).unwrap()), want);

    let compiled: Vec<NamedTensor> = tensors
        .iter()
        .map(|(n, s, v)| (format!("_orig_mod.{n}"), s.clone(), v.clone()))
        .collect();
    let compiled_path = dir.path().join("compiled.pt");
    torch_pt::write(&compiled_path, Contents::StateDict(&compiled));
    assert_eq!(
        velocity(&load(&compiled_path, None).unwrap()),
        want,
        "torch.compile prefix"
    );

    // The raw weights differ from the EMA weights: the key must pick the right dict.
    let raw: Vec<NamedTensor> = tensors
        .iter()
        .map(|(n, s, v)| (n.clone(), s.clone(), v.iter().map(|x| x * 0.5).collect()))
        .collect();
    let state = dir.path().join("full_state_final.pt");
    torch_pt::write(
        &state,
        Contents::TrainingState {
            epoch: 3,
            dicts: vec![("ema_state_dict", &tensors), ("model_state_dict", &raw)],
        },
    );
    assert_eq!(
        velocity(&load(&state, Some("ema_state_dict")).unwrap()),
        want
    );
    assert_ne!(
        velocity(&load(&state, Some("model_state_dict")).unwrap()),
        want
    );

    let err = load(&state, None).unwrap_err().to_string();
    assert!(
        err.contains("full training state")
            && err.contains("ema_state_dict")
            && err.contains("model_state_dict"),
        "{err}"
    );
}

#[test]
fn missing_surplus_and_misshapen_tensors_are_named() {
    let device = Default::default();
    let seed = open_checkpoint(&weights_path(), None).unwrap();

    let deeper = config().with_depth(3).init::<B>(&device).unwrap();
    match deeper.load_checkpoint(&seed) {
        Err(Error::Weights(ssdit_weights::Error::MissingTensors { names, .. })) => {
            assert!(
                names.contains(&"blocks.2.adaLN_modulation.1.weight".to_string()),
                "{names:?}"
            );
            assert!(
                names.contains(&"blocks.2.fourier_filter.freq_mlp.2.bias".to_string()),
                "{names:?}"
            );
            assert!(
                names.iter().all(|n| n.starts_with("blocks.2.")),
                "{names:?}"
            );
        }
        other => panic!("expected missing tensors, got {other:?}"),
    }

    let shallower = config().with_depth(1).init::<B>(&device).unwrap();
    match shallower.load_checkpoint(&seed) {
        Err(Error::Weights(ssdit_weights::Error::UnexpectedTensors { names, .. })) => {
            assert!(
                names.contains(&"blocks.1.fourier_filter.freq_mlp.0.weight".to_string()),
                "{names:?}"
            );
            assert!(
                names.iter().all(|n| n.starts_with("blocks.1.")),
                "{names:?}"
            );
        }
        other => panic!("expected surplus tensors, got {other:?}"),
    }

    let narrower = config().with_text_embed_dim(40).init::<B>(&device).unwrap();
    let err = narrower.load_checkpoint(&seed).unwrap_err();
    match &err {
        Error::Weights(ssdit_weights::Error::ShapeMismatch { name, found, .. }) => {
            assert_eq!(name, "cap_embedder.0.weight");
            assert_eq!(found, &vec![48]);
        }
        other => panic!("expected a shape mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("cap_embedder.0.weight"), "{err}");
}
