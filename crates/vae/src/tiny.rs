//! The tiny offline VAE (`--vae tiny`): [`AutoencoderKlConfig::tiny`] with
//! weights drawn from a fixed seed, identical in every process and on every
//! backend, for machines without the FLUX weights. Its latents are not
//! meaningful; it exercises the real VAE code path at a small size.

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use crate::{AutoencoderKlConfig, Vae};

/// The seed of the tiny VAE's weights.
pub const TINY_VAE_SEED: u64 = 0x5EED_0FAE_0001;

/// Version of the tiny weights' recipe; part of the fingerprint, bumped
/// whenever the generated weights change.
const TINY_RECIPE: &str = "ssdit-tiny-vae-v1";

/// The tiny VAE on `device`: every parameter from its own seeded stream
/// (convolution and linear weights `N(0, 1/fan_in)`, norm scales one,
/// biases and shifts zero), with the seed's latent convention.
pub fn tiny_vae<B: Backend>(device: &Device<B>) -> Vae<B> {
    let config = AutoencoderKlConfig::tiny();
    let model = ssdit_weights::redraw(config.init(device), |path, dims| {
        seeded_values(TINY_VAE_SEED, path, dims)
    });
    Vae::new(model, config, tiny_vae_fingerprint())
}

/// A stable id of the tiny VAE for cache keys: its recipe version, the hash
/// of its configuration and seed.
pub fn tiny_vae_fingerprint() -> String {
    let mut hash = Fnv::default();
    hash.write(TINY_RECIPE.as_bytes());
    hash.write(AutoencoderKlConfig::tiny().to_diffusers_json().as_bytes());
    hash.write(&TINY_VAE_SEED.to_le_bytes());
    format!("tiny-vae-v1-{:016x}", hash.0)
}

/// FNV-1a, 64 bits: a dependency-free stable hash for labels and fingerprints.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Convolution and linear weights `N(0, 1/fan_in)` from the parameter's own
/// stream, norm scales (`gamma`) one, biases and shifts zero.
fn seeded_values(seed: u64, path: &str, dims: &[usize]) -> Vec<f32> {
    let count = dims.iter().product();
    match dims {
        [_] if path.ends_with("gamma") => vec![1.0; count],
        [] | [_] => vec![0.0; count],
        [_, rest @ ..] => {
            // Convolutions are [out, in, kh, kw]; burn's linear weights are [in, out].
            let fan_in: usize = if dims.len() == 2 {
                dims[0]
            } else {
                rest.iter().product()
            };
            let std = 1.0 / (fan_in.max(1) as f32).sqrt();
            let mut hash = Fnv::default();
            hash.write(&seed.to_le_bytes());
            hash.write(path.as_bytes());
            let mut rng = StdRng::seed_from_u64(hash.0);
            (0..count)
                .map(|_| std * Distribution::<f32>::sample(&StandardNormal, &mut rng))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LatentCodec, Sampling};
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    #[test]
    fn two_tiny_vaes_agree_bit_for_bit() {
        let device = Default::default();
        let images = Tensor::<B, 4>::random(
            [1, 3, 16, 16],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        let a = tiny_vae::<B>(&device);
        let b = tiny_vae::<B>(&device);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert!(a.fingerprint().starts_with("tiny-vae-v1-"));
        let za = a.encode(images.clone(), &Sampling::Mean).unwrap();
        let zb = b.encode(images, &Sampling::Mean).unwrap();
        assert_eq!(za.dims(), [1, 16, 2, 2]);
        za.to_data().assert_eq(&zb.to_data(), true);
        let values = za.to_data().to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| v.is_finite()));
        assert!(values.iter().any(|&v| v != 0.0), "weights are not all zero");
    }
}
