//! Which models the all-in-one job runs, and what to tell the user about them.
//!
//! - `--tiny`: every model small and random (VAE, text encoder, DiT). The
//!   pipeline runs end to end; its images are not meaningful.
//! - A model asked for explicitly (`--vae DIR`, or a `models.vae` /
//!   `models.text_encoder` other than the defaults) is used as asked, and
//!   fails loudly when its weights are missing — the stand-ins are never
//!   substituted for weights that were asked for.
//! - The defaults (FLUX.1-VAE, T5Gemma2) are used when their weights are on
//!   this machine (a hub cache hit, no network); otherwise the job runs on the
//!   weight-free preview codec and the tiny random text encoder, and says so.

use ssdit_core::config::ModelsConfig;
use ssdit_vae::{PREVIEW_CHOICE, TINY_CHOICE};

/// The `models.text_encoder` value of the tiny random encoder.
const TINY_TEXT: &str = ssdit_text_encoder::TINY;

/// How much the job's images mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fidelity {
    /// Real VAE and text encoder: images as good as the trained DiT.
    Real,
    /// The preview codec and/or the tiny text encoder: the DiT visibly
    /// learns the photos, at the codec's blockier quality, and captions
    /// condition through a random (not a language) encoder.
    StandIn,
    /// Random VAE, text encoder and DiT: the images are not meaningful.
    Tiny,
}

/// The models chosen and the plain words about them.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelChoice {
    pub models: ModelsConfig,
    pub fidelity: Fidelity,
    /// One line per stand-in used, for the job's output.
    pub notices: Vec<String>,
}

/// What the user asked for on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelFlags {
    /// `--tiny`.
    pub tiny: bool,
    /// `--vae preview|tiny|DIR|hub-id`.
    pub vae: Option<String>,
}

/// Chooses the models from the configuration and the flags. `cached(repo)`
/// says whether a hub repo's files are on this machine (no network).
pub fn choose(
    configured: &ModelsConfig,
    flags: &ModelFlags,
    cached: &dyn Fn(&str) -> bool,
) -> ModelChoice {
    if flags.tiny {
        return ModelChoice {
            models: ModelsConfig {
                device: configured.device.clone(),
                precision: configured.precision,
                ..ModelsConfig::tiny()
            },
            fidelity: Fidelity::Tiny,
            notices: vec![
                "--tiny: the VAE, the text encoder and the DiT are small RANDOM models; the images are NOT meaningful, they only show the pipeline working".into(),
            ],
        };
    }
    let defaults = ModelsConfig::default();
    let mut models = configured.clone();
    let mut notices = Vec::new();
    match &flags.vae {
        Some(vae) => models.vae = vae.clone(),
        None if models.vae == defaults.vae && !cached(&models.vae) => {
            notices.push(format!(
                "no {} weights on this machine: using the weight-free PREVIEW CODEC (a DCT stand-in), so images are blockier than the real VAE's (pass --vae DIR to use real weights)",
                defaults.vae
            ));
            models.vae = PREVIEW_CHOICE.into();
        }
        None => {}
    }
    if models.text_encoder == defaults.text_encoder && !cached(&models.text_encoder) {
        notices.push(format!(
            "no {} weights on this machine: captions are encoded by a tiny RANDOM text encoder, which tells captions apart but does not understand them (set models.text_encoder to a model directory to use real weights)",
            defaults.text_encoder
        ));
        models.text_encoder = TINY_TEXT.into();
    }
    match models.vae.trim() {
        PREVIEW_CHOICE if flags.vae.is_some() => notices.push(
            "--vae preview: images are from the weight-free preview codec (a DCT stand-in), not the FLUX VAE".into(),
        ),
        TINY_CHOICE => notices.push(
            "--vae tiny: a small RANDOM VAE; its images are NOT meaningful".into(),
        ),
        _ => {}
    }
    let stand_in = [PREVIEW_CHOICE, TINY_CHOICE].contains(&models.vae.trim())
        || models.text_encoder.trim() == TINY_TEXT;
    ModelChoice {
        models,
        fidelity: if stand_in {
            Fidelity::StandIn
        } else {
            Fidelity::Real
        },
        notices,
    }
}

/// Whether the hub repo `repo`'s `config.json` is in the local hub cache:
/// enough to try the real model (its loader then names any missing file).
/// `hub` is the hub cache (`hf_hub::Cache::from_env()` in the binary).
pub fn hub_cached(hub: &hf_hub::Cache, repo: &str) -> bool {
    hub.model(repo.to_string()).get("config.json").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing_cached(_: &str) -> bool {
        false
    }

    fn everything_cached(_: &str) -> bool {
        true
    }

    #[test]
    fn defaults_without_weights_fall_back_to_the_stand_ins_and_say_so() {
        let choice = choose(
            &ModelsConfig::default(),
            &ModelFlags::default(),
            &nothing_cached,
        );
        assert_eq!(choice.models.vae, PREVIEW_CHOICE);
        assert_eq!(choice.models.text_encoder, TINY_TEXT);
        assert_eq!(choice.fidelity, Fidelity::StandIn);
        assert_eq!(choice.notices.len(), 2);
        assert!(
            choice.notices[0].contains("PREVIEW CODEC"),
            "{:?}",
            choice.notices
        );
        assert!(
            choice.notices[1].contains("RANDOM text encoder"),
            "{:?}",
            choice.notices
        );
    }

    #[test]
    fn defaults_with_cached_weights_are_the_real_models() {
        let choice = choose(
            &ModelsConfig::default(),
            &ModelFlags::default(),
            &everything_cached,
        );
        assert_eq!(choice.models, ModelsConfig::default());
        assert_eq!(choice.fidelity, Fidelity::Real);
        assert!(choice.notices.is_empty());
    }

    #[test]
    fn weights_asked_for_are_never_replaced_by_the_preview_codec() {
        let flags = ModelFlags {
            vae: Some("/models/flux-vae".into()),
            ..ModelFlags::default()
        };
        let choice = choose(&ModelsConfig::default(), &flags, &nothing_cached);
        assert_eq!(choice.models.vae, "/models/flux-vae");
        let explicit_hub_id = ModelFlags {
            vae: Some(ModelsConfig::default().vae),
            ..ModelFlags::default()
        };
        let choice = choose(&ModelsConfig::default(), &explicit_hub_id, &nothing_cached);
        assert_eq!(choice.models.vae, ModelsConfig::default().vae);
        let configured = ModelsConfig {
            vae: "/models/other-vae".into(),
            text_encoder: "/models/t5gemma2".into(),
            ..ModelsConfig::default()
        };
        let choice = choose(&configured, &ModelFlags::default(), &nothing_cached);
        assert_eq!(choice.models.vae, "/models/other-vae");
        assert_eq!(choice.models.text_encoder, "/models/t5gemma2");
        assert_eq!(choice.fidelity, Fidelity::Real);
    }

    #[test]
    fn tiny_makes_every_model_random_and_says_the_images_mean_nothing() {
        let configured = ModelsConfig {
            device: "cpu".into(),
            ..ModelsConfig::default()
        };
        let flags = ModelFlags {
            tiny: true,
            vae: None,
        };
        let choice = choose(&configured, &flags, &everything_cached);
        assert_eq!(choice.models.vae, TINY_CHOICE);
        assert_eq!(choice.models.text_encoder, TINY_TEXT);
        assert_eq!(choice.models.dit, "tiny");
        assert_eq!(choice.models.device, "cpu");
        assert_eq!(choice.fidelity, Fidelity::Tiny);
        assert!(choice.notices[0].contains("NOT meaningful"));
    }

    #[test]
    fn an_explicit_preview_codec_is_named_as_a_stand_in() {
        let flags = ModelFlags {
            vae: Some(PREVIEW_CHOICE.into()),
            ..ModelFlags::default()
        };
        let choice = choose(&ModelsConfig::default(), &flags, &everything_cached);
        assert_eq!(choice.models.vae, PREVIEW_CHOICE);
        assert_eq!(choice.fidelity, Fidelity::StandIn);
        assert!(choice.notices.iter().any(|n| n.contains("preview codec")));
    }
}
