//! `ssdit generate "prompt" -o out.png`: one image from a running sampler.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use ssdit_proto::v1::sampler_service_client::SamplerServiceClient;
use ssdit_proto::v1::{GenerateRequest, Sampler, generate_progress};
use ssdit_server::ServiceName;

use crate::client::ClientArgs;

/// Generate one image from a prompt on a running sampler service. Fields left
/// out take the server's defaults (448×448, 50 steps, CFG 3.0, Euler, shift
/// 1.0, a random seed, the newest checkpoint).
#[derive(Args)]
pub struct GenerateArgs {
    /// What to draw.
    prompt: String,
    /// Where to write the PNG.
    #[arg(short, long, default_value = "out.png")]
    output: PathBuf,
    /// What to steer away from (classifier-free guidance's negative branch).
    #[arg(long, default_value = "")]
    negative: String,
    /// Image width in pixels (a multiple of 16).
    #[arg(long)]
    width: Option<u32>,
    /// Image height in pixels (a multiple of 16).
    #[arg(long)]
    height: Option<u32>,
    /// Sampling steps.
    #[arg(long)]
    steps: Option<u32>,
    /// Classifier-free guidance scale (1 = no guidance).
    #[arg(long)]
    cfg: Option<f32>,
    /// ODE integrator.
    #[arg(long, value_enum)]
    sampler: Option<SamplerChoice>,
    /// Noise seed, for a reproducible image.
    #[arg(long)]
    seed: Option<u64>,
    /// Time shift of the schedule.
    #[arg(long)]
    shift: Option<f32>,
    /// Serve this checkpoint key instead of the newest.
    #[arg(long, value_name = "KEY")]
    checkpoint: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

/// The samplers a request can name.
#[derive(Clone, Copy, ValueEnum)]
enum SamplerChoice {
    Euler,
    Rk4,
}

/// Sends the request, shows the steps as they come, writes the PNG.
pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    check_writable(&args.output)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let channel = args.client.connect(ServiceName::Sampler).await?;
        let mut sampler = SamplerServiceClient::new(channel);
        let request = GenerateRequest {
            prompt: args.prompt.clone(),
            negative_prompt: args.negative.clone(),
            width: args.width,
            height: args.height,
            steps: args.steps,
            cfg: args.cfg,
            sampler: match args.sampler {
                None => Sampler::Unspecified,
                Some(SamplerChoice::Euler) => Sampler::Euler,
                Some(SamplerChoice::Rk4) => Sampler::Rk4,
            } as i32,
            seed: args.seed,
            shift: args.shift,
            checkpoint: args.checkpoint.clone(),
        };
        let mut stream = sampler.generate(request).await?.into_inner();
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} steps {msg}")
                .context("progress bar template")?,
        );
        while let Some(progress) = stream.message().await? {
            match progress.event {
                Some(generate_progress::Event::Step(step)) => {
                    bar.set_length(u64::from(step.total_steps));
                    bar.set_position(u64::from(step.step));
                    bar.set_message(format!("t = {:.3}", step.t));
                }
                Some(generate_progress::Event::Image(image)) => {
                    bar.finish_and_clear();
                    std::fs::write(&args.output, &image.png)
                        .with_context(|| format!("writing {}", args.output.display()))?;
                    if let Some(meta) = image.metadata {
                        println!(
                            "{}: {}×{}, {} steps, cfg {}, seed {}, checkpoint {}, {} ms",
                            args.output.display(),
                            meta.width,
                            meta.height,
                            meta.steps,
                            meta.cfg,
                            meta.seed,
                            meta.checkpoint,
                            meta.elapsed_ms
                        );
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                None => {}
            }
        }
        bail!("the sampler closed the stream without an image")
    })
}

/// Refuses an output path the image could not be written to, before the
/// sampler spends its time on it.
fn check_writable(output: &Path) -> anyhow::Result<()> {
    if output.is_dir() {
        bail!(
            "cannot write the image to {}: it is a folder",
            output.display()
        );
    }
    let folder = output
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !folder.is_dir() {
        bail!(
            "cannot write the image to {}: the folder {} does not exist",
            output.display(),
            folder.display()
        );
    }
    Ok(())
}
