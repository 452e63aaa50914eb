//! Rotary position embedding in the rotate-half form with tables widened to
//! the head: burn's tensor ops, or the CPU kernel with its backward pass.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;

use crate::cpu::rope::{self as kernel, Layout};
use crate::route::{self, Cpu, CpuArray, Path, Strategy, TrackedTensor, row_major, shaped, values};

/// `x ⊙ cos + [x₂, x₁] ⊙ sin` per head, `[x₁, x₂]` the halves of each head
/// vector: with `cos = [c, c]` and `sin = [−s, s]` this is the rotation
/// `[x₁c − x₂s, x₁s + x₂c]`. The tables are constants: no gradient
/// reaches them.
///
/// # Shapes
/// - x: `[batch, tokens, heads, head_dim]`
/// - cos, sin: `[tokens, head_dim]`
/// - output: `[batch, tokens, heads, head_dim]`
pub fn rope<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 2>, sin: Tensor<B, 2>) -> Tensor<B, 4> {
    let [_, tokens, heads, head_dim] = x.dims();
    let layout = Layout {
        tokens,
        heads,
        head_dim,
    };
    match Path::of::<B>(&[x.dtype(), cos.dtype(), sin.dtype()]) {
        Path::Cpu => {
            let shape = x.dims();
            let x = row_major(route::array(route::primitive(x)));
            let [cos, sin] = [cos, sin].map(|t| row_major(route::array(route::primitive(t))));
            let out = kernel::forward(values(&x), values(&cos), values(&sin), layout);
            route::tensor::<B, _, 4>(shaped(out, &shape))
        }
        Path::Tracked(Strategy::None) => tracked::<B, NoCheckpointing>(x, cos, sin, layout),
        Path::Tracked(Strategy::Balanced) => {
            tracked::<B, BalancedCheckpointing>(x, cos, sin, layout)
        }
        Path::Composite => composite(x, cos, sin),
    }
}

fn composite<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 2>, sin: Tensor<B, 2>) -> Tensor<B, 4> {
    let [_, _, _, head_dim] = x.dims();
    let half = head_dim / 2;
    let swapped = Tensor::cat(
        vec![
            x.clone().narrow(3, half, half),
            x.clone().narrow(3, 0, half),
        ],
        3,
    ); // [x₂, x₁]
    let per_token = |table: Tensor<B, 2>| table.unsqueeze_dim::<3>(1).unsqueeze(); // [1, N, 1, d]
    x * per_token(cos) + swapped * per_token(sin)
}

/// The rotation on the autodiff graph of `B = Autodiff<Cpu, C>`.
fn tracked<B: Backend, C: CheckpointStrategy>(
    x: Tensor<B, 4>,
    cos: Tensor<B, 2>,
    sin: Tensor<B, 2>,
    layout: Layout,
) -> Tensor<B, 4> {
    let shape = x.dims();
    let x: TrackedTensor = route::primitive(x);
    let [cos, sin]: [TrackedTensor; 2] = [cos, sin].map(route::primitive);
    let node = x.node.clone();
    let [x, cos, sin] = [x, cos, sin].map(|t| row_major(route::array(t.primitive)));
    let out = shaped(
        kernel::forward(values(&x), values(&cos), values(&sin), layout),
        &shape,
    );
    let out = match RopeBackward.prepare::<C>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(RopeState { cos, sin, layout }, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    route::tensor::<B, _, 4>(out)
}

#[derive(Debug)]
struct RopeBackward;

/// What the backward pass reads: the tables.
#[derive(Debug, Clone)]
struct RopeState {
    cos: CpuArray,
    sin: CpuArray,
    layout: Layout,
}

impl Backward<Cpu, 1> for RopeBackward {
    type State = RopeState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = row_major(route::array(grads.consume::<Cpu>(&ops.node)));
        let shape = grad.shape().to_vec();
        let RopeState { cos, sin, layout } = &ops.state;
        let dx = kernel::backward(values(&grad), values(cos), values(sin), *layout);
        route::register(&ops, grads, [shaped(dx, &shape)]);
    }
}
