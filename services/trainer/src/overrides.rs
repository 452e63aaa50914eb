//! `RunSpec.config_toml`: training settings as TOML (the keys of the
//! `[train]` section, e.g. `epochs = 10` or `[self_eval]\nenabled = true`),
//! applied over the trainer's configured `[train]` and validated.

use ssdit_core::Config;
use ssdit_core::config::TrainConfig;

use crate::{Error, Result};

/// Largest accepted override text.
pub const MAX_OVERRIDE_BYTES: usize = 64 << 10;

/// `base.train` with the settings of `toml` applied over it, validated
/// (unknown keys and bad values are named).
pub fn apply(base: &Config, toml: &str) -> Result<TrainConfig> {
    let invalid = |reason: String| Error::InvalidArgument {
        field: "config_toml",
        reason,
    };
    if toml.len() > MAX_OVERRIDE_BYTES {
        return Err(invalid(format!(
            "{} bytes, at most {MAX_OVERRIDE_BYTES}",
            toml.len()
        )));
    }
    let overrides: toml::Table = toml
        .parse()
        .map_err(|e| invalid(format!("not TOML: {e}")))?;
    let mut merged = toml::Table::try_from(&base.train).map_err(|e| invalid(e.to_string()))?;
    merge(&mut merged, overrides);
    let train: TrainConfig = toml::Value::Table(merged)
        .try_into()
        .map_err(|e| invalid(format!("{e}").trim().to_string()))?;
    let config = Config {
        train: train.clone(),
        ..base.clone()
    };
    config.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(train)
}

/// Deep merge: tables merge key by key, other values replace.
fn merge(base: &mut toml::Table, overrides: toml::Table) {
    for (key, value) in overrides {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(update)) => merge(inner, update),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_over_the_configured_section() {
        let mut base = Config::default();
        base.train.batch_size = 4;
        let train = apply(&base, "epochs = 3\n[self_eval]\nenabled = true").unwrap();
        assert_eq!((train.epochs, train.batch_size), (3, 4));
        assert!(train.self_eval.enabled);
        assert_eq!(
            train.self_eval.lambda, 0.3,
            "untouched nested keys keep their values"
        );
        assert_eq!(apply(&base, "").unwrap(), base.train);
    }

    #[test]
    fn bad_overrides_name_the_problem() {
        let base = Config::default();
        let err = |t: &str| apply(&base, t).unwrap_err().to_string();
        assert!(err("learning_rat = 1.0").contains("learning_rat"));
        assert!(err("learning_rate = -1.0").contains("train.learning_rate"));
        assert!(err("epochs = \"many\"").contains("epochs"));
        assert!(err("= =").contains("not TOML"));
        assert!(err(&"#".repeat(MAX_OVERRIDE_BYTES + 1)).contains("at most"));
    }
}
