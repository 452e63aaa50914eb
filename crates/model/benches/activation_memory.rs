//! What the DiT's training graph holds from the forward to the backward
//! pass on the path CUDA takes, measured on the CPU: `Autodiff<Flex>`
//! (burn's composite operations; this crate's tests and benches turn on
//! ssdit-kernels' `flex` feature, so attention, RMSNorm and SwiGLU record their own
//! backward passes there as on CUDA), the seed's widths and sequence (hidden 768,
//! 12 heads of 64, 784 image + 128 caption tokens).
//!
//! 1. Attention alone: burn's own (decomposed and recorded) against
//!    `attention_recomputed`, four chained layers at batch 2, without and
//!    with balanced checkpointing, f32 and bf16; then the backward's time.
//! 2. Whole blocks: f32 master weights cast to bf16 inside the graph (the
//!    trainer's mixed precision), one forward at batch 2 at depth 2 and at
//!    depth 4; the difference is two blocks' activations for two samples
//!    plus their bf16 weights. From it, the estimate of the seed's GPU step
//!    at batch 16: 22 bytes a parameter (f32 weights, gradients, EMA, two
//!    AdamW moments, the bf16 copy) and the activations of 16 blocks at 912
//!    tokens and the refiners (2 at 784 tokens, 2 at 128, counted as blocks
//!    scaled by their tokens). An estimate for the card, not a GPU
//!    measurement: CUDA's allocator pools and fusion differ.
//! 3. Whole training passes ([`SingleStreamDiT::loss_gradients`]: forward,
//!    loss, backward) at depth 2 computing in bf16, activations kept and
//!    blocks recomputed, at batch 2 and 4: the peak of each pass and its
//!    time. Weights and gradients do not grow with the batch, so the
//!    difference is what a sample holds at the peak; with blocks
//!    recomputed, the batch-16 estimate adds the inputs of the seed's 14
//!    other blocks (one graph is built at a time).
//!
//! Each case runs in a process of its own and measures the growth of its
//! resident set over the forward, the graph alive, or its peak over a whole
//! pass (glibc's mmap threshold fixed, so that freed blocks leave the
//! resident set).
//!
//! `cargo bench -p ssdit-model --bench activation_memory --profile dev`

use std::process::Command;
use std::time::Instant;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::prelude::*;
use burn::tensor::module;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, Distribution};
use burn_flex::Flex;
use ssdit_kernels::attention_recomputed;
use ssdit_model::{ActivationCheckpointing, SingleStreamDiT, SingleStreamDiTConfig, TrainingPass};

type Graph<C> = Autodiff<Flex, C>;

const BATCH: usize = 2;
const LATENT: usize = 56;
const HEADS: usize = 12;
const HEAD_DIM: usize = 64;
const ATTENTION_LAYERS: usize = 4;
/// Fusion blocks of the whole-pass cases.
const PASS_DEPTH: usize = 2;
const SEED_BATCH: f64 = 16.0;
const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;
/// The environment variable naming the case a child process measures.
const CASE_VAR: &str = "SSDIT_MEMORY_CASE";

fn main() {
    if let Ok(case) = std::env::var(CASE_VAR) {
        let words: Vec<&str> = case.split(' ').collect();
        return match words.as_slice() {
            ["attention", attention, strategy, dtype] => {
                let (held, backward) = with_strategy(strategy, |checkpointing| {
                    attention_held(
                        checkpointing,
                        *attention == "recomputed",
                        dtype_named(dtype),
                    )
                });
                println!("{held} {backward}");
            }
            ["blocks", strategy, depth] => {
                let depth = depth.parse().expect("a depth");
                println!("{}", with_strategy(strategy, |c| blocks_held(c, depth)));
            }
            ["pass", checkpointing, batch] => {
                let checkpointing = match *checkpointing {
                    "blocks" => ActivationCheckpointing::Blocks,
                    _ => ActivationCheckpointing::Off,
                };
                let (peak, seconds) = pass_peak(checkpointing, batch.parse().expect("a batch"));
                println!("{peak} {seconds}");
            }
            _ => panic!("unknown case {case}"),
        };
    }
    attention_table();
    blocks_table();
    passes_table();
}

/// Which checkpointing strategy a case names.
#[derive(Clone, Copy)]
enum Checkpointing {
    None,
    Balanced,
}

fn with_strategy<T>(name: &str, run: impl FnOnce(Checkpointing) -> T) -> T {
    run(match name {
        "none" => Checkpointing::None,
        _ => Checkpointing::Balanced,
    })
}

fn dtype_named(name: &str) -> DType {
    if name == "bf16" {
        DType::BF16
    } else {
        DType::F32
    }
}

fn attention_table() {
    let tokens = (LATENT / 2).pow(2) + 128;
    println!(
        "attention under Autodiff<Flex>: batch {BATCH}, {HEADS} heads × {HEAD_DIM}, {tokens} tokens, {ATTENTION_LAYERS} layers"
    );
    println!(
        "| attention | checkpointing | dtype | held per layer per sample (MiB) | backward ms |"
    );
    println!("|---|---|---|---|---|");
    for dtype in ["f32", "bf16"] {
        for strategy in ["none", "balanced"] {
            for attention in ["burn", "recomputed"] {
                let [held, backward] = child(&format!("attention {attention} {strategy} {dtype}"));
                let per = held / (ATTENTION_LAYERS * BATCH) as f64;
                println!("| {attention} | {strategy} | {dtype} | {per:.1} | {backward:.0} |");
            }
        }
    }
}

fn blocks_table() {
    let config = SingleStreamDiTConfig::seed_default();
    let parameters = parameter_count(&config, config.depth);
    let block_parameters = parameter_count(&config, 2) - parameter_count(&config, 1);
    let image = (LATENT / config.patch_size).pow(2) as f64;
    let text = config.max_token_length as f64;
    let blocks = seed_blocks(&config);
    println!(
        "\nseed DiT blocks, {} tokens, bf16 compute (f32 master weights), Autodiff<Flex>, batch {BATCH}",
        image + text
    );
    println!(
        "| checkpointing | held, depth 2 (MiB) | held, depth 4 (MiB) | per block per sample (MiB) | seed step at batch 16 (GiB, estimate) |"
    );
    println!("|---|---|---|---|---|");
    for strategy in ["none", "balanced"] {
        let [shallow, deep] = [2, 4].map(|depth| {
            let [held] = child(&format!("blocks {strategy} {depth}"));
            held
        });
        let weights_bf16 = (2 * block_parameters) as f64 / MIB;
        let per_block_sample = ((deep - shallow) / 2.0 - weights_bf16) / BATCH as f64;
        let state = 22.0 * parameters as f64 / GIB;
        let activations = SEED_BATCH * blocks * per_block_sample * MIB / GIB;
        println!(
            "| {strategy} | {shallow:.0} | {deep:.0} | {per_block_sample:.1} | {:.1} ({state:.1} state + {activations:.1} activations) |",
            state + activations
        );
    }
}

fn passes_table() {
    let config = SingleStreamDiTConfig::seed_default();
    let state = 22.0 * parameter_count(&config, config.depth) as f64 / GIB;
    // A block's input, kept for its re-run: 912 tokens × 768 in bf16.
    let image = (LATENT / config.patch_size).pow(2);
    let input = ((image + config.max_token_length) * config.hidden_size * 2) as f64 / MIB;
    println!(
        "\nseed DiT training passes (forward, loss, backward) at depth {PASS_DEPTH}, bf16 compute (f32 master weights), Autodiff<Flex>"
    );
    println!(
        "| activations | peak, batch {BATCH} (MiB) | peak, batch {} (MiB) | per sample at the peak (MiB) | pass s, batch {BATCH} / {} |",
        2 * BATCH,
        2 * BATCH
    );
    println!("|---|---|---|---|---|");
    let mut recomputed_per_sample = 0.0;
    for checkpointing in ["kept", "blocks"] {
        let [[small, small_s], [large, large_s]] =
            [BATCH, 2 * BATCH].map(|batch| child(&format!("pass {checkpointing} {batch}")));
        // Weights and gradients do not grow with the batch: the difference
        // is what a sample holds at the peak.
        let per_sample = (large - small) / BATCH as f64;
        if checkpointing == "blocks" {
            recomputed_per_sample = per_sample;
        }
        println!(
            "| {checkpointing} | {small:.0} | {large:.0} | {per_sample:.1} | {small_s:.0} / {large_s:.0} |"
        );
    }
    // With blocks recomputed one graph is built at a time: the seed's 14
    // more blocks add only their inputs.
    let activations =
        SEED_BATCH * (recomputed_per_sample + (config.depth - PASS_DEPTH) as f64 * input) / 1024.0;
    println!(
        "seed step at batch 16, blocks recomputed (estimate): {:.1} GiB ({state:.1} state + {activations:.1} activations)",
        state + activations
    );
}

/// The seed's 16 fusion blocks and its refiners (2 over the image tokens,
/// 2 over the caption), counted as blocks scaled by their tokens.
fn seed_blocks(config: &SingleStreamDiTConfig) -> f64 {
    let image = (LATENT / config.patch_size).pow(2) as f64;
    let text = config.max_token_length as f64;
    config.depth as f64 + 2.0 * image / (image + text) + 2.0 * text / (image + text)
}

fn parameter_count(config: &SingleStreamDiTConfig, depth: usize) -> usize {
    config
        .clone()
        .with_depth(depth)
        .init::<Flex>(&Default::default())
        .unwrap()
        .parameter_count()
}

/// The numbers a child process prints for `case`.
fn child<const N: usize>(case: &str) -> [f64; N] {
    let output = Command::new(std::env::current_exe().expect("own path"))
        .env(CASE_VAR, case)
        .env("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072")
        .output()
        .expect("runs itself");
    assert!(output.status.success(), "case {case} failed");
    let numbers: Vec<f64> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(|n| n.parse().expect("a number"))
        .collect();
    numbers.try_into().expect("as many numbers as asked")
}

/// MiB held after [`ATTENTION_LAYERS`] chained attentions, and the
/// backward's milliseconds.
fn attention_held(checkpointing: Checkpointing, recomputed: bool, dtype: DType) -> (f64, f64) {
    match checkpointing {
        Checkpointing::None => attention_held_by::<NoCheckpointing>(recomputed, dtype),
        Checkpointing::Balanced => attention_held_by::<BalancedCheckpointing>(recomputed, dtype),
    }
}

fn attention_held_by<C: CheckpointStrategy>(recomputed: bool, dtype: DType) -> (f64, f64) {
    let device = Default::default();
    let tokens = (LATENT / 2).pow(2) + 128;
    let input = |mean: f64| {
        let normal = Distribution::Normal(mean, 1.0);
        let t = Tensor::<Flex, 4>::random([BATCH, HEADS, tokens, HEAD_DIM], normal, &device);
        Tensor::<Graph<C>, 4>::from_inner(t.cast(dtype)).require_grad()
    };
    let [q, k, mut v] = [0.0, 0.1, 0.2].map(input);
    let before = resident_mib();
    for _ in 0..ATTENTION_LAYERS {
        v = if recomputed {
            attention_recomputed(q.clone(), k.clone(), v)
        } else {
            let options = AttentionModuleOptions::default();
            module::attention(q.clone(), k.clone(), v, None, None, options)
        };
    }
    let loss = v.sum();
    let held = resident_mib() - before;
    let started = Instant::now();
    let grads = loss.backward();
    let backward = started.elapsed().as_secs_f64() * 1e3;
    assert!(q.grad(&grads).is_some(), "q is tracked");
    (held, backward)
}

/// MiB held after one mixed-precision forward of the seed-width DiT at
/// `depth`, the graph alive.
fn blocks_held(checkpointing: Checkpointing, depth: usize) -> f64 {
    match checkpointing {
        Checkpointing::None => blocks_held_by::<NoCheckpointing>(depth),
        Checkpointing::Balanced => blocks_held_by::<BalancedCheckpointing>(depth),
    }
}

fn blocks_held_by<C: CheckpointStrategy>(depth: usize) -> f64 {
    let device = Default::default();
    let config = SingleStreamDiTConfig::seed_default().with_depth(depth);
    let model = config.init::<Graph<C>>(&device).unwrap();
    let normal = Distribution::Normal(0.0, 1.0);
    let x =
        Tensor::<Graph<C>, 4>::random([BATCH, config.in_channels, LATENT, LATENT], normal, &device);
    let t = Tensor::<Graph<C>, 1>::random([BATCH], Distribution::Uniform(0.0, 1.0), &device);
    let text = Tensor::<Graph<C>, 3>::random(
        [BATCH, config.max_token_length, config.text_embed_dim],
        normal,
        &device,
    );
    let before = resident_mib();
    let velocity = model.with_dtype(DType::BF16).forward(x, t, text);
    let held = resident_mib() - before;
    assert_eq!(velocity.dims()[0], BATCH);
    held
}

/// The peak growth of the resident set over one training pass of the
/// seed-width DiT at [`PASS_DEPTH`] on `batch` samples (MiB), and the
/// pass's seconds.
fn pass_peak(checkpointing: ActivationCheckpointing, batch: usize) -> (f64, f64) {
    type G = Graph<NoCheckpointing>;
    let device = Default::default();
    let config = SingleStreamDiTConfig::seed_default().with_depth(PASS_DEPTH);
    let model: SingleStreamDiT<G> = config.init_seeded(&device, 0).unwrap();
    let normal = Distribution::Normal(0.0, 1.0);
    let x = Tensor::<G, 4>::random([batch, config.in_channels, LATENT, LATENT], normal, &device);
    let t = Tensor::<G, 1>::random([batch], Distribution::Uniform(0.0, 1.0), &device);
    let text = Tensor::<G, 3>::random(
        [batch, config.max_token_length, config.text_embed_dim],
        normal,
        &device,
    );
    let pass = TrainingPass {
        dtype: DType::BF16,
        dropout_seed: 0,
        checkpointing,
    };
    // Linux resets the peak (`VmHWM`) to the current resident set.
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak resident set");
    let before = resident_mib();
    let started = Instant::now();
    let grads = model
        .loss_gradients((x, t, text), pass, |v| {
            Ok::<_, ssdit_model::Error>(v.powi_scalar(2).mean())
        })
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(!grads.is_empty(), "the pass has gradients");
    (status_mib("VmHWM:") - before, seconds)
}

/// This process's resident set (`VmRSS`), in MiB.
fn resident_mib() -> f64 {
    status_mib("VmRSS:")
}

/// A size from `/proc/self/status`, in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    kib / 1024.0
}
