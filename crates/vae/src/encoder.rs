//! diffusers' VAE `Encoder` (`autoencoders/vae.py`) with `double_z=True`.

use burn::nn::GroupNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::AutoencoderKlConfig;
use crate::blocks::{DownEncoderBlock2D, UNetMidBlock2D};
use crate::conv::conv2d;
use crate::ops::group_norm;
use crate::resnet::{conv3x3, norm_config};

/// `conv_in`, the down blocks, the mid block, then GroupNorm, SiLU and
/// `conv_out` to twice the latent channels (mean and log-variance).
///
/// # Shapes
/// - input: `[B, in_channels, H, W]`
/// - output: `[B, 2·latent_channels, H/f, W/f]` with `f` the downsample factor.
#[derive(Module, Debug)]
pub(crate) struct Encoder<B: Backend> {
    conv_in: Conv2d<B>,
    down_blocks: Vec<DownEncoderBlock2D<B>>,
    mid_block: UNetMidBlock2D<B>,
    conv_norm_out: GroupNorm<B>,
    conv_out: Conv2d<B>,
}

impl<B: Backend> Encoder<B> {
    pub(crate) fn new(config: &AutoencoderKlConfig, device: &Device<B>) -> Self {
        let channels = &config.block_out_channels;
        let groups = config.norm_num_groups;
        let last = *channels.last().expect("validated: at least one block");
        let down_blocks = channels
            .iter()
            .enumerate()
            .map(|(i, &cout)| {
                let cin = if i == 0 { channels[0] } else { channels[i - 1] };
                let is_final = i + 1 == channels.len();
                DownEncoderBlock2D::new(
                    cin,
                    cout,
                    config.layers_per_block,
                    groups,
                    !is_final,
                    device,
                )
            })
            .collect();
        Self {
            conv_in: conv3x3(config.in_channels, channels[0]).init(device),
            down_blocks,
            mid_block: UNetMidBlock2D::new(last, groups, config.mid_block_add_attention, device),
            conv_norm_out: norm_config(groups, last).init(device),
            conv_out: conv3x3(last, 2 * config.latent_channels).init(device),
        }
    }

    pub(crate) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = conv2d(&self.conv_in, x); // [B, C0, H, W]
        let x = self.down_blocks.iter().fold(x, |x, b| b.forward(x)); // [B, C_last, H/f, W/f]
        let x = self.mid_block.forward(x);
        conv2d(&self.conv_out, silu(group_norm(&self.conv_norm_out, x))) // [B, 2·latent, H/f, W/f]
    }
}
