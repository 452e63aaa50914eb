//! diffusers `ResnetBlock2D` (no time embedding), `Downsample2D` and
//! `Upsample2D` as the VAE uses them.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::conv::conv2d;
use crate::ops::{group_norm, upsample_nearest_2x};

/// GroupNorm epsilon of every VAE norm (`resnet_eps=1e-6` in diffusers' Encoder/Decoder).
pub(crate) const NORM_EPS: f64 = 1e-6;

/// A GroupNorm as the VAE builds them.
pub(crate) fn norm_config(groups: usize, channels: usize) -> GroupNormConfig {
    GroupNormConfig::new(groups, channels).with_epsilon(NORM_EPS)
}

/// A 3×3 convolution with padding 1 (`nn.Conv2d(in, out, 3, padding=1)`).
pub(crate) fn conv3x3(channels_in: usize, channels_out: usize) -> Conv2dConfig {
    Conv2dConfig::new([channels_in, channels_out], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
}

/// Pre-norm residual block: `x + conv2(silu(norm2(conv1(silu(norm1(x))))))`,
/// with a 1×1 `conv_shortcut` on `x` when the channel count changes.
/// diffusers' `output_scale_factor` is 1 and dropout 0 in the VAE.
///
/// # Shapes
/// - input: `[B, C_in, H, W]`, output: `[B, C_out, H, W]`.
#[derive(Module, Debug)]
pub(crate) struct ResnetBlock2D<B: Backend> {
    norm1: GroupNorm<B>,
    conv1: Conv2d<B>,
    norm2: GroupNorm<B>,
    conv2: Conv2d<B>,
    conv_shortcut: Option<Conv2d<B>>,
}

impl<B: Backend> ResnetBlock2D<B> {
    pub(crate) fn new(
        channels_in: usize,
        channels_out: usize,
        groups: usize,
        device: &Device<B>,
    ) -> Self {
        Self {
            norm1: norm_config(groups, channels_in).init(device),
            conv1: conv3x3(channels_in, channels_out).init(device),
            norm2: norm_config(groups, channels_out).init(device),
            conv2: conv3x3(channels_out, channels_out).init(device),
            conv_shortcut: (channels_in != channels_out)
                .then(|| Conv2dConfig::new([channels_in, channels_out], [1, 1]).init(device)),
        }
    }

    pub(crate) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = conv2d(&self.conv1, silu(group_norm(&self.norm1, x.clone()))); // [B, C_out, H, W]
        let h = conv2d(&self.conv2, silu(group_norm(&self.norm2, h)));
        let shortcut = match &self.conv_shortcut {
            Some(conv) => conv2d(conv, x), // [B, C_out, H, W]
            None => x,
        };
        shortcut + h
    }
}

/// Stride-2 3×3 convolution after padding one zero row at the bottom and one
/// zero column at the right (diffusers' `Downsample2D` with `padding=0`:
/// `F.pad(x, (0, 1, 0, 1))`).
///
/// # Shapes
/// - input: `[B, C, H, W]`, output: `[B, C, ⌊(H − 2) / 2⌋ + 1, ⌊(W − 2) / 2⌋ + 1]`
///   (`H/2 × W/2` for even sizes).
#[derive(Module, Debug)]
pub(crate) struct Downsample2D<B: Backend> {
    conv: Conv2d<B>,
}

impl<B: Backend> Downsample2D<B> {
    pub(crate) fn new(channels: usize, device: &Device<B>) -> Self {
        // Explicit(top, left, bottom, right): the asymmetric (0, 1, 0, 1) pad.
        let conv = Conv2dConfig::new([channels, channels], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(0, 0, 1, 1))
            .init(device);
        Self { conv }
    }

    pub(crate) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv2d(&self.conv, x)
    }
}

/// Nearest ×2 upsampling followed by a 3×3 convolution (diffusers'
/// `Upsample2D(use_conv=True)`).
///
/// # Shapes
/// - input: `[B, C, H, W]`, output: `[B, C, 2H, 2W]`.
#[derive(Module, Debug)]
pub(crate) struct Upsample2D<B: Backend> {
    conv: Conv2d<B>,
}

impl<B: Backend> Upsample2D<B> {
    pub(crate) fn new(channels: usize, device: &Device<B>) -> Self {
        Self {
            conv: conv3x3(channels, channels).init(device),
        }
    }

    pub(crate) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv2d(&self.conv, upsample_nearest_2x(x))
    }
}
