//! Shared set-up of the training tests: a synthetic dataset in a memory
//! store, its training set, and trainers of the tiny DiT on the CPU.

#![allow(dead_code)]

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::backend::AutodiffBackend;
use ssdit_core::config::TrainConfig;
use ssdit_dataset::{Dataset, Encodings};
use ssdit_model::SingleStreamDiTConfig;
use ssdit_store::Store;
use ssdit_train::checkpoint::{CheckpointFiles, CheckpointRef};
use ssdit_train::data::TrainingSet;
use ssdit_train::model::{DataShape, dit_config};
use ssdit_train::synthetic::SyntheticDataset;
use ssdit_train::{Trainer, TrainerParts};
use tokio::runtime::Runtime;

/// The autodiff CPU backend of the tests.
pub type AB = Autodiff<NdArray<f32>>;

pub const RUN: &str = "test-run";

/// A synthetic dataset in a memory store, and the runtime its I/O runs on.
pub struct Fixture {
    pub runtime: Runtime,
    pub store: Store,
    pub spec: SyntheticDataset,
    pub encodings: Encodings,
}

impl Fixture {
    /// Writes `spec` to a fresh memory store.
    pub fn new(spec: SyntheticDataset) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let store = runtime.block_on(Store::open("memory://")).unwrap();
        let encodings = spec.fixed_encodings();
        runtime.block_on(spec.write(&store, &encodings)).unwrap();
        Self {
            runtime,
            store,
            spec,
            encodings,
        }
    }

    /// The dataset's ready samples, in RAM or streamed from the store.
    pub fn training_set(&self, in_ram: bool) -> TrainingSet {
        let dataset = Dataset::new(self.store.clone(), &self.spec.name).unwrap();
        let manifest = self
            .runtime
            .block_on(dataset.training_manifest(&self.encodings))
            .unwrap();
        TrainingSet::load(&self.store, self.runtime.handle(), &manifest, in_ram).unwrap()
    }

    /// A trainer of the tiny DiT with `config`, fresh or resuming `resume`.
    pub fn trainer(&self, config: &TrainConfig, resume: Option<&CheckpointFiles>) -> Trainer<AB> {
        self.trainer_on(config, resume, self.training_set(true))
    }

    /// A trainer of the tiny DiT over `data` on the autodiff backend `B`.
    pub fn trainer_on<B: AutodiffBackend>(
        &self,
        config: &TrainConfig,
        resume: Option<&CheckpointFiles>,
        data: TrainingSet,
    ) -> Trainer<B> {
        self.trainer_computing_in(config, resume, data, DType::F32)
    }

    /// [`trainer_on`](Self::trainer_on), the forward computing in `compute_dtype`.
    pub fn trainer_computing_in<B: AutodiffBackend>(
        &self,
        config: &TrainConfig,
        resume: Option<&CheckpointFiles>,
        data: TrainingSet,
        compute_dtype: DType,
    ) -> Trainer<B> {
        let dit = tiny_dit(&data, config.dropout);
        Trainer::new(TrainerParts {
            run_id: RUN,
            dataset: &self.spec.name,
            config: config.clone(),
            dit,
            data,
            device: Default::default(),
            compute_dtype,
            resume,
        })
        .unwrap()
    }
}

/// The tiny DiT fitted to `data`.
pub fn tiny_dit(data: &TrainingSet, dropout: f64) -> SingleStreamDiTConfig {
    let [text_tokens, text_dim] = data.text_shape();
    let shape = DataShape {
        channels: data.latent_channels(),
        text_tokens,
        text_dim,
    };
    dit_config("tiny", shape, dropout).unwrap()
}

/// A trainer's checkpoint files as a resume reads them.
pub fn checkpoint(trainer: &Trainer<AB>) -> CheckpointFiles {
    let step = trainer.position().global_step;
    let files = trainer
        .checkpoint_files()
        .unwrap()
        .into_iter()
        .map(|(name, bytes)| (name.to_string(), bytes))
        .collect();
    CheckpointFiles {
        checkpoint: CheckpointRef {
            run_id: RUN.into(),
            step,
            dir: ssdit_store::layout::checkpoint_dir(RUN, step).unwrap(),
        },
        files,
    }
}

/// Every parameter of `model` by seed name, flattened.
pub fn weights<B: Backend>(model: &ssdit_model::SingleStreamDiT<B>) -> Vec<(String, Vec<f32>)> {
    let state = model.state_dict().unwrap();
    let mut names: Vec<String> = state.names().map(str::to_string).collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let data = state.tensor(&name).unwrap();
            (name, data.convert::<f32>().to_vec::<f32>().unwrap())
        })
        .collect()
}

/// The largest absolute difference between two weight sets, and the name
/// where it is.
pub fn max_difference(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> (f32, String) {
    assert_eq!(a.len(), b.len());
    let mut worst = (0.0f32, String::new());
    for ((name, x), (other, y)) in a.iter().zip(b) {
        assert_eq!(name, other);
        for (p, q) in x.iter().zip(y) {
            let d = (p - q).abs();
            if d > worst.0 || d.is_nan() {
                worst = (d, name.clone());
            }
        }
    }
    worst
}

/// Mean of `values`.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}
