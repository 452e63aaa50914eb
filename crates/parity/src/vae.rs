//! The VAE against diffusers' `AutoencoderKL` in the FLUX.1 layout.
//!
//! Fixture (`vae/`): `config.json` and `diffusion_pytorch_model.safetensors`
//! as diffusers' `save_pretrained` writes them (block_out_channels
//! 32/32/64/64, one layer per block, 8 groups, 16 latent channels, no quant
//! convs), and `cases.safetensors`: `image [2,3,H,W]` in [-1, 1],
//! `expected_mean`/`expected_logvar` = `encode(image).latent_dist.{mean,logvar}`,
//! `latent` and `expected_decoded` = `decode(latent).sample`, all computed in
//! float64 without latent scaling. Ours runs on the CPU (`NdArray<f32>`), or
//! on any backend with [`check_on`], and must meet the tolerance in
//! `cases.json`.

use std::path::Path;

use burn::backend::NdArray;
use burn::prelude::*;
use ssdit_vae::load_autoencoder;

use crate::{Comparison, Error, Fixture, Report, Result};

/// Loads the fixture's VAE, encodes `image` and decodes `latent`, and
/// compares mean, logvar and the decoded image with diffusers'.
pub fn check(dir: &Path) -> Result<Report> {
    check_on::<NdArray<f32>>(dir, &Default::default())
}

/// [`check`] on the backend `B`.
pub fn check_on<B: Backend>(dir: &Path, device: &Device<B>) -> Result<Report> {
    let fixture = Fixture::open(dir)?;
    let tolerance = fixture.tolerance()?;
    let model_error = |e: ssdit_vae::Error| Error::Model(e.to_string());
    let (model, config) = load_autoencoder::<B>(dir, device).map_err(model_error)?;

    let image = Tensor::<B, 4>::from_data(fixture.tensor("image")?.convert::<f32>(), device);
    let latent = Tensor::<B, 4>::from_data(fixture.tensor("latent")?.convert::<f32>(), device);
    let posterior = model.encode(image).map_err(model_error)?;
    let decoded = model.decode(latent).map_err(model_error)?;

    let mut report = Report::new(format!(
        "vae (diffusers AutoencoderKL, blocks {:?}, {} layer(s), {} groups, {} latent channels)",
        config.block_out_channels,
        config.layers_per_block,
        config.norm_num_groups,
        config.latent_channels
    ));
    for (name, got) in [
        ("expected_mean", posterior.mean),
        ("expected_logvar", posterior.logvar),
        ("expected_decoded", decoded),
    ] {
        let want = fixture.tensor(name)?;
        if got.dims().as_slice() != want.shape.as_slice() {
            return Err(fixture.error(format!(
                "{name} has shape {:?}, the model returned {:?}",
                want.shape.as_slice(),
                got.dims()
            )));
        }
        report.push(Comparison::new(name, &got.into_data(), &want, tolerance));
    }
    Ok(report)
}
