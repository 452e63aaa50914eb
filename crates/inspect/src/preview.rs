//! `ssdit dataset preview`: cached latents decoded back to images through a
//! codec and laid out on a contact sheet with their captions — the seed's
//! `scripts/check_cache.py` (which decodes one cached file to
//! `cache_verification.png`) for many samples at once.
//!
//! Reading is async (the store); decoding is model compute and is done by
//! the caller on a blocking thread ([`decode_tiles`] is synchronous).

use burn::prelude::*;
use burn::tensor::TensorData;
use image::RgbImage;
use ssdit_dataset::{Dataset, SampleRecord};
use ssdit_render::{SheetStyle, Tile, contact_sheet};
use ssdit_store::{F32Tensor, layout};
use ssdit_vae::{LatentCodec, tensor_to_images};

use crate::tensors::{LATENT_NAMES, read};
use crate::{Error, Result};

/// One sample to preview: its record, cached latent and caption.
#[derive(Debug, Clone)]
pub struct PreviewSample {
    pub record: SampleRecord,
    /// Where the latent was read.
    pub key: String,
    /// `[C, h, w]` in cache space.
    pub latent: F32Tensor,
    pub caption: Option<String>,
}

/// The samples `ids` name (full ids or unambiguous prefixes), or when none
/// are given the first `limit` samples (in id order) that have a latent of
/// VAE `vae`. A named sample without such a latent is an error.
pub async fn load_samples(
    dataset: &Dataset,
    vae: &str,
    ids: &[String],
    limit: usize,
) -> Result<Vec<PreviewSample>> {
    let all = dataset.samples().await?;
    let chosen: Vec<&SampleRecord> = if ids.is_empty() {
        all.iter().collect()
    } else {
        ids.iter()
            .map(|id| find(&all, id, dataset.name()))
            .collect::<Result<_>>()?
    };
    let mut samples = Vec::new();
    for record in chosen {
        if ids.is_empty() && samples.len() >= limit {
            break;
        }
        let key = layout::latent(&record.id, vae, record.bucket.width, record.bucket.height)?;
        if ids.is_empty() && !dataset.store().exists(&key).await? {
            continue;
        }
        let latent = read(
            dataset.store(),
            &key,
            &LATENT_NAMES,
            3,
            &record.id,
            "latent",
        )
        .await?;
        samples.push(PreviewSample {
            record: record.clone(),
            key: key.to_string(),
            latent,
            caption: dataset.caption(record).await?,
        });
    }
    if samples.is_empty() {
        return Err(Error::Input(format!(
            "dataset {} has no sample with a latent of VAE {vae} to preview",
            dataset.name()
        )));
    }
    Ok(samples)
}

/// The sample `id` names: an exact id or a prefix of exactly one.
fn find<'a>(samples: &'a [SampleRecord], id: &str, dataset: &str) -> Result<&'a SampleRecord> {
    if let Some(exact) = samples.iter().find(|s| s.id == id) {
        return Ok(exact);
    }
    let matches: Vec<&SampleRecord> = samples.iter().filter(|s| s.id.starts_with(id)).collect();
    match matches.as_slice() {
        [one] if !id.is_empty() => Ok(*one),
        [] | [_] => Err(Error::Input(format!(
            "dataset {dataset} has no sample {id:?}"
        ))),
        several => Err(Error::Input(format!(
            "sample id {id:?} is ambiguous in dataset {dataset}: {} samples start with it",
            several.len()
        ))),
    }
}

/// Decodes each sample's latent (one at a time) into a tile captioned with
/// its source, bucket and caption.
pub fn decode_tiles<B: Backend>(
    codec: &dyn LatentCodec<B>,
    samples: &[PreviewSample],
    device: &Device<B>,
) -> Result<Vec<Tile>> {
    samples
        .iter()
        .map(|sample| {
            let image = decode_one(codec, sample, device)?;
            let caption = sample.caption.as_deref().unwrap_or("(no caption)");
            let label = format!(
                "{} {}: {caption}",
                sample.record.source, sample.record.bucket
            );
            Ok(Tile::new(image, label))
        })
        .collect()
}

fn decode_one<B: Backend>(
    codec: &dyn LatentCodec<B>,
    sample: &PreviewSample,
    device: &Device<B>,
) -> Result<RgbImage> {
    let fail = |reason: String| Error::SampleData {
        sample_id: sample.record.id.clone(),
        what: "latent",
        key: sample.key.clone(),
        reason,
    };
    let &[channels, height, width] = sample.latent.shape() else {
        return Err(fail(format!(
            "shape {:?}, expected [channels, height, width]",
            sample.latent.shape()
        )));
    };
    if channels != codec.latent_channels() {
        return Err(fail(format!(
            "{channels} channels, but codec {codec} decodes {}",
            codec.latent_channels()
        )));
    }
    let data = TensorData::new(sample.latent.data().to_vec(), [1, channels, height, width]);
    let latent = Tensor::<B, 4>::from_data(data, device);
    let decoded = codec.decode(latent)?;
    Ok(tensor_to_images(decoded)?.remove(0))
}

/// The contact sheet of `tiles`, titled with the dataset and codec.
pub fn sheet(dataset: &str, codec: &str, tiles: &[Tile], columns: usize) -> Result<RgbImage> {
    let style = SheetStyle {
        columns,
        title: Some(format!(
            "dataset {dataset}: {} cached latents decoded by {codec}",
            tiles.len()
        )),
        ..SheetStyle::default()
    };
    Ok(contact_sheet(tiles, &style)?)
}
