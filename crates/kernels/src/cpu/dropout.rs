//! Dropout's mask drawn from a counter-based generator: element `i` is kept
//! when a hash of `(seed, i)` falls below `keep · 2³²`, so blocks draw in
//! parallel and the backward pass redraws the mask from the seed alone.

use rayon::prelude::*;

/// Elements per task.
const BLOCK: usize = 16 * 1024;

/// Which elements a dropout keeps, and the scale `1 / keep` of those.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mask {
    seed: u64,
    /// Kept when the element's 32-bit draw is below this.
    threshold: u64,
    scale: f32,
}

impl Mask {
    /// Keeps each element with probability `keep` (in `(0, 1]`).
    pub fn new(seed: u64, keep: f64) -> Self {
        Self {
            seed,
            threshold: (keep * (1u64 << 32) as f64) as u64,
            scale: (1.0 / keep) as f32,
        }
    }

    /// `x[i] / keep` where kept, else 0.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; x.len()];
        out.par_chunks_mut(BLOCK)
            .zip(x.par_chunks(BLOCK))
            .enumerate()
            .for_each(|(block, (out, x))| {
                let first = (block * BLOCK) as u64;
                for (i, (out, &x)) in (first..).zip(out.iter_mut().zip(x)) {
                    *out = if self.keeps(i) { x * self.scale } else { 0.0 };
                }
            });
        out
    }

    fn keeps(&self, index: u64) -> bool {
        (splitmix64(self.seed ^ index.wrapping_mul(GOLDEN_GAMMA)) >> 32) < self.threshold
    }
}

/// SplitMix64's increment, `2⁶⁴ / φ`.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective mix of all 64 bits.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_asked_fraction_and_scales_the_rest() {
        let x = vec![2.0_f32; 200_000];
        for keep in [0.95, 0.5, 0.1] {
            let out = Mask::new(7, keep).apply(&x);
            let kept = out.iter().filter(|&&v| v != 0.0).count() as f64 / x.len() as f64;
            assert!((kept - keep).abs() < 0.005, "kept {kept} of {keep}");
            let scaled = (2.0 / keep) as f32;
            assert!(out.iter().all(|&v| v == 0.0 || v == scaled));
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_mask_and_another_seed_another() {
        let x: Vec<f32> = (1..=50_000).map(|i| i as f32).collect();
        let a = Mask::new(11, 0.9).apply(&x);
        assert_eq!(a, Mask::new(11, 0.9).apply(&x));
        assert_ne!(a, Mask::new(12, 0.9).apply(&x));
    }
}
