//! The seed's area-preserving aspect buckets and nearest-aspect selection
//! (`generate_buckets` / `get_best_bucket` in the seed's `preprocess.py`).

use crate::error::{Error, Result};

/// The seed's aspect ratios (width / height), in its order: square, 4:3 and
/// 3:4, 3:2 and 2:3, 16:9 and 9:16, 2:1 and 1:2.
pub const SEED_ASPECT_RATIOS: [f64; 9] = [1.0, 1.333, 0.75, 1.5, 0.666, 1.777, 0.562, 2.0, 0.5];
/// The reduced list the seed uses when the target resolution is at most
/// [`REDUCED_LIST_MAX_TARGET`].
pub const REDUCED_ASPECT_RATIOS: [f64; 3] = [1.0, 1.333, 0.75];
/// Largest target resolution that uses [`REDUCED_ASPECT_RATIOS`].
pub const REDUCED_LIST_MAX_TARGET: u32 = 512;

/// One bucket: the exact pixel size an image is resized to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Bucket {
    /// Width in pixels (a multiple of the stride).
    pub width: u32,
    /// Height in pixels (a multiple of the stride).
    pub height: u32,
}

impl Bucket {
    /// Width × height.
    pub fn area(self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// Width / height, as the seed computes it.
    pub fn aspect(self) -> f64 {
        f64::from(self.width) / f64::from(self.height)
    }
}

impl std::fmt::Display for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// Which buckets to generate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BucketConfig {
    /// Side of the square whose area every bucket keeps (seed: 448).
    pub target_resolution: u32,
    /// Every bucket side is a multiple of this (seed: 32, `bucket_alignment`).
    pub stride: u32,
}

impl Default for BucketConfig {
    /// The seed's configuration: 448 px, stride 32.
    fn default() -> Self {
        Self {
            target_resolution: 448,
            stride: 32,
        }
    }
}

/// The generated buckets, in the seed's order (largest area first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buckets {
    list: Vec<Bucket>,
}

impl Buckets {
    /// Generates the buckets exactly as the seed's `generate_buckets`: for each
    /// aspect ratio `ar`, `w = sqrt(area·ar)`, `h = sqrt(area/ar)`, each rounded
    /// to the nearest multiple of the stride with round-half-to-even (Python's
    /// `round`), duplicates dropped, sorted by area, largest first.
    ///
    /// Python's `set` leaves the order of equal-area buckets to its hashing;
    /// here they keep the aspect list's order. That order can only change
    /// which bucket [`Buckets::best_for`] picks if two equal-area buckets are
    /// neighbours in aspect order, which does not happen at stride 32 for
    /// any target from 256 to 2048 (checked by a test).
    pub fn generate(config: &BucketConfig) -> Result<Self> {
        let BucketConfig {
            target_resolution: target,
            stride,
        } = *config;
        if stride == 0 || target < stride {
            return Err(Error::Config {
                what: "bucket config",
                reason: format!(
                    "target resolution {target} must be at least the stride {stride} (> 0)"
                ),
            });
        }
        let ratios: &[f64] = if target <= REDUCED_LIST_MAX_TARGET {
            &REDUCED_ASPECT_RATIOS
        } else {
            &SEED_ASPECT_RATIOS
        };
        let area = f64::from(target) * f64::from(target);
        let snap = |v: f64| (v / f64::from(stride)).round_ties_even() as u32 * stride;
        let mut list: Vec<Bucket> = Vec::with_capacity(ratios.len());
        for &ar in ratios {
            let bucket = Bucket {
                width: snap((area * ar).sqrt()),
                height: snap((area / ar).sqrt()),
            };
            if bucket.width == 0 || bucket.height == 0 {
                return Err(Error::Config {
                    what: "bucket config",
                    reason: format!(
                        "target {target} with stride {stride} gives an empty bucket {bucket}"
                    ),
                });
            }
            if !list.contains(&bucket) {
                list.push(bucket);
            }
        }
        list.sort_by_key(|b| std::cmp::Reverse(b.area()));
        Ok(Self { list })
    }

    /// The bucket nearest in aspect to a `width`×`height` image, as the seed's
    /// `get_best_bucket`: the smallest `|bw/bh − w/h|`, the first in list
    /// order on ties (Python's `min`).
    pub fn best_for(&self, width: u32, height: u32) -> Bucket {
        let target = f64::from(width) / f64::from(height);
        let mut best = self.list[0];
        let mut best_distance = (best.aspect() - target).abs();
        for &bucket in &self.list[1..] {
            let distance = (bucket.aspect() - target).abs();
            if distance < best_distance {
                best = bucket;
                best_distance = distance;
            }
        }
        best
    }

    /// The buckets, largest area first.
    pub fn as_slice(&self) -> &[Bucket] {
        &self.list
    }

    /// The bucket with the smallest shorter side (what an image is upscaled to
    /// at worst).
    pub fn smallest_side(&self) -> u32 {
        self.list
            .iter()
            .map(|b| b.width.min(b.height))
            .min()
            .expect("generate never yields an empty list")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(target: u32) -> Vec<(u32, u32)> {
        Buckets::generate(&BucketConfig {
            target_resolution: target,
            stride: 32,
        })
        .unwrap()
        .as_slice()
        .iter()
        .map(|b| (b.width, b.height))
        .collect()
    }

    /// 448² = 200704. ar 1.333: √(200704·1.333) = 517.24 → 16.16·32 → 512,
    /// √(200704/1.333) = 388.03 → 12.13 → 384. ar 0.75 mirrors it.
    /// Areas: 448² = 200704 > 512·384 = 196608.
    #[test]
    fn seed_448_buckets_by_hand() {
        assert_eq!(buckets(448), [(448, 448), (512, 384), (384, 512)]);
    }

    /// 1024² = 1048576, the full list (target > 512):
    /// 1.0 → 1024x1024; 1.333 → 1182.2/886.9 → 1184x896; 0.75 → 886.8/1182.4 → 896x1184;
    /// 1.5 → 1254.1/836.1 → 1248x832; 0.666 → 835.7/1254.7 → 832x1248;
    /// 1.777 → 1365.0/768.1 → 1376x768; 0.562 → 767.7/1365.9 → 768x1376;
    /// 2.0 → 1448.2/724.1 → 1440x736; 0.5 → 736x1440.
    /// Areas: 1060864 (1184·896) > 1059840 (1440·736) > 1056768 (1376·768)
    /// > 1048576 (1024²) > 1038336 (1248·832).
    #[test]
    fn seed_1024_buckets_by_hand() {
        assert_eq!(
            buckets(1024),
            [
                (1184, 896),
                (896, 1184),
                (1440, 736),
                (736, 1440),
                (1376, 768),
                (768, 1376),
                (1024, 1024),
                (1248, 832),
                (832, 1248),
            ]
        );
    }

    /// 256² = 65536: 1.333 → 295.56/221.70 → 9.24, 6.93 → 288x224.
    #[test]
    fn seed_256_buckets_by_hand() {
        assert_eq!(buckets(256), [(256, 256), (288, 224), (224, 288)]);
    }

    /// Python's round is half-to-even: 2.5 → 2, 3.5 → 4.
    #[test]
    fn rounding_is_half_to_even() {
        // The square bucket of target 80, stride 32: √6400 = 80 → 80/32 = 2.5 → 2 → 64.
        assert!(buckets(80).contains(&(64, 64)), "{:?}", buckets(80));
        // Target 112: 112/32 = 3.5 → 4 → 128.
        assert!(buckets(112).contains(&(128, 128)), "{:?}", buckets(112));
    }

    #[test]
    fn best_bucket_is_nearest_aspect_first_on_ties() {
        let b = Buckets::generate(&BucketConfig::default()).unwrap();
        let pick = |w, h| {
            let bucket = b.best_for(w, h);
            (bucket.width, bucket.height)
        };
        assert_eq!(pick(640, 427), (512, 384)); // 1.499: |1.333−1.499| < |1−1.499|
        assert_eq!(pick(427, 640), (384, 512));
        assert_eq!(pick(512, 512), (448, 448));
        // 1.16 is nearer 1.0 (0.16) than 1.333 (0.173).
        assert_eq!(pick(116, 100), (448, 448));
        // 7x8 (0.875) is exactly 0.125 from both 1.0 and 0.75: Python's `min`
        // keeps the first in list order, the square.
        let t = 7.0 / 8.0;
        assert_eq!((1.0 - t), (t - 384.0 / 512.0));
        assert_eq!(pick(7, 8), (448, 448));
    }

    /// Equal-area buckets only matter on a tie if they are neighbours in
    /// aspect order; the seed's set order is then hash-dependent. None exist
    /// at stride 32 for targets 256…2048, so our order is the seed's choice.
    #[test]
    fn no_equal_area_aspect_neighbours_in_supported_range() {
        for target in (256..=2048).step_by(32) {
            let mut list = buckets(target);
            list.sort_by(|a, b| (a.0 as f64 / a.1 as f64).total_cmp(&(b.0 as f64 / b.1 as f64)));
            for pair in list.windows(2) {
                assert_ne!(
                    pair[0].0 * pair[0].1,
                    pair[1].0 * pair[1].1,
                    "target {target}: {pair:?}"
                );
            }
        }
    }

    #[test]
    fn invalid_configs_are_errors() {
        for (target, stride) in [(448, 0), (16, 32)] {
            let config = BucketConfig {
                target_resolution: target,
                stride,
            };
            assert!(Buckets::generate(&config).is_err(), "{target}/{stride}");
        }
    }
}
