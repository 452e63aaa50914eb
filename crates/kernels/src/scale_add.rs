//! `y ⊙ scale + offset` with the scale broadcast over the tokens: the adaLN
//! modulation `x·(1 + scale) + shift` and the gated residual `x + gate·y` of
//! the DiT's blocks, as burn's tensor ops (two passes forward, four
//! backward, each allocating) or as one CPU pass with its backward pass.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ndarray::NdArrayTensor;
use burn::prelude::*;

use crate::cpu::scale_add::{self as kernel, Layout, Offset};
use crate::route::{self, Cpu, CpuArray, Path, Strategy, TrackedTensor, row_major, shaped, values};

/// `y ⊙ scale + offset`, `scale` broadcast over the tokens, `offset` either
/// broadcast the same way or one value per element.
///
/// # Shapes
/// - y: `[batch, tokens, features]`
/// - scale: `[batch, 1, features]`
/// - offset: `[batch, 1, features]` or `[batch, tokens, features]`
/// - output: `[batch, tokens, features]`
pub fn scale_add<B: Backend>(
    y: Tensor<B, 3>,
    scale: Tensor<B, 3>,
    offset: Tensor<B, 3>,
) -> Tensor<B, 3> {
    let [batch, tokens, features] = y.dims();
    assert_eq!(scale.dims(), [batch, 1, features], "scale_add: scale shape");
    let offset_per_token = match offset.dims() {
        [b, 1, f] if [b, f] == [batch, features] => false,
        dims if dims == [batch, tokens, features] => true,
        dims => panic!(
            "scale_add: offset shape {dims:?} for y of shape {:?}",
            y.dims()
        ),
    };
    let layout = Layout {
        batch,
        rows: tokens,
        features,
    };
    match Path::of::<B>(&[y.dtype(), scale.dtype(), offset.dtype()]) {
        Path::Cpu => {
            let [y, scale, offset] =
                [y, scale, offset].map(|t| row_major(route::array(route::primitive(t))));
            let out = forward(&y, &scale, &offset, offset_per_token, layout);
            route::tensor::<B, _, 3>(out)
        }
        Path::Tracked(Strategy::None) => {
            tracked::<B, NoCheckpointing>([y, scale, offset], offset_per_token, layout)
        }
        Path::Tracked(Strategy::Balanced) => {
            tracked::<B, BalancedCheckpointing>([y, scale, offset], offset_per_token, layout)
        }
        Path::Composite => y * scale + offset,
    }
}

fn forward(
    y: &CpuArray,
    scale: &CpuArray,
    offset: &CpuArray,
    offset_per_token: bool,
    layout: Layout,
) -> NdArrayTensor {
    let offset = if offset_per_token {
        Offset::PerRow(values(offset))
    } else {
        Offset::PerGroup(values(offset))
    };
    let out = kernel::forward(values(y), values(scale), offset, layout);
    shaped(out, &[layout.batch, layout.rows, layout.features])
}

/// The operation on the autodiff graph of `B = Autodiff<Cpu, C>`.
fn tracked<B: Backend, C: CheckpointStrategy>(
    inputs: [Tensor<B, 3>; 3],
    offset_per_token: bool,
    layout: Layout,
) -> Tensor<B, 3> {
    let inputs: [TrackedTensor; 3] = inputs.map(route::primitive);
    let nodes = inputs.clone().map(|t| t.node);
    let [y, scale, offset] = inputs.map(|t| row_major(route::array(t.primitive)));
    let out = forward(&y, &scale, &offset, offset_per_token, layout);
    let state = ScaleAddState {
        y,
        scale,
        offset_per_token,
        layout,
    };
    let out = match ScaleAddBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    route::tensor::<B, _, 3>(out)
}

#[derive(Debug)]
struct ScaleAddBackward;

/// What the backward pass reads: `y`, the scale and the offset's kind.
#[derive(Debug, Clone)]
struct ScaleAddState {
    y: CpuArray,
    scale: CpuArray,
    offset_per_token: bool,
    layout: Layout,
}

impl Backward<Cpu, 3> for ScaleAddBackward {
    type State = ScaleAddState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = row_major(route::array(grads.consume::<Cpu>(&ops.node)));
        let ScaleAddState {
            y,
            scale,
            offset_per_token,
            layout,
        } = &ops.state;
        let Layout {
            batch,
            rows,
            features,
        } = *layout;
        let kernel::Gradients {
            y: dy,
            scale: dscale,
        } = kernel::backward(values(&grad), values(y), values(scale), *layout);
        let doffset = if *offset_per_token {
            NdArrayTensor::from(grad)
        } else {
            shaped(
                kernel::sum_rows(values(&grad), *layout),
                &[batch, 1, features],
            )
        };
        route::register(
            &ops,
            grads,
            [
                shaped(dy, &[batch, rows, features]),
                shaped(dscale, &[batch, 1, features]),
                doffset,
            ],
        );
    }
}
