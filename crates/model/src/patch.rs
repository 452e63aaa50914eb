//! Latents ↔ patch tokens, in the seed's exact layout.
//!
//! A token is one `p × p` patch of the latent, flattened channel-major:
//! feature `c·p² + i·p + j` is channel `c`, row `i`, column `j` of the patch;
//! tokens run row-major over the `H/p × W/p` grid.

use burn::prelude::*;

/// `[B, C, H, W]` → `[B, (H/p)·(W/p), C·p²]` (the seed's `patchify`).
pub(crate) fn patchify<B: Backend>(x: Tensor<B, 4>, p: usize) -> Tensor<B, 3> {
    let [batch, channels, height, width] = x.dims();
    let (h, w) = (height / p, width / p);
    x.reshape([batch, channels, h, p, w, p])
        .permute([0, 2, 4, 1, 3, 5]) // [B, h, w, C, p, p]
        .reshape([batch, h * w, channels * p * p])
}

/// `[B, h·w, C·p²]` → `[B, C, h·p, w·p]` (the seed's `unpatchify`).
pub(crate) fn unpatchify<B: Backend>(
    tokens: Tensor<B, 3>,
    h: usize,
    w: usize,
    p: usize,
    channels: usize,
) -> Tensor<B, 4> {
    let [batch, _, _] = tokens.dims();
    tokens
        .reshape([batch, h, w, channels, p, p])
        .permute([0, 3, 1, 4, 2, 5]) // [B, C, h, p, w, p]
        .reshape([batch, channels, h * p, w * p])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    fn latent(shape: [usize; 4]) -> Tensor<B, 4> {
        let n = shape.iter().product::<usize>();
        let values: Vec<f32> = (0..n).map(|i| i as f32).collect();
        Tensor::from_data(TensorData::new(values, shape), &Default::default())
    }

    #[test]
    fn round_trip_is_identity_on_a_non_square_latent() {
        let x = latent([2, 3, 6, 10]);
        let tokens = patchify(x.clone(), 2);
        assert_eq!(tokens.dims(), [2, 15, 12]);
        let back = unpatchify(tokens, 3, 5, 2, 3);
        assert_eq!(back.into_data(), x.into_data());
    }

    #[test]
    fn token_features_are_channel_major_patches_in_row_major_order() {
        let (channels, height, width, p) = (3, 4, 6, 2);
        let x = latent([1, channels, height, width]);
        let tokens = patchify(x, p).into_data().to_vec::<f32>().unwrap();
        let (h, w) = (height / p, width / p);
        let dim = channels * p * p;
        for gy in 0..h {
            for gx in 0..w {
                for c in 0..channels {
                    for i in 0..p {
                        for j in 0..p {
                            let pixel = (c * height + gy * p + i) * width + gx * p + j;
                            let feature = c * p * p + i * p + j;
                            assert_eq!(tokens[(gy * w + gx) * dim + feature], pixel as f32);
                        }
                    }
                }
            }
        }
    }
}
