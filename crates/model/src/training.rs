//! One training pass: forward, loss and backward, ending in the
//! parameters' gradients.
//!
//! Autodiff normally records, in the forward, everything each operation's
//! backward needs: for the seed config that is ~39 MiB per block per sample
//! in bf16 (docs/benchmarks.md), 11 GiB of a batch-16 step. With
//! block-level activation checkpointing ([`ActivationCheckpointing::Blocks`])
//! the forward runs without a graph and keeps only the input of each
//! noise-refiner and fusion block; the backward then goes segment by segment
//! from the loss to the embeddings, running each block again on a graph of
//! its own (its weights cast to the compute dtype only then) and handing the
//! gradient of its input to the block before it. The blocks' forward runs
//! twice (about a third more compute per step); what is held at once is the
//! block inputs plus one segment's graph.
//!
//! Block dropout draws from the backend RNG, seeded before each block with
//! a seed derived from [`TrainingPass::dropout_seed`] in both modes, so a
//! block run again draws its first run's masks and both modes give the same
//! gradients (within float tolerance: sums run in another order).

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::backend::AutodiffBackend;

use crate::block::{ImageGrid, VisualFusionBlock};
use crate::model::{BlockAt, Embedded, run_blocks};
use crate::precision::cast;
use crate::{Error, SingleStreamDiT};

/// What the forward of a training pass keeps for its backward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActivationCheckpointing {
    /// Everything autodiff records (fastest; memory grows with depth ×
    /// batch × tokens).
    #[default]
    Off,
    /// Only each block's input; the backward runs every block again (one
    /// more forward of the blocks per step, one block's activations).
    Blocks,
}

/// How a training pass runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingPass {
    /// What the forward computes in: the parameters are cast in the graph,
    /// so the gradients are the f32 weights' (mixed precision).
    pub dtype: DType,
    /// Seeds block dropout (see the module documentation).
    pub dropout_seed: u64,
    pub checkpointing: ActivationCheckpointing,
}

/// A forward's inputs: latents `[batch, channels, H, W]`, times `[batch]`,
/// caption embeddings `[batch, tokens, dim]`.
pub type Inputs<B> = (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 3>);

/// Spreads the segment seeds of one pass apart (2⁶⁴ / φ).
const SEGMENT_STRIDE: u64 = 0x9E37_79B9_7F4A_7C15;

impl<AB: AutodiffBackend> SingleStreamDiT<AB> {
    /// The gradients, for this model's parameters, of `loss(v)`: `v` the
    /// velocity predicted for `(x, t, text)` as
    /// [`try_forward`](Self::try_forward) predicts it, with block dropout on.
    ///
    /// # Errors
    /// The shape errors of `try_forward`, and `loss`'s own.
    pub fn loss_gradients<E: From<Error>>(
        &self,
        inputs: Inputs<AB>,
        pass: TrainingPass,
        loss: impl FnOnce(Tensor<AB, 4>) -> Result<Tensor<AB, 1>, E>,
    ) -> Result<GradientsParams, E> {
        let seeds = SegmentSeeds {
            device: inputs.0.device(),
            seed: pass.dropout_seed,
        };
        match pass.checkpointing {
            ActivationCheckpointing::Off => {
                let (x, t, text) = inputs;
                let model = self.clone().with_dtype(pass.dtype);
                let velocity = model.forward_hooked(x, t, text, |at| seeds.before(at))?;
                Ok(GradientsParams::from_grads(
                    loss(velocity)?.backward(),
                    self,
                ))
            }
            ActivationCheckpointing::Blocks => {
                self.gradients_recomputed(inputs, pass.dtype, &seeds, loss)
            }
        }
    }

    /// A forward without a graph keeping every block's input, then the
    /// backward segment by segment: head and loss, the fusion blocks from the
    /// last, the context refiner and the join, the noise refiner from the
    /// last, the embeddings.
    fn gradients_recomputed<E: From<Error>>(
        &self,
        (x, t, text): Inputs<AB>,
        dtype: DType,
        seeds: &SegmentSeeds<AB>,
        loss: impl FnOnce(Tensor<AB, 4>) -> Result<Tensor<AB, 1>, E>,
    ) -> Result<GradientsParams, E> {
        let untracked = self.clone().no_grad().with_dtype(dtype);
        let Embedded {
            image,
            context,
            c,
            layout,
        } = untracked.embed(x.clone(), t.clone(), text.clone())?;
        let (image_grid, joint_grid) = (layout.image_grid(), layout.joint_grid());
        let mut refiner_inputs = Vec::with_capacity(self.noise_refiner.len());
        let refined = run_blocks(&untracked.noise_refiner, image, &c, &image_grid, |i, x| {
            refiner_inputs.push(x.clone());
            seeds.before(BlockAt::NoiseRefiner(i));
        });
        let mut block_inputs = Vec::with_capacity(self.blocks.len());
        let joint = untracked.join(refined.clone(), context.clone());
        let output = run_blocks(&untracked.blocks, joint, &c, &joint_grid, |i, x| {
            block_inputs.push(x.clone());
            seeds.before(BlockAt::Fusion(i));
        });
        drop(untracked);

        // The blocks are cast when they run again, so that one block's
        // low-precision weights are alive at a time.
        let ends = self.without_visual_blocks().with_dtype(dtype);
        let mut segments = SegmentBackward::new(self, c, dtype);
        let output = output.require_grad();
        let loss = loss(ends.head(output.clone(), &layout))?;
        let joint_grad = leaf_gradient(&output, &mut segments.backward(loss));
        let joint_grad =
            segments.blocks(&self.blocks, block_inputs, joint_grad, &joint_grid, |i| {
                seeds.before(BlockAt::Fusion(i))
            });
        let (refined, context) = (refined.require_grad(), context.require_grad());
        let mut grads = segments.backward(carry(
            ends.join(refined.clone(), context.clone()),
            joint_grad,
        ));
        let (image_grad, context_grad) = (
            leaf_gradient(&refined, &mut grads),
            leaf_gradient(&context, &mut grads),
        );
        let image_grad = segments.blocks(
            &self.noise_refiner,
            refiner_inputs,
            image_grad,
            &image_grid,
            |i| seeds.before(BlockAt::NoiseRefiner(i)),
        );

        let embedded = ends.embed(x, t, text)?;
        let mut surrogate =
            carry(embedded.image, image_grad) + carry(embedded.context, context_grad);
        if let Some(c_grad) = segments.c_grad.take() {
            surrogate = surrogate + carry(embedded.c, c_grad);
        }
        segments.backward(surrogate);
        Ok(segments.sum.grads())
    }
}

/// The backward of a recomputing pass, segment by segment: the parameters'
/// gradients summed over the segments, and the timestep embedding's.
struct SegmentBackward<'a, AB: AutodiffBackend> {
    model: &'a SingleStreamDiT<AB>,
    sum: GradientsAccumulator<SingleStreamDiT<AB>>,
    /// The timestep embedding every block reads (untracked).
    c: Tensor<AB, 2>,
    /// Its gradient summed over the blocks run so far, in f32.
    c_grad: Option<Tensor<AB::InnerBackend, 2>>,
    dtype: DType,
}

impl<'a, AB: AutodiffBackend> SegmentBackward<'a, AB> {
    fn new(model: &'a SingleStreamDiT<AB>, c: Tensor<AB, 2>, dtype: DType) -> Self {
        Self {
            model,
            sum: GradientsAccumulator::new(),
            c,
            c_grad: None,
            dtype,
        }
    }

    /// Back-propagates the scalar `surrogate`, adds the parameters' share to
    /// the sum and returns the rest (the gradients of the segment's inputs).
    fn backward(&mut self, surrogate: Tensor<AB, 1>) -> AB::Gradients {
        let mut grads = surrogate.backward();
        let params = GradientsParams::from_module(&mut grads, self.model);
        self.sum.accumulate(self.model, params);
        grads
    }

    /// Runs `blocks` again from the last, each on `inputs[i]` and a graph
    /// of its own (`before(i)` first), carrying `grad`, the gradient of the
    /// last block's output, back to the first block's input.
    fn blocks(
        &mut self,
        blocks: &[VisualFusionBlock<AB>],
        inputs: Vec<Tensor<AB, 3>>,
        mut grad: Tensor<AB::InnerBackend, 3>,
        grid: &ImageGrid<'_, AB>,
        mut before: impl FnMut(usize),
    ) -> Tensor<AB::InnerBackend, 3> {
        for (i, (block, input)) in blocks.iter().zip(inputs).enumerate().rev() {
            let block = cast(block.clone(), self.dtype);
            let (input, c) = (input.require_grad(), self.c.clone().require_grad());
            before(i);
            let output = block.forward(input.clone(), c.clone(), grid);
            let mut grads = self.backward(carry(output, grad));
            grad = leaf_gradient(&input, &mut grads);
            let c_part = leaf_gradient(&c, &mut grads).cast(DType::F32);
            self.c_grad = Some(match self.c_grad.take() {
                Some(sum) => sum + c_part,
                None => c_part,
            });
        }
        grad
    }
}

/// A scalar whose gradient with respect to `output` is `grad`: back-propagating
/// it carries `grad` on through the graph behind `output`.
fn carry<AB: AutodiffBackend, const D: usize>(
    output: Tensor<AB, D>,
    grad: Tensor<AB::InnerBackend, D>,
) -> Tensor<AB, 1> {
    let grad = Tensor::<AB, D>::from_inner(grad).cast(output.dtype());
    (output * grad).sum()
}

/// The gradient a backward left for `leaf`, zeros when none reached it.
fn leaf_gradient<AB: AutodiffBackend, const D: usize>(
    leaf: &Tensor<AB, D>,
    grads: &mut AB::Gradients,
) -> Tensor<AB::InnerBackend, D> {
    leaf.grad_remove(grads)
        .unwrap_or_else(|| leaf.clone().inner().zeros_like())
}

/// Seeds the backend RNG before each block of one training pass.
struct SegmentSeeds<B: Backend> {
    device: Device<B>,
    seed: u64,
}

impl<B: Backend> SegmentSeeds<B> {
    /// Seeds the RNG for the block `at`.
    fn before(&self, at: BlockAt) {
        let segment = match at {
            BlockAt::NoiseRefiner(i) => 2 * i as u64,
            BlockAt::Fusion(i) => 2 * i as u64 + 1,
        };
        B::seed(
            &self.device,
            self.seed.wrapping_add(segment.wrapping_mul(SEGMENT_STRIDE)),
        );
    }
}
