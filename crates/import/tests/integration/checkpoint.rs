//! The seed's checkpoints (`tests/data/checkpoints/*.pt`, written by its
//! train.py code path with PyTorch for a small SingleStreamDiTV2) imported as
//! run checkpoints: weights and AdamW moments value for value, the optimizer
//! state loadable by ssdit's AdamW, the position and schedule as the seed
//! would resume, an 8-bit optimizer state recognised and not guessed at.

use crate::common;

use std::collections::BTreeMap;

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use common::{Expected, data_file, expected_json, expected_tensors, safetensors_f32};
use ssdit_core::config::TrainConfig;
use ssdit_import::{
    OptimizerImport, SeedCheckpointKind, SeedCheckpointOptions, import_seed_checkpoint,
};
use ssdit_model::{SingleStreamDiT, SingleStreamDiTConfig, key_map};
use ssdit_optim::OptimizerState;
use ssdit_store::Store;
use ssdit_train::checkpoint::{self, CheckpointFiles};
use ssdit_train::state::TrainingState;
use ssdit_weights::Checkpoint;

type B = NdArray<f32>;

fn options() -> SeedCheckpointOptions {
    let dit = SingleStreamDiTConfig::from_seed_file(&data_file("checkpoints/config.json")).unwrap();
    let train = TrainConfig {
        epochs: 10,
        ..TrainConfig::default()
    };
    SeedCheckpointOptions {
        dit,
        train,
        dataset: "flowers".into(),
    }
}

/// Imports `file` into a fresh memory store and reads the checkpoint back
/// the way the trainer and sampler do (verified against its commit marker).
async fn import(file: &str) -> (ssdit_import::CheckpointSummary, CheckpointFiles) {
    let store = Store::open("memory://").await.unwrap();
    let summary = import_seed_checkpoint(&store, &data_file(file), "seed-run", &options())
        .await
        .unwrap();
    let files = checkpoint::latest(&store, "seed-run")
        .await
        .unwrap()
        .expect("a committed checkpoint");
    (summary, files)
}

/// Every `<prefix>.<name>` tensor of the fixtures must be in `weights`
/// under `<name>` with identical values, and nothing else.
fn assert_weights(weights: &BTreeMap<String, Expected>, prefix: &str) {
    let expected = expected_tensors();
    let wanted: BTreeMap<&str, &Expected> = expected
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.strip_prefix('.')?, v)))
        .collect();
    assert_eq!(wanted.len(), 68);
    assert_eq!(
        weights.keys().map(String::as_str).collect::<Vec<_>>(),
        wanted.keys().copied().collect::<Vec<_>>()
    );
    for (name, reference) in wanted {
        assert_eq!(&weights[name], reference, "{prefix} {name}");
    }
}

#[tokio::test]
async fn an_ema_state_dict_becomes_both_weight_files() {
    let (summary, files) = import("checkpoints/ema_weights_epoch_3.pt").await;
    assert_eq!(summary.kind, SeedCheckpointKind::EmaStateDict);
    assert_eq!(summary.global_step, 0);
    assert!(matches!(
        summary.optimizer,
        OptimizerImport::NotImported { .. }
    ));
    assert_weights(
        &safetensors_f32(files.get("model.safetensors").unwrap()),
        "ema",
    );
    assert_weights(
        &safetensors_f32(files.get("ema.safetensors").unwrap()),
        "ema",
    );
    let config = SingleStreamDiTConfig::from_seed_json(files.text("config.json").unwrap()).unwrap();
    assert_eq!(config.hidden_size, 16);
    assert!(summary.to_string().contains("reset_optimizer"), "{summary}");
}

/// Parameter values by burn module path, in burn's layout.
#[derive(Default)]
struct Values {
    path: Vec<String>,
    values: BTreeMap<String, Vec<f32>>,
}

impl<Bk: Backend> ModuleVisitor<Bk> for Values {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
        let values = param.val().into_data().convert::<f32>().to_vec().unwrap();
        self.values.insert(self.path.join("."), values);
    }
}

/// `values` of a PyTorch `[rows, columns]` tensor, transposed.
fn transpose(values: &[f32], rows: usize, columns: usize) -> Vec<f32> {
    (0..columns)
        .flat_map(|c| (0..rows).map(move |r| values[r * columns + c]))
        .collect()
}

#[tokio::test]
async fn a_full_state_keeps_model_ema_adamw_moments_and_position() {
    let (summary, files) = import("checkpoints/full_state_epoch_3.pt").await;
    let info = &expected_json()["checkpoint"];
    assert_eq!(summary.kind, SeedCheckpointKind::FullState);
    assert_eq!((summary.epoch, summary.global_step), (Some(3), 12));
    assert_eq!(files.checkpoint.step, 12);
    assert_weights(
        &safetensors_f32(files.get("model.safetensors").unwrap()),
        "model",
    );
    assert_weights(
        &safetensors_f32(files.get("ema.safetensors").unwrap()),
        "ema",
    );
    assert_eq!(
        summary.optimizer,
        OptimizerImport::Imported {
            parameters: 66,
            without_state: 2
        }
    );

    // Position and schedule: epoch 3 finished, 12 steps (3 per epoch);
    // the scheduler stepped once, from base lr 2e-4.
    let state: TrainingState = serde_json::from_str(files.text("state.json").unwrap()).unwrap();
    assert_eq!((state.position.epoch, state.position.batch), (4, 0));
    assert_eq!(state.position.global_step, 12);
    assert_eq!(state.plan.steps_per_epoch, 3);
    assert_eq!(state.dataset, "flowers");
    let scheduler_steps = info["scheduler_last_epoch"].as_u64().unwrap();
    assert_eq!(state.schedule.start_step, 12 - scheduler_steps);
    assert_eq!(state.schedule.schedule.base_lr, 2e-4);
    assert_eq!(state.schedule.schedule.total_steps, 3 * (10 - 4));

    // The optimizer state: the seed's hyper-parameters and steps.
    let optimizer = OptimizerState::from_parts(
        files.get("optimizer.safetensors").unwrap(),
        files.text("optimizer.json").unwrap(),
    )
    .unwrap();
    let config = &optimizer.meta.config;
    assert_eq!(config.beta_1, info["betas"][0].as_f64().unwrap());
    assert_eq!(config.beta_2, info["betas"][1].as_f64().unwrap());
    assert_eq!(config.epsilon, info["eps"].as_f64().unwrap());
    assert_eq!(config.weight_decay, info["weight_decay"].as_f64().unwrap());

    // Moments value for value. The layout of each burn parameter relative to
    // PyTorch's (as is, or a transposed linear weight) is found from the
    // imported model weights themselves, independently of the importer.
    let checkpoint = Checkpoint::from_safetensors_bytes(
        files.get("model.safetensors").unwrap().to_vec(),
        "imported model",
    )
    .unwrap();
    let model: SingleStreamDiT<B> = options()
        .dit
        .init::<B>(&Default::default())
        .unwrap()
        .load_checkpoint(&checkpoint)
        .unwrap();
    let mut burn_values = Values::default();
    model.visit(&mut burn_values);
    let expected = expected_tensors();
    let keys = key_map();
    let without_state: Vec<&str> = info["without_state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut compared = 0;
    for (path, burn_weight) in &burn_values.values {
        let name = keys.checkpoint_name(path);
        let torch_weight = &expected[&format!("model.{name}")];
        let Some(meta) = optimizer.meta.params.get(path) else {
            assert!(
                without_state.contains(&name.as_str()),
                "{name} has no moments"
            );
            continue;
        };
        assert_eq!(meta.step, info["steps"][&name].as_u64().unwrap(), "{name}");
        let transposed = if *burn_weight == torch_weight.values {
            false
        } else {
            let [rows, columns] = torch_weight.shape[..] else {
                panic!("{name}: burn and torch values differ")
            };
            assert_eq!(
                *burn_weight,
                transpose(&torch_weight.values, rows, columns),
                "{name}"
            );
            true
        };
        for moment in ["exp_avg", "exp_avg_sq"] {
            let reference = &expected[&format!("{moment}.{name}")];
            let reference = if transposed {
                transpose(&reference.values, reference.shape[0], reference.shape[1])
            } else {
                reference.values.clone()
            };
            let stored = optimizer.tensors[&format!("{path}.{moment}")]
                .clone()
                .to_vec::<f32>()
                .unwrap();
            assert_eq!(stored, reference, "{moment} of {name}");
        }
        compared += 1;
    }
    assert_eq!(compared, 66);

    // ssdit's AdamW takes the state for this model, as the trainer does on resume.
    type AB = Autodiff<NdArray<f32>>;
    let mut adamw = config.init::<AB>().unwrap();
    let trainable: SingleStreamDiT<AB> = options()
        .dit
        .init::<AB>(&Default::default())
        .unwrap()
        .load_checkpoint(&checkpoint)
        .unwrap();
    adamw
        .load_state(&trainable, &optimizer, &Default::default())
        .unwrap();
    assert_eq!(adamw.steps(), 1);
}

#[tokio::test]
async fn an_8bit_optimizer_state_is_recognised_and_not_converted() {
    let (summary, files) = import("checkpoints/full_state_8bit.pt").await;
    assert_eq!(summary.kind, SeedCheckpointKind::FullState);
    let OptimizerImport::NotImported { reason } = &summary.optimizer else {
        panic!("imported: {:?}", summary.optimizer)
    };
    assert!(reason.contains("AdamW8bit"), "{reason}");
    assert_weights(
        &safetensors_f32(files.get("model.safetensors").unwrap()),
        "model",
    );
    let optimizer = OptimizerState::from_parts(
        files.get("optimizer.safetensors").unwrap(),
        files.text("optimizer.json").unwrap(),
    )
    .unwrap();
    assert!(optimizer.meta.params.is_empty());
}

#[tokio::test]
async fn unreadable_and_foreign_files_are_refused_with_the_reason() {
    let store = Store::open("memory://").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(data_file("checkpoints/ema_weights_epoch_3.pt")).unwrap();
    let truncated = dir.path().join("ema_weights_epoch_9.pt");
    std::fs::write(&truncated, &full[..full.len() / 3]).unwrap();
    let cases = [
        (truncated, "not a PyTorch zip archive".to_string()),
        (
            data_file("cache/flower_a.pt"),
            "neither a state dict nor the seed's full training state".to_string(),
        ),
        (dir.path().join("missing.pt"), "missing.pt".to_string()),
    ];
    for (path, reason) in cases {
        let error = import_seed_checkpoint(&store, &path, "seed-run", &options())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(reason.as_str()),
            "{}: {error}",
            path.display()
        );
    }
    // A model of another size does not load the weights: the error names the mismatch.
    let mut wrong = options();
    wrong.dit = wrong.dit.with_hidden_size(32);
    let error = import_seed_checkpoint(
        &store,
        &data_file("checkpoints/ema_weights_epoch_3.pt"),
        "seed-run",
        &wrong,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("shape"), "{error}");
    assert!(
        checkpoint::committed(&store, "seed-run")
            .await
            .unwrap()
            .is_empty()
    );
}
