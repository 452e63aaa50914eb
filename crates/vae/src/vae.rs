//! A ready-to-use FLUX VAE: the model, its configuration, the latent
//! convention, tiling, and the fingerprint that names it in cache keys.

use std::fmt;

use burn::prelude::*;

use crate::codec::{LatentCodec, Sampling};
use crate::tiling::tiled;
use crate::{AutoencoderKl, AutoencoderKlConfig, DiagonalGaussian, Result, Tiling, VaeScaling};

/// The FLUX VAE as a [`LatentCodec`]: encodes with the posterior sampled as
/// asked and scaled into cache space, decodes the inverse way. Decoding is
/// tiled ([`Tiling::default`]) once a latent is larger than one tile;
/// encoding is untiled unless [`Vae::with_encode_tiling`] says otherwise.
pub struct Vae<B: Backend> {
    model: AutoencoderKl<B>,
    config: AutoencoderKlConfig,
    scaling: VaeScaling,
    decode_tiling: Option<Tiling>,
    encode_tiling: Option<Tiling>,
    files_fingerprint: String,
    fingerprint: String,
}

impl<B: Backend> Vae<B> {
    /// Wraps a model with the seed's convention (`z · scaling_factor`) and
    /// default decode tiling. `files_fingerprint` identifies its config and
    /// weights (see [`crate::load_vae`]).
    pub fn new(
        model: AutoencoderKl<B>,
        config: AutoencoderKlConfig,
        files_fingerprint: impl Into<String>,
    ) -> Self {
        let scaling = VaeScaling::seed(&config);
        let files_fingerprint = files_fingerprint.into();
        let mut vae = Self {
            model,
            config,
            scaling,
            decode_tiling: Some(Tiling::default()),
            encode_tiling: None,
            fingerprint: String::new(),
            files_fingerprint,
        };
        vae.fingerprint = vae.compute_fingerprint();
        vae
    }

    /// Uses another latent convention (e.g. [`VaeScaling::with_shift`]).
    pub fn with_scaling(mut self, scaling: VaeScaling) -> Self {
        self.scaling = scaling;
        self.fingerprint = self.compute_fingerprint();
        self
    }

    /// Sets (or, with `None`, turns off) tiled decoding.
    pub fn with_decode_tiling(mut self, tiling: Option<Tiling>) -> Result<Self> {
        if let Some(t) = &tiling {
            t.decode_geometry(self.model.downsample_factor())?;
        }
        self.decode_tiling = tiling;
        Ok(self)
    }

    /// Sets (or turns off) tiled encoding. Tiled latents differ slightly
    /// from untiled ones, so the tiling enters the fingerprint.
    pub fn with_encode_tiling(mut self, tiling: Option<Tiling>) -> Result<Self> {
        if let Some(t) = &tiling {
            t.encode_geometry(self.model.downsample_factor())?;
        }
        self.encode_tiling = tiling;
        self.fingerprint = self.compute_fingerprint();
        Ok(self)
    }

    /// The underlying model.
    pub fn model(&self) -> &AutoencoderKl<B> {
        &self.model
    }

    /// Its configuration.
    pub fn config(&self) -> &AutoencoderKlConfig {
        &self.config
    }

    /// The latent convention between VAE space and cache space.
    pub fn scaling(&self) -> VaeScaling {
        self.scaling
    }

    /// The posterior of images (VAE space, unscaled), tiled when configured
    /// and the images are larger than one tile.
    pub fn posterior(&self, images: Tensor<B, 4>) -> Result<DiagonalGaussian<B>> {
        let factor = self.model.downsample_factor();
        let [_, _, h, w] = images.dims();
        match self.encode_tiling {
            Some(tiling) if h.max(w) > tiling.latent_tile * factor => {
                self.model.check_images(&images.dims())?;
                let geometry = tiling.encode_geometry(factor)?;
                let moments = tiled(images, geometry, |tile| self.model.encode_moments(tile));
                DiagonalGaussian::from_moments(moments)
            }
            _ => self.model.encode(images),
        }
    }

    /// Decodes VAE-space latents, tiled when they are larger than one tile.
    pub fn decode_unscaled(&self, latents: Tensor<B, 4>) -> Result<Tensor<B, 4>> {
        let [_, _, h, w] = latents.dims();
        match self.decode_tiling {
            Some(tiling) if h.max(w) > tiling.latent_tile => {
                self.model.check_latents(&latents.dims())?;
                let geometry = tiling.decode_geometry(self.model.downsample_factor())?;
                Ok(tiled(latents, geometry, |tile| {
                    self.model.decode_unchecked(tile)
                }))
            }
            _ => self.model.decode(latents),
        }
    }

    fn compute_fingerprint(&self) -> String {
        let mut id = self.files_fingerprint.clone();
        if self.scaling != VaeScaling::seed(&self.config) {
            id.push_str(&format!(
                "-scale{}-shift{}",
                self.scaling.scaling_factor, self.scaling.shift_factor
            ));
        }
        if let Some(t) = self.encode_tiling {
            id.push_str(&format!("-tile{}-overlap{}", t.latent_tile, t.overlap));
        }
        id
    }
}

impl<B: Backend> LatentCodec<B> for Vae<B> {
    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn latent_channels(&self) -> usize {
        self.model.latent_channels()
    }

    fn downsample_factor(&self) -> usize {
        self.model.downsample_factor()
    }

    fn encode(&self, images: Tensor<B, 4>, sampling: &Sampling) -> Result<Tensor<B, 4>> {
        let posterior = self.posterior(images)?;
        let latents = match sampling {
            Sampling::Mean => posterior.mean,
            Sampling::Seeds(seeds) => posterior.sample_seeded(seeds)?,
        };
        Ok(self.scaling.scale(latents))
    }

    fn decode(&self, latents: Tensor<B, 4>) -> Result<Tensor<B, 4>> {
        self.decode_unscaled(self.scaling.unscale(latents))
    }
}

impl<B: Backend> fmt::Display for Vae<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FLUX AutoencoderKL ({:?} channels, {} latent channels, scaling {}, shift {}) [{}]",
            self.config.block_out_channels,
            self.config.latent_channels,
            self.scaling.scaling_factor,
            self.scaling.shift_factor,
            self.fingerprint
        )
    }
}

impl<B: Backend> fmt::Debug for Vae<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vae({self})")
    }
}
