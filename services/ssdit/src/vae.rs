//! `ssdit vae reconstruct IMAGES…`: each image through the VAE and back in
//! f32, with PSNR and SSIM per image and a side-by-side PNG of input,
//! reconstruction and amplified error — the seed's
//! `scripts/debug_vae_pipeline.py`, measured.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use ssdit_inspect::reconstruct::{comparison, load_image, reconstruct};

use crate::dataset::{ToolBackend, ToolConfig, tool_codec};

/// Check the VAE on images.
#[derive(Args)]
pub struct VaeArgs {
    #[command(subcommand)]
    command: VaeCommand,
}

#[derive(Subcommand)]
enum VaeCommand {
    /// Image → VAE → image: PSNR and SSIM per image, side-by-side PNGs.
    Reconstruct(ReconstructArgs),
}

#[derive(Args)]
struct ReconstructArgs {
    /// Image files (any format ingest accepts).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// The VAE: a model directory or hub id, `tiny` or `preview`; default:
    /// the configured `models.vae`.
    #[arg(long, value_name = "SPEC")]
    vae: Option<String>,
    /// Images larger than this (longer side, pixels) are downscaled first.
    #[arg(long, default_value_t = 512)]
    max_side: u32,
    /// The folder the side-by-side PNGs are written to (created if needed).
    #[arg(long, value_name = "DIR", default_value = "reconstructions")]
    out: PathBuf,
    #[command(flatten)]
    config: ToolConfig,
}

/// Runs a vae command.
pub fn run(args: VaeArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        VaeCommand::Reconstruct(args) => reconstruct_images(args),
    }
}

fn reconstruct_images(args: ReconstructArgs) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    let (codec, spec) = tool_codec(&config, args.vae)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let multiple = codec.downsample_factor() as u32;
    let mut failed = 0;
    println!(
        "{:<32} {:>10} {:>9} {:>8}  side by side",
        "image", "size", "PSNR dB", "SSIM"
    );
    for path in &args.images {
        match reconstruct_one(
            codec.as_ref(),
            path,
            args.max_side,
            multiple,
            &args.out,
            &spec,
        ) {
            Ok(line) => println!("{line}"),
            Err(error) => {
                failed += 1;
                eprintln!("{}: {error:#}", path.display());
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{failed} of {} images failed", args.images.len());
        ExitCode::FAILURE
    })
}

/// Reconstructs one image, writes its comparison, returns its table row.
fn reconstruct_one(
    codec: &dyn ssdit_vae::LatentCodec<ToolBackend>,
    path: &Path,
    max_side: u32,
    multiple: u32,
    out: &Path,
    spec: &str,
) -> anyhow::Result<String> {
    let image = load_image(path, max_side, multiple)?;
    let result = reconstruct(codec, &image, &Default::default())?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let stem = path
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.clone());
    let picture = comparison(&name, spec, &result)?;
    let target = out.join(format!("{stem}.reconstruction.png"));
    ssdit_render::save_png(&picture, &target)?;
    let size = format!("{}x{}", image.width(), image.height());
    Ok(format!(
        "{name:<32} {size:>10} {:>9.2} {:>8.4}  {}",
        result.psnr,
        result.ssim,
        target.display()
    ))
}
