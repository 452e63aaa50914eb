//! Text-encoder throughput at the real `google/t5gemma-2-1b-1b` encoder sizes
//! (random weights), CPU (`NdArray<f32>` + OpenBLAS): 8 captions × 128 tokens.
//! Also the tiny offline encoder. Prints figures; no assertions.
//!
//! `cargo bench -p ssdit-text --bench encoder [-- ITERATIONS]` (default 3).

use std::time::{Duration, Instant};

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::{Bool, Int};
use ssdit_text::TextEncoder;
use ssdit_text::t5gemma2::{T5Gemma2Encoder, T5Gemma2EncoderConfig};

type B = NdArray<f32>;

const BATCH: usize = 8;
const LEN: usize = 128;

fn main() {
    let iterations = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(3)
        .max(1);
    let device = Default::default();
    println!("text encoder benchmark: batch {BATCH} × {LEN} tokens, NdArray<f32> (CPU)");
    real_sizes(&device, iterations);
    tiny(&device, iterations);
}

fn real_sizes(device: &Device<B>, iterations: usize) {
    let config = T5Gemma2EncoderConfig::t5gemma_2_1b();
    let model: T5Gemma2Encoder<B> = config.init(device);
    let (ids, mask) = inputs(config.vocab_size, device);
    // Parameters are lazy: the first pass also draws the random weights.
    let first = time(|| forward(&model, &ids, &mask));
    println!(
        "t5gemma-2-1b encoder (hidden {}, {} layers, vocab {}): {:.1} M parameters",
        config.hidden_size,
        config.num_hidden_layers(),
        config.vocab_size,
        model.num_params() as f64 / 1e6
    );
    println!(
        "  first forward         {:>8.2} s (includes drawing the random weights)",
        first.as_secs_f64()
    );
    let times: Vec<Duration> = (0..iterations)
        .map(|_| time(|| forward(&model, &ids, &mask)))
        .collect();
    let best = times.iter().min().expect("one run").as_secs_f64();
    report("  forward", times);
    let flops = encoder_flops(&config);
    println!(
        "  throughput            {:>8.1} GFLOP/s (best run; {:.2} TFLOP per batch)",
        flops / best / 1e9,
        flops / 1e12
    );
    println!("  peak resident memory  {:>8.0} MiB (VmHWM)", peak_mib());
    gemm_reference(&config, device);
}

/// Twice the multiply-adds of one forward pass: projections, MLP, attention
/// scores and their weighted sum (the embedding lookup and norms are negligible).
fn encoder_flops(config: &T5Gemma2EncoderConfig) -> f64 {
    let hidden = config.hidden_size as f64;
    let q = (config.num_attention_heads * config.head_dim) as f64;
    let kv = (config.num_key_value_heads * config.head_dim) as f64;
    let mlp = config.intermediate_size as f64;
    let per_token = 2.0 * (2.0 * hidden * q + 2.0 * hidden * kv + 3.0 * hidden * mlp)
        + 2.0 * 2.0 * LEN as f64 * q;
    per_token * (BATCH * LEN) as f64 * config.num_hidden_layers() as f64
}

/// This machine's matmul rate on the encoder's largest product
/// (`[tokens, hidden] × [hidden, mlp]`), for context.
fn gemm_reference(config: &T5Gemma2EncoderConfig, device: &Device<B>) {
    let (m, k, n) = (BATCH * LEN, config.hidden_size, config.intermediate_size);
    let a = Tensor::<B, 2>::ones([m, k], device);
    let b = Tensor::<B, 2>::ones([k, n], device);
    let best = (0..3)
        .map(|_| {
            time(|| {
                a.clone().matmul(b.clone()).into_data();
            })
        })
        .min()
        .expect("three runs");
    println!(
        "  reference matmul      {:>8.1} GFLOP/s ([{m}, {k}] × [{k}, {n}], best of 3)",
        2.0 * (m * k * n) as f64 / best.as_secs_f64() / 1e9
    );
}

fn tiny(device: &Device<B>, iterations: usize) {
    let encoder = TextEncoder::<B>::tiny(LEN, device).expect("tiny encoder");
    let captions: Vec<String> = (0..BATCH)
        .map(|i| format!("A macro shot of flower number {i}, purple petals, soft light."))
        .collect();
    let encode = || {
        let out = encoder.encode(&captions).expect("encode");
        out.embeddings.into_data();
    };
    encode();
    println!("tiny encoder (dim {}):", encoder.dim());
    report(
        "  tokenize + forward",
        (0..iterations.max(5)).map(|_| time(encode)).collect(),
    );
}

fn forward(model: &T5Gemma2Encoder<B>, ids: &Tensor<B, 2, Int>, mask: &Tensor<B, 2, Bool>) {
    model.forward(ids.clone(), mask.clone()).into_data();
}

/// Deterministic token ids, captions of 40 to 128 real tokens.
fn inputs(vocab: usize, device: &Device<B>) -> (Tensor<B, 2, Int>, Tensor<B, 2, Bool>) {
    let mut ids = Vec::with_capacity(BATCH * LEN);
    let mut mask = Vec::with_capacity(BATCH * LEN);
    for row in 0..BATCH {
        let real = 40 + row * (LEN - 40) / (BATCH - 1);
        for pos in 0..LEN {
            let id = if pos == 0 {
                2
            } else if pos < real {
                (row * 7919 + pos * 104_729) % (vocab - 300) + 300
            } else {
                0
            };
            ids.push(id as i64);
            mask.push(pos < real);
        }
    }
    (
        Tensor::from_data(TensorData::new(ids, [BATCH, LEN]), device),
        Tensor::from_data(TensorData::new(mask, [BATCH, LEN]), device),
    )
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn report(label: &str, times: Vec<Duration>) {
    let secs: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    let mean = secs.iter().sum::<f64>() / secs.len() as f64;
    let min = secs.iter().cloned().fold(f64::INFINITY, f64::min);
    println!(
        "{label:<22} {mean:>8.3} s mean, {min:.3} s min over {} runs ({:.1} captions/s)",
        secs.len(),
        BATCH as f64 / mean
    );
}

/// Peak resident set size of this process (`VmHWM`), in MiB.
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
