//! The `ssdit` binary as the CLI tests run it.

use std::path::Path;
use std::process::{Command, Output};

/// `ssdit`, without the SSDIT_* overrides of the test's environment.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ssdit"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SSDIT_") {
            command.env_remove(key);
        }
    }
    command
}

/// Runs `ssdit ARGS --config CONFIG`.
pub fn ssdit(config: &Path, args: &[&str]) -> Output {
    command()
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}
