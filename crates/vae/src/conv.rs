//! The VAE's convolutions, lowered to matrix products on the CPU.
//!
//! burn's CPU backend (`NdArray`) convolves directly, at a few GFLOP/s: a
//! 448² FLUX encode took over 16 minutes on the 2-core CI machine (287 s
//! even with burn-ndarray's optional SIMD kernels). Lowered to im2col
//! (the input patches laid out as columns) and one matrix product per band of
//! output rows, the same convolution runs at OpenBLAS speed; the band bounds
//! the extra memory the patches take. Other backends (CUDA) keep their own
//! convolution kernels.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::ops::PadMode;
use burn::tensor::s;

/// The most bytes the im2col patches of one band of output rows may take.
const BAND_BYTES: usize = 64 << 20;

/// `conv.forward(x)`, through im2col and matrix products on the CPU backend
/// (see the module docs).
///
/// # Shapes
/// - input: `[B, C_in, H, W]`, output: `[B, C_out, H_out, W_out]`.
pub(crate) fn conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    match zero_padding(conv) {
        Some(padding) if lowers_to_gemm(conv, &x.device()) => {
            conv2d_gemm(conv, x, padding, BAND_BYTES)
        }
        _ => conv.forward(x),
    }
}

/// Whether this convolution is computed as matrix products: dense (one
/// group, no dilation) and on the CPU backend.
fn lowers_to_gemm<B: Backend>(conv: &Conv2d<B>, device: &Device<B>) -> bool {
    conv.groups == 1 && conv.dilation == [1, 1] && B::name(device) == "ndarray"
}

/// `[(top, bottom), (left, right)]` zeros around the input; `None` for
/// `Same`, whose amounts burn computes itself.
fn zero_padding<B: Backend>(conv: &Conv2d<B>) -> Option<[(usize, usize); 2]> {
    match conv.padding {
        PaddingConfig2d::Valid => Some([(0, 0); 2]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some([(top, bottom), (left, right)]),
        PaddingConfig2d::Same => None,
    }
}

/// The convolution as one matrix product per band of output rows whose
/// patches take at most `band_bytes`.
fn conv2d_gemm<B: Backend>(
    conv: &Conv2d<B>,
    x: Tensor<B, 4>,
    [vertical, horizontal]: [(usize, usize); 2],
    band_bytes: usize,
) -> Tensor<B, 4> {
    let x = x.pad(
        [(0, 0), (0, 0), vertical, horizontal],
        PadMode::Constant(0.0),
    ); // [B, C_in, H + pad, W + pad]
    let [batch, _, height, width] = x.dims();
    let [channels_out, channels_in, kernel_h, kernel_w] = conv.weight.dims();
    let [stride_h, stride_w] = conv.stride;
    let out_h = (height - kernel_h) / stride_h + 1;
    let out_w = (width - kernel_w) / stride_w + 1;
    let patch = channels_in * kernel_h * kernel_w;
    let weight = conv.weight.val().reshape([1, channels_out, patch]);
    let bias = conv
        .bias
        .as_ref()
        .map(|bias| bias.val().reshape([1, channels_out, 1]));
    let row_bytes = batch * patch * out_w * x.dtype().size();
    let band = (band_bytes / row_bytes).clamp(1, out_h);
    let geometry = Geometry {
        kernel: [kernel_h, kernel_w],
        stride: conv.stride,
        out_w,
    };
    let bands = (0..out_h)
        .step_by(band)
        .map(|first| {
            let rows = band.min(out_h - first);
            let patches = im2col(&x, &geometry, first, rows); // [B, patch, rows·W_out]
            let y = weight.clone().matmul(patches); // [B, C_out, rows·W_out]
            let y = match &bias {
                Some(bias) => y + bias.clone(),
                None => y,
            };
            y.reshape([batch, channels_out, rows, out_w])
        })
        .collect();
    Tensor::cat(bands, 2) // [B, C_out, H_out, W_out]
}

/// Kernel size, stride and output width of a lowered convolution.
struct Geometry {
    kernel: [usize; 2],
    stride: [usize; 2],
    out_w: usize,
}

/// The input patches under output rows `first..first + rows`: one column
/// per output position, ordered like the flattened `[C_in, kh, kw]` weights.
///
/// # Shapes
/// - input: `[B, C_in, H, W]` (padded), output: `[B, C_in·kh·kw, rows·W_out]`.
fn im2col<B: Backend>(
    x: &Tensor<B, 4>,
    geometry: &Geometry,
    first: usize,
    rows: usize,
) -> Tensor<B, 3> {
    let [batch, channels, _, _] = x.dims();
    let [kernel_h, kernel_w] = geometry.kernel;
    let [stride_h, stride_w] = geometry.stride;
    let out_w = geometry.out_w;
    let shifted = (0..kernel_h)
        .flat_map(|i| (0..kernel_w).map(move |j| (i, j)))
        .map(|(i, j)| {
            let top = first * stride_h + i;
            let bottom = top + (rows - 1) * stride_h + 1;
            let right = j + (out_w - 1) * stride_w + 1;
            x.clone()
                .slice(s![.., .., top..bottom;stride_h as isize, j..right;stride_w as isize])
            // [B, C_in, rows, W_out]
        })
        .collect();
    Tensor::stack::<5>(shifted, 2) // [B, C_in, kh·kw, rows, W_out]
        .reshape([batch, channels * kernel_h * kernel_w, rows * out_w])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Distribution, Tolerance};

    type B = NdArray<f32>;

    /// The lowering against burn's direct convolution, with `band_bytes`
    /// small enough to split the output into several bands.
    fn assert_matches_direct(config: Conv2dConfig, input: [usize; 4], band_bytes: usize) {
        let device = Default::default();
        let conv = config.init::<B>(&device);
        let x = Tensor::<B, 4>::random(input, Distribution::Normal(0.0, 1.0), &device);
        let padding = zero_padding(&conv).expect("explicit padding");
        let lowered = conv2d_gemm(&conv, x.clone(), padding, band_bytes);
        let direct = conv.forward(x);
        assert_eq!(lowered.dims(), direct.dims());
        lowered
            .into_data()
            .assert_approx_eq::<f32>(&direct.into_data(), Tolerance::absolute(1e-4));
    }

    #[test]
    fn a_padded_3x3_convolution_matches_burns_in_several_bands() {
        let config =
            Conv2dConfig::new([5, 7], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
        // 5·9 patch rows × 11 columns × 2 images × 4 bytes = 3960 bytes a row: 3 rows a band.
        assert_matches_direct(config, [2, 5, 9, 11], 3 * 3960);
    }

    #[test]
    fn a_strided_asymmetrically_padded_convolution_matches_burns() {
        // diffusers' Downsample2D: pad (0, 1, 0, 1), stride 2.
        let config = Conv2dConfig::new([4, 4], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(0, 0, 1, 1));
        assert_matches_direct(config, [1, 4, 10, 8], 1);
    }

    #[test]
    fn a_pointwise_convolution_without_bias_matches_burns() {
        let config = Conv2dConfig::new([6, 3], [1, 1]).with_bias(false);
        assert_matches_direct(config, [3, 6, 5, 4], BAND_BYTES);
    }

    #[test]
    fn the_cpu_backend_lowers_dense_convolutions_only() {
        let device = Default::default();
        let dense = Conv2dConfig::new([4, 4], [3, 3]).init::<B>(&device);
        let depthwise = Conv2dConfig::new([4, 4], [3, 3])
            .with_groups(4)
            .init::<B>(&device);
        assert!(lowers_to_gemm(&dense, &device));
        assert!(!lowers_to_gemm(&depthwise, &device));
    }
}
