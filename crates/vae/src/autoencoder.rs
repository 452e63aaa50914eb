//! diffusers' `AutoencoderKL` (`autoencoders/autoencoder_kl.py`) in the
//! FLUX.1 layout: no quant convs, so the encoder's output is split directly
//! into the posterior's mean and log-variance and the latent goes directly
//! into the decoder.

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use crate::decoder::Decoder;
use crate::encoder::Encoder;
use crate::{AutoencoderKlConfig, Error, Result};

/// diffusers clamps the log-variance to this range (`DiagonalGaussianDistribution`).
const LOGVAR_RANGE: (f64, f64) = (-30.0, 20.0);

/// The variational autoencoder. Field names are diffusers' checkpoint
/// prefixes (`encoder.…`, `decoder.…`).
#[derive(Module, Debug)]
pub struct AutoencoderKl<B: Backend> {
    encoder: Encoder<B>,
    decoder: Decoder<B>,
    /// Image channels the encoder takes.
    image_channels: usize,
    /// Latent channels (half the encoder's output channels).
    latent_channels: usize,
    /// Image-to-latent spatial factor.
    factor: usize,
}

impl AutoencoderKlConfig {
    /// Builds the model with randomly initialised weights (load real ones
    /// with [`crate::load_vae`]).
    ///
    /// # Panics
    /// When the configuration is invalid ([`AutoencoderKlConfig::validate`]);
    /// configurations read from files are validated when read.
    pub fn init<B: Backend>(&self, device: &Device<B>) -> AutoencoderKl<B> {
        if let Err(e) = self.validate("AutoencoderKlConfig::init") {
            panic!("{e}");
        }
        AutoencoderKl {
            encoder: Encoder::new(self, device),
            decoder: Decoder::new(self, device),
            image_channels: self.in_channels,
            latent_channels: self.latent_channels,
            factor: self.downsample_factor(),
        }
    }
}

impl<B: Backend> AutoencoderKl<B> {
    /// Encodes images to the posterior over latents (diffusers
    /// `encode(x).latent_dist`), without any latent scaling.
    ///
    /// # Shapes
    /// - images: `[B, in_channels, H, W]` in [-1, 1], H and W multiples of the
    ///   downsample factor (8 for FLUX)
    /// - posterior mean and logvar: `[B, latent_channels, H/8, W/8]`
    pub fn encode(&self, images: Tensor<B, 4>) -> Result<DiagonalGaussian<B>> {
        self.check_images(&images.dims())?;
        DiagonalGaussian::from_moments(self.encoder.forward(images))
    }

    /// Decodes latents to images (diffusers `decode(z).sample`), without any
    /// latent scaling: the caller undoes it first.
    ///
    /// # Shapes
    /// - latents: `[B, latent_channels, h, w]`
    /// - images: `[B, out_channels, 8h, 8w]`, roughly in [-1, 1]
    pub fn decode(&self, latents: Tensor<B, 4>) -> Result<Tensor<B, 4>> {
        self.check_latents(&latents.dims())?;
        Ok(self.decoder.forward(latents))
    }

    /// Checks images are `[B, in_channels, H, W]` with H, W positive multiples of the factor.
    pub(crate) fn check_images(&self, dims: &[usize; 4]) -> Result<()> {
        let [_, c, h, w] = *dims;
        let f = self.factor;
        if c != self.image_channels || h == 0 || w == 0 || h % f != 0 || w % f != 0 {
            return Err(Error::shape(
                "images to encode",
                format!(
                    "[batch, {}, H, W] with H and W positive multiples of {f}",
                    self.image_channels
                ),
                dims,
            ));
        }
        Ok(())
    }

    /// Checks latents are `[B, latent_channels, h, w]` with h, w > 0.
    pub(crate) fn check_latents(&self, dims: &[usize; 4]) -> Result<()> {
        let [_, c, h, w] = *dims;
        if c != self.latent_channels || h == 0 || w == 0 {
            return Err(Error::shape(
                "latents to decode",
                format!("[batch, {}, h, w] with h, w > 0", self.latent_channels),
                dims,
            ));
        }
        Ok(())
    }

    /// The raw encoder (no input checks), for tiling.
    pub(crate) fn encode_moments(&self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        self.encoder.forward(images)
    }

    /// The raw decoder (no input checks), for tiling.
    pub(crate) fn decode_unchecked(&self, latents: Tensor<B, 4>) -> Tensor<B, 4> {
        self.decoder.forward(latents)
    }

    /// Image-to-latent spatial factor (8 for FLUX).
    pub fn downsample_factor(&self) -> usize {
        self.factor
    }

    /// Latent channels (16 for FLUX).
    pub fn latent_channels(&self) -> usize {
        self.latent_channels
    }
}

/// The encoder's posterior: a diagonal Gaussian per latent element.
#[derive(Debug, Clone)]
pub struct DiagonalGaussian<B: Backend> {
    /// Mean, `[B, C, h, w]`.
    pub mean: Tensor<B, 4>,
    /// Log-variance clamped to [-30, 20], `[B, C, h, w]`.
    pub logvar: Tensor<B, 4>,
}

impl<B: Backend> DiagonalGaussian<B> {
    /// Splits `[B, 2C, h, w]` encoder moments into mean and clamped logvar
    /// (diffusers' `DiagonalGaussianDistribution(moments)`).
    pub fn from_moments(moments: Tensor<B, 4>) -> Result<Self> {
        let [b, c, h, w] = moments.dims();
        if c == 0 || c % 2 != 0 {
            return Err(Error::shape(
                "encoder moments",
                "[batch, 2·latent_channels, h, w]",
                &moments.dims(),
            ));
        }
        let half = c / 2;
        Ok(Self {
            mean: moments.clone().slice([0..b, 0..half, 0..h, 0..w]),
            logvar: moments
                .slice([0..b, half..c, 0..h, 0..w])
                .clamp(LOGVAR_RANGE.0, LOGVAR_RANGE.1),
        })
    }

    /// Standard deviation, `exp(0.5 · logvar)`.
    pub fn std(&self) -> Tensor<B, 4> {
        (self.logvar.clone() * 0.5).exp()
    }

    /// `mean + std · noise` for caller-provided standard-normal noise of the
    /// mean's shape.
    pub fn sample_with_noise(&self, noise: Tensor<B, 4>) -> Result<Tensor<B, 4>> {
        if noise.dims() != self.mean.dims() {
            return Err(Error::shape(
                "posterior noise",
                format!("the posterior's shape {:?}", self.mean.dims()),
                &noise.dims(),
            ));
        }
        Ok(self.mean.clone() + self.std() * noise.cast(self.mean.dtype()))
    }

    /// A sample whose noise for image `i` comes from `seeds[i]` alone: the
    /// same seed gives the same latent on every backend and machine, and
    /// whatever the image was batched with.
    pub fn sample_seeded(&self, seeds: &[u64]) -> Result<Tensor<B, 4>> {
        let noise = seeded_normal::<B>(self.mean.dims(), seeds, &self.mean.device())?;
        Ok(self.mean.clone() + self.std() * noise.cast(self.mean.dtype()))
    }
}

/// Standard-normal noise of `shape`, image `i` drawn on the host from
/// `seeds[i]` (`StdRng`), so it depends on no backend's random generator.
pub fn seeded_normal<B: Backend>(
    shape: [usize; 4],
    seeds: &[u64],
    device: &Device<B>,
) -> Result<Tensor<B, 4>> {
    if seeds.len() != shape[0] {
        return Err(Error::Input {
            what: "sampling seeds",
            expected: format!("one per image ({})", shape[0]),
            found: format!("{} seeds", seeds.len()),
        });
    }
    let per_image = shape[1..].iter().product();
    let values: Vec<f32> = seeds
        .iter()
        .flat_map(|&seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..per_image)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect::<Vec<f32>>()
        })
        .collect();
    Ok(Tensor::from_data(TensorData::new(values, shape), device))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    fn tiny() -> AutoencoderKlConfig {
        AutoencoderKlConfig::new(vec![8, 16])
            .with_layers_per_block(1)
            .with_norm_num_groups(4)
            .with_latent_channels(4)
    }

    #[test]
    fn shapes_follow_the_downsample_factor() {
        let device = Default::default();
        let vae = tiny().init::<B>(&device);
        assert_eq!(vae.downsample_factor(), 2);
        let images = Tensor::<B, 4>::zeros([2, 3, 6, 10], &device);
        let posterior = vae.encode(images).unwrap();
        assert_eq!(posterior.mean.dims(), [2, 4, 3, 5]);
        assert_eq!(posterior.logvar.dims(), [2, 4, 3, 5]);
        let decoded = vae.decode(posterior.mean).unwrap();
        assert_eq!(decoded.dims(), [2, 3, 6, 10]);
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let device = Default::default();
        let vae = tiny().init::<B>(&device);
        let err = vae
            .encode(Tensor::zeros([1, 4, 8, 8], &device))
            .unwrap_err();
        assert!(err.to_string().contains("images to encode"), "{err}");
        let err = vae
            .encode(Tensor::zeros([1, 3, 7, 8], &device))
            .unwrap_err();
        assert!(err.to_string().contains("multiples of 2"), "{err}");
        let err = vae
            .decode(Tensor::zeros([1, 3, 4, 4], &device))
            .unwrap_err();
        assert!(err.to_string().contains("latents to decode"), "{err}");
    }

    #[test]
    fn posterior_clamps_and_samples() {
        let device = Default::default();
        let moments = Tensor::<B, 1>::from_floats([1.0, -2.0, -50.0, 2.0 * 2f32.ln()], &device)
            .reshape([1, 4, 1, 1]);
        let posterior = DiagonalGaussian::from_moments(moments).unwrap();
        assert!(
            DiagonalGaussian::from_moments(Tensor::<B, 4>::zeros([1, 3, 1, 1], &device)).is_err()
        );
        let logvar = posterior.logvar.to_data().to_vec::<f32>().unwrap();
        assert_eq!(logvar, vec![-30.0, 2.0 * 2f32.ln()]);
        let zero = posterior
            .sample_with_noise(Tensor::zeros([1, 2, 1, 1], &device))
            .unwrap();
        zero.into_data().assert_eq(&posterior.mean.to_data(), true);
        let one = posterior
            .sample_with_noise(Tensor::ones([1, 2, 1, 1], &device))
            .unwrap()
            .to_data()
            .to_vec::<f32>()
            .unwrap();
        assert!((one[1] - (-2.0 + 2.0)).abs() < 1e-6, "{one:?}");
        let a = posterior.sample_seeded(&[7]).unwrap().to_data();
        let b = posterior.sample_seeded(&[7]).unwrap().to_data();
        let c = posterior.sample_seeded(&[8]).unwrap().to_data();
        a.assert_eq(&b, true);
        assert_ne!(a, c);
        assert!(posterior.sample_seeded(&[1, 2]).is_err());
        assert!(
            posterior
                .sample_with_noise(Tensor::zeros([1, 1, 1, 1], &device))
                .is_err()
        );
    }

    #[test]
    fn seeded_noise_is_standard_normal() {
        let device = Default::default();
        let noise = seeded_normal::<B>([2, 4, 32, 32], &[3, 4], &device).unwrap();
        let single = seeded_normal::<B>([1, 4, 32, 32], &[4], &device).unwrap();
        noise
            .clone()
            .slice([1..2, 0..4, 0..32, 0..32])
            .into_data()
            .assert_eq(&single.into_data(), true);
        let values = noise.to_data().to_vec::<f32>().unwrap();
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
