//! What attention's autodiff holds from the forward to the backward pass:
//! burn's own attention (decomposed and recorded) against
//! `attention_recomputed`, on burn's Flex CPU backend (the path CUDA's
//! autodiff takes, with CPU memory to measure).
//!
//! The seed's shape: 12 heads of width 64 over 912 tokens (784 image + 128
//! caption), batch 2, four attention layers chained (as blocks do) under
//! `Autodiff<Flex>` without checkpointing and with balanced checkpointing,
//! in f32 and bf16. Each case runs in a process of its own; the figure is
//! the growth of the resident set from before the forward to after it
//! (the graph alive), per layer and per sample, then the backward's time.
//!
//! `cargo bench -p ssdit-kernels --bench attention_memory`

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

const BATCH: usize = 2;
const HEADS: usize = 12;
const TOKENS: usize = 912;
const HEAD_DIM: usize = 64;
const LAYERS: usize = 4;

/// Each case: attention, checkpointing, dtype.
const CASES: [&str; 8] = [
    "burn none f32",
    "recomputed none f32",
    "burn balanced f32",
    "recomputed balanced f32",
    "burn none bf16",
    "recomputed none bf16",
    "burn balanced bf16",
    "recomputed balanced bf16",
];

/// The environment variable naming the case a child process measures.
const CASE_VAR: &str = "SSDIT_ATTENTION_CASE";

fn main() {
    if let Ok(case) = std::env::var(CASE_VAR) {
        return measure_case(&case);
    }
    println!(
        "attention under Autodiff<Flex>: batch {BATCH}, {HEADS} heads × {HEAD_DIM}, {TOKENS} tokens, {LAYERS} layers"
    );
    println!(
        "| attention | checkpointing | dtype | held per layer per sample (MiB) | backward ms |"
    );
    println!("|---|---|---|---|---|");
    for case in CASES {
        let status = Command::new(std::env::current_exe().expect("own path"))
            .env(CASE_VAR, case)
            // A fixed mmap threshold: freed blocks of 128 KiB and more go back
            // to the system at once, so the resident set follows what is alive.
            .env("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072")
            .status()
            .expect("runs itself");
        assert!(status.success(), "case {case} failed");
    }
}

fn measure_case(case: &str) {
    let [attention, checkpointing, dtype]: [&str; 3] = case
        .split(' ')
        .collect::<Vec<_>>()
        .try_into()
        .expect("three words");
    let recomputed = attention == "recomputed";
    let dtype_of = if dtype == "bf16" {
        DType::BF16
    } else {
        DType::F32
    };
    let (held, backward) = match checkpointing {
        "none" => held_by::<NoCheckpointing>(recomputed, dtype_of),
        _ => held_by::<BalancedCheckpointing>(recomputed, dtype_of),
    };
    let per = held / (LAYERS * BATCH) as f64;
    println!("| {attention} | {checkpointing} | {dtype} | {per:.1} | {backward:.0} |");
}

/// MiB the graph holds after the forward of [`LAYERS`] chained attentions,
/// and the backward's milliseconds.
fn held_by<C: CheckpointStrategy>(recomputed: bool, dtype: DType) -> (f64, f64) {
    let device = Default::default();
    let input = |mean: f64| {
        let t = Tensor::<Flex, 4>::random(
            [BATCH, HEADS, TOKENS, HEAD_DIM],
            Distribution::Normal(mean, 1.0),
            &device,
        );
        Tensor::<Autodiff<Flex, C>, 4>::from_inner(t.cast(dtype)).require_grad()
    };
    let [q, k, mut v] = [0.0, 0.1, 0.2].map(input);
    let before = resident_mib();
    for _ in 0..LAYERS {
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
