//! Forward and forward+backward wall time of the seed-default DiT on the CPU.
//!
//! Batch 2 of 448×448-image latents (16×56×56 → 28×28 = 784 image tokens)
//! with 128 caption tokens (1152 wide): the seed's training shape. Forward
//! runs on `NdArray<f32>`, forward+backward on `Autodiff<NdArray<f32>>`
//! (loss = mean squared velocity). One warm-up, then `SSDIT_BENCH_ITERS`
//! (default 3) timed iterations of each.
//!
//! `cargo bench -p ssdit-model --bench forward`

use std::time::{Duration, Instant};

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use burn::tensor::Distribution;
use ssdit_model::{SingleStreamDiT, SingleStreamDiTConfig};

const BATCH: usize = 2;
const LATENT: usize = 56;

struct Inputs<B: Backend> {
    x: Tensor<B, 4>,
    t: Tensor<B, 1>,
    text: Tensor<B, 3>,
}

fn inputs<B: Backend>(config: &SingleStreamDiTConfig, device: &Device<B>) -> Inputs<B> {
    let normal = Distribution::Normal(0.0, 1.0);
    Inputs {
        x: Tensor::random([BATCH, config.in_channels, LATENT, LATENT], normal, device),
        t: Tensor::random([BATCH], Distribution::Uniform(0.0, 1.0), device),
        text: Tensor::random(
            [BATCH, config.max_token_length, config.text_embed_dim],
            normal,
            device,
        ),
    }
}

fn forward<B: Backend>(model: &SingleStreamDiT<B>, inputs: &Inputs<B>) -> Tensor<B, 4> {
    model.forward(inputs.x.clone(), inputs.t.clone(), inputs.text.clone())
}

/// Runs `step` once to warm up, then `iters` times; returns the timings.
fn time(iters: usize, mut step: impl FnMut()) -> Vec<Duration> {
    step();
    (0..iters)
        .map(|_| {
            let start = Instant::now();
            step();
            start.elapsed()
        })
        .collect()
}

fn report(what: &str, timings: &[Duration]) {
    let secs: Vec<f64> = timings.iter().map(Duration::as_secs_f64).collect();
    let mean = secs.iter().sum::<f64>() / secs.len() as f64;
    let min = secs.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "{what:<18} mean {mean:7.3} s   min {min:7.3} s   ({} iterations: {})",
        secs.len(),
        secs.iter()
            .map(|s| format!("{s:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn main() {
    let iters: usize = std::env::var("SSDIT_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let config = SingleStreamDiTConfig::seed_default();
    println!(
        "SingleStreamDiT seed default: batch {BATCH}, latent {}×{LATENT}×{LATENT} ({} image + {} text tokens), {} threads",
        config.in_channels,
        (LATENT / config.patch_size).pow(2),
        config.max_token_length,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    type Cpu = NdArray<f32>;
    let device = Default::default();
    let model = config.init_seeded::<Cpu>(&device, 0).expect("valid config");
    println!("parameters         {}", model.parameter_count());
    let batch = inputs(&config, &device);
    let timings = time(iters, || {
        let v = forward(&model, &batch);
        Cpu::sync(&device).expect("sync");
        drop(v);
    });
    report("forward", &timings);

    type Train = Autodiff<NdArray<f32>>;
    let model = config
        .init_seeded::<Train>(&device, 0)
        .expect("valid config");
    let batch = inputs(&config, &device);
    let timings = time(iters, || {
        let loss = forward(&model, &batch).powi_scalar(2).mean();
        let grads = loss.backward();
        drop(grads);
    });
    report("forward+backward", &timings);
}
