//! RMSNorm over the last axis: the composite of burn's tensor ops, or the
//! CPU kernel with its backward pass.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::DType;

use crate::cpu::rms_norm as kernel;
use crate::route::{self, Cpu, CpuArray, Path, Strategy, TrackedTensor, row_major, shaped, values};

/// `x · rsqrt(mean(x²) + eps) · weight` over the last axis, the statistics
/// in at least f32 ([`widened`]), the result in `x`'s dtype.
///
/// # Shapes
/// - x: `[..., dim]`
/// - weight: `[dim]`
/// - output: `[..., dim]`
pub fn rms_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, D> {
    match Path::of::<B>(&[x.dtype(), weight.dtype()]) {
        Path::Cpu => {
            let shape = x.dims();
            let x = row_major(route::array(route::primitive(x)));
            let weight = row_major(route::array(route::primitive(weight)));
            let forward = kernel::forward(values(&x), values(&weight), eps as f32);
            route::tensor::<B, _, D>(shaped(forward.output, &shape))
        }
        Path::Tracked(Strategy::None) => tracked::<B, NoCheckpointing, D>(x, weight, eps),
        Path::Tracked(Strategy::Balanced) => tracked::<B, BalancedCheckpointing, D>(x, weight, eps),
        Path::Composite => composite(x, weight, eps),
    }
}

/// The dtype that statistics (RMSNorm) and other precision-sensitive
/// transforms of `dtype` activations run in: f32 for half precision (what
/// PyTorch's autocast keeps in f32), `dtype` itself otherwise.
pub fn widened(dtype: DType) -> DType {
    match dtype {
        DType::BF16 | DType::F16 => DType::F32,
        other => other,
    }
}

fn composite<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, D> {
    let dtype = x.dtype();
    let x = x.cast(widened(dtype));
    let inv_rms = x
        .clone()
        .square()
        .mean_dim(D - 1)
        .add_scalar(eps)
        .sqrt()
        .recip(); // [..., 1]
    (x * inv_rms).cast(dtype) * weight.unsqueeze()
}

/// The RMSNorm on the autodiff graph of `B = Autodiff<Cpu, C>`.
fn tracked<B: Backend, C: CheckpointStrategy, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, D> {
    let shape = x.dims();
    let x: TrackedTensor = route::primitive(x);
    let weight: TrackedTensor = route::primitive(weight);
    let nodes = [x.node.clone(), weight.node.clone()];
    let x = row_major(route::array(x.primitive));
    let weight = row_major(route::array(weight.primitive));
    let forward = kernel::forward(values(&x), values(&weight), eps as f32);
    let output = shaped(forward.output, &shape);
    let output = match RmsNormBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = RmsNormState {
                x,
                weight,
                inv_rms: forward.inv_rms,
            };
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    route::tensor::<B, _, D>(output)
}

#[derive(Debug)]
struct RmsNormBackward;

/// What the backward pass reads: the input rows, the weight and each row's
/// inverse RMS.
#[derive(Debug, Clone)]
struct RmsNormState {
    x: CpuArray,
    weight: CpuArray,
    inv_rms: Vec<f32>,
}

impl Backward<Cpu, 2> for RmsNormBackward {
    type State = RmsNormState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = row_major(route::array(grads.consume::<Cpu>(&ops.node)));
        let shape = grad.shape().to_vec();
        let state = &ops.state;
        let kernel::Gradients { x: dx, weight: dw } = kernel::backward(
            values(&grad),
            values(&state.x),
            values(&state.weight),
            &state.inv_rms,
        );
        let dim = dw.len();
        route::register(&ops, grads, [shaped(dx, &shape), shaped(dw, &[dim])]);
    }
}
