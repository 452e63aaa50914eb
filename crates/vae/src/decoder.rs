//! diffusers' VAE `Decoder` (`autoencoders/vae.py`) with GroupNorm (`norm_type="group"`).

use burn::nn::GroupNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::AutoencoderKlConfig;
use crate::blocks::{UNetMidBlock2D, UpDecoderBlock2D};
use crate::conv::conv2d;
use crate::ops::group_norm;
use crate::resnet::{conv3x3, norm_config};

/// `conv_in`, the mid block, the up blocks (channels reversed, one more
/// resnet each than the encoder's), then GroupNorm, SiLU and `conv_out`.
///
/// # Shapes
/// - input: `[B, latent_channels, h, w]`
/// - output: `[B, out_channels, h·f, w·f]` with `f` the downsample factor.
#[derive(Module, Debug)]
pub(crate) struct Decoder<B: Backend> {
    conv_in: Conv2d<B>,
    mid_block: UNetMidBlock2D<B>,
    up_blocks: Vec<UpDecoderBlock2D<B>>,
    conv_norm_out: GroupNorm<B>,
    conv_out: Conv2d<B>,
}

impl<B: Backend> Decoder<B> {
    pub(crate) fn new(config: &AutoencoderKlConfig, device: &Device<B>) -> Self {
        let reversed: Vec<usize> = config.block_out_channels.iter().rev().copied().collect();
        let groups = config.norm_num_groups;
        let up_blocks = reversed
            .iter()
            .enumerate()
            .map(|(i, &cout)| {
                let cin = if i == 0 { reversed[0] } else { reversed[i - 1] };
                let is_final = i + 1 == reversed.len();
                UpDecoderBlock2D::new(
                    cin,
                    cout,
                    config.layers_per_block + 1,
                    groups,
                    !is_final,
                    device,
                )
            })
            .collect();
        let first = config.block_out_channels[0];
        Self {
            conv_in: conv3x3(config.latent_channels, reversed[0]).init(device),
            mid_block: UNetMidBlock2D::new(
                reversed[0],
                groups,
                config.mid_block_add_attention,
                device,
            ),
            up_blocks,
            conv_norm_out: norm_config(groups, first).init(device),
            conv_out: conv3x3(first, config.out_channels).init(device),
        }
    }

    pub(crate) fn forward(&self, z: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = conv2d(&self.conv_in, z); // [B, C_last, h, w]
        let x = self.mid_block.forward(x);
        let x = self.up_blocks.iter().fold(x, |x, b| b.forward(x)); // [B, C0, h·f, w·f]
        conv2d(&self.conv_out, silu(group_norm(&self.conv_norm_out, x))) // [B, out, h·f, w·f]
    }
}
