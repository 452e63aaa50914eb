//! `ssdit config`: the effective configuration, every key with its value —
//! the configuration reference that cannot drift from the code.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use ssdit_core::Config;

/// Print the effective configuration as TOML: the file's values (or the seed
/// defaults) with the SSDIT_* environment overrides applied, validated.
#[derive(Args)]
pub struct ConfigArgs {
    /// The ssdit configuration file (TOML); without it, the seed defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Loads, validates and prints the configuration.
pub fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = Config::load(args.config.as_deref(), &env).context("loading the configuration")?;
    let text = toml::to_string_pretty(&config).context("printing the configuration")?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
