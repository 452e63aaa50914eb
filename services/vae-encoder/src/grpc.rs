//! `ssdit.v1.VaeService`: `Encode` (images → latents) and `Decode`
//! (latents → PNG files), each request validated whole before any compute.
//!
//! Limits: at most `encode.max_request_items` images or latents per call and
//! `encode.max_request_pixels` pixels in all (RESOURCE_EXHAUSTED beyond,
//! checked from file headers and tensor shapes before decoding anything);
//! image sides multiples of the codec's factor (8); pixel tensors `[3, H, W]`
//! and latents `[16, h, w]` whose byte length matches shape × dtype, with
//! finite values (INVALID_ARGUMENT otherwise).

use std::collections::BTreeMap;

use image::RgbImage;
use ssdit_core::Config;
use ssdit_data::{RejectKind, ValidationConfig};
use ssdit_proto::v1::vae_image::Source;
use ssdit_proto::v1::vae_service_server::{VaeService, VaeServiceServer};
use ssdit_proto::v1::{Tensor, VaeDecodeReply, VaeDecodeRequest, VaeEncodeReply, VaeEncodeRequest};
use ssdit_vae::Sampling;
use tonic::{Request, Response, Status};

use crate::codec::{CodecWorker, ImageBatch};
use crate::images::{decode_rgb, header, limits};
use crate::{Error, Result};

/// A `Decode` request's latents grouped by shape `(h, w)`: each with its
/// index in the request and its values, decoded together in one batch.
type ShapeGroups = BTreeMap<(usize, usize), Vec<(usize, Vec<f32>)>>;

/// Request bounds, from `[encode]` and `[ingest]` of the configuration.
#[derive(Debug, Clone, Copy)]
struct Limits {
    items: usize,
    pixels: u64,
    file_bytes: u64,
    background: [u8; 3],
}

/// The gRPC service over a codec worker.
#[derive(Clone)]
pub struct VaeGrpc {
    codec: CodecWorker,
    limits: Limits,
}

impl VaeGrpc {
    /// The service for `codec`, with the request limits of `config`.
    pub fn new(codec: CodecWorker, config: &Config) -> Self {
        Self {
            codec,
            limits: Limits {
                items: config.encode.max_request_items,
                pixels: config.encode.max_request_pixels,
                file_bytes: config.ingest.max_bytes,
                background: config.ingest.background,
            },
        }
    }

    /// The tonic server, with message size limits fitting the pixel limit
    /// (f32 RGB pixels, plus room for framing).
    pub fn into_server(self) -> VaeServiceServer<Self> {
        let limit = usize::try_from(self.limits.pixels.saturating_mul(12))
            .unwrap_or(usize::MAX)
            .saturating_add(1 << 20);
        VaeServiceServer::new(self)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit)
    }

    /// Validates and runs an `Encode` request.
    pub async fn encode_request(&self, request: VaeEncodeRequest) -> Result<VaeEncodeReply> {
        let factor = self.codec.info().factor;
        self.check_count("images", request.images.len())?;
        let mut sizes = Vec::with_capacity(request.images.len());
        for (index, image) in request.images.iter().enumerate() {
            sizes.push(self.image_size(index, image.source.as_ref(), factor)?);
        }
        self.check_pixels(sizes.iter().map(|&(h, w)| (h * w) as u64))?;

        let base_seed = request.seed.unwrap_or_else(rand::random);
        let (limits, background) = (self.file_limits(), self.limits.background);
        let sources: Vec<Option<Source>> = request.images.into_iter().map(|i| i.source).collect();
        // Decoding files takes milliseconds per image: off the executor.
        let groups =
            tokio::task::spawn_blocking(move || group_images(sources, sizes, &limits, background))
                .await
                .map_err(|e| Error::Internal(format!("image decoding task: {e}")))??;

        let mut latents: Vec<Option<Tensor>> = vec![None; groups.values().map(Vec::len).sum()];
        for ((is_rgb, h, w), group) in groups {
            let (indices, parsed): (Vec<usize>, Vec<Parsed>) = group.into_iter().unzip();
            let sampling = if request.sample {
                Sampling::Seeds(
                    indices
                        .iter()
                        .map(|&i| base_seed.wrapping_add(i as u64))
                        .collect(),
                )
            } else {
                Sampling::Mean
            };
            let batch = batch_of(is_rgb, parsed, h, w);
            for (index, latent) in indices
                .into_iter()
                .zip(self.codec.encode(batch, sampling).await?)
            {
                if !latent.is_finite() {
                    return Err(Error::Internal(format!(
                        "image {index}: the VAE produced non-finite latents"
                    )));
                }
                latents[index] = Some(
                    Tensor::from_f32(&latent.values, &latent.shape)
                        .map_err(|e| Error::Internal(e.to_string()))?,
                );
            }
        }
        Ok(VaeEncodeReply {
            latents: latents.into_iter().flatten().collect(),
            vae_fingerprint: self.codec.info().fingerprint.clone(),
        })
    }

    /// Validates and runs a `Decode` request.
    pub async fn decode_request(&self, request: VaeDecodeRequest) -> Result<VaeDecodeReply> {
        let info = self.codec.info().clone();
        self.check_count("latents", request.latents.len())?;
        let mut shapes = Vec::with_capacity(request.latents.len());
        for (index, tensor) in request.latents.iter().enumerate() {
            let shape = tensor.validate().map_err(|e| tensor_error(index, e))?;
            match shape.as_slice() {
                &[c, h, w] if c == info.channels && h > 0 && w > 0 => shapes.push((h, w)),
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "latent {index}: shape {other:?}, expected [{}, h, w] with h, w > 0",
                        info.channels
                    )));
                }
            }
        }
        let f = info.factor;
        self.check_pixels(shapes.iter().map(|&(h, w)| (h * f * w * f) as u64))?;

        let mut groups: ShapeGroups = BTreeMap::new();
        for (index, (tensor, (h, w))) in request.latents.iter().zip(shapes).enumerate() {
            let (values, _) = tensor.to_f32().map_err(|e| tensor_error(index, e))?;
            if values.iter().any(|v| !v.is_finite()) {
                return Err(Error::InvalidArgument(format!(
                    "latent {index}: holds NaN or infinite values"
                )));
            }
            groups.entry((h, w)).or_default().push((index, values));
        }

        let mut images: Vec<Option<RgbImage>> = vec![None; request.latents.len()];
        for ((h, w), group) in groups {
            let n = group.len();
            let (indices, values): (Vec<usize>, Vec<Vec<f32>>) = group.into_iter().unzip();
            let decoded = self
                .codec
                .decode(values.concat(), [n, info.channels, h, w])
                .await?;
            for (index, image) in indices.into_iter().zip(decoded) {
                images[index] = Some(image);
            }
        }
        let images: Vec<RgbImage> = images.into_iter().flatten().collect();
        let png_images = tokio::task::spawn_blocking(move || {
            images
                .iter()
                .map(|image| ssdit_render::encode_png(image).map_err(Error::from))
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map_err(|e| Error::Internal(format!("png encoding task: {e}")))??;
        Ok(VaeDecodeReply {
            png_images: png_images.into_iter().map(Into::into).collect(),
            vae_fingerprint: info.fingerprint,
        })
    }

    /// The limits one encoded image is read under (the pixel limit of the
    /// whole request bounds each of its images).
    fn file_limits(&self) -> ValidationConfig {
        limits(self.limits.file_bytes, self.limits.pixels)
    }

    fn check_count(&self, what: &str, count: usize) -> Result<()> {
        if count == 0 {
            return Err(Error::InvalidArgument(format!("no {what} in the request")));
        }
        if count > self.limits.items {
            return Err(Error::TooLarge(format!(
                "{count} {what} in one request, more than the limit of {}",
                self.limits.items
            )));
        }
        Ok(())
    }

    fn check_pixels(&self, pixels: impl Iterator<Item = u64>) -> Result<()> {
        let total = pixels.fold(0u64, u64::saturating_add);
        if total > self.limits.pixels {
            return Err(Error::TooLarge(format!(
                "the request holds {total} pixels, more than the limit of {}",
                self.limits.pixels
            )));
        }
        Ok(())
    }

    /// `(height, width)` of an image from its header or tensor shape.
    fn image_size(
        &self,
        index: usize,
        source: Option<&Source>,
        factor: usize,
    ) -> Result<(usize, usize)> {
        let (h, w) = match source {
            None => {
                return Err(Error::InvalidArgument(format!(
                    "image {index}: neither encoded bytes nor pixels"
                )));
            }
            Some(Source::Encoded(bytes)) => {
                let head = header(bytes, &self.file_limits()).map_err(|reason| {
                    let message = format!("image {index}: {reason}");
                    match reason.kind() {
                        RejectKind::TooManyBytes | RejectKind::TooManyPixels => {
                            Error::TooLarge(message)
                        }
                        _ => Error::InvalidArgument(message),
                    }
                })?;
                (head.height as usize, head.width as usize)
            }
            Some(Source::Pixels(tensor)) => {
                match tensor
                    .validate()
                    .map_err(|e| tensor_error(index, e))?
                    .as_slice()
                {
                    &[3, h, w] => (h, w),
                    other => {
                        return Err(Error::InvalidArgument(format!(
                            "image {index}: pixel tensor of shape {other:?}, expected [3, H, W]"
                        )));
                    }
                }
            }
        };
        if h == 0 || w == 0 || !h.is_multiple_of(factor) || !w.is_multiple_of(factor) {
            return Err(Error::InvalidArgument(format!(
                "image {index} is {w}×{h}: width and height must be positive multiples of {factor}"
            )));
        }
        Ok((h, w))
    }
}

/// One validated input image.
enum Parsed {
    Rgb(RgbImage),
    Pixels(Vec<f32>),
}

/// Input images grouped by kind and size, in request order within a group,
/// each with its index in the request.
type Groups = BTreeMap<(bool, usize, usize), Vec<(usize, Parsed)>>;

/// Decodes and checks every image of a request (`sizes` from their headers)
/// and groups them for batched encoding.
fn group_images(
    sources: Vec<Option<Source>>,
    sizes: Vec<(usize, usize)>,
    limits: &ValidationConfig,
    background: [u8; 3],
) -> Result<Groups> {
    let mut groups = Groups::new();
    for (index, (source, (h, w))) in sources.into_iter().zip(sizes).enumerate() {
        let parsed = parse_image(index, source, limits, background)?;
        let is_rgb = matches!(parsed, Parsed::Rgb(_));
        groups
            .entry((is_rgb, h, w))
            .or_default()
            .push((index, parsed));
    }
    Ok(groups)
}

/// Decodes an encoded image, or checks a pixel tensor's values.
fn parse_image(
    index: usize,
    source: Option<Source>,
    limits: &ValidationConfig,
    background: [u8; 3],
) -> Result<Parsed> {
    match source {
        Some(Source::Encoded(bytes)) => header(&bytes, limits)
            .and_then(|head| decode_rgb(&bytes, &head, limits, background))
            .map(Parsed::Rgb)
            .map_err(|e| Error::InvalidArgument(format!("image {index}: {e}"))),
        Some(Source::Pixels(tensor)) => {
            let (values, _) = tensor.to_f32().map_err(|e| tensor_error(index, e))?;
            if values.iter().any(|v| !v.is_finite()) {
                return Err(Error::InvalidArgument(format!(
                    "image {index}: pixels hold NaN or infinite values"
                )));
            }
            Ok(Parsed::Pixels(values))
        }
        None => Err(Error::InvalidArgument(format!(
            "image {index}: neither encoded bytes nor pixels"
        ))),
    }
}

/// The images of one group as one batch (every one of the same kind and size).
fn batch_of(is_rgb: bool, parsed: Vec<Parsed>, height: usize, width: usize) -> ImageBatch {
    if is_rgb {
        ImageBatch::Rgb(
            parsed
                .into_iter()
                .filter_map(|p| match p {
                    Parsed::Rgb(image) => Some(image),
                    Parsed::Pixels(_) => None,
                })
                .collect(),
        )
    } else {
        let values: Vec<Vec<f32>> = parsed
            .into_iter()
            .filter_map(|p| match p {
                Parsed::Pixels(values) => Some(values),
                Parsed::Rgb(_) => None,
            })
            .collect();
        ImageBatch::Pixels {
            n: values.len(),
            values: values.concat(),
            height,
            width,
        }
    }
}

/// A tensor that fails validation: too large is RESOURCE_EXHAUSTED, the rest
/// INVALID_ARGUMENT.
fn tensor_error(index: usize, error: ssdit_proto::Error) -> Error {
    match error {
        ssdit_proto::Error::TooLarge { .. } => Error::TooLarge(format!("tensor {index}: {error}")),
        other => Error::InvalidArgument(format!("tensor {index}: {other}")),
    }
}

#[tonic::async_trait]
impl VaeService for VaeGrpc {
    async fn encode(
        &self,
        request: Request<VaeEncodeRequest>,
    ) -> std::result::Result<Response<VaeEncodeReply>, Status> {
        let request = request.into_inner();
        let started = std::time::Instant::now();
        let count = request.images.len();
        let reply = self.encode_request(request).await?;
        tracing::info!(
            images = count,
            ms = started.elapsed().as_millis() as u64,
            "vae encode"
        );
        Ok(Response::new(reply))
    }

    async fn decode(
        &self,
        request: Request<VaeDecodeRequest>,
    ) -> std::result::Result<Response<VaeDecodeReply>, Status> {
        let request = request.into_inner();
        let started = std::time::Instant::now();
        let count = request.latents.len();
        let reply = self.decode_request(request).await?;
        tracing::info!(
            latents = count,
            ms = started.elapsed().as_millis() as u64,
            "vae decode"
        );
        Ok(Response::new(reply))
    }
}
