//! The mid-block self-attention: diffusers `Attention` with one head as
//! `UNetMidBlock2D` builds it (`heads = 1`, `dim_head = channels`,
//! `norm_num_groups`, `residual_connection=True`, `rescale_output_factor=1`,
//! `upcast_softmax=True`).

use burn::nn::{GroupNorm, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::FloatDType;
use burn::tensor::activation::softmax;

use crate::ops::{group_norm, reduction_dtype};
use crate::resnet::norm_config;

/// Single-head self-attention over the `H·W` spatial positions, with a
/// GroupNorm before the projections and a residual connection.
///
/// `to_out` is diffusers' `to_out.0` (`to_out.1` is a dropout); the
/// checkpoint name is mapped in [`crate::loader`].
///
/// # Shapes
/// - input: `[B, C, H, W]`, output: `[B, C, H, W]`.
#[derive(Module, Debug)]
pub(crate) struct Attention<B: Backend> {
    group_norm: GroupNorm<B>,
    to_q: Linear<B>,
    to_k: Linear<B>,
    to_v: Linear<B>,
    to_out: Linear<B>,
}

impl<B: Backend> Attention<B> {
    pub(crate) fn new(channels: usize, groups: usize, device: &Device<B>) -> Self {
        let linear = || LinearConfig::new(channels, channels).init(device);
        Self {
            group_norm: norm_config(groups, channels).init(device),
            to_q: linear(),
            to_k: linear(),
            to_v: linear(),
            to_out: linear(),
        }
    }

    pub(crate) fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let tokens = group_norm(&self.group_norm, x.clone())
            .reshape([b, c, h * w])
            .swap_dims(1, 2); // [B, HW, C]
        let q = self.to_q.forward(tokens.clone());
        let k = self.to_k.forward(tokens.clone());
        let v = self.to_v.forward(tokens);
        let scale = (c as f64).powf(-0.5);
        let scores = q.matmul(k.swap_dims(1, 2)) * scale; // [B, HW, HW]
        let dtype = scores.dtype();
        let weights = softmax(scores.cast(reduction_dtype(dtype)), 2).cast(FloatDType::from(dtype));
        let attended = self.to_out.forward(weights.matmul(v)); // [B, HW, C]
        attended.swap_dims(1, 2).reshape([b, c, h, w]) + x
    }
}
