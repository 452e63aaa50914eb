//! Random DiT weights that are the same in every process: each parameter is
//! drawn on the host from its own stream, seeded by the model seed and the
//! parameter's path, so nothing depends on the backend's global generator
//! (which other threads may be using) or on the order of initialisation.
//!
//! Linear weights are `N(0, 1/fan_in)`, other multi-dimensional parameters
//! (embeddings, convolution kernels) `N(0, 0.02²)`, norm scales one, Fourier
//! gates 0.1 (the seed's value), biases zero. A model drawn this way is not
//! trained: its images are not meaningful.

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use ssdit_model::{SingleStreamDiT, SingleStreamDiTConfig};

/// A model of `config` with every weight drawn from `seed`.
pub fn random_model<B: Backend>(
    config: &SingleStreamDiTConfig,
    seed: u64,
    device: &Device<B>,
) -> ssdit_model::Result<SingleStreamDiT<B>> {
    Ok(ssdit_weights::redraw(config.init(device)?, |path, dims| {
        drawn(seed, path, dims)
    }))
}

/// The values of the parameter at `path`, by the rules above.
fn drawn(seed: u64, path: &str, dims: &[usize]) -> Vec<f32> {
    let count = dims.iter().product();
    let normal = |std: f32| -> Vec<f32> {
        let mut rng = stream(seed, path);
        (0..count)
            .map(|_| std * Distribution::<f32>::sample(&StandardNormal, &mut rng))
            .collect()
    };
    match dims {
        [_] if path.contains("norm") => vec![1.0; count],
        [_] if path.ends_with("gate") => vec![0.1; count],
        [_] => vec![0.0; count],
        [fan_in, _] => normal(1.0 / (*fan_in as f32).sqrt()),
        _ => normal(0.02),
    }
}

/// The random stream of the parameter at `path`.
fn stream(seed: u64, path: &str) -> StdRng {
    let hash = blake3::Hasher::new_derive_key("ssdit sampler random weights v1")
        .update(&seed.to_le_bytes())
        .update(path.as_bytes())
        .finalize();
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(hash.as_bytes());
    StdRng::from_seed(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    #[test]
    fn same_seed_same_weights_other_seed_other_weights() {
        let device = Default::default();
        let config = SingleStreamDiTConfig::tiny();
        let weights = |seed| {
            random_model::<B>(&config, seed, &device)
                .unwrap()
                .to_safetensors()
                .unwrap()
        };
        let a = weights(1);
        assert_eq!(a, weights(1));
        assert_ne!(a, weights(2));
        let model = random_model::<B>(&config, 1, &device).unwrap();
        let x = Tensor::<B, 4>::ones([1, 16, 4, 4], &device);
        let t = Tensor::<B, 1>::from_floats([0.5], &device);
        let text = Tensor::<B, 3>::ones([1, 3, 128], &device);
        let v = model
            .forward(x, t, text)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!(v.iter().all(|x| x.is_finite()));
        assert!(
            v.iter().any(|&x| x != 0.0),
            "the velocity depends on the input"
        );
    }
}
