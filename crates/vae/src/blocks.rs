//! diffusers' `DownEncoderBlock2D`, `UpDecoderBlock2D` and `UNetMidBlock2D`
//! (`unets/unet_2d_blocks.py`) as the VAE uses them. `Vec` fields mirror
//! diffusers' `nn.ModuleList`s so parameter paths equal checkpoint names
//! (`down_blocks.0.downsamplers.0.conv.weight`).

use burn::prelude::*;

use crate::attention::Attention;
use crate::resnet::{Downsample2D, ResnetBlock2D, Upsample2D};

/// `layers` resnets, then an optional stride-2 downsampler.
///
/// # Shapes
/// - input: `[B, C_in, H, W]`, output: `[B, C_out, H/2, W/2]` (or `[B, C_out, H, W]`
///   for the last block, which does not downsample).
#[derive(Module, Debug)]
pub(crate) struct DownEncoderBlock2D<B: Backend> {
    resnets: Vec<ResnetBlock2D<B>>,
    downsamplers: Vec<Downsample2D<B>>,
}

impl<B: Backend> DownEncoderBlock2D<B> {
    pub(crate) fn new(
        channels_in: usize,
        channels_out: usize,
        layers: usize,
        groups: usize,
        downsample: bool,
        device: &Device<B>,
    ) -> Self {
        Self {
            resnets: resnets(channels_in, channels_out, layers, groups, device),
            downsamplers: downsample
                .then(|| Downsample2D::new(channels_out, device))
                .into_iter()
                .collect(),
        }
    }

    pub(crate) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.resnets.iter().fold(x, |x, r| r.forward(x));
        self.downsamplers.iter().fold(x, |x, d| d.forward(x))
    }
}

/// `layers` resnets (the decoder passes `layers_per_block + 1`), then an
/// optional nearest ×2 upsampler with its convolution.
///
/// # Shapes
/// - input: `[B, C_in, H, W]`, output: `[B, C_out, 2H, 2W]` (or `[B, C_out, H, W]`
///   for the last block, which does not upsample).
#[derive(Module, Debug)]
pub(crate) struct UpDecoderBlock2D<B: Backend> {
    resnets: Vec<ResnetBlock2D<B>>,
    upsamplers: Vec<Upsample2D<B>>,
}

impl<B: Backend> UpDecoderBlock2D<B> {
    pub(crate) fn new(
        channels_in: usize,
        channels_out: usize,
        layers: usize,
        groups: usize,
        upsample: bool,
        device: &Device<B>,
    ) -> Self {
        Self {
            resnets: resnets(channels_in, channels_out, layers, groups, device),
            upsamplers: upsample
                .then(|| Upsample2D::new(channels_out, device))
                .into_iter()
                .collect(),
        }
    }

    pub(crate) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.resnets.iter().fold(x, |x, r| r.forward(x));
        self.upsamplers.iter().fold(x, |x, u| u.forward(x))
    }
}

/// `layers` resnets, the first from `channels_in` to `channels_out` channels.
fn resnets<B: Backend>(
    channels_in: usize,
    channels_out: usize,
    layers: usize,
    groups: usize,
    device: &Device<B>,
) -> Vec<ResnetBlock2D<B>> {
    (0..layers)
        .map(|i| {
            let cin = if i == 0 { channels_in } else { channels_out };
            ResnetBlock2D::new(cin, channels_out, groups, device)
        })
        .collect()
}

/// Resnet, (attention), resnet at constant channels and size.
///
/// # Shapes
/// - input: `[B, C, H, W]`, output: `[B, C, H, W]`.
#[derive(Module, Debug)]
pub(crate) struct UNetMidBlock2D<B: Backend> {
    resnets: Vec<ResnetBlock2D<B>>,
    attentions: Vec<Attention<B>>,
}

impl<B: Backend> UNetMidBlock2D<B> {
    pub(crate) fn new(channels: usize, groups: usize, attention: bool, device: &Device<B>) -> Self {
        Self {
            resnets: (0..2)
                .map(|_| ResnetBlock2D::new(channels, channels, groups, device))
                .collect(),
            attentions: attention
                .then(|| Attention::new(channels, groups, device))
                .into_iter()
                .collect(),
        }
    }

    pub(crate) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = self.resnets[0].forward(x);
        for attention in &self.attentions {
            x = attention.forward(x);
        }
        self.resnets[1].forward(x)
    }
}
