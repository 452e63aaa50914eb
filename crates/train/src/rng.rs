//! Every random draw of a run, derived from `(seed, purpose, epoch, index)`.
//!
//! Nothing random depends on what happened before: the data order of epoch
//! `e`, the augmentations, timesteps and noise of micro-batch `i` of epoch
//! `e`, the dropout masks of its forward pass, the validation noise — each
//! comes from its own ChaCha8 stream keyed by those numbers. A checkpoint
//! therefore only needs the position `(epoch, micro-batch)` to continue
//! exactly as an uninterrupted run would.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// What a stream is used for; part of its key so streams never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The bucket batch order of one epoch.
    DataOrder,
    /// Augmentation, text dropout, timesteps and noise of one micro-batch.
    Batch,
    /// The backend RNG seed for the dropout masks of one micro-batch.
    Dropout,
    /// The Self-E draws of one micro-batch.
    SelfEval,
    /// Validation noise of one prompt.
    Validation,
    /// Which samples are held out for the validation loss.
    Holdout,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Self::DataOrder => b"data-order",
            Self::Batch => b"batch",
            Self::Dropout => b"dropout",
            Self::SelfEval => b"self-eval",
            Self::Validation => b"validation",
            Self::Holdout => b"holdout",
        }
    }
}

/// The run's random streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    seed: u64,
}

impl Streams {
    /// The streams of a run with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// The stream for `purpose` at `(a, b)` (e.g. epoch and micro-batch).
    pub fn rng(&self, purpose: Purpose, a: u64, b: u64) -> ChaCha8Rng {
        ChaCha8Rng::from_seed(self.key(purpose, a, b))
    }

    /// A 64-bit seed for `purpose` at `(a, b)`, for RNGs outside our control
    /// (the backend's, used by dropout).
    pub fn seed(&self, purpose: Purpose, a: u64, b: u64) -> u64 {
        let key = self.key(purpose, a, b);
        u64::from_le_bytes(key[..8].try_into().expect("8 bytes"))
    }

    fn key(&self, purpose: Purpose, a: u64, b: u64) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"ssdit-train-rng-v1");
        hasher.update(&self.seed.to_le_bytes());
        hasher.update(purpose.tag());
        hasher.update(&a.to_le_bytes());
        hasher.update(&b.to_le_bytes());
        *hasher.finalize().as_bytes()
    }
}

/// `n` draws from `N(0, 1)`.
pub fn normal(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// `n` draws from `U[0, 1)`.
pub fn uniform(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random::<f32>()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let s = Streams::new(42);
        let a: Vec<f32> = normal(&mut s.rng(Purpose::Batch, 3, 7), 8);
        assert_eq!(a, normal(&mut s.rng(Purpose::Batch, 3, 7), 8));
        assert_ne!(a, normal(&mut s.rng(Purpose::Batch, 3, 8), 8));
        assert_ne!(a, normal(&mut s.rng(Purpose::SelfEval, 3, 7), 8));
        assert_ne!(
            a,
            normal(&mut Streams::new(43).rng(Purpose::Batch, 3, 7), 8)
        );
        assert_ne!(
            s.seed(Purpose::Dropout, 0, 1),
            s.seed(Purpose::Dropout, 1, 0)
        );
    }

    #[test]
    fn draws_have_the_expected_moments() {
        let mut rng = Streams::new(1).rng(Purpose::Batch, 0, 0);
        let x = normal(&mut rng, 20_000);
        let mean = x.iter().sum::<f32>() / x.len() as f32;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / x.len() as f32;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
        let u = uniform(&mut rng, 1000);
        assert!(u.iter().all(|v| (0.0..1.0).contains(v)));
    }
}
