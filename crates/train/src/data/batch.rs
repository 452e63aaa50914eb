//! One micro-batch as the model sees it, with the seed's per-sample
//! processing (`TextImageDataset.__getitem__`): latent normalisation
//! `(x − mean)/std`, an optional horizontal flip in latent space with
//! probability ½, and text dropout to the all-zero embedding.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::SampleTensors;

/// The per-sample processing of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchOptions {
    pub latent_mean: f32,
    pub latent_std: f32,
    /// Flip latents left–right with probability ½.
    pub flip: bool,
    /// Probability of replacing a caption by the all-zero embedding.
    pub text_dropout: f64,
}

/// A stacked micro-batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Normalised latents, `[B, C, h, w]` row-major.
    pub latents: Vec<f32>,
    pub latent_shape: [usize; 4],
    /// Caption embeddings (zeros where dropped), `[B, L, D]` row-major.
    pub text: Vec<f32>,
    pub text_shape: [usize; 3],
    /// Samples whose caption was dropped.
    pub dropped: usize,
    /// Samples flipped.
    pub flipped: usize,
}

/// Stacks `samples` (one bucket: same shapes) with the augmentations drawn
/// from `rng`, two draws per sample in order: flip (when enabled), then dropout.
pub fn assemble(samples: &[SampleTensors], options: &BatchOptions, rng: &mut ChaCha8Rng) -> Batch {
    let [c, h, w] = samples[0].latent_shape;
    let [l, d] = samples[0].embedding_shape;
    let mut batch = Batch {
        latents: Vec::with_capacity(samples.len() * c * h * w),
        latent_shape: [samples.len(), c, h, w],
        text: Vec::with_capacity(samples.len() * l * d),
        text_shape: [samples.len(), l, d],
        dropped: 0,
        flipped: 0,
    };
    let inv_std = 1.0 / options.latent_std;
    for sample in samples {
        let flip = options.flip && rng.random::<f32>() < 0.5;
        let drop = rng.random::<f64>() < options.text_dropout;
        let normalised = sample
            .latent
            .iter()
            .map(|v| (v - options.latent_mean) * inv_std);
        if flip {
            let rows: Vec<f32> = normalised.collect();
            for row in rows.chunks_exact(w) {
                batch.latents.extend(row.iter().rev());
            }
            batch.flipped += 1;
        } else {
            batch.latents.extend(normalised);
        }
        if drop {
            batch.text.extend(std::iter::repeat_n(0.0, l * d));
            batch.dropped += 1;
        } else {
            batch.text.extend_from_slice(&sample.embedding);
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Purpose, Streams};

    fn sample(offset: f32) -> SampleTensors {
        SampleTensors {
            latent: (0..12).map(|i| i as f32 + offset).collect(),
            latent_shape: [2, 2, 3],
            embedding: vec![1.0 + offset; 4],
            embedding_shape: [2, 2],
        }
    }

    fn options(flip: bool, text_dropout: f64) -> BatchOptions {
        BatchOptions {
            latent_mean: 1.0,
            latent_std: 2.0,
            flip,
            text_dropout,
        }
    }

    #[test]
    fn normalises_and_stacks_without_augmentation() {
        let mut rng = Streams::new(0).rng(Purpose::Batch, 0, 0);
        let batch = assemble(
            &[sample(0.0), sample(100.0)],
            &options(false, 0.0),
            &mut rng,
        );
        assert_eq!(batch.latent_shape, [2, 2, 2, 3]);
        assert_eq!(batch.text_shape, [2, 2, 2]);
        assert_eq!(batch.latents[..3], [-0.5, 0.0, 0.5]);
        assert_eq!(batch.latents[12], (100.0 - 1.0) / 2.0);
        assert_eq!(batch.text[4..], [101.0; 4]);
        assert_eq!((batch.dropped, batch.flipped), (0, 0));
    }

    #[test]
    fn flips_reverse_rows_and_dropout_zeroes_captions() {
        let mut rng = Streams::new(0).rng(Purpose::Batch, 0, 0);
        let batch = assemble(&[sample(0.0)], &options(true, 1.0), &mut rng);
        assert_eq!(batch.dropped, 1);
        assert!(batch.text.iter().all(|&v| v == 0.0));
        // Over many draws about half the samples flip; a flipped row is reversed.
        let samples: Vec<SampleTensors> = (0..400).map(|_| sample(1.0)).collect();
        let batch = assemble(&samples, &options(true, 0.15), &mut rng);
        assert!((150..250).contains(&batch.flipped), "{}", batch.flipped);
        assert!((30..100).contains(&batch.dropped), "{}", batch.dropped);
        let first_rows: Vec<&[f32]> = batch.latents.chunks_exact(12).map(|s| &s[..3]).collect();
        assert!(first_rows.contains(&&[1.0, 0.5, 0.0][..]));
        assert!(first_rows.contains(&&[0.0, 0.5, 1.0][..]));
    }
}
