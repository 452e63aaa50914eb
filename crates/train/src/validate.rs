//! Validation: fixed prompts sampled with fixed noise from the EMA and the
//! raw weights (the seed's `validate`), decoded with the codec, and the
//! velocity loss on held-out samples at fixed times and noise.

use std::ops::ControlFlow;

use burn::prelude::*;
use burn::tensor::ElementConversion;
use image::RgbImage;
use ssdit_core::config::{SamplerKind, TrainConfig};
use ssdit_flow::{Sampler, SamplerConfig, SamplerMethod, interpolate, velocity_target};
use ssdit_model::SingleStreamDiT;
use ssdit_render::{SheetStyle, Tile, contact_sheet};
use ssdit_vae::{LatentCodec, tensor_to_images};

use crate::Result;
use crate::data::{SampleTensors, TrainingSet};
use crate::rng::{self, Purpose, Streams};
use crate::trainer::loss_kind;

/// The seed's validation generator seed (`torch.Generator().manual_seed(42)`):
/// prompt `p`'s noise comes from the validation stream of this seed at `p`,
/// the same at every validation so the samples show training progress only.
pub const VALIDATION_SEED: u64 = 42;

/// Fixed prompts: the caption embeddings (and latent sizes) of the first
/// training samples.
#[derive(Debug, Clone)]
pub struct Prompts {
    prompts: Vec<SampleTensors>,
}

impl Prompts {
    /// The first `count` samples of `data` (manifest order: by sample id).
    pub fn first(data: &TrainingSet, count: usize) -> Result<Self> {
        let indices: Vec<usize> = (0..count.min(data.len())).collect();
        Ok(Self {
            prompts: data.tensors(&indices)?,
        })
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}

/// Side of a validation sample's cell on the contact sheet, in pixels.
const SHEET_CELL: u32 = 192;

/// The contact sheet of one validation under `header`: the EMA samples in
/// the first row and the raw weights' samples under them, one column per
/// prompt.
pub fn validation_sheet(header: &str, ema: Vec<RgbImage>, raw: Vec<RgbImage>) -> Result<RgbImage> {
    let columns = ema.len().max(raw.len());
    let row = |weights: &'static str, images: Vec<RgbImage>| {
        images
            .into_iter()
            .enumerate()
            .map(move |(p, image)| Tile::new(image, format!("{weights} prompt {p}")))
    };
    let tiles: Vec<Tile> = row("EMA", ema).chain(row("raw", raw)).collect();
    let style = SheetStyle {
        columns,
        cell: SHEET_CELL,
        caption_lines: 1,
        title: Some(header.to_string()),
        ..SheetStyle::default()
    };
    Ok(contact_sheet(&tiles, &style)?)
}

/// How validation samples are drawn.
pub fn sampler(config: &TrainConfig) -> Result<Sampler> {
    let method = match config.validate_sampler {
        SamplerKind::Euler => SamplerMethod::Euler,
        SamplerKind::Rk4 => SamplerMethod::Rk4,
    };
    Ok(Sampler::new(
        &SamplerConfig::new()
            .with_method(method)
            .with_steps(config.validate_steps)
            .with_cfg(config.validate_cfg)
            .with_shift(config.shift),
    )?)
}

/// One image per prompt from `model`, decoded by `codec`. Latents leave the
/// model in normalised space and are denormalised (`x·std + mean`) before
/// decoding, as the seed's `prepare_latents_for_decode`.
pub fn sample_images<B: Backend>(
    model: &SingleStreamDiT<B>,
    prompts: &Prompts,
    sampler: &Sampler,
    codec: &dyn LatentCodec<B>,
    config: &TrainConfig,
    device: &Device<B>,
) -> Result<Vec<RgbImage>> {
    let streams = Streams::new(VALIDATION_SEED);
    let mut images = Vec::with_capacity(prompts.len());
    for (p, prompt) in prompts.prompts.iter().enumerate() {
        let [c, h, w] = prompt.latent_shape;
        let [l, d] = prompt.embedding_shape;
        let noise = rng::normal(
            &mut streams.rng(Purpose::Validation, p as u64, 0),
            c * h * w,
        );
        let x0 = Tensor::<B, 4>::from_data(TensorData::new(noise, [1, c, h, w]), device);
        let text =
            Tensor::<B, 3>::from_data(TensorData::new(prompt.embedding.clone(), [1, l, d]), device);
        let guidance = sampler.guidance(text)?;
        let velocity = |x, t, text| model.forward(x, t, text);
        let latent = sampler.sample(&velocity, x0, &guidance, |_| ControlFlow::Continue(()))?;
        let cache_space = latent
            .mul_scalar(config.latent_std)
            .add_scalar(config.latent_mean);
        images.extend(tensor_to_images(codec.decode(cache_space)?)?);
    }
    Ok(images)
}

/// Mean velocity loss of `model` over the held-out samples, each at its own
/// fixed time `(j + ½)/n` and fixed noise, captions kept: comparable across
/// validations and between the EMA and the raw weights.
pub fn holdout_loss<B: Backend>(
    model: &SingleStreamDiT<B>,
    data: &TrainingSet,
    holdout: &[usize],
    config: &TrainConfig,
    device: &Device<B>,
) -> Result<Option<f64>> {
    if holdout.is_empty() {
        return Ok(None);
    }
    let streams = Streams::new(VALIDATION_SEED);
    let tensors = data.tensors(holdout)?;
    let n = tensors.len();
    let mut total = 0.0;
    for (j, sample) in tensors.iter().enumerate() {
        let [c, h, w] = sample.latent_shape;
        let [l, d] = sample.embedding_shape;
        let latent: Vec<f32> = sample
            .latent
            .iter()
            .map(|v| ((*v as f64 - config.latent_mean) / config.latent_std) as f32)
            .collect();
        let x1 = Tensor::<B, 4>::from_data(TensorData::new(latent, [1, c, h, w]), device);
        let noise = rng::normal(&mut streams.rng(Purpose::Holdout, j as u64, 1), c * h * w);
        let x0 = Tensor::<B, 4>::from_data(TensorData::new(noise, [1, c, h, w]), device);
        let t = Tensor::<B, 1>::from_floats([(j as f32 + 0.5) / n as f32], device);
        let text =
            Tensor::<B, 3>::from_data(TensorData::new(sample.embedding.clone(), [1, l, d]), device);
        let v = model.try_forward(interpolate(x0.clone(), x1.clone(), t.clone()), t, text)?;
        let loss: f64 = loss_kind(config.loss)
            .compute(v, velocity_target(x0, x1))
            .into_scalar()
            .elem();
        total += loss;
    }
    Ok(Some(total / n as f64))
}
