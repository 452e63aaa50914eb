//! A `GenerateRequest` checked field by field and its defaults resolved,
//! before it may be queued.

use ssdit_core::config::{SamplerConfig, SamplerKind};
use ssdit_flow::SamplerMethod;
use ssdit_proto::v1::{GenerateRequest, Sampler as ProtoSampler};

use crate::checkpoint::CheckpointId;
use crate::{Error, Result};

/// Smallest image side: one 2×2 patch of 8×-downsampled latents.
pub const MIN_SIDE: u32 = 16;
/// Image sides are multiples of this (VAE factor 8 × DiT patch 2).
pub const SIDE_MULTIPLE: u32 = 16;

/// A valid request with every default resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    pub prompt: String,
    /// Empty: the unconditional branch is the all-zero embedding.
    pub negative_prompt: String,
    pub width: u32,
    pub height: u32,
    pub steps: usize,
    pub cfg: f64,
    pub method: SamplerMethod,
    pub seed: u64,
    pub shift: f64,
    /// A checkpoint named by the request; `None` serves the current one.
    pub checkpoint: Option<CheckpointId>,
}

/// What requests must share to be computed in one batch: everything that
/// shapes the computation, so that each request's image is exactly the one it
/// would get alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchKey {
    width: u32,
    height: u32,
    steps: usize,
    method: SamplerMethod,
    cfg_bits: u64,
    shift_bits: u64,
    checkpoint: Option<String>,
}

impl GenerateParams {
    /// Checks every field of `request` against the service's limits and fills
    /// the defaults from `config` (`seed` is the random seed used when the
    /// request names none).
    pub fn from_request(
        request: GenerateRequest,
        config: &SamplerConfig,
        seed: u64,
    ) -> Result<Self> {
        let invalid = |message: String| Error::InvalidArgument(message);
        let prompt = check_prompt("prompt", request.prompt, config.max_prompt_bytes)?;
        if prompt.trim().is_empty() {
            return Err(invalid("prompt is empty".into()));
        }
        let negative_prompt = check_prompt(
            "negative_prompt",
            request.negative_prompt,
            config.max_prompt_bytes,
        )?;
        let width = check_side(
            "width",
            request.width.unwrap_or(config.width),
            config.max_side,
        )?;
        let height = check_side(
            "height",
            request.height.unwrap_or(config.height),
            config.max_side,
        )?;
        let steps = request.steps.map_or(config.steps, |s| s as usize);
        if !(1..=config.max_steps).contains(&steps) {
            return Err(invalid(format!(
                "steps {steps} is outside 1..={}",
                config.max_steps
            )));
        }
        let cfg = request.cfg.map_or(config.cfg, f64::from);
        if !(cfg.is_finite() && cfg >= 0.0) {
            return Err(invalid(format!("cfg {cfg} must be a finite number ≥ 0")));
        }
        let shift = request.shift.map_or(config.shift, f64::from);
        if !(shift.is_finite() && shift > 0.0) {
            return Err(invalid(format!(
                "shift {shift} must be a finite number > 0"
            )));
        }
        let method = match ProtoSampler::try_from(request.sampler) {
            Ok(ProtoSampler::Unspecified) => method_of(config.sampler),
            Ok(ProtoSampler::Euler) => SamplerMethod::Euler,
            Ok(ProtoSampler::Rk4) => SamplerMethod::Rk4,
            Err(_) => {
                return Err(invalid(format!(
                    "sampler {} is not one of SAMPLER_EULER (1), SAMPLER_RK4 (2)",
                    request.sampler
                )));
            }
        };
        let checkpoint = request
            .checkpoint
            .map(|key| CheckpointId::parse_store_key(&key))
            .transpose()?;
        Ok(Self {
            prompt,
            negative_prompt,
            width,
            height,
            steps,
            cfg,
            method,
            seed: request.seed.unwrap_or(seed),
            shift,
            checkpoint,
        })
    }

    /// The batch this request may share.
    pub fn batch_key(&self) -> BatchKey {
        BatchKey {
            width: self.width,
            height: self.height,
            steps: self.steps,
            method: self.method,
            cfg_bits: self.cfg.to_bits(),
            shift_bits: self.shift.to_bits(),
            checkpoint: self.checkpoint.as_ref().map(|c| c.to_string()),
        }
    }

    /// The proto enum of the method.
    pub fn proto_sampler(&self) -> ProtoSampler {
        match self.method {
            SamplerMethod::Euler => ProtoSampler::Euler,
            SamplerMethod::Rk4 => ProtoSampler::Rk4,
        }
    }
}

/// The flow sampler of a configured default.
pub fn method_of(kind: SamplerKind) -> SamplerMethod {
    match kind {
        SamplerKind::Euler => SamplerMethod::Euler,
        SamplerKind::Rk4 => SamplerMethod::Rk4,
    }
}

fn check_prompt(what: &str, prompt: String, max_bytes: usize) -> Result<String> {
    if prompt.len() > max_bytes {
        return Err(Error::InvalidArgument(format!(
            "{what} is {} bytes, more than the limit of {max_bytes}",
            prompt.len()
        )));
    }
    Ok(prompt)
}

fn check_side(what: &str, value: u32, max: u32) -> Result<u32> {
    if value < MIN_SIDE || value > max || !value.is_multiple_of(SIDE_MULTIPLE) {
        return Err(Error::InvalidArgument(format!(
            "{what} {value} must be a multiple of {SIDE_MULTIPLE} between {MIN_SIDE} and {max}"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> GenerateRequest {
        GenerateRequest {
            prompt: "a red rose".into(),
            ..GenerateRequest::default()
        }
    }

    #[test]
    fn defaults_come_from_the_config() {
        let config = SamplerConfig::default();
        let params = GenerateParams::from_request(request(), &config, 7).unwrap();
        assert_eq!((params.width, params.height), (448, 448));
        assert_eq!((params.steps, params.cfg, params.shift), (50, 3.0, 1.0));
        assert_eq!((params.method, params.seed), (SamplerMethod::Euler, 7));
        assert_eq!(params.checkpoint, None);
    }

    #[test]
    fn requests_differing_only_in_text_and_seed_share_a_batch() {
        let config = SamplerConfig::default();
        let a = GenerateParams::from_request(request(), &config, 1).unwrap();
        let b = GenerateParams::from_request(
            GenerateRequest {
                prompt: "a blue iris".into(),
                negative_prompt: "blurry".into(),
                ..request()
            },
            &config,
            2,
        )
        .unwrap();
        assert_eq!(a.batch_key(), b.batch_key());
        let c = GenerateParams::from_request(
            GenerateRequest {
                cfg: Some(2.0),
                ..request()
            },
            &config,
            1,
        )
        .unwrap();
        assert_ne!(a.batch_key(), c.batch_key());
    }
}
