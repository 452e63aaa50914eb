//! The short mutation campaign CI runs on diffusers' VAE `config.json`
//! (`cargo fuzz run config_json` is the long one): mutants end in a
//! configuration within the size limits or in an error naming the problem,
//! never a panic.

use ssdit_vae::AutoencoderKlConfig;

/// Parses `bytes`; an accepted configuration must validate again and give
/// its downsampling factor without overflow.
fn read(bytes: &[u8]) -> ssdit_vae::Result<usize> {
    let text = String::from_utf8_lossy(bytes);
    let config = AutoencoderKlConfig::from_json(&text, "mutant/config.json")?;
    config.validate("mutant/config.json")?;
    Ok(config.downsample_factor())
}

#[test]
fn mutated_configs_never_panic() {
    let valid = [AutoencoderKlConfig::flux_vae(), AutoencoderKlConfig::tiny()]
        .map(|config| config.to_diffusers_json().into_bytes());
    let outcome = ssdit_mutate::campaign("vae_config_json", &valid, 30_000, 19, read);
    assert!(
        outcome.accepted > valid.len() && outcome.refused > 0,
        "mutants should reach both the checks and the refusals: {outcome:?}"
    );
}
