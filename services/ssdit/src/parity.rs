//! `ssdit parity KIND DIR`: one line per compared tensor, non-zero exit when
//! any exceeds the fixture folder's tolerance.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use ssdit_parity::Report;

#[derive(Args)]
pub struct ParityArgs {
    /// Which reference to compare with.
    kind: ParityKind,
    /// A fixture folder in the format of shared/fixtures/README.md (the
    /// sampler and train-step folders find the DiT weights at `DIR/../dit/`).
    dir: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum ParityKind {
    /// SingleStreamDiTV2 forward (seed PyTorch model).
    Dit,
    /// Euler and RK4 flow-matching sampling with CFG.
    Sampler,
    /// One training step: MSE velocity loss, clipped gradients, AdamW.
    TrainStep,
    /// The FLUX.1 AutoencoderKL encode and decode (diffusers).
    Vae,
    /// The T5Gemma2 encoder (transformers).
    T5gemma2,
    /// The tokenizer (transformers' fast tokenizer, max_length padding).
    Tokenizer,
}

pub fn run(args: ParityArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.dir;
    let report: Report = match args.kind {
        ParityKind::Dit => ssdit_parity::dit::check(dir),
        ParityKind::Sampler => ssdit_parity::sampler::check(dir),
        ParityKind::TrainStep => ssdit_parity::train_step::check(dir),
        ParityKind::Vae => ssdit_parity::vae::check(dir),
        ParityKind::T5gemma2 => ssdit_parity::t5gemma2::check(dir),
        ParityKind::Tokenizer => ssdit_parity::tokenizer::check(dir),
    }
    .with_context(|| format!("running the parity check on {}", dir.display()))?;
    println!("{report}");
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
