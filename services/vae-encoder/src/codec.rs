//! The latent codec on its own compute thread: images in, cache-space
//! latents out, and back. Async callers send whole batches; one batch is one
//! forward pass.

use std::str::FromStr;
use std::sync::Arc;

use burn::prelude::*;
use image::RgbImage;
use ssdit_core::backend::{ComputeBackend, DeviceSpec};
use ssdit_core::config::ModelsConfig;
use ssdit_server::ComputeWorker;
use ssdit_vae::{
    CodecChoice, LatentCodec, Sampling, images_to_tensor, load_codec, tensor_to_images,
};

use crate::{Error, Result};

type B = ComputeBackend;

/// What the codec is, as far as callers need to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecInfo {
    /// Part of every latent cache key.
    pub fingerprint: String,
    /// Latent channels (16).
    pub channels: usize,
    /// Image-to-latent spatial factor (8).
    pub factor: usize,
    /// Human description, for logs.
    pub description: String,
}

/// Images of one size to encode together.
#[derive(Debug, Clone)]
pub enum ImageBatch {
    /// 8-bit RGB images, converted with the seed's arithmetic.
    Rgb(Vec<RgbImage>),
    /// `[n, 3, h, w]` pixels in [-1, 1], row-major.
    Pixels {
        values: Vec<f32>,
        n: usize,
        height: usize,
        width: usize,
    },
}

impl ImageBatch {
    fn len(&self) -> usize {
        match self {
            Self::Rgb(images) => images.len(),
            Self::Pixels { n, .. } => *n,
        }
    }
}

/// One latent, `[channels, h, w]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Latent {
    pub values: Vec<f32>,
    pub shape: [usize; 3],
}

impl Latent {
    /// Whether every value is finite.
    pub fn is_finite(&self) -> bool {
        self.values.iter().all(|v| v.is_finite())
    }
}

/// The codec's compute thread. Clones share it.
#[derive(Clone)]
pub struct CodecWorker {
    worker: ComputeWorker<Loaded>,
    info: Arc<CodecInfo>,
}

/// What the compute thread owns.
struct Loaded {
    codec: Box<dyn LatentCodec<B>>,
    device: Device<B>,
}

/// Batches waiting for the compute thread at most.
const QUEUE: usize = 4;

impl CodecWorker {
    /// Builds the codec `models.vae` names (`preview`, `tiny`, a model
    /// directory or a hub id) on `models.device`, on a new compute thread.
    pub async fn load(models: &ModelsConfig) -> Result<Self> {
        let spec = models.vae.clone();
        let model_error = |reason: String| Error::Model {
            spec: spec.clone(),
            reason,
        };
        let choice = CodecChoice::from_str(&spec).map_err(|e| model_error(e.to_string()))?;
        let device = DeviceSpec::parse(&models.device)
            .and_then(DeviceSpec::device)
            .map_err(|e| model_error(e.to_string()))?;
        let worker = ComputeWorker::spawn("vae", QUEUE, move || {
            load_codec::<B>(&choice, &device).map(|codec| Loaded { codec, device })
        })
        .await
        .map_err(|e| model_error(e.to_string()))?;
        let info = worker
            .run(|Loaded { codec, .. }| CodecInfo {
                fingerprint: codec.fingerprint().to_string(),
                channels: codec.latent_channels(),
                factor: codec.downsample_factor(),
                description: codec.to_string(),
            })
            .await?;
        tracing::info!(vae = %spec, fingerprint = %info.fingerprint, codec = %info.description, "latent codec loaded");
        if matches!(
            spec.trim(),
            ssdit_vae::PREVIEW_CHOICE | ssdit_vae::TINY_CHOICE
        ) {
            tracing::warn!(vae = %spec, "this codec is a stand-in: its latents and images are not those of the FLUX VAE");
        }
        Ok(Self {
            worker,
            info: Arc::new(info),
        })
    }

    /// Fingerprint, channels, factor.
    pub fn info(&self) -> &CodecInfo {
        &self.info
    }

    /// Encodes one batch of equally sized images in one forward pass.
    pub async fn encode(&self, images: ImageBatch, sampling: Sampling) -> Result<Vec<Latent>> {
        let count = images.len();
        if let Sampling::Seeds(seeds) = &sampling
            && seeds.len() != count
        {
            return Err(Error::InvalidArgument(format!(
                "{} sampling seeds for {count} images",
                seeds.len()
            )));
        }
        self.worker
            .run(move |loaded| encode_batch(loaded, images, &sampling))
            .await?
    }

    /// Decodes `n` latents of shape `[channels, h, w]` (row-major, concatenated)
    /// to RGB images in one forward pass.
    pub async fn decode(&self, values: Vec<f32>, shape: [usize; 4]) -> Result<Vec<RgbImage>> {
        self.worker
            .run(move |loaded| {
                let data = TensorData::new(values, shape);
                let latents = Tensor::<B, 4>::from_data(data, &loaded.device);
                Ok(tensor_to_images(loaded.codec.decode(latents)?)?)
            })
            .await?
    }
}

fn encode_batch(loaded: &Loaded, images: ImageBatch, sampling: &Sampling) -> Result<Vec<Latent>> {
    let device = &loaded.device;
    let pixels = match images {
        ImageBatch::Rgb(images) => images_to_tensor::<B>(&images, device)?,
        ImageBatch::Pixels {
            values,
            n,
            height,
            width,
        } => Tensor::from_data(TensorData::new(values, [n, 3, height, width]), device),
    };
    let latents = loaded.codec.encode(pixels, sampling)?;
    let [n, c, h, w] = latents.dims();
    let values = latents
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| Error::Internal(format!("latents are not floats: {e:?}")))?;
    let per = c * h * w;
    Ok((0..n)
        .map(|i| Latent {
            values: values[i * per..(i + 1) * per].to_vec(),
            shape: [c, h, w],
        })
        .collect())
}
