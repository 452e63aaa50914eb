//! `ssdit`: runs the pipeline end to end on one machine, serves any one
//! service, talks to running services, and checks our models against the
//! reference implementations.

mod parity;

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
    /// Compare our models with the reference implementations' golden outputs.
    Parity(parity::ParityArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Parity(args) => parity::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
