//! The gated feed-forward block.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu_approximate;

/// `down(gelu_tanh(gate(x)) · up(x))`, no biases.
///
/// Reference: transformers `T5Gemma2MLP` with `hidden_activation =
/// "gelu_pytorch_tanh"` (the tanh approximation of GELU).
///
/// # Shapes
/// - input `[batch, len, hidden]`, output the same.
#[derive(Module, Debug)]
pub(crate) struct Mlp<B: Backend> {
    pub gate_proj: Linear<B>,
    pub up_proj: Linear<B>,
    pub down_proj: Linear<B>,
}

impl<B: Backend> Mlp<B> {
    /// A block `hidden → intermediate → hidden` with fresh weights.
    pub fn new(hidden: usize, intermediate: usize, device: &Device<B>) -> Self {
        let linear = |inputs, outputs| {
            LinearConfig::new(inputs, outputs)
                .with_bias(false)
                .init(device)
        };
        Self {
            gate_proj: linear(hidden, intermediate),
            up_proj: linear(hidden, intermediate),
            down_proj: linear(intermediate, hidden),
        }
    }

    /// Applies the block.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = gelu_approximate(self.gate_proj.forward(x.clone())); // [batch, len, intermediate]
        self.down_proj.forward(gate * self.up_proj.forward(x))
    }
}
