//! `ssdit`: runs the pipeline end to end on one machine, serves any one
//! service, talks to running services, and checks our models against the
//! reference implementations.

mod bench;
mod captions;
mod client;
mod config;
mod dataset;
mod generate;
mod import;
mod ingest;
mod parity;
mod serve;
mod train;
mod vae;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ssdit — image folders in, a trained Single-Stream DiT out, served over gRPC.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline in this process on a folder of captioned images:
    /// ingest, encode, train, generate over gRPC, contact sheet.
    Run(ssdit::run::RunArgs),
    /// Compare our models with the reference implementations' golden outputs.
    Parity(parity::ParityArgs),
    /// Benchmarks: our DiT against its PyTorch twin; the pipeline's bus + store overhead.
    Bench(bench::BenchArgs),
    /// Serve one service of the pipeline (distributed deployment).
    Serve(serve::ServeArgs),
    /// Start, watch, inspect or stop training runs on a trainer service.
    Train(train::TrainArgs),
    /// Generate an image from a prompt on a sampler service.
    Generate(generate::GenerateArgs),
    /// Print the effective configuration (every key, defaults and overrides applied).
    Config(config::ConfigArgs),
    /// Bring the seed's PyTorch files over: its cached samples, its checkpoints.
    Import(import::ImportArgs),
    /// Inspect a dataset: status, latent statistics, decoded previews, export.
    Dataset(dataset::DatasetArgs),
    /// Check the VAE: reconstruct images, with PSNR and SSIM.
    Vae(vae::VaeArgs),
    /// Send a folder or an object-store prefix to a running captioning-ingest server.
    Ingest(ingest::IngestArgs),
    /// Caption tools on a dataset or a folder: find/replace (dry run first), statistics.
    Captions(captions::CaptionsArgs),
}

fn main() -> ExitCode {
    ssdit_core::openblas::use_best_kernel();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => {
            ssdit::run::execute(args, std::env::vars().collect()).map_err(anyhow::Error::from)
        }
        Command::Parity(args) => parity::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Train(args) => train::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Config(args) => config::run(args),
        Command::Import(args) => import::run(args),
        Command::Dataset(args) => dataset::run(args),
        Command::Vae(args) => vae::run(args),
        Command::Ingest(args) => ingest::run(args),
        Command::Captions(args) => captions::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once: the libraries'
/// errors already end with their cause's message, so that cause is not
/// repeated. A service's gRPC status reads as its message and code.
fn one_line(error: &anyhow::Error) -> String {
    error
        .chain()
        .map(describe)
        .fold(String::new(), |line, cause| {
            if line.is_empty() {
                cause
            } else if line.ends_with(&cause) {
                line
            } else {
                format!("{line}: {cause}")
            }
        })
}

/// One cause: its message, or for a gRPC status the service's message and
/// the code's name (tonic's own text is `code: '…', message: "…"`).
fn describe(cause: &(dyn std::error::Error + 'static)) -> String {
    match cause.downcast_ref::<tonic::Status>() {
        Some(status) => format!("{} ({:?})", status.message(), status.code()),
        None => cause.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_said_once_and_statuses_by_message_and_code() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let repeated = anyhow::Error::new(io).context("fixture f.json: no such file");
        assert_eq!(
            one_line(&repeated.context("checking dit")),
            "checking dit: fixture f.json: no such file"
        );

        let status = tonic::Status::invalid_argument("steps 0 is outside 1..=500");
        assert_eq!(
            one_line(&anyhow::Error::new(status).context("generating")),
            "generating: steps 0 is outside 1..=500 (InvalidArgument)"
        );
    }
}
