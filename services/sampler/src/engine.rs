//! What the sampler's compute thread owns — the text encoder, the latent
//! codec and the DiT(s) — and one batched generation.
//!
//! A batch holds requests of one shape (size, steps, method, cfg, shift,
//! checkpoint) but their own prompts, negative prompts and seeds. Each
//! request's text is encoded on its own and its noise drawn on the host from
//! its own seed; the DiT runs once per evaluation for the whole batch and
//! both guidance branches (`[uncond; cond]`, as `ssdit_flow::Guidance`
//! builds it); each latent is decoded on its own. So a request's image is the
//! one it would get alone, whatever it was batched with.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::DType;
use image::RgbImage;
use ssdit_core::backend::{ComputeBackend, DeviceSpec};
use ssdit_core::config::ModelsConfig;
use ssdit_flow::{Guidance, SampleProgress, Sampler, SamplerConfig};
use ssdit_model::{SingleStreamDiT, SingleStreamDiTConfig, open_checkpoint};
use ssdit_text::TextEncoder;
use ssdit_train::model::DataShape;
use ssdit_vae::{
    CodecChoice, DatasetNormalization, LatentCodec, load_codec, seeded_normal, tensor_to_images,
};
use ssdit_weights::Checkpoint;

use crate::checkpoint::{CheckpointId, ModelSource, Weights};
use crate::random::random_model;
use crate::request::{GenerateParams, SIDE_MULTIPLE};
use crate::{Error, Result};

type B = ComputeBackend;

/// Request-named checkpoints kept loaded besides the served one.
const NAMED_MODELS: usize = 2;

/// What the rest of the service needs to know about the loaded models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// Caption embedding width.
    pub text_dim: usize,
    /// Caption tokens.
    pub text_length: usize,
    /// Latent channels.
    pub channels: usize,
    /// Image-to-latent factor.
    pub factor: usize,
    /// The codec's fingerprint.
    pub codec: String,
}

impl EngineInfo {
    /// What the encoders fix about a DiT, as the trainer reads it off the
    /// data it fits its `tiny`/`small` presets to.
    pub fn data_shape(&self) -> DataShape {
        DataShape {
            channels: self.channels,
            text_tokens: self.text_length,
            text_dim: self.text_dim,
        }
    }
}

/// The compute thread's state.
pub struct Engine {
    device: Device<B>,
    /// What the DiTs compute in (`models.precision` on this build).
    dtype: DType,
    text: TextEncoder<B>,
    codec: Box<dyn LatentCodec<B>>,
    normalization: DatasetNormalization,
    served: Option<(CheckpointId, SingleStreamDiT<B>)>,
    named: VecDeque<(CheckpointId, SingleStreamDiT<B>)>,
}

impl Engine {
    /// Loads the text encoder and codec `models` names (no DiT yet).
    pub fn new(
        models: &ModelsConfig,
        text_length: usize,
        normalization: DatasetNormalization,
    ) -> Result<Self> {
        let model_error = |what, spec: &str, reason: String| Error::Model {
            what,
            spec: spec.to_string(),
            reason,
        };
        let device = DeviceSpec::parse(&models.device)
            .and_then(DeviceSpec::device)
            .map_err(|e| model_error("device", &models.device, e.to_string()))?;
        let text =
            ssdit_text_encoder::load_text_encoder(&models.text_encoder, text_length, &device)
                .map_err(|e| model_error("text encoder", &models.text_encoder, e.to_string()))?;
        let choice: CodecChoice = models
            .vae
            .parse()
            .map_err(|e: ssdit_vae::Error| model_error("vae", &models.vae, e.to_string()))?;
        let codec = load_codec::<B>(&choice, &device)
            .map_err(|e| model_error("vae", &models.vae, e.to_string()))?;
        Ok(Self {
            device,
            dtype: models.precision.compute_dtype(),
            text,
            codec,
            normalization,
            served: None,
            named: VecDeque::new(),
        })
    }

    /// Sizes of the text encoder and codec.
    pub fn info(&self) -> EngineInfo {
        EngineInfo {
            text_dim: self.text.dim(),
            text_length: self.text.max_length(),
            channels: self.codec.latent_channels(),
            factor: self.codec.downsample_factor(),
            codec: self.codec.fingerprint().to_string(),
        }
    }

    /// Builds `source` and serves it from now on.
    pub fn install_served(&mut self, source: ModelSource) -> Result<()> {
        let id = source.id.clone();
        let model = self.build(source)?;
        self.served = Some((id, model));
        Ok(())
    }

    /// Builds `source` and keeps it for requests that name it (evicting the
    /// least recently loaded beyond [`NAMED_MODELS`]).
    pub fn install_named(&mut self, source: ModelSource) -> Result<()> {
        let id = source.id.clone();
        let model = self.build(source)?;
        self.named.retain(|(named, _)| named != &id);
        self.named.push_back((id, model));
        while self.named.len() > NAMED_MODELS {
            self.named.pop_front();
        }
        Ok(())
    }

    /// Builds a model and checks it fits the text encoder and the codec.
    fn build(&self, source: ModelSource) -> Result<SingleStreamDiT<B>> {
        let fail = |reason: String| Error::Checkpoint {
            id: source.id.to_string(),
            reason,
        };
        let config = &source.config;
        let model = match source.weights {
            Weights::Random(seed) => random_model(config, seed, &self.device),
            Weights::Safetensors(bytes) => {
                Checkpoint::from_safetensors_bytes(bytes, source.id.to_string())
                    .map_err(ssdit_model::Error::from)
                    .and_then(|checkpoint| config.init(&self.device)?.load_checkpoint(&checkpoint))
            }
            Weights::File(path) => open_local(&path)
                .and_then(|checkpoint| config.init(&self.device)?.load_checkpoint(&checkpoint)),
        }
        .map_err(|e| fail(e.to_string()))?;
        self.check_fits(config).map_err(fail)?;
        Ok(model.with_dtype(self.dtype))
    }

    fn check_fits(&self, config: &SingleStreamDiTConfig) -> Result<(), String> {
        let info = self.info();
        if config.in_channels != info.channels {
            return Err(format!(
                "takes {}-channel latents, the codec makes {}",
                config.in_channels, info.channels
            ));
        }
        if config.text_embed_dim != info.text_dim {
            return Err(format!(
                "takes {}-wide caption embeddings, the text encoder makes {}",
                config.text_embed_dim, info.text_dim
            ));
        }
        if config.max_token_length < info.text_length {
            return Err(format!(
                "takes at most {} caption tokens, the text encoder makes {}",
                config.max_token_length, info.text_length
            ));
        }
        if !(SIDE_MULTIPLE as usize).is_multiple_of(config.patch_size * info.factor) {
            return Err(format!(
                "patch size {} does not divide images whose sides are multiples of {SIDE_MULTIPLE}",
                config.patch_size
            ));
        }
        Ok(())
    }

    /// Generates one image per request (all of one batch key) with the served
    /// model, or the named checkpoint `target` ([`Error::NotLoaded`] when
    /// neither the served nor a named model is that checkpoint). `progress`
    /// runs after every step; breaking stops the batch.
    pub fn generate(
        &self,
        requests: &[GenerateParams],
        target: Option<&CheckpointId>,
        progress: impl FnMut(&SampleProgress) -> ControlFlow<()>,
    ) -> Result<(CheckpointId, Vec<RgbImage>)> {
        let (id, model) = self.model(target)?;
        let first = requests
            .first()
            .ok_or_else(|| Error::Compute("an empty batch".into()))?;
        let (cond, uncond) = self.text_batch(requests)?;
        let info = self.info();
        let shape = [
            requests.len(),
            info.channels,
            first.height as usize / info.factor,
            first.width as usize / info.factor,
        ];
        model
            .check_inputs(shape, [shape[0]], cond.dims())
            .map_err(Error::compute)?;
        let seeds: Vec<u64> = requests.iter().map(|r| r.seed).collect();
        let noise = seeded_normal::<B>(shape, &seeds, &self.device).map_err(Error::compute)?;
        let sampler = Sampler::new(
            &SamplerConfig::new()
                .with_method(first.method)
                .with_steps(first.steps)
                .with_cfg(first.cfg)
                .with_shift(first.shift),
        )
        .map_err(Error::compute)?;
        let guidance = Guidance::with_uncond(cond, uncond, first.cfg).map_err(Error::compute)?;
        let velocity =
            |x: Tensor<B, 4>, t: Tensor<B, 1>, text: Tensor<B, 3>| model.forward(x, t, text);
        let latents = sampler
            .sample(&velocity, noise, &guidance, progress)
            .map_err(Error::compute)?;
        let latents = self.normalization.denormalize(latents);
        let images = (0..requests.len())
            .map(|i| self.decode_one(latents.clone().slice(i..i + 1)))
            .collect::<Result<Vec<_>>>()?;
        Ok((id.clone(), images))
    }

    /// The model of `target` — the served one or a named one, whichever
    /// holds it — or the served model when `target` is `None`.
    fn model(&self, target: Option<&CheckpointId>) -> Result<&(CheckpointId, SingleStreamDiT<B>)> {
        match target {
            None => self
                .served
                .as_ref()
                .ok_or_else(|| Error::Compute("no model is served yet".into())),
            Some(target) => self
                .served
                .iter()
                .chain(&self.named)
                .find(|(id, _)| id == target)
                .ok_or_else(|| Error::NotLoaded(target.clone())),
        }
    }

    /// Conditional and unconditional embeddings `[n, L, D]`: each request's
    /// prompt, and its negative prompt or the all-zero embedding (the seed's
    /// null caption, which the model replaces by its `cap_pad_token`).
    fn text_batch(&self, requests: &[GenerateParams]) -> Result<(Tensor<B, 3>, Tensor<B, 3>)> {
        let mut cond = Vec::with_capacity(requests.len());
        let mut uncond = Vec::with_capacity(requests.len());
        for request in requests {
            let mut texts = vec![request.prompt.clone()];
            if !request.negative_prompt.is_empty() {
                texts.push(request.negative_prompt.clone());
            }
            let embeddings = self.text.encode(&texts).map_err(Error::compute)?.embeddings; // [1 or 2, L, D]
            let [_, length, dim] = embeddings.dims();
            cond.push(embeddings.clone().slice(0..1));
            uncond.push(if texts.len() == 2 {
                embeddings.slice(1..2)
            } else {
                Tensor::zeros([1, length, dim], &self.device)
            });
        }
        Ok((Tensor::cat(cond, 0), Tensor::cat(uncond, 0)))
    }

    fn decode_one(&self, latent: Tensor<B, 4>) -> Result<RgbImage> {
        let pixels = self.codec.decode(latent).map_err(Error::compute)?;
        tensor_to_images(pixels)
            .map_err(Error::compute)?
            .pop()
            .ok_or_else(|| Error::Compute("the codec decoded no image".into()))
    }
}

/// Opens a local checkpoint: safetensors, a seed state dict, or a seed
/// training state (whose EMA weights are taken).
fn open_local(path: &Path) -> ssdit_model::Result<Checkpoint> {
    match open_checkpoint(path, None) {
        Err(ssdit_model::Error::Input { .. }) => open_checkpoint(path, Some("ema_state_dict")),
        other => other,
    }
}
