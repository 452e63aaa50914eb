//! SiLU `x·σ(x)`: the CPU kernel with its backward pass, or burn's
//! `silu`. burn's sigmoid on NdArray is six single-threaded passes with
//! libm's `expf` and `logf` (`exp(−log(1 + exp(−x)))`), and its autodiff
//! records each; the kernel is one parallel pass each way.

use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::prelude::*;
use burn::tensor::activation;

use crate::cpu::silu as kernel;
use crate::elementwise;
use crate::route::{self, CpuArray, Path, Strategy, row_major, shaped, values};

/// `x·σ(x)`, element-wise.
pub fn silu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    match Path::of::<B>(&[x.dtype()]) {
        Path::Cpu => {
            let shape = x.dims();
            let x = row_major(route::array(route::primitive(x)));
            route::tensor::<B, _, D>(shaped(kernel::forward(values(&x)), &shape))
        }
        Path::Tracked(Strategy::None) => tracked::<B, NoCheckpointing, D>(x),
        Path::Tracked(Strategy::Balanced) => tracked::<B, BalancedCheckpointing, D>(x),
        Path::Composite => activation::silu(x),
    }
}

/// SiLU on the autodiff graph of `B = Autodiff<Cpu, C>`, holding its input.
fn tracked<B: Backend, C: CheckpointStrategy, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    elementwise::tracked::<B, C, CpuArray, D>(
        x,
        |input| (kernel::forward(values(&input)), input),
        |input, grad| kernel::backward(grad, values(input)),
    )
}
