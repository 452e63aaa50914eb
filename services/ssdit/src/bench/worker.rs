//! Our side of `bench dit`, in its own process: times the forward pass, one
//! training step and a whole Euler+CFG sample, then prints a [`Measurement`]
//! as JSON. Takes the same flags as the twin's `bench/reference/bench_worker.py`.

use std::ops::ControlFlow;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::prelude::*;
use burn::tensor::{DType, Distribution};
use clap::{Args, ValueEnum};
use ssdit_core::config::GradientCheckpointing;
use ssdit_flow::{Loss, Sampler, SamplerConfig, interpolate, velocity_target};
use ssdit_model::{SingleStreamDiT, SingleStreamDiTConfig, TrainingPass};
use ssdit_optim::{AdamWConfig, clip_grad_norm};
use ssdit_train::activation_checkpointing;

use super::report::{Measurement, peak_rss_kib};

/// The gradient-norm clip of the seed's training loop.
const CLIP: f64 = 1.0;
/// The seed's AdamW weight decay.
const WEIGHT_DECAY: f64 = 0.05;

/// Floating-point format of the model and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    F32,
    /// bfloat16 mixed precision, GPU only: f32 weights cast to bf16 for
    /// the forward, as the trainer and the sampler do (autocast in the twin).
    Bf16,
}

impl Dtype {
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        }
    }

    /// What the model computes in.
    fn compute(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::Bf16 => DType::BF16,
        }
    }
}

/// One side's benchmark: the model sizes, the batch and what to time.
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    #[arg(long)]
    pub hidden: usize,
    #[arg(long)]
    pub heads: usize,
    #[arg(long)]
    pub depth: usize,
    #[arg(long)]
    pub refiner_depth: usize,
    #[arg(long)]
    pub text_dim: usize,
    /// Caption tokens per sample (also the model's `max_token_length`).
    #[arg(long)]
    pub text_tokens: usize,
    /// Latent side (the token grid is `latent / 2` per side).
    #[arg(long)]
    pub latent: usize,
    #[arg(long)]
    pub batch: usize,
    #[arg(long, default_value_t = 0.05)]
    pub dropout: f64,
    /// Threads this process computes with (recorded; the parent sets the
    /// thread-pool environment variables before starting the worker).
    #[arg(long)]
    pub threads: usize,
    /// `cpu`, or `cuda` in a build with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// Timed forward passes and training steps (after one warm-up each).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Timed whole samples (after a 2-step warm-up).
    #[arg(long, default_value_t = 2)]
    pub sample_iters: usize,
    /// Euler steps per sample.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Classifier-free guidance scale.
    #[arg(long, default_value_t = 3.0)]
    pub cfg: f64,
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// Comma-separated phases to skip: forward, train, sample.
    #[arg(long, default_value = "")]
    pub skip: String,
    /// Gradient checkpointing of our training step, as
    /// `train.gradient_checkpointing`: off, blocks (each block run again in
    /// the backward pass) or operations (burn's balanced
    /// checkpointing). Ours only: not in [`Self::to_flags`].
    #[arg(long, default_value_t = GradientCheckpointing::Off)]
    pub checkpointing: GradientCheckpointing,
}

impl WorkerArgs {
    /// The same arguments as command-line flags, for either worker.
    pub fn to_flags(&self) -> Vec<String> {
        let pairs: [(&str, String); 17] = [
            ("--hidden", self.hidden.to_string()),
            ("--heads", self.heads.to_string()),
            ("--depth", self.depth.to_string()),
            ("--refiner-depth", self.refiner_depth.to_string()),
            ("--text-dim", self.text_dim.to_string()),
            ("--text-tokens", self.text_tokens.to_string()),
            ("--latent", self.latent.to_string()),
            ("--batch", self.batch.to_string()),
            ("--dropout", self.dropout.to_string()),
            ("--threads", self.threads.to_string()),
            ("--device", self.device.clone()),
            ("--dtype", self.dtype.name().to_string()),
            ("--iters", self.iters.to_string()),
            ("--sample-iters", self.sample_iters.to_string()),
            ("--steps", self.steps.to_string()),
            ("--cfg", self.cfg.to_string()),
            ("--lr", self.lr.to_string()),
        ];
        let mut flags: Vec<String> = pairs
            .into_iter()
            .flat_map(|(flag, value)| [flag.to_string(), value])
            .collect();
        if !self.skip.is_empty() {
            flags.extend(["--skip".to_string(), self.skip.clone()]);
        }
        flags
    }

    /// The DiT these arguments describe.
    pub fn model_config(&self) -> SingleStreamDiTConfig {
        SingleStreamDiTConfig::new()
            .with_hidden_size(self.hidden)
            .with_num_heads(self.heads)
            .with_depth(self.depth)
            .with_refiner_depth(self.refiner_depth)
            .with_text_embed_dim(self.text_dim)
            .with_max_token_length(self.text_tokens)
            .with_dropout(self.dropout)
    }

    fn skips(&self, phase: &str) -> bool {
        self.skip.split(',').any(|p| p.trim() == phase)
    }
}

pub fn run(args: WorkerArgs) -> anyhow::Result<std::process::ExitCode> {
    let measurement = match (args.device.as_str(), args.dtype) {
        ("cpu", Dtype::F32) => {
            measure::<burn::backend::NdArray<f32>>(&args, Default::default(), DType::F32)?
        }
        ("cpu", Dtype::Bf16) => bail!("bf16 runs on a GPU only; use --dtype f32 on the cpu"),
        ("cuda", dtype) => cuda::measure(&args, dtype.compute())?,
        (other, _) => bail!("unknown device {other:?}: expected cpu or cuda"),
    };
    println!("{}", serde_json::to_string(&measurement)?);
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(feature = "cuda")]
mod cuda {
    use burn::backend::Cuda;
    use burn::tensor::DType;
    use ssdit_core::backend::DeviceSpec;

    use super::{Measurement, WorkerArgs};

    pub fn measure(args: &WorkerArgs, dtype: DType) -> anyhow::Result<Measurement> {
        super::measure::<Cuda<f32>>(args, DeviceSpec::Cuda(0).device()?, dtype)
    }
}

#[cfg(not(feature = "cuda"))]
mod cuda {
    use burn::tensor::DType;

    use super::{Measurement, WorkerArgs};

    pub fn measure(_args: &WorkerArgs, _dtype: DType) -> anyhow::Result<Measurement> {
        anyhow::bail!(
            "this ssdit was built without the `cuda` feature; rebuild with --features cuda"
        )
    }
}

/// The batch every phase runs on.
struct Inputs<B: Backend> {
    x1: Tensor<B, 4>,
    noise: Tensor<B, 4>,
    t: Tensor<B, 1>,
    text: Tensor<B, 3>,
}

impl<B: Backend> Inputs<B> {
    fn random(args: &WorkerArgs, channels: usize, device: &Device<B>) -> Self {
        let normal = Distribution::Normal(0.0, 1.0);
        let latent = [args.batch, channels, args.latent, args.latent];
        Self {
            x1: Tensor::random(latent, normal, device),
            noise: Tensor::random(latent, normal, device),
            t: Tensor::random([args.batch], Distribution::Uniform(0.0, 1.0), device),
            text: Tensor::random(
                [args.batch, args.text_tokens, args.text_dim],
                normal,
                device,
            ),
        }
    }
}

/// The timed runs of one phase.
struct Phase {
    /// Milliseconds of each run.
    ms: Vec<f64>,
    /// The GPU's memory in use, highest after any run (`None` on the CPU).
    gpu_bytes: Option<u64>,
}

/// `iters` timed runs of `run(false)` after one warm-up run, `run(true)`;
/// each run ends with the device synchronised and its memory read.
fn timed<B: Backend>(
    device: &Device<B>,
    iters: usize,
    mut run: impl FnMut(bool) -> anyhow::Result<()>,
) -> anyhow::Result<Phase> {
    run(true)?;
    B::sync(device).context("synchronising the device")?;
    let mut gpu_bytes = ssdit_core::gpu_memory_in_use::<B>(device);
    let ms = (0..iters)
        .map(|_| {
            let start = Instant::now();
            run(false)?;
            B::sync(device).context("synchronising the device")?;
            let elapsed = start.elapsed().as_secs_f64() * 1e3;
            gpu_bytes = gpu_bytes.max(ssdit_core::gpu_memory_in_use::<B>(device));
            Ok(elapsed)
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Phase { ms, gpu_bytes })
}

/// Every phase not skipped, with the model computing in `dtype`.
fn measure<B: Backend>(
    args: &WorkerArgs,
    device: Device<B>,
    dtype: DType,
) -> anyhow::Result<Measurement> {
    let config = args.model_config();
    let mut measurement = Measurement {
        side: "ssdit".into(),
        runtime: runtime::<B>(args, &device),
        device: args.device.clone(),
        forward_ms: Vec::new(),
        train_ms: Vec::new(),
        sample_ms: Vec::new(),
        peak_rss_kib: 0,
        gpu_peak_bytes: None,
    };
    let mut gpu_peak_bytes = None;
    let mut record = |phase: Phase| {
        gpu_peak_bytes = gpu_peak_bytes.max(phase.gpu_bytes);
        phase.ms
    };
    if !args.skips("forward") {
        measurement.forward_ms = record(time_forward::<B>(args, &config, &device, dtype)?);
    }
    if !args.skips("train") {
        measurement.train_ms = record(if args.checkpointing == GradientCheckpointing::Operations {
            time_train_step::<Autodiff<B, BalancedCheckpointing>>(args, &config, &device, dtype)?
        } else {
            time_train_step::<Autodiff<B>>(args, &config, &device, dtype)?
        });
    }
    if !args.skips("sample") {
        measurement.sample_ms = record(time_sampling::<B>(args, &config, &device, dtype)?);
    }
    measurement.gpu_peak_bytes = gpu_peak_bytes;
    measurement.peak_rss_kib = peak_rss_kib();
    Ok(measurement)
}

fn runtime<B: Backend>(args: &WorkerArgs, device: &Device<B>) -> String {
    let pools = ["RAYON_NUM_THREADS", "OPENBLAS_NUM_THREADS"]
        .iter()
        .filter_map(|var| Some(format!("{var}={}", std::env::var(var).ok()?)))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "burn 0.21 {}{}, {} threads{}",
        B::name(device),
        match args.checkpointing {
            GradientCheckpointing::Off => "",
            GradientCheckpointing::Blocks => ", blocks recomputed",
            GradientCheckpointing::Operations => ", balanced checkpointing",
        },
        args.threads,
        if pools.is_empty() {
            String::new()
        } else {
            format!(" ({pools})")
        }
    )
}

fn model<B: Backend>(
    config: &SingleStreamDiTConfig,
    device: &Device<B>,
) -> anyhow::Result<SingleStreamDiT<B>> {
    config
        .init_seeded(device, 0)
        .context("building the benchmark model")
}

fn time_forward<B: Backend>(
    args: &WorkerArgs,
    config: &SingleStreamDiTConfig,
    device: &Device<B>,
    dtype: DType,
) -> anyhow::Result<Phase> {
    let model = model::<B>(config, device)?.with_dtype(dtype);
    let inputs = Inputs::<B>::random(args, config.in_channels, device);
    timed::<B>(device, args.iters, |_| {
        model.try_forward(inputs.x1.clone(), inputs.t.clone(), inputs.text.clone())?;
        Ok(())
    })
}

/// Forward (in `dtype`), MSE against the velocity target, backward, global
/// clip, AdamW on the f32 weights: the trainer's step on one micro-batch.
fn time_train_step<AB: burn::tensor::backend::AutodiffBackend>(
    args: &WorkerArgs,
    config: &SingleStreamDiTConfig,
    device: &Device<AB>,
    dtype: DType,
) -> anyhow::Result<Phase> {
    let mut model = Some(model::<AB>(config, device)?);
    let inputs = Inputs::<AB>::random(args, config.in_channels, device);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(WEIGHT_DECAY)
        .init::<AB>()?;
    let pass = |step: u64| TrainingPass {
        dtype,
        dropout_seed: step,
        checkpointing: activation_checkpointing(args.checkpointing),
    };
    let mut step = 0;
    // The warm-up step also allocates the optimizer state, as the twin's does.
    timed::<AB>(device, args.iters, |_| {
        let current = model
            .take()
            .context("the model was lost in a failed step")?;
        let x_t = interpolate(inputs.noise.clone(), inputs.x1.clone(), inputs.t.clone());
        let target = velocity_target(inputs.noise.clone(), inputs.x1.clone());
        let mut grads = current.loss_gradients(
            (x_t, inputs.t.clone(), inputs.text.clone()),
            pass(step),
            |prediction| -> anyhow::Result<_> { Ok(Loss::Mse.compute(prediction, target)) },
        )?;
        step += 1;
        clip_grad_norm(&current, &mut grads, CLIP)?;
        model = Some(optim.step(args.lr, current, grads)?);
        Ok(())
    })
}

fn time_sampling<B: Backend>(
    args: &WorkerArgs,
    config: &SingleStreamDiTConfig,
    device: &Device<B>,
    dtype: DType,
) -> anyhow::Result<Phase> {
    let model = model::<B>(config, device)?.with_dtype(dtype);
    let inputs = Inputs::<B>::random(args, config.in_channels, device);
    let cond = inputs.text.narrow(0, 0, 1); // [1, L, D]
    let noise = Tensor::<B, 4>::random(
        [1, config.in_channels, args.latent, args.latent],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let velocity = |x, t, text| model.forward(x, t, text);
    let sample = |steps: usize| -> anyhow::Result<()> {
        let sampler = Sampler::new(&SamplerConfig::new().with_steps(steps).with_cfg(args.cfg))?;
        let guidance = sampler.guidance(cond.clone())?;
        sampler.sample(&velocity, noise.clone(), &guidance, |_| {
            ControlFlow::Continue(())
        })?;
        Ok(())
    };
    timed::<B>(device, args.sample_iters, |warmup| {
        sample(if warmup { 2 } else { args.steps })
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: WorkerArgs,
    }

    fn tiny() -> WorkerArgs {
        WorkerArgs {
            hidden: 32,
            heads: 2,
            depth: 1,
            refiner_depth: 1,
            text_dim: 8,
            text_tokens: 3,
            latent: 4,
            batch: 2,
            dropout: 0.05,
            threads: 1,
            device: "cpu".into(),
            dtype: Dtype::F32,
            iters: 2,
            sample_iters: 1,
            steps: 3,
            cfg: 3.0,
            lr: 2e-4,
            skip: String::new(),
            checkpointing: GradientCheckpointing::Off,
        }
    }

    #[test]
    fn flags_round_trip_through_the_parser() {
        let args = WorkerArgs {
            skip: "sample".into(),
            ..tiny()
        };
        let flags = args.to_flags();
        let parsed = Cli::parse_from(std::iter::once("worker".to_string()).chain(flags)).args;
        assert_eq!(parsed.to_flags(), args.to_flags());
        assert!(parsed.skips("sample") && !parsed.skips("train"));
    }

    #[test]
    fn measures_every_phase_of_a_tiny_model_in_full_and_mixed_precision() {
        // f64 stands in for bf16 on the CPU: the phases' mixed-precision path.
        for dtype in [DType::F32, DType::F64] {
            let m =
                measure::<burn::backend::NdArray<f32>>(&tiny(), Default::default(), dtype).unwrap();
            assert_eq!(
                (m.forward_ms.len(), m.train_ms.len(), m.sample_ms.len()),
                (2, 2, 1)
            );
            assert!(m.forward_ms.iter().chain(&m.train_ms).all(|ms| *ms > 0.0));
            assert!(m.peak_rss_kib > 0);
        }
    }

    #[test]
    fn measures_a_checkpointed_training_step() {
        for (checkpointing, label) in [
            (GradientCheckpointing::Blocks, "blocks recomputed"),
            (GradientCheckpointing::Operations, "balanced checkpointing"),
        ] {
            let args = WorkerArgs {
                checkpointing,
                skip: "forward,sample".into(),
                ..tiny()
            };
            let m = measure::<burn::backend::NdArray<f32>>(&args, Default::default(), DType::F32)
                .unwrap();
            assert_eq!((m.forward_ms.len(), m.train_ms.len()), (0, 2));
            assert!(m.runtime.contains(label), "{}", m.runtime);
        }
    }

    #[test]
    fn bad_devices_are_errors() {
        let err = run(WorkerArgs {
            device: "tpu".into(),
            ..tiny()
        })
        .unwrap_err();
        assert!(err.to_string().contains("unknown device"), "{err}");
        let err = run(WorkerArgs {
            dtype: Dtype::Bf16,
            ..tiny()
        })
        .unwrap_err();
        assert!(err.to_string().contains("GPU only"), "{err}");
    }
}
