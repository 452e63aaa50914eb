//! `ssdit bench dit`: our DiT and its PyTorch twin, each timed in its own
//! process with the same sizes, batch, device and thread count, in one table.
//!
//! Threads: our worker gets `RAYON_NUM_THREADS` (burn's ndarray kernels) and
//! `OPENBLAS_NUM_THREADS` (matrix products); the twin gets `OMP_NUM_THREADS`,
//! `MKL_NUM_THREADS` and `torch.set_num_threads`; all set to `--threads`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use ssdit_core::config::GradientCheckpointing;

use super::report::{Measurement, RowLabel, table};
use super::worker::{Dtype, WorkerArgs};

/// The model sizes and batch a benchmark runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// Hidden 384, depth 6 (+2 refiner blocks each), 6 heads, 16×16 tokens
    /// (32×32 latent) + 64 caption tokens 1152 wide, batch 4: the CPU benchmark.
    Small,
    /// The seed's model (hidden 768, 12 heads, depth 16, refiners 2), 28×28
    /// tokens (448² images) + 128 caption tokens, batch 16: the GPU benchmark.
    Seed,
}

impl Preset {
    fn worker_args(self) -> WorkerArgs {
        let (hidden, heads, depth, text_tokens, latent, batch) = match self {
            Self::Small => (384, 6, 6, 64, 32, 4),
            Self::Seed => (768, 12, 16, 128, 56, 16),
        };
        WorkerArgs {
            hidden,
            heads,
            depth,
            refiner_depth: 2,
            text_dim: 1152,
            text_tokens,
            latent,
            batch,
            dropout: 0.05,
            threads: 1,
            device: "cpu".into(),
            dtype: Dtype::F32,
            iters: 3,
            sample_iters: 1,
            steps: 50,
            cfg: 3.0,
            lr: 2e-4,
            skip: String::new(),
            checkpointing: GradientCheckpointing::Off,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Seed => "seed",
        }
    }
}

/// Which sides to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Sides {
    Both,
    Ours,
    Pytorch,
}

#[derive(Args, Debug)]
pub struct DitArgs {
    /// Model sizes and batch.
    #[arg(long, value_enum, default_value_t = Preset::Small)]
    config: Preset,
    /// `cpu`, or `cuda` (our side needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Number format; bf16 on a GPU only (ours: f32 weights cast to bf16 for
    /// the forward, as the trainer does; the twin: bf16 autocast).
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    dtype: Dtype,
    /// Compute threads of each side (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Override the preset's batch.
    #[arg(long)]
    batch: Option<usize>,
    /// Timed forward passes and training steps per side (after one warm-up).
    #[arg(long, default_value_t = 3)]
    iters: usize,
    /// Timed whole 50-step samples per side (after a 2-step warm-up).
    #[arg(long, default_value_t = 1)]
    sample_iters: usize,
    /// Euler steps per sample.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Comma-separated phases to skip: forward, train, sample.
    #[arg(long, default_value = "")]
    skip: String,
    /// Which sides to run.
    #[arg(long, value_enum, default_value_t = Sides::Both)]
    sides: Sides,
    /// Gradient checkpointing of our training step: off, blocks (each block
    /// run again in the backward pass) or operations (burn's balanced
    /// checkpointing); the twin trains without. Compare with a run without
    /// it for the trade-off.
    #[arg(long, default_value_t = GradientCheckpointing::Off)]
    checkpointing: GradientCheckpointing,
    /// The Python interpreter with torch and safetensors installed.
    #[arg(long, env = "SSDIT_BENCH_PYTHON", default_value = "python3")]
    python: PathBuf,
    /// The twin's worker script.
    #[arg(long, default_value = "bench/reference/bench_worker.py")]
    twin: PathBuf,
    /// Also write both sides' raw timings here, as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: DitArgs) -> anyhow::Result<ExitCode> {
    let threads = match args.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut worker = args.config.worker_args();
    worker.threads = threads;
    worker.device = args.device.clone();
    worker.dtype = args.dtype;
    worker.iters = args.iters;
    worker.sample_iters = args.sample_iters;
    worker.steps = args.steps;
    worker.skip = args.skip.clone();
    worker.checkpointing = args.checkpointing;
    if let Some(batch) = args.batch {
        worker.batch = batch;
    }
    if args.sides != Sides::Ours && !args.twin.is_file() {
        bail!(
            "the twin's worker {} is not there; run from the repository root or pass --twin",
            args.twin.display()
        );
    }

    println!("{}", machine_line(&args.device, threads));
    let started = Instant::now();
    let mut sides = Vec::new();
    if args.sides != Sides::Pytorch {
        sides.push(run_ours(&worker)?);
    }
    if args.sides != Sides::Ours {
        sides.push(run_twin(&args.python, &args.twin, &worker)?);
    }
    let tokens = (worker.latent / 2).pow(2);
    let label = RowLabel {
        config: format!("{} {}", args.config.name(), worker.dtype.name()),
        batch: worker.batch,
        tokens: format!("{tokens}+{}", worker.text_tokens),
    };
    println!("{}", table(&label, &sides));
    println!(
        "{} after {:.0} s; sampling: 1 image, {} Euler steps, CFG {} (both branches in one forward of batch 2)",
        load_line(),
        started.elapsed().as_secs_f64(),
        worker.steps,
        worker.cfg
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&sides)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The machine, device and load, for the table's header.
fn machine_line(device: &str, threads: usize) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "machine: {cpu}, {cores} cores; device {device}; {threads} threads per side; {}",
        load_line()
    )
}

fn load_line() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("load average {}", fields.join(" "))
}

/// The thread-pool variables every worker gets.
fn thread_env(command: &mut Command, threads: usize) {
    let n = threads.to_string();
    for var in [
        "RAYON_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
    ] {
        command.env(var, &n);
    }
}

fn run_ours(worker: &WorkerArgs) -> anyhow::Result<Measurement> {
    let exe = std::env::current_exe().context("locating the ssdit executable")?;
    let mut command = Command::new(exe);
    command
        .args(["bench", "dit-worker"])
        .args(worker.to_flags());
    command.arg(format!("--checkpointing={}", worker.checkpointing));
    thread_env(&mut command, worker.threads);
    collect("ssdit", command)
}

fn run_twin(python: &Path, script: &Path, worker: &WorkerArgs) -> anyhow::Result<Measurement> {
    let mut command = Command::new(python);
    command.arg(script).args(worker.to_flags());
    thread_env(&mut command, worker.threads);
    collect("pytorch", command)
}

/// Runs a worker to completion and reads the JSON on its last stdout line;
/// its stderr goes to ours.
fn collect(side: &str, mut command: Command) -> anyhow::Result<Measurement> {
    eprintln!("bench: running the {side} worker: {command:?}");
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting the {side} worker {command:?}"))?;
    if !output.status.success() {
        bail!("the {side} worker failed ({})", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .with_context(|| format!("the {side} worker printed nothing"))?;
    serde_json::from_str(last)
        .with_context(|| format!("reading the {side} worker's result line {last:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_documented_sizes() {
        let small = Preset::Small.worker_args();
        assert_eq!(
            (
                small.hidden,
                small.depth,
                small.heads,
                small.latent / 2,
                small.batch
            ),
            (384, 6, 6, 16, 4)
        );
        let seed = Preset::Seed.worker_args();
        assert_eq!(
            (
                seed.hidden,
                seed.depth,
                seed.latent / 2,
                seed.text_tokens,
                seed.batch
            ),
            (768, 16, 28, 128, 16)
        );
        small.model_config().validate().unwrap();
        seed.model_config().validate().unwrap();
    }

    #[test]
    fn a_failing_or_silent_worker_is_an_error_naming_the_side() {
        let err = collect("pytorch", Command::new("false")).unwrap_err();
        assert!(err.to_string().contains("pytorch worker failed"), "{err}");
        let err = collect("ssdit", Command::new("true")).unwrap_err();
        assert!(err.to_string().contains("printed nothing"), "{err}");
        let mut echo = Command::new("echo");
        echo.arg("not json");
        let err = collect("ssdit", echo).unwrap_err();
        assert!(format!("{err:#}").contains("result line"), "{err:#}");
    }

    #[test]
    fn machine_line_names_the_device_and_threads() {
        let line = machine_line("cpu", 2);
        assert!(line.contains("device cpu; 2 threads per side"), "{line}");
        assert!(line.contains("load average"), "{line}");
    }
}
