//! DPID: Rapid, Detail-Preserving Image Downscaling (Weber, Waechter, Amend,
//! Guthe, Goesele; ACM TOG 35(6), 2016).
//!
//! Every output pixel `p` covers a footprint `Ω_p` of the input (`sx × sy`
//! input pixels for scale factors `sx = W/w`, `sy = H/h`). The algorithm:
//!
//! 1. `A` = box downscale: the coverage-weighted mean of each footprint.
//! 2. Guidance `Ĩ` = `A` convolved with the 3×3 kernel `[1 2 1]ᵀ[1 2 1] / 16`
//!    (weights renormalised at the borders).
//! 3. `O(p) = Σ_{q∈Ω_p} c(q) · ‖I(q) − Ĩ(p)‖^λ · I(q) / Σ_{q∈Ω_p} c(q) · ‖I(q) − Ĩ(p)‖^λ`,
//!    with `c(q)` the fraction of input pixel `q` inside the footprint (the
//!    exact overlap for non-integer scale factors) and `‖·‖` the Euclidean
//!    RGB distance. Pixels that differ from their surroundings weigh more,
//!    so thin lines and small highlights survive instead of being averaged
//!    away. When the whole footprint equals the guidance the weights vanish
//!    and `O(p) = Ĩ(p)`.
//!
//! `λ = 0` is a box filter; larger `λ` preserves more detail. The paper and
//! the seed's tool (DatasetHelpers) use `λ = 0.5` by default. Every output is a
//! convex combination of input pixels, so it stays within the input's range.

use image::RgbImage;

use crate::error::{Error, Result};

/// The default detail exponent λ.
pub const DEFAULT_LAMBDA: f32 = 0.5;

/// Input pixels covered by one output pixel along one axis, with coverage.
struct Footprints {
    /// `starts[o]..starts[o + 1]` indexes `taps` for output index `o`.
    starts: Vec<usize>,
    /// (input index, fraction of that input pixel inside the footprint).
    taps: Vec<(usize, f32)>,
}

impl Footprints {
    /// Footprints of `output` cells over `input` pixels (`output <= input`).
    fn new(input: u32, output: u32) -> Self {
        let scale = f64::from(input) / f64::from(output);
        let mut starts = Vec::with_capacity(output as usize + 1);
        let mut taps = Vec::new();
        for o in 0..output {
            starts.push(taps.len());
            let begin = f64::from(o) * scale;
            let end = (f64::from(o + 1) * scale).min(f64::from(input));
            let first = begin.floor() as usize;
            let last = (end.ceil() as usize).min(input as usize);
            for i in first..last {
                let coverage = ((i + 1) as f64).min(end) - (i as f64).max(begin);
                if coverage > 0.0 {
                    taps.push((i, coverage as f32));
                }
            }
        }
        starts.push(taps.len());
        Self { starts, taps }
    }

    fn of(&self, o: usize) -> &[(usize, f32)] {
        &self.taps[self.starts[o]..self.starts[o + 1]]
    }
}

/// A row-major RGB image of `f32` samples.
struct Planar {
    width: usize,
    data: Vec<[f32; 3]>,
}

impl Planar {
    fn at(&self, x: usize, y: usize) -> [f32; 3] {
        self.data[y * self.width + x]
    }
}

/// Downscales `src` to `width`×`height` with DPID and detail exponent `lambda`.
///
/// Both output sides must be at most the input's (DPID only reduces); the
/// aspect ratio may change (each axis has its own scale factor).
pub fn dpid(src: &RgbImage, width: u32, height: u32, lambda: f32) -> Result<RgbImage> {
    let (src_w, src_h) = src.dimensions();
    let reason = if width == 0 || height == 0 {
        Some("the output must not be empty")
    } else if width > src_w || height > src_h {
        Some("DPID only downscales")
    } else if !(lambda.is_finite() && lambda >= 0.0) {
        Some("lambda must be finite and non-negative")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(Error::Resize {
            from_width: src_w,
            from_height: src_h,
            to_width: width,
            to_height: height,
            reason,
        });
    }
    let xs = Footprints::new(src_w, width);
    let ys = Footprints::new(src_h, height);
    let src = Source::new(src);
    let guidance = smooth(
        &box_downscale(&src, &xs, &ys, width, height),
        height as usize,
    );
    Ok(weighted(&src, &xs, &ys, &guidance, lambda, width, height))
}

/// The input as a flat sample slice, read without per-pixel bounds juggling.
struct Source<'a> {
    raw: &'a [u8],
    width: usize,
}

impl<'a> Source<'a> {
    fn new(src: &'a RgbImage) -> Self {
        Self {
            raw: src.as_raw(),
            width: src.width() as usize,
        }
    }

    #[inline]
    fn at(&self, x: usize, y: usize) -> [f32; 3] {
        let i = (y * self.width + x) * 3;
        let p = &self.raw[i..i + 3];
        [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]
    }
}

/// Step 1: the coverage-weighted mean of each footprint.
fn box_downscale(src: &Source<'_>, xs: &Footprints, ys: &Footprints, w: u32, h: u32) -> Planar {
    let (w, h) = (w as usize, h as usize);
    let mut data = vec![[0.0f32; 3]; w * h];
    for oy in 0..h {
        for ox in 0..w {
            let mut sum = [0.0f32; 3];
            let mut weight = 0.0f32;
            for &(iy, wy) in ys.of(oy) {
                for &(ix, wx) in xs.of(ox) {
                    let c = wx * wy;
                    let p = src.at(ix, iy);
                    for k in 0..3 {
                        sum[k] += p[k] * c;
                    }
                    weight += c;
                }
            }
            data[oy * w + ox] = sum.map(|s| s / weight);
        }
    }
    Planar { width: w, data }
}

/// Step 2: the 3×3 binomial blur of the box-downscaled image.
fn smooth(avg: &Planar, height: usize) -> Planar {
    const KERNEL: [f32; 3] = [1.0, 2.0, 1.0];
    let w = avg.width;
    let mut data = vec![[0.0f32; 3]; w * height];
    for y in 0..height {
        for x in 0..w {
            let mut sum = [0.0f32; 3];
            let mut weight = 0.0f32;
            for (dy, ky) in KERNEL.iter().enumerate() {
                let Some(ny) = (y + dy).checked_sub(1).filter(|&v| v < height) else {
                    continue;
                };
                for (dx, kx) in KERNEL.iter().enumerate() {
                    let Some(nx) = (x + dx).checked_sub(1).filter(|&v| v < w) else {
                        continue;
                    };
                    let k = ky * kx;
                    let p = avg.at(nx, ny);
                    for c in 0..3 {
                        sum[c] += p[c] * k;
                    }
                    weight += k;
                }
            }
            data[y * w + x] = sum.map(|s| s / weight);
        }
    }
    Planar { width: w, data }
}

/// `‖d‖^λ` from the squared distance `d2`, with fast paths for common λ.
#[inline]
fn detail_weight(d2: f32, lambda: f32) -> f32 {
    if lambda == 0.5 {
        d2.sqrt().sqrt()
    } else if lambda == 1.0 {
        d2.sqrt()
    } else if lambda == 0.0 {
        1.0
    } else {
        d2.powf(lambda * 0.5)
    }
}

/// Step 3: the detail-weighted mean of each footprint around its guidance.
fn weighted(
    src: &Source<'_>,
    xs: &Footprints,
    ys: &Footprints,
    guidance: &Planar,
    lambda: f32,
    w: u32,
    h: u32,
) -> RgbImage {
    let mut out = RgbImage::new(w, h);
    for oy in 0..h as usize {
        for ox in 0..w as usize {
            let g = guidance.at(ox, oy);
            let mut sum = [0.0f32; 3];
            let mut weight = 0.0f32;
            for &(iy, wy) in ys.of(oy) {
                for &(ix, wx) in xs.of(ox) {
                    let p = src.at(ix, iy);
                    let d2 = (p[0] - g[0]).powi(2) + (p[1] - g[1]).powi(2) + (p[2] - g[2]).powi(2);
                    let c = wx * wy * detail_weight(d2, lambda);
                    for k in 0..3 {
                        sum[k] += p[k] * c;
                    }
                    weight += c;
                }
            }
            let value = if weight > 0.0 {
                sum.map(|s| s / weight)
            } else {
                g
            };
            out.put_pixel(ox as u32, oy as u32, image::Rgb(value.map(to_u8)));
        }
    }
    out
}

fn to_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footprints_cover_each_input_pixel_exactly_once() {
        for (input, output) in [(10, 3), (640, 512), (7, 7), (1000, 1), (427, 384)] {
            let f = Footprints::new(input, output);
            let mut coverage = vec![0.0f64; input as usize];
            for o in 0..output as usize {
                for &(i, c) in f.of(o) {
                    coverage[i] += f64::from(c);
                }
            }
            for (i, c) in coverage.iter().enumerate() {
                assert!(
                    (c - 1.0).abs() < 1e-5,
                    "{input}->{output}: pixel {i} covered {c}"
                );
            }
        }
    }

    #[test]
    fn fractional_footprints_by_hand() {
        // 5 → 2: scale 2.5, cell 0 = [0, 2.5), cell 1 = [2.5, 5).
        let f = Footprints::new(5, 2);
        assert_eq!(f.of(0), [(0, 1.0), (1, 1.0), (2, 0.5)]);
        assert_eq!(f.of(1), [(2, 0.5), (3, 1.0), (4, 1.0)]);
    }

    #[test]
    fn lambda_zero_is_the_box_filter() {
        let src = RgbImage::from_fn(9, 6, |x, y| image::Rgb([(x * 30) as u8, (y * 40) as u8, 7]));
        let out = dpid(&src, 3, 2, 0.0).unwrap();
        // Cell (0, 0) averages x 0..3, y 0..3: mean x = 1, mean y = 1.
        assert_eq!(out.get_pixel(0, 0).0, [30, 40, 7]);
        assert_eq!(out.get_pixel(2, 1).0, [210, 160, 7]);
    }

    #[test]
    fn refuses_upscaling_and_bad_lambda() {
        let src = RgbImage::new(8, 8);
        assert!(dpid(&src, 9, 4, 0.5).is_err());
        assert!(dpid(&src, 4, 0, 0.5).is_err());
        assert!(dpid(&src, 4, 4, f32::NAN).is_err());
        assert!(dpid(&src, 4, 4, -1.0).is_err());
    }
}
