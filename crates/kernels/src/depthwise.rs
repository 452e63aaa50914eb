//! The DiT's local spatial bias, a depthwise 3×3 convolution (zero padding)
//! over the image tokens in token layout: nine shifted, per-channel-scaled
//! copies of the grid, or the CPU kernel with its backward pass.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::s;

use crate::cpu::depthwise::{self as kernel, Grid};
use crate::route::{self, Cpu, CpuArray, Path, Strategy, TrackedTensor, row_major, shaped, values};

/// `out[y, x] = bias + Σ_ij weight[:, 0, i, j] ⊙ tokens[y+i−1, x+j−1]`: the
/// depthwise convolution `nn.Conv2d(C, C, 3, padding=1, groups=C)` of the
/// `h × w` grid the tokens form, in token layout.
///
/// # Shapes
/// - tokens: `[batch, h·w, channels]` (row-major grid)
/// - weight: `[channels, 1, 3, 3]`
/// - bias: `[channels]`
/// - output: `[batch, h·w, channels]`
pub fn depthwise_conv3x3<B: Backend>(
    tokens: Tensor<B, 3>,
    weight: Tensor<B, 4>,
    bias: Tensor<B, 1>,
    [h, w]: [usize; 2],
) -> Tensor<B, 3> {
    let [batch, len, channels] = tokens.dims();
    assert_eq!(
        len,
        h * w,
        "depthwise_conv3x3: {len} tokens do not form a {h}×{w} grid"
    );
    let grid = Grid {
        batch,
        h,
        w,
        channels,
    };
    match Path::of::<B>(&[tokens.dtype(), weight.dtype(), bias.dtype()]) {
        Path::Cpu => {
            let [tokens, taps, bias] = cpu_inputs(
                route::primitive(tokens),
                route::primitive(weight),
                route::primitive(bias),
            );
            let out = kernel::forward(values(&tokens), values(&taps), values(&bias), grid);
            route::tensor::<B, _, 3>(shaped(out, &[batch, len, channels]))
        }
        Path::Tracked(Strategy::None) => tracked::<B, NoCheckpointing>(tokens, weight, bias, grid),
        Path::Tracked(Strategy::Balanced) => {
            tracked::<B, BalancedCheckpointing>(tokens, weight, bias, grid)
        }
        Path::Composite => composite(tokens, weight, bias, [h, w]),
    }
}

fn composite<B: Backend>(
    tokens: Tensor<B, 3>,
    weight: Tensor<B, 4>,
    bias: Tensor<B, 1>,
    [h, w]: [usize; 2],
) -> Tensor<B, 3> {
    let [batch, len, dim] = tokens.dims();
    let grid = zero_border(tokens.reshape([batch, h, w, dim])); // [B, h+2, w+2, C]
    let taps = weight.reshape([dim, 9]).transpose(); // [9, C]: row 3·i + j is tap (i, j)
    let shifted = (0..3)
        .flat_map(|i| (0..3).map(move |j| (i, j)))
        .map(|(i, j)| {
            let tap = taps.clone().slice(s![3 * i + j]).reshape([1, 1, 1, dim]);
            grid.clone().slice(s![.., i..i + h, j..j + w, ..]) * tap // [B, h, w, C]
        });
    let sum = shifted
        .reduce(|sum, term| sum + term)
        .expect("a 3×3 kernel has taps");
    (sum + bias.reshape([1, 1, 1, dim])).reshape([batch, len, dim])
}

/// `[B, h, w, C]` → `[B, h+2, w+2, C]` with a zero border, in the grid's
/// dtype (burn's `pad` builds its output in the backend's default dtype).
fn zero_border<B: Backend>(grid: Tensor<B, 4>) -> Tensor<B, 4> {
    let [batch, h, w, dim] = grid.dims();
    Tensor::zeros([batch, h + 2, w + 2, dim], (&grid.device(), grid.dtype()))
        .slice_assign(s![.., 1..h + 1, 1..w + 1, ..], grid)
}

/// The kernel's inputs: row-major tokens, the taps as `[9][channels]`, the bias.
fn cpu_inputs(
    tokens: burn::backend::ndarray::NdArrayTensor,
    weight: burn::backend::ndarray::NdArrayTensor,
    bias: burn::backend::ndarray::NdArrayTensor,
) -> [CpuArray; 3] {
    let weight = row_major(route::array(weight));
    let channels = weight.shape()[0];
    let taps = weight
        .into_shape_with_order([channels, 9])
        .expect("a [C, 1, 3, 3] weight")
        .reversed_axes()
        .as_standard_layout()
        .into_owned()
        .into_dyn()
        .into_shared();
    [
        row_major(route::array(tokens)),
        taps,
        row_major(route::array(bias)),
    ]
}

/// The convolution on the autodiff graph of `B = Autodiff<Cpu, C>`.
fn tracked<B: Backend, C: CheckpointStrategy>(
    tokens: Tensor<B, 3>,
    weight: Tensor<B, 4>,
    bias: Tensor<B, 1>,
    grid: Grid,
) -> Tensor<B, 3> {
    let tokens: TrackedTensor = route::primitive(tokens);
    let weight: TrackedTensor = route::primitive(weight);
    let bias: TrackedTensor = route::primitive(bias);
    let nodes = [tokens.node.clone(), weight.node.clone(), bias.node.clone()];
    let [tokens, taps, bias] = cpu_inputs(tokens.primitive, weight.primitive, bias.primitive);
    let out = kernel::forward(values(&tokens), values(&taps), values(&bias), grid);
    let out = shaped(out, &[grid.batch, grid.h * grid.w, grid.channels]);
    let out = match DepthwiseBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(DepthwiseState { tokens, taps, grid }, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    route::tensor::<B, _, 3>(out)
}

#[derive(Debug)]
struct DepthwiseBackward;

/// What the backward pass reads: the tokens and the taps.
#[derive(Debug, Clone)]
struct DepthwiseState {
    tokens: CpuArray,
    taps: CpuArray,
    grid: Grid,
}

impl Backward<Cpu, 3> for DepthwiseBackward {
    type State = DepthwiseState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = row_major(route::array(grads.consume::<Cpu>(&ops.node)));
        let DepthwiseState { tokens, taps, grid } = &ops.state;
        let kernel::Gradients {
            x: d_tokens,
            taps: d_taps,
            bias: d_bias,
        } = kernel::backward(values(&grad), values(tokens), values(taps), *grid);
        let channels = grid.channels;
        // The taps' gradient back in the weight's [C, 1, 3, 3] layout.
        let d_weight: Vec<f32> = (0..channels)
            .flat_map(|c| (0..9).map(move |tap| (tap, c)))
            .map(|(tap, c)| d_taps[tap * channels + c])
            .collect();
        route::register(
            &ops,
            grads,
            [
                shaped(d_tokens, &[grid.batch, grid.h * grid.w, channels]),
                shaped(d_weight, &[channels, 1, 3, 3]),
                shaped(d_bias, &[channels]),
            ],
        );
    }
}
