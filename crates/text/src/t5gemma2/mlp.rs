//! The gated feed-forward block.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

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
        let gate = gelu_tanh(self.gate_proj.forward(x.clone())); // [batch, len, intermediate]
        self.down_proj.forward(gate * self.up_proj.forward(x))
    }
}

/// GELU, tanh approximation, as PyTorch's `gelu(approximate="tanh")` computes
/// it: `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x·x·x)))` (the cube as two
/// products, several times cheaper than a generic power on the CPU).
fn gelu_tanh<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
    let cube = x.clone() * x.clone() * x.clone();
    let inner = (x.clone() + cube * 0.044715) * SQRT_2_OVER_PI;
    x * (inner.tanh() + 1.0) * 0.5
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::activation::gelu_approximate;

    #[test]
    fn gelu_tanh_matches_the_reference_formula() {
        let device = Default::default();
        let x = Tensor::<NdArray<f32>, 3>::from_floats(
            [[[-3.0, -1.0, -0.1, 0.0, 0.5, 2.0, 6.0]]],
            &device,
        );
        gelu_tanh(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&gelu_approximate(x).into_data(), Default::default());
    }
}
