//! Logging set-up, for binaries' `main` only.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs a `tracing` subscriber writing to stderr, filtered by `RUST_LOG`
/// (as read by the caller and passed in) or `default_filter`. Colours are
/// used only on a terminal, so that logs sent to files and collectors hold
/// no escape codes. A `RUST_LOG` that does not parse is logged as a warning,
/// and `default_filter` is used.
pub fn init(rust_log: Option<&str>, default_filter: &str) {
    let (filter, refused) = log_filter(rust_log, default_filter);
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init()
        .is_ok();
    if let (true, Some(reason)) = (installed, refused) {
        tracing::warn!("RUST_LOG is not a log filter ({reason}); logging at {default_filter:?}");
    }
}

/// The filter `rust_log` names, or `default_filter` with the reason
/// `rust_log` was refused.
fn log_filter(rust_log: Option<&str>, default_filter: &str) -> (EnvFilter, Option<String>) {
    match rust_log.map(EnvFilter::try_new) {
        Some(Ok(filter)) => (filter, None),
        Some(Err(error)) => (EnvFilter::new(default_filter), Some(error.to_string())),
        None => (EnvFilter::new(default_filter), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_rust_log_falls_back_with_its_reason() {
        let (filter, refused) = log_filter(Some("trainer=loud"), "info");
        assert_eq!(filter.to_string(), "info");
        assert!(refused.is_some_and(|reason| !reason.is_empty()));
        let (filter, refused) = log_filter(Some("ssdit_train=debug"), "info");
        assert_eq!(
            (filter.to_string(), refused),
            ("ssdit_train=debug".into(), None)
        );
        let (filter, refused) = log_filter(None, "warn");
        assert_eq!((filter.to_string(), refused), ("warn".into(), None));
    }
}
