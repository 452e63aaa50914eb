//! What the DiT's training graph holds per block and per sample on the path
//! CUDA takes, measured on the CPU: the seed's widths and sequence (hidden
//! 768, 12 heads, 28×28 image tokens + 128 caption tokens), f32 master
//! weights cast to bf16 inside the graph (the trainer's mixed precision),
//! on `Autodiff<Flex>` (burn's composite operations, and attention with
//! ssdit-kernels' recomputing backward: this crate's tests and benches turn
//! on its `flex` feature), without and with balanced checkpointing.
//!
//! Each case runs in a process of its own: the resident-set growth over one
//! forward pass at batch 2, with the graph alive, at depth 2 and at depth 4.
//! The difference is two blocks: their activations for two samples plus the
//! bf16 copy of their weights. From it, the estimate of the seed's GPU step
//! at batch 16: f32 weights, gradients, EMA and AdamW moments plus the bf16
//! copy (22 bytes a parameter), and the activations of 16 blocks at 912
//! tokens and the refiners (2 at 784 image tokens, 2 at 128 caption tokens,
//! counted as blocks scaled by their tokens). An estimate for the card, not
//! a GPU measurement: CUDA's allocator pools and fusion differ.
//!
//! `cargo bench -p ssdit-model --bench activation_memory --profile dev`

use std::process::Command;

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::prelude::*;
use burn::tensor::{DType, Distribution};
use burn_flex::Flex;
use ssdit_model::SingleStreamDiTConfig;

const BATCH: usize = 2;
const LATENT: usize = 56;
const SEED_BATCH: f64 = 16.0;
/// The environment variable naming the case a child process measures.
const CASE_VAR: &str = "SSDIT_MEMORY_CASE";

fn main() {
    if let Ok(case) = std::env::var(CASE_VAR) {
        return measure_case(&case);
    }
    let config = SingleStreamDiTConfig::seed_default();
    let parameters = config
        .init::<Flex>(&Default::default())
        .unwrap()
        .parameter_count();
    let tokens = (LATENT / config.patch_size).pow(2) + config.max_token_length;
    println!(
        "seed DiT widths, {tokens} tokens, bf16 compute (f32 master weights), Autodiff<Flex>, batch {BATCH}"
    );
    println!(
        "| checkpointing | held, depth 2 (MiB) | held, depth 4 (MiB) | per block per sample (MiB) | seed step at batch 16 (GiB, estimate) |"
    );
    println!("|---|---|---|---|---|");
    for strategy in ["none", "balanced"] {
        let [shallow, deep] = [2, 4].map(|depth| held_in_child(strategy, depth));
        let block_parameters = block_parameter_count(&config);
        let weights_bf16 = (2 * block_parameters) as f64 / MIB;
        let per_block_sample = ((deep - shallow) / 2.0 - weights_bf16) / BATCH as f64;
        let image = (LATENT / config.patch_size).pow(2) as f64;
        let text = config.max_token_length as f64;
        let full = image + text;
        let blocks = config.depth as f64 + 2.0 * (image / full) + 2.0 * (text / full);
        let state_gib = 22.0 * parameters as f64 / GIB;
        let activations_gib = SEED_BATCH * blocks * per_block_sample * MIB / GIB;
        println!(
            "| {strategy} | {shallow:.0} | {deep:.0} | {per_block_sample:.1} | {:.1} ({state_gib:.1} state + {activations_gib:.1} activations) |",
            state_gib + activations_gib
        );
    }
}

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// Parameters of one visual-fusion block at the seed's widths.
fn block_parameter_count(config: &SingleStreamDiTConfig) -> usize {
    let count = |depth| {
        config
            .clone()
            .with_depth(depth)
            .init::<Flex>(&Default::default())
            .unwrap()
            .parameter_count()
    };
    count(2) - count(1)
}

fn held_in_child(strategy: &str, depth: usize) -> f64 {
    let output = Command::new(std::env::current_exe().expect("own path"))
        .env(CASE_VAR, format!("{strategy} {depth}"))
        // A fixed mmap threshold: freed blocks of 128 KiB and more go back to
        // the system at once, so the resident set follows what is alive.
        .env("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072")
        .output()
        .expect("runs itself");
    assert!(output.status.success(), "case {strategy} {depth} failed");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("the child prints MiB")
}

fn measure_case(case: &str) {
    let (strategy, depth) = case.split_once(' ').expect("strategy depth");
    let depth = depth.parse().expect("a depth");
    let held = match strategy {
        "none" => held_by::<NoCheckpointing>(depth),
        _ => held_by::<BalancedCheckpointing>(depth),
    };
    println!("{held}");
}

/// MiB held after one mixed-precision forward of the seed-width DiT at
/// `depth`, the graph alive.
fn held_by<C: CheckpointStrategy>(depth: usize) -> f64 {
    type B<C> = Autodiff<Flex, C>;
    let device = Default::default();
    let config = SingleStreamDiTConfig::seed_default().with_depth(depth);
    let model = config.init::<B<C>>(&device).unwrap();
    let normal = Distribution::Normal(0.0, 1.0);
    let x = Tensor::<B<C>, 4>::random([BATCH, config.in_channels, LATENT, LATENT], normal, &device);
    let t = Tensor::<B<C>, 1>::random([BATCH], Distribution::Uniform(0.0, 1.0), &device);
    let text = Tensor::<B<C>, 3>::random(
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

/// This process's resident set (`VmRSS`), in MiB.
fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib / 1024.0
}
