//! What services need from an image ↔ latent transform, whichever one is
//! configured: the FLUX VAE ([`crate::Vae`]) or the weight-free preview codec
//! ([`crate::PreviewCodec`]), selected by `--vae <model dir | hub id | preview | tiny>`.

use std::fmt;
use std::str::FromStr;

use burn::prelude::*;
use ssdit_weights::ModelSource;

use crate::{
    Error, PREVIEW_FINGERPRINT, PreviewCodec, Result, load_vae, tiny_vae, tiny_vae_fingerprint,
};

/// How [`LatentCodec::encode`] turns a posterior into latents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sampling {
    /// The posterior mean (deterministic).
    Mean,
    /// `mean + std · ε` with ε drawn from one seed per image of the batch, so
    /// an image's latent does not depend on what it was batched with.
    Seeds(Vec<u64>),
}

/// Maps images to latents and back with the FLUX VAE's interface.
///
/// Latents are in *cache space*: what the seed stores after encoding
/// (for the VAE: `(z − shift) · scaling_factor`, see [`crate::VaeScaling`]);
/// dataset normalisation ([`crate::DatasetNormalization`]) is applied on top
/// by the trainer and undone by the sampler.
pub trait LatentCodec<B: Backend>: fmt::Display + Send {
    /// A short id of everything that determines the latents (weights,
    /// config, conventions); cache keys include it.
    fn fingerprint(&self) -> &str;

    /// Latent channels (16 for FLUX).
    fn latent_channels(&self) -> usize;

    /// Image-to-latent spatial factor (8 for FLUX).
    fn downsample_factor(&self) -> usize;

    /// Images `[B, 3, H, W]` in [-1, 1] (H, W multiples of the factor) to
    /// latents `[B, C, H/f, W/f]` in cache space.
    fn encode(&self, images: Tensor<B, 4>, sampling: &Sampling) -> Result<Tensor<B, 4>>;

    /// Cache-space latents `[B, C, h, w]` to images `[B, 3, h·f, w·f]`, roughly in [-1, 1].
    fn decode(&self, latents: Tensor<B, 4>) -> Result<Tensor<B, 4>>;
}

/// Which codec a service runs: the user's `--vae` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecChoice {
    /// The weight-free DCT preview codec (`preview`).
    Preview,
    /// The small seeded VAE (`tiny`), see [`crate::tiny_vae`].
    Tiny,
    /// The FLUX VAE from a model directory or hub id.
    Vae(ModelSource),
}

/// The `--vae` value that selects the preview codec.
pub const PREVIEW_CHOICE: &str = "preview";

/// The `--vae` value that selects the tiny seeded VAE.
pub const TINY_CHOICE: &str = "tiny";

impl FromStr for CodecChoice {
    type Err = Error;

    /// `preview`, `tiny`, a model directory, or a hub id such as `diffusers/FLUX.1-vae`.
    fn from_str(spec: &str) -> Result<Self> {
        match spec.trim() {
            "" => Err(Error::Codec {
                spec: spec.to_string(),
                reason: format!(
                    "empty; expected {PREVIEW_CHOICE:?}, {TINY_CHOICE:?}, a model directory or a hub id"
                ),
            }),
            PREVIEW_CHOICE => Ok(Self::Preview),
            TINY_CHOICE => Ok(Self::Tiny),
            path_or_id => Ok(Self::Vae(ModelSource::parse(path_or_id))),
        }
    }
}

impl CodecChoice {
    /// The weight-free codec (`preview` or `tiny`) whose latents carry
    /// `fingerprint`, if they come from one: it decodes them with no
    /// weights to find or download.
    pub fn weight_free(fingerprint: &str) -> Option<Self> {
        if fingerprint == PREVIEW_FINGERPRINT {
            Some(Self::Preview)
        } else if fingerprint == tiny_vae_fingerprint() {
            Some(Self::Tiny)
        } else {
            None
        }
    }
}

impl fmt::Display for CodecChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Preview => f.write_str(PREVIEW_CHOICE),
            Self::Tiny => f.write_str(TINY_CHOICE),
            Self::Vae(source) => write!(f, "{source}"),
        }
    }
}

/// Builds the chosen codec on `device` (loading the VAE's weights, with the
/// seed's latent convention and default tiling).
pub fn load_codec<B: Backend>(
    choice: &CodecChoice,
    device: &Device<B>,
) -> Result<Box<dyn LatentCodec<B>>> {
    Ok(match choice {
        CodecChoice::Preview => Box::new(PreviewCodec::new(device)),
        CodecChoice::Tiny => Box::new(tiny_vae(device)),
        CodecChoice::Vae(source) => Box::new(load_vae(source, device)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_choices() {
        assert_eq!(
            "preview".parse::<CodecChoice>().unwrap(),
            CodecChoice::Preview
        );
        assert_eq!("tiny".parse::<CodecChoice>().unwrap(), CodecChoice::Tiny);
        assert_eq!(CodecChoice::Tiny.to_string(), "tiny");
        assert_eq!(
            "diffusers/FLUX.1-vae".parse::<CodecChoice>().unwrap(),
            CodecChoice::Vae(ModelSource::Hub {
                repo: "diffusers/FLUX.1-vae".into(),
                revision: None
            })
        );
        assert_eq!(
            "/models/vae".parse::<CodecChoice>().unwrap(),
            CodecChoice::Vae(ModelSource::Local("/models/vae".into()))
        );
        assert!(" ".parse::<CodecChoice>().is_err());
    }

    #[test]
    fn weight_free_codecs_are_known_by_their_latents() {
        assert_eq!(
            CodecChoice::weight_free(PREVIEW_FINGERPRINT),
            Some(CodecChoice::Preview)
        );
        assert_eq!(
            CodecChoice::weight_free(&tiny_vae_fingerprint()),
            Some(CodecChoice::Tiny)
        );
        assert_eq!(CodecChoice::weight_free("flux-vae-0123abcd"), None);
    }
}
