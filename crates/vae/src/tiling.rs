//! Tiled encoding and decoding as diffusers' `AutoencoderKL.tiled_decode` /
//! `_tiled_encode` do it: overlapping tiles processed one at a time, each
//! blended linearly into the tile above and the tile to its left over the
//! overlap, then cropped and concatenated. Memory then depends on the tile
//! size, not the image size.
//!
//! The result is not exactly the untiled one: GroupNorm statistics and the
//! mid-block attention are computed per tile, and the blend only hides the
//! seams. Within one tile it is identical.

use burn::prelude::*;

use crate::{Error, Result};

/// Tile size and overlap for [`crate::Vae`]'s tiled paths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tiling {
    /// Side of a latent tile; image tiles are this times the downsample
    /// factor. Must be a multiple of 4 so the 25 % overlap is whole.
    pub latent_tile: usize,
    /// Fraction of a tile shared with its neighbour (diffusers: 0.25).
    pub overlap: f64,
}

impl Default for Tiling {
    /// 64-latent (512-pixel) tiles with diffusers' 25 % overlap. diffusers
    /// tiles FLUX at its `sample_size` (1024 px); 512 px tiles bound the
    /// decoder's activations to a quarter of that, so a 1024² or larger
    /// decode fits a 16 GB GPU in f32 with room to spare.
    fn default() -> Self {
        Self {
            latent_tile: 64,
            overlap: 0.25,
        }
    }
}

/// Geometry of one tiled pass in the input's and the output's units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TileGeometry {
    /// Input tile side.
    pub tile: usize,
    /// Distance between tile starts in the input.
    pub stride: usize,
    /// Output rows/columns blended with the previous tile.
    pub blend: usize,
    /// Output rows/columns each tile contributes.
    pub keep: usize,
}

impl Tiling {
    /// Geometry for decoding: latent tiles in, image tiles (× `factor`) out.
    pub(crate) fn decode_geometry(&self, factor: usize) -> Result<TileGeometry> {
        self.geometry(self.latent_tile, self.latent_tile * factor, factor, true)
    }

    /// Geometry for encoding: image tiles in, latent tiles out.
    pub(crate) fn encode_geometry(&self, factor: usize) -> Result<TileGeometry> {
        self.geometry(self.latent_tile * factor, self.latent_tile, factor, false)
    }

    /// diffusers' arithmetic: `stride = int(tile_in · (1 − overlap))`,
    /// `blend = int(tile_out · overlap)`, `keep = tile_out − blend`. The
    /// output is `factor` times (or a `factor`-th of) the input only when
    /// `keep` and `stride` agree, which is checked here.
    fn geometry(
        &self,
        tile_in: usize,
        tile_out: usize,
        factor: usize,
        upsamples: bool,
    ) -> Result<TileGeometry> {
        if self.latent_tile == 0 || !(0.0..0.5).contains(&self.overlap) {
            return Err(Error::Tiling(format!(
                "latent_tile {} must be positive and overlap {} in [0, 0.5)",
                self.latent_tile, self.overlap
            )));
        }
        let stride = (tile_in as f64 * (1.0 - self.overlap)) as usize;
        let blend = (tile_out as f64 * self.overlap) as usize;
        let keep = tile_out - blend;
        let consistent = if upsamples {
            stride * factor == keep
        } else {
            keep * factor == stride
        };
        if stride == 0 || !consistent {
            return Err(Error::Tiling(format!(
                "latent_tile {} with overlap {} does not tile evenly \
                 (stride {stride} in, {keep} kept out); use a multiple of 4 with overlap 0.25",
                self.latent_tile, self.overlap
            )));
        }
        Ok(TileGeometry {
            tile: tile_in,
            stride,
            blend,
            keep,
        })
    }
}

/// Applies `f` tile by tile and blends the results (diffusers' loop, with
/// each finished tile serving as the neighbour of the next, as diffusers'
/// in-place blending does). Only one row of finished tiles is held.
///
/// # Shapes
/// - x: `[B, C, H, W]`; `f` maps an input tile `[B, C, h, w]` to `[B, C', h·s, w·s]`
/// - output: `[B, C', H·s, W·s]`
pub(crate) fn tiled<B: Backend>(
    x: Tensor<B, 4>,
    geometry: TileGeometry,
    f: impl Fn(Tensor<B, 4>) -> Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    let TileGeometry {
        tile,
        stride,
        blend,
        keep,
    } = geometry;
    let mut previous_row: Vec<Tensor<B, 4>> = Vec::new();
    let mut rows = Vec::new();
    for top in (0..h).step_by(stride) {
        let mut row: Vec<Tensor<B, 4>> = Vec::new();
        for (j, left) in (0..w).step_by(stride).enumerate() {
            let input = x.clone().slice([
                0..b,
                0..c,
                top..(top + tile).min(h),
                left..(left + tile).min(w),
            ]);
            let mut out = f(input);
            if let Some(above) = previous_row.get(j) {
                out = blend_rows(above, out, blend);
            }
            if let Some(before) = row.last() {
                out = blend_columns(before, out, blend);
            }
            row.push(out);
        }
        let kept = row.iter().map(|t| crop(t, keep)).collect();
        rows.push(Tensor::cat(kept, 3));
        previous_row = row;
    }
    Tensor::cat(rows, 2)
}

/// The top-left `keep × keep` of a tile (less at the image's edges).
fn crop<B: Backend>(t: &Tensor<B, 4>, keep: usize) -> Tensor<B, 4> {
    let [b, c, h, w] = t.dims();
    t.clone()
        .slice([0..b, 0..c, 0..keep.min(h), 0..keep.min(w)])
}

/// `blend_v`: the first `extent` rows of `below` fade in from the last
/// `extent` rows of `above`: `above·(1 − y/extent) + below·(y/extent)`.
fn blend_rows<B: Backend>(
    above: &Tensor<B, 4>,
    below: Tensor<B, 4>,
    extent: usize,
) -> Tensor<B, 4> {
    let [b, c, ha, w] = above.dims();
    let hb = below.dims()[2];
    let extent = extent.min(ha).min(hb);
    if extent == 0 {
        return below;
    }
    let (fade_out, fade_in) = ramps::<B>(extent, below.dtype(), &below.device());
    let top = above.clone().slice([0..b, 0..c, ha - extent..ha, 0..w])
        * fade_out.reshape([1, 1, extent, 1])
        + below.clone().slice([0..b, 0..c, 0..extent, 0..w]) * fade_in.reshape([1, 1, extent, 1]);
    Tensor::cat(vec![top, below.slice([0..b, 0..c, extent..hb, 0..w])], 2)
}

/// `blend_h`: [`blend_rows`] along the width.
fn blend_columns<B: Backend>(
    left: &Tensor<B, 4>,
    right: Tensor<B, 4>,
    extent: usize,
) -> Tensor<B, 4> {
    let [b, c, h, wl] = left.dims();
    let wr = right.dims()[3];
    let extent = extent.min(wl).min(wr);
    if extent == 0 {
        return right;
    }
    let (fade_out, fade_in) = ramps::<B>(extent, right.dtype(), &right.device());
    let start = left.clone().slice([0..b, 0..c, 0..h, wl - extent..wl])
        * fade_out.reshape([1, 1, 1, extent])
        + right.clone().slice([0..b, 0..c, 0..h, 0..extent]) * fade_in.reshape([1, 1, 1, extent]);
    Tensor::cat(vec![start, right.slice([0..b, 0..c, 0..h, extent..wr])], 3)
}

/// `(1 − i/extent, i/extent)` for `i` in `0..extent`, each weight computed in
/// f64 and rounded once, as Python's scalar arithmetic does.
fn ramps<B: Backend>(
    extent: usize,
    dtype: burn::tensor::DType,
    device: &Device<B>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let weight = |i: usize| i as f64 / extent as f64;
    let fade_out: Vec<f32> = (0..extent).map(|i| (1.0 - weight(i)) as f32).collect();
    let fade_in: Vec<f32> = (0..extent).map(|i| weight(i) as f32).collect();
    (
        Tensor::from_data(TensorData::new(fade_out, [extent]), (device, dtype)),
        Tensor::from_data(TensorData::new(fade_in, [extent]), (device, dtype)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::upsample_nearest_2x;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    fn upsample8(x: Tensor<B, 4>) -> Tensor<B, 4> {
        upsample_nearest_2x(upsample_nearest_2x(upsample_nearest_2x(x)))
    }

    #[test]
    fn geometry_follows_diffusers_arithmetic() {
        let decode = Tiling::default().decode_geometry(8).unwrap();
        assert_eq!(
            decode,
            TileGeometry {
                tile: 64,
                stride: 48,
                blend: 128,
                keep: 384
            }
        );
        let encode = Tiling::default().encode_geometry(8).unwrap();
        assert_eq!(
            encode,
            TileGeometry {
                tile: 512,
                stride: 384,
                blend: 16,
                keep: 48
            }
        );
        for bad in [
            Tiling {
                latent_tile: 6,
                overlap: 0.25,
            },
            Tiling {
                latent_tile: 0,
                overlap: 0.25,
            },
            Tiling {
                latent_tile: 8,
                overlap: 0.7,
            },
        ] {
            assert!(bad.decode_geometry(8).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_local_map_tiles_exactly() {
        // Nearest upsampling is local, so every tile agrees with the whole on
        // its overlap and blending must reproduce the untiled result: this
        // pins the tile positions, crops and blend weights.
        let device = Default::default();
        let x = Tensor::<B, 4>::random(
            [2, 3, 13, 10],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let geometry = Tiling {
            latent_tile: 4,
            overlap: 0.25,
        }
        .decode_geometry(8)
        .unwrap();
        let whole = upsample8(x.clone());
        let tiles = tiled(x, geometry, upsample8);
        assert_eq!(tiles.dims(), [2, 3, 104, 80]);
        tiles
            .into_data()
            .assert_approx_eq::<f32>(&whole.into_data(), burn::tensor::Tolerance::absolute(1e-6));
    }

    #[test]
    fn blend_fades_linearly() {
        let device = Default::default();
        let above = Tensor::<B, 4>::ones([1, 1, 4, 1], &device);
        let below = Tensor::<B, 4>::zeros([1, 1, 4, 1], &device);
        let blended = blend_rows(&above, below, 4)
            .to_data()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(blended, vec![1.0, 0.75, 0.5, 0.25]);
    }
}
