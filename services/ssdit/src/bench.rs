//! `ssdit bench`: speed and memory of our DiT against its PyTorch twin
//! (`bench/reference/`), and the pipeline's per-message bus + store overhead.
//!
//! - `ssdit bench dit`: runs our model and the twin, each in its own process
//!   with the same sizes, batch, device and thread count, and prints one table
//!   (forward, training step, 50-step Euler+CFG sampling, peak memory, ratio);
//! - `ssdit bench pipeline`: messages per second through the event bus and the
//!   object store with no model compute (in-process bus and NATS).
//!
//! See `docs/benchmarks.md` for the recorded numbers and how they were taken.

mod dit;
mod pipeline;
mod report;
mod worker;

use std::process::ExitCode;

use clap::{Args, Subcommand};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Our DiT against the PyTorch twin: forward, training step, sampling, memory.
    Dit(dit::DitArgs),
    /// One side of `bench dit` in this process (what `bench dit` spawns); prints JSON.
    #[command(hide = true)]
    DitWorker(worker::WorkerArgs),
    /// Bus + object-store overhead per sample through ingest → encoders → trainer, compute excluded.
    Pipeline(pipeline::PipelineArgs),
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        BenchCommand::Dit(args) => dit::run(args),
        BenchCommand::DitWorker(args) => worker::run(args),
        BenchCommand::Pipeline(args) => pipeline::run(args),
    }
}
