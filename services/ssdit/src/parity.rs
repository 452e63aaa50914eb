//! `ssdit parity KIND DIR`: one line per compared tensor, non-zero exit when
//! any exceeds the fixture folder's tolerance. The models run on this
//! build's backend, so a CUDA build checks its GPU against the references.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use burn::tensor::DType;
use clap::{Args, ValueEnum};
use ssdit_core::backend::{ComputeBackend, DeviceSpec, TrainBackend, backend_name};
use ssdit_core::config::Precision;
use ssdit_parity::Report;

#[derive(Args)]
pub struct ParityArgs {
    /// Which reference to compare with.
    kind: ParityKind,
    /// A fixture folder in the format of shared/fixtures/README.md (the
    /// sampler and train-step folders find the DiT weights at `DIR/../dit/`);
    /// none for `kernels`.
    dir: Option<PathBuf>,
    /// Where the models run: `auto` (this build's device), `cpu`, `cuda`
    /// or `cuda:N` (CUDA builds). The tokenizer has no device.
    #[arg(long, default_value = "auto")]
    device: String,
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
    /// Attention, RMSNorm, SwiGLU, RoPE and the depthwise convolution with
    /// their backward passes at the seed's sizes, in f32 and the build's
    /// half precision, against the CPU kernels in f32 (no folder: seeded
    /// inputs).
    Kernels,
}

pub fn run(args: ParityArgs) -> anyhow::Result<ExitCode> {
    let device = || -> anyhow::Result<_> {
        let device = DeviceSpec::parse(&args.device)
            .and_then(DeviceSpec::device)
            .context("choosing the device for the parity check")?;
        println!("on {} ({device:?})", backend_name());
        Ok(device)
    };
    let dir = || {
        args.dir
            .as_deref()
            .context("this parity check compares with a fixture folder: name it after the kind")
    };
    let report: Report = match args.kind {
        ParityKind::Dit => ssdit_parity::dit::check_on::<ComputeBackend>(dir()?, &device()?),
        ParityKind::Sampler => {
            ssdit_parity::sampler::check_on::<ComputeBackend>(dir()?, &device()?)
        }
        ParityKind::TrainStep => {
            ssdit_parity::train_step::check_on::<TrainBackend>(dir()?, &device()?)
        }
        ParityKind::Vae => ssdit_parity::vae::check_on::<ComputeBackend>(dir()?, &device()?),
        ParityKind::T5gemma2 => {
            ssdit_parity::t5gemma2::check_on::<ComputeBackend>(dir()?, &device()?)
        }
        ParityKind::Tokenizer => ssdit_parity::tokenizer::check(dir()?),
        ParityKind::Kernels => Ok(ssdit_parity::kernels::check_on::<TrainBackend>(
            &device()?,
            &compute_dtypes(),
        )),
    }
    .with_context(|| match &args.dir {
        Some(dir) => format!("running the parity check on {}", dir.display()),
        None => "running the parity check".into(),
    })?;
    println!("{report}");
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// f32, and the half precision this build computes `bf16` in where it has
/// one (CUDA builds).
fn compute_dtypes() -> Vec<DType> {
    let half = Precision::Bf16.compute_dtype();
    if half == DType::F32 {
        vec![DType::F32]
    } else {
        vec![DType::F32, half]
    }
}
