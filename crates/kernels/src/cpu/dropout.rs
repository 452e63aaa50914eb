//! Dropout's mask drawn from a counter-based generator: element `i` is kept
//! when a hash of `(seed, i)` falls below `keep · 2³²`, so blocks draw in
//! parallel and the backward pass redraws the mask from the seed alone.
//!
//! Each block of elements gets a 64-bit key from SplitMix64 of `(seed,
//! block)`; within the block, an element's draw is two rounds of a 32-bit
//! integer hash keyed by the two halves of that key. Only 32-bit lanes, so
//! the inner loop vectorises on AVX2 (eight draws per instruction).

use rayon::prelude::*;

/// Elements per task (and per block key); below 2³², so an element's offset
/// in its block is a `u32`.
const BLOCK: usize = 16 * 1024;

/// Which elements a dropout keeps, and the scale `1 / keep` of those.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mask {
    seed: u64,
    /// Kept when the element's 32-bit draw is at most this.
    last_kept: u32,
    scale: f32,
}

impl Mask {
    /// Keeps each element with probability `keep` (in `(0, 1]`).
    pub fn new(seed: u64, keep: f64) -> Self {
        let kept_draws = (keep * (1u64 << 32) as f64).ceil().max(1.0) as u64;
        Self {
            seed,
            last_kept: (kept_draws - 1) as u32,
            scale: (1.0 / keep) as f32,
        }
    }

    /// `x[i] / keep` where kept, else 0.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; x.len()];
        out.par_chunks_mut(BLOCK)
            .zip(x.par_chunks(BLOCK))
            .enumerate()
            .for_each(|(block, (out, x))| self.apply_block(block as u64, x, out));
        out
    }

    fn apply_block(&self, block: u64, x: &[f32], out: &mut [f32]) {
        let key = splitmix64(self.seed ^ block.wrapping_mul(GOLDEN_GAMMA));
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { self.apply_keyed_avx2(key, x, out) };
        }
        self.apply_keyed(key, x, out);
    }

    /// [`Self::apply_keyed`] compiled for AVX2's 32-bit lane multiplies: the
    /// baseline x86-64 build has none, and emulates them slower than the
    /// scalar loop.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn apply_keyed_avx2(&self, key: u64, x: &[f32], out: &mut [f32]) {
        self.apply_keyed(key, x, out);
    }

    #[inline(always)]
    fn apply_keyed(&self, key: u64, x: &[f32], out: &mut [f32]) {
        let (low, high) = (key as u32, (key >> 32) as u32);
        for (offset, (out, &x)) in (0u32..).zip(out.iter_mut().zip(x)) {
            let draw = hash32(hash32(offset ^ low) ^ high);
            *out = if draw <= self.last_kept {
                x * self.scale
            } else {
                0.0
            };
        }
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

/// A bijective mix of 32 bits with low bias (Wellons' `lowbias32`).
#[inline(always)]
fn hash32(mut z: u32) -> u32 {
    z ^= z >> 16;
    z = z.wrapping_mul(0x7FEB_352D);
    z ^= z >> 15;
    z = z.wrapping_mul(0x846C_A68B);
    z ^ (z >> 16)
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
    fn keeping_everything_keeps_everything() {
        let x: Vec<f32> = (1..=40_000).map(|i| i as f32).collect();
        assert_eq!(Mask::new(3, 1.0).apply(&x), x);
    }

    /// Neighbours, the same offset in two blocks, and the two halves of a
    /// block are kept together as often as independent draws would be.
    #[test]
    fn draws_are_independent_within_and_across_blocks() {
        let keep = 0.5;
        let kept: Vec<bool> = Mask::new(5, keep)
            .apply(&vec![1.0; 8 * BLOCK])
            .iter()
            .map(|&v| v != 0.0)
            .collect();
        let both = |pairs: &mut dyn Iterator<Item = (bool, bool)>| {
            let (mut together, mut total) = (0, 0);
            for (a, b) in pairs {
                together += usize::from(a && b);
                total += 1;
            }
            together as f64 / total as f64
        };
        let neighbours = both(&mut kept.windows(2).map(|w| (w[0], w[1])));
        let across_blocks = both(&mut kept.iter().zip(&kept[BLOCK..]).map(|(&a, &b)| (a, b)));
        let halves = both(&mut kept.iter().zip(&kept[BLOCK / 2..]).map(|(&a, &b)| (a, b)));
        for (what, rate) in [
            ("neighbours", neighbours),
            ("across blocks", across_blocks),
            ("half a block apart", halves),
        ] {
            assert!((rate - keep * keep).abs() < 0.01, "{what}: {rate}");
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
