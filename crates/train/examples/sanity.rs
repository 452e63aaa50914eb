//! The seed's `sanity_check.py` on the CPU: overfit one synthetic cached
//! sample with the tiny DiT and report how far the loss falls and how close
//! an Euler sample of its caption comes to its latent.
//!
//! ```text
//! cargo run -p ssdit-train --example sanity -- [steps] [lr] [channels] [side] [adamw|adamw8bit]
//! ```

use std::ops::ControlFlow;

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use burn::tensor::ElementConversion;
use ssdit_core::config::{OptimizerKind, TrainConfig};
use ssdit_dataset::{Bucket, Dataset};
use ssdit_train::data::TrainingSet;
use ssdit_train::model::{DataShape, dit_config};
use ssdit_train::rng::{Purpose, Streams, normal};
use ssdit_train::synthetic::SyntheticDataset;
use ssdit_train::validate::sampler;
use ssdit_train::{Trainer, TrainerParts};

type AB = Autodiff<NdArray<f32>>;
type IB = NdArray<f32>;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let steps: usize = arg(1, "300").parse()?;
    let lr: f64 = arg(2, "1e-3").parse()?;
    let channels: usize = arg(3, "16").parse()?;
    let side: u32 = arg(4, "64").parse()?;
    let optimizer = match arg(5, "adamw").as_str() {
        "adamw8bit" => OptimizerKind::Adamw8bit,
        _ => OptimizerKind::Adamw,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let store = runtime.block_on(ssdit_store::Store::open("memory://"))?;
    let mut spec = SyntheticDataset::tiny("sanity", 1);
    spec.channels = channels;
    spec.buckets = vec![Bucket {
        width: side,
        height: side,
    }];
    let encodings = spec.fixed_encodings();
    runtime.block_on(spec.write(&store, &encodings))?;
    let manifest =
        runtime.block_on(Dataset::new(store.clone(), "sanity")?.training_manifest(&encodings))?;
    let data = TrainingSet::load(&store, runtime.handle(), &manifest, true)?;
    let config = TrainConfig {
        learning_rate: lr,
        epochs: steps,
        batch_size: 1,
        accum_steps: 1,
        text_dropout: 0.0,
        dropout: 0.0,
        ema_decay: 0.9,
        validate_steps: 20,
        validate_cfg: 1.0,
        optimizer,
        ..TrainConfig::default()
    };
    let [text_tokens, text_dim] = data.text_shape();
    let shape = DataShape {
        channels,
        text_tokens,
        text_dim,
    };
    let mut trainer = Trainer::<AB>::new(TrainerParts {
        run_id: "sanity",
        dataset: "sanity",
        dit: dit_config("tiny", shape, 0.0)?,
        config,
        data,
        device: Default::default(),
        compute_dtype: burn::tensor::DType::F32,
        resume: None,
    })?;
    let before = sample_error(&trainer)?;
    let started = std::time::Instant::now();
    let mut losses = Vec::new();
    while !trainer.finished() {
        losses.push(trainer.step()?.loss);
        if losses.len() % 50 == 0 {
            let window = &losses[losses.len() - 20..];
            println!(
                "step {:>5}: loss {:.4} (mean of the last 20)",
                losses.len(),
                window.iter().sum::<f64>() / 20.0
            );
        }
    }
    let after = sample_error(&trainer)?;
    let start = losses[..5].iter().sum::<f64>() / 5.0;
    let end = losses[losses.len() - 20..].iter().sum::<f64>() / 20.0;
    println!(
        "loss {start:.4} -> {end:.4} ({:.3} of the start); sample error {before:.4} -> {after:.4}; {:.1} ms/step",
        end / start,
        started.elapsed().as_secs_f64() * 1e3 / steps as f64
    );
    Ok(())
}

/// Mean squared distance between the EMA model's Euler sample of the
/// sample's caption (fixed noise, no guidance) and the sample's latent.
fn sample_error(trainer: &Trainer<AB>) -> anyhow::Result<f64> {
    let device = *trainer.device();
    let tensors = trainer.data().tensors(&[0])?.remove(0);
    let [c, h, w] = tensors.latent_shape;
    let [l, d] = tensors.embedding_shape;
    let noise = normal(
        &mut Streams::new(1).rng(Purpose::Validation, 0, 0),
        c * h * w,
    );
    let x0 = Tensor::<IB, 4>::from_data(TensorData::new(noise, [1, c, h, w]), &device);
    let text = Tensor::<IB, 3>::from_data(TensorData::new(tensors.embedding, [1, l, d]), &device);
    let target = Tensor::<IB, 4>::from_data(TensorData::new(tensors.latent, [1, c, h, w]), &device);
    let model = trainer.ema_model()?;
    let sampler = sampler(trainer.config())?;
    let guidance = sampler.guidance(text)?;
    let velocity = |x, t, text| model.forward(x, t, text);
    let sample = sampler.sample(&velocity, x0, &guidance, |_| ControlFlow::Continue(()))?;
    Ok((sample - target).powi_scalar(2).mean().into_scalar().elem())
}
