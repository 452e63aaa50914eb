//! `ssdit config` prints the effective configuration, which loads back to
//! the same values; bad files fail naming the key.

use crate::cli;

use ssdit_core::Config;

#[test]
fn the_printed_configuration_round_trips_with_overrides_applied() {
    let output = cli::command()
        .args(["config"])
        .env("SSDIT_STORE_URL", "/srv/ssdit")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed: Config = toml::from_str(&String::from_utf8(output.stdout).unwrap()).unwrap();
    let mut expected = Config::default();
    expected.store.url = "/srv/ssdit".into();
    assert_eq!(printed, expected);
}

/// The stderr of `ssdit config` on a file holding `toml`, which must fail.
fn refusal_of(toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ssdit.toml");
    std::fs::write(&file, toml).unwrap();
    let output = cli::command()
        .args(["config", "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success(), "{toml:?} was accepted");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn a_bad_value_fails_naming_its_key() {
    let stderr = refusal_of("[train]\nbatch_size = 0\n");
    assert!(stderr.contains("train.batch_size"), "{stderr}");
}

#[test]
fn an_unknown_key_is_refused() {
    let stderr = refusal_of("[train]\nbatch_sise = 4\n");
    assert!(stderr.contains("batch_sise"), "{stderr}");
}
