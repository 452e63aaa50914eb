//! The small building blocks of the DiT: RMSNorm, SwiGLU, the local spatial
//! bias, and the parameter initialisers the seed's `initialize_weights` uses.

use burn::module::{Initializer, Param};
use burn::nn::Linear;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;

/// Standard deviation of the seed's `nn.init.normal_(…, std=0.02)`.
pub(crate) const INIT_STD: f64 = 0.02;

/// `nn.init.normal_(w, std=0.02)`.
pub(crate) fn normal() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: INIT_STD,
    }
}

/// `nn.init.xavier_uniform_(w)` (gain 1).
pub(crate) fn xavier_uniform() -> Initializer {
    Initializer::XavierUniform { gain: 1.0 }
}

/// PyTorch's default `nn.Linear` bias: `U(−1/√fan_in, 1/√fan_in)`, for the
/// biases `initialize_weights` leaves alone.
pub(crate) fn torch_default_bias(fan_in: usize) -> Initializer {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Initializer::Uniform {
        min: -bound,
        max: bound,
    }
}

/// A linear layer `[…, d_in] → […, d_out]` with its weight and (optional)
/// bias drawn lazily from the given initialisers (fans as PyTorch counts them).
pub(crate) fn linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    weight: Initializer,
    bias: Option<Initializer>,
    device: &Device<B>,
) -> Linear<B> {
    Linear {
        weight: weight.init_with([d_in, d_out], Some(d_in), Some(d_out), device),
        bias: bias.map(|init| init.init_with([d_out], Some(d_in), Some(d_out), device)),
    }
}

/// `linear` applied to every token, as one matrix product over
/// `[batch·tokens, d_in]` ([`ssdit_kernels::linear`]): burn's `Linear` on a
/// 3-D input multiplies batch by batch and, under autodiff, sums a weight
/// gradient per batch entry.
///
/// # Shapes
/// - x: `[batch, tokens, d_in]`
/// - output: `[batch, tokens, d_out]`
pub(crate) fn project<B: Backend>(linear: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [batch, tokens, d_in] = x.dims();
    let out = ssdit_kernels::linear(
        ssdit_kernels::reshape(x, [batch * tokens, d_in]),
        linear.weight.val(),
        linear.bias.as_ref().map(Param::val),
    );
    let [_, d_out] = out.dims();
    ssdit_kernels::reshape(out, [batch, tokens, d_out])
}

/// RMSNorm exactly as the seed writes it: `weight · x · rsqrt(mean(x²) + eps)`
/// over the last axis (the seed's eps is 1e-6 everywhere).
///
/// # Shapes
/// - input: `[..., dim]`
/// - output: `[..., dim]`
#[derive(Module, Debug)]
pub(crate) struct RmsNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    eps: f64,
}

/// The seed's RMSNorm epsilon.
pub(crate) const RMS_EPS: f64 = 1e-6;

impl<B: Backend> RmsNorm<B> {
    /// A norm over `dim` features with unit weight.
    pub fn new(dim: usize, device: &Device<B>) -> Self {
        Self {
            weight: Initializer::Ones.init([dim], device),
            eps: RMS_EPS,
        }
    }

    /// Normalises in at least f32 (see [`ssdit_kernels::rms_norm`]),
    /// returns `x`'s dtype.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        ssdit_kernels::rms_norm(x, self.weight.val(), self.eps)
    }
}

/// The SwiGLU feed-forward: `w3(silu(w1(x)) · w2(x))`, hidden width
/// `256·⌈⌊2·4·dim/3⌋ / 256⌉` (see [`crate::SingleStreamDiTConfig::ffn_hidden_size`]).
///
/// # Shapes
/// - input: `[batch, tokens, dim]`
/// - output: `[batch, tokens, dim]`
#[derive(Module, Debug)]
pub(crate) struct SwiGlu<B: Backend> {
    pub w1: Linear<B>,
    pub w2: Linear<B>,
    pub w3: Linear<B>,
}

impl<B: Backend> SwiGlu<B> {
    /// All three projections bias-free, drawn from `init` (the seed's
    /// effective scheme is `normal(0.02)`: see `SingleStreamDiTConfig::init`).
    pub fn new(dim: usize, hidden: usize, init: Initializer, device: &Device<B>) -> Self {
        Self {
            w1: linear(dim, hidden, init.clone(), None, device),
            w2: linear(dim, hidden, init.clone(), None, device),
            w3: linear(hidden, dim, init, None, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let hidden = ssdit_kernels::swiglu(project(&self.w1, x.clone()), project(&self.w2, x)); // [B, N, hidden]
        project(&self.w3, hidden)
    }
}

/// The local spatial bias: a depthwise 3×3 convolution (with bias, zero
/// padding) over the image-token grid. Returns the convolution's output
/// only; the caller adds it to the tokens.
///
/// The parameters are the seed's `nn.Conv2d(dim, dim, 3, padding=1,
/// groups=dim)`; the forward pass runs in token layout
/// ([`ssdit_kernels::depthwise_conv3x3`]): on the CPU backend burn's
/// depthwise convolution, and above all its backward pass, took a quarter
/// of a training step.
///
/// # Shapes
/// - input: `[batch, h·w, dim]` (row-major grid)
/// - output: `[batch, h·w, dim]`
#[derive(Module, Debug)]
pub(crate) struct LocalSpatialBias<B: Backend> {
    pub conv: Conv2d<B>,
}

impl<B: Backend> LocalSpatialBias<B> {
    /// The seed's module sets weight 1e-3 and bias 0, but `initialize_weights`
    /// then redraws every >1-D block parameter from `normal(0.02)`, the conv
    /// weight included; `weight` is the initialiser that applies.
    pub fn new(dim: usize, weight: Initializer, device: &Device<B>) -> Self {
        let fan = 9; // in_channels / groups · kernel area
        Self {
            conv: Conv2d {
                weight: weight.init_with([dim, 1, 3, 3], Some(fan), Some(fan), device),
                bias: Some(Initializer::Zeros.init([dim], device)),
                stride: [1, 1],
                kernel_size: [3, 3],
                dilation: [1, 1],
                groups: dim,
                padding: PaddingConfig2d::Explicit(1, 1, 1, 1),
            },
        }
    }

    pub fn forward(&self, tokens: Tensor<B, 3>, h: usize, w: usize) -> Tensor<B, 3> {
        let bias = match &self.conv.bias {
            Some(bias) => bias.val(),
            None => Tensor::zeros([tokens.dims()[2]], (&tokens.device(), tokens.dtype())),
        };
        ssdit_kernels::depthwise_conv3x3(tokens, self.conv.weight.val(), bias, [h, w])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::{Distribution, Tolerance};

    type B = NdArray<f32>;

    #[test]
    fn the_local_spatial_bias_is_the_depthwise_convolution_of_its_parameters() {
        let device = Default::default();
        let (batch, h, w, dim) = (2, 3, 5, 4);
        let mut bias = LocalSpatialBias::<B>::new(dim, normal(), &device);
        bias.conv.bias = Some(
            Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            }
            .init([dim], &device),
        );
        let tokens =
            Tensor::<B, 3>::random([batch, h * w, dim], Distribution::Normal(0.0, 1.0), &device);
        let grid = tokens.clone().swap_dims(1, 2).reshape([batch, dim, h, w]);
        let convolved = bias
            .conv
            .forward(grid)
            .reshape([batch, dim, h * w])
            .swap_dims(1, 2);
        bias.forward(tokens, h, w)
            .into_data()
            .assert_approx_eq::<f32>(&convolved.into_data(), Tolerance::absolute(1e-6));
    }
}
