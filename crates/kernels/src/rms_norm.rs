//! RMSNorm over the last axis: the CPU kernel with its backward pass, the
//! composite of burn's tensor ops recorded with a lean backward pass on
//! CUDA's autodiff ([`rms_norm_recorded`]), or the composite.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, TensorPrimitive};

use crate::cpu::rms_norm as kernel;
use crate::graph::{self, Recorded, inner};
use crate::route::{
    self, Cpu, CpuArray, Path, Strategy, TrackedTensor, cast, register_on, row_major, shaped,
    values,
};

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
        Path::Composite => match graph::on_known_graph(RmsNormInputs { x, weight, eps }) {
            Ok(output) => output,
            Err(RmsNormInputs { x, weight, eps }) => composite(x, weight, eps),
        },
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
    let inv_rms = inverse_rms(x.clone(), eps);
    normalize(x, inv_rms, weight)
}

/// `rsqrt(mean(x²) + eps)` of each row, in [`widened`] precision.
fn inverse_rms<B: Backend, const D: usize>(x: Tensor<B, D>, eps: f64) -> Tensor<B, D> {
    let wide = widened(x.dtype());
    x.cast(wide)
        .square()
        .mean_dim(D - 1)
        .add_scalar(eps)
        .sqrt()
        .recip() // [..., 1]
}

/// `x · inv_rms · weight`, the product with `inv_rms` in its precision.
fn normalize<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    inv_rms: Tensor<B, D>,
    weight: Tensor<B, 1>,
) -> Tensor<B, D> {
    let dtype = x.dtype();
    (x.cast(inv_rms.dtype()) * inv_rms).cast(dtype) * weight.unsqueeze()
}

/// RMSNorm on `Autodiff<I, C>` with a backward pass of its own that holds
/// `x`, the weight and each row's inverse RMS, where burn's recording of
/// the composite holds an f32 copy of `x` and the normalised rows (about 4
/// MiB per norm and sample at the seed's bf16 sizes, five norms a block).
/// [`rms_norm`] takes it on the autodiff backends it knows (CUDA; Flex with
/// the `flex` feature); callable on any other. Same forward as the
/// composite; shapes as [`rms_norm`].
pub fn rms_norm_recorded<I: Backend, C: CheckpointStrategy, const D: usize>(
    x: Tensor<Autodiff<I, C>, D>,
    weight: Tensor<Autodiff<I, C>, 1>,
    eps: f64,
) -> Tensor<Autodiff<I, C>, D> {
    let x = x.into_primitive().tensor();
    let weight = weight.into_primitive().tensor();
    let nodes = [x.node.clone(), weight.node.clone()];
    let x = inner::<I, D>(x.primitive);
    let weight = inner::<I, 1>(weight.primitive);
    let inv_rms = inverse_rms(x.clone(), eps);
    let output = normalize(x.clone(), inv_rms.clone(), weight.clone());
    let output = output.into_primitive().tensor();
    let output = match RecordedBackward::<D>
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = RecordedState {
                x: x.into_primitive().tensor(),
                weight: weight.into_primitive().tensor(),
                inv_rms: inv_rms.into_primitive().tensor(),
            };
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

/// RMSNorm's inputs on a backend `B` that
/// [`on_known_graph`](crate::graph::on_known_graph) may find to be a known
/// autodiff backend.
struct RmsNormInputs<B: Backend, const D: usize> {
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    eps: f64,
}

impl<B: Backend, const D: usize> Recorded<B> for RmsNormInputs<B, D> {
    type Output = Tensor<B, D>;

    fn on<I: Backend, C: CheckpointStrategy>(self) -> Tensor<B, D> {
        let Self { x, weight, eps } = self;
        cast(rms_norm_recorded::<I, C, D>(cast(x), cast(weight), eps))
    }
}

#[derive(Debug)]
struct RecordedBackward<const D: usize>;

/// What [`rms_norm_recorded`]'s backward pass reads.
#[derive(Debug, Clone)]
struct RecordedState<I: Backend> {
    x: FloatTensor<I>,
    weight: FloatTensor<I>,
    inv_rms: FloatTensor<I>,
}

impl<I: Backend, const D: usize> Backward<I, 2> for RecordedBackward<D> {
    type State = RecordedState<I>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = inner::<I, D>(grads.consume::<I>(&ops.node));
        let state = ops.state.clone();
        let (x, weight, inv_rms) = (inner(state.x), inner(state.weight), inner(state.inv_rms));
        let (grad_x, grad_weight) = recorded_gradients::<I, D>(grad, x, weight, inv_rms);
        let gradients = [
            grad_x.into_primitive().tensor(),
            grad_weight.into_primitive().tensor(),
        ];
        register_on::<I, _, 2>(&ops, grads, gradients);
    }
}

/// `(dx, dweight)` of `y = n ⊙ w`,
/// `n = x·r`, `r = rsqrt(mean(x²) + eps)`, given `dy`:
/// `dw = Σ_rows dy ⊙ n`, `dx = r·(h − n·mean(h ⊙ n))` with `h = dy ⊙ w`,
/// in `r`'s precision.
fn recorded_gradients<I: Backend, const D: usize>(
    grad: Tensor<I, D>,
    x: Tensor<I, D>,
    weight: Tensor<I, 1>,
    inv_rms: Tensor<I, D>,
) -> (Tensor<I, D>, Tensor<I, 1>) {
    let (dtype, wide) = (x.dtype(), inv_rms.dtype());
    let dim = weight.dims()[0];
    let rows = x.shape().num_elements() / dim;
    let normed = x.cast(wide) * inv_rms.clone();
    let grad = grad.cast(wide);
    let grad_weight = (grad.clone() * normed.clone())
        .reshape([rows, dim])
        .sum_dim(0)
        .reshape([dim])
        .cast(weight.dtype());
    let h = grad * weight.cast(wide).unsqueeze();
    let mean = (h.clone() * normed.clone()).mean_dim(D - 1);
    let grad_x = ((h - normed * mean) * inv_rms).cast(dtype);
    (grad_x, grad_weight)
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
