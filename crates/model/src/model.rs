//! `SingleStreamDiT`: the seed's `SingleStreamDiTV2` forward.

use std::sync::Arc;

use burn::module::{Initializer, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::DType;

use crate::block::{BlockSizes, ContextRefinerBlock, ImageGrid, VisualFusionBlock};
use crate::cache::{GridCache, GridTables};
use crate::embed::{CaptionEmbedder, TIMESTEP_FEATURES, TimestepEmbedder};
use crate::fourier::DftBases;
use crate::layers::{RmsNorm, linear, normal, project, torch_default_bias};
use crate::patch::{patchify, unpatchify};
use crate::rope::RopeTable;
use crate::{Error, Result, SingleStreamDiTConfig};

/// The single-stream diffusion transformer with global Fourier filters
/// (the seed's `SingleStreamDiTV2`): predicts the flow-matching velocity of
/// a latent given the time and the caption embeddings.
///
/// Latents are cut into `p × p` patch tokens; the image tokens pass the
/// noise-refiner blocks and the caption tokens the context-refiner blocks,
/// then `[text, image]` runs through the joint fusion blocks, modulated by
/// the timestep embedding; the image tokens are projected back to patches.
///
/// Field names are the checkpoint's (see [`crate::key_map`] for the few
/// renamed `nn.Sequential` indices).
#[derive(Module, Debug)]
pub struct SingleStreamDiT<B: Backend> {
    pub(crate) x_embedder: Linear<B>,
    pub(crate) cap_embedder: CaptionEmbedder<B>,
    pub(crate) text_pos_embed: Param<Tensor<B, 3>>,
    /// Part of the seed's state dict; its forward never reads it.
    pub(crate) x_pad_token: Param<Tensor<B, 3>>,
    pub(crate) cap_pad_token: Param<Tensor<B, 3>>,
    pub(crate) t_embedder: TimestepEmbedder<B>,
    pub(crate) noise_refiner: Vec<VisualFusionBlock<B>>,
    pub(crate) context_refiner: Vec<ContextRefinerBlock<B>>,
    pub(crate) blocks: Vec<VisualFusionBlock<B>>,
    pub(crate) final_norm: RmsNorm<B>,
    pub(crate) final_layer: Linear<B>,
    in_channels: usize,
    patch_size: usize,
    head_dim: usize,
    rope_base: f64,
    #[module(skip)]
    grids: GridCache<B>,
}

/// The forward's state after the embeddings, before any block.
pub(crate) struct Embedded<B: Backend> {
    /// The image tokens: `[batch, h·w, hidden]`.
    pub image: Tensor<B, 3>,
    /// The caption tokens with their positions: `[batch, text, hidden]`.
    pub context: Tensor<B, 3>,
    /// The timestep embedding that modulates every fusion block: `[batch, hidden]`.
    pub c: Tensor<B, 2>,
    pub layout: Layout<B>,
}

/// Which block a forward is about to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockAt {
    NoiseRefiner(usize),
    Fusion(usize),
}

/// Where the image tokens sit in the joint sequence, and the tables the
/// blocks use on them.
pub(crate) struct Layout<B: Backend> {
    h: usize,
    w: usize,
    text_tokens: usize,
    /// The latents' dtype, which the prediction takes.
    output_dtype: DType,
    /// RoPE over the joint sequence (identity on the text tokens).
    joint_rope: RopeTable<B>,
    tables: Arc<GridTables<B>>,
}

impl<B: Backend> Layout<B> {
    /// The grid a noise-refiner block sees: the image tokens alone.
    pub fn image_grid(&self) -> ImageGrid<'_, B> {
        ImageGrid {
            h: self.h,
            w: self.w,
            rope: &self.tables.rope,
            dft: &self.tables.dft,
        }
    }

    /// The grid a fusion block sees: the joint sequence.
    pub fn joint_grid(&self) -> ImageGrid<'_, B> {
        ImageGrid {
            rope: &self.joint_rope,
            ..self.image_grid()
        }
    }
}

/// `blocks` one after the other; `before_block(i, input)` runs before
/// block `i` (where a training pass seeds the dropout and keeps the block's
/// input).
pub(crate) fn run_blocks<B: Backend>(
    blocks: &[VisualFusionBlock<B>],
    x: Tensor<B, 3>,
    c: &Tensor<B, 2>,
    grid: &ImageGrid<'_, B>,
    mut before_block: impl FnMut(usize, &Tensor<B, 3>),
) -> Tensor<B, 3> {
    blocks.iter().enumerate().fold(x, |x, (i, block)| {
        before_block(i, &x);
        block.forward(x, c.clone(), grid)
    })
}

impl SingleStreamDiTConfig {
    /// Builds the model with the seed's initialisation, lazily: each
    /// parameter is drawn from the backend RNG when first used (or never,
    /// when a checkpoint is loaded over it first). See
    /// [`init_seeded`](Self::init_seeded) for a reproducible draw.
    ///
    /// The scheme is what the seed's `initialize_weights` leaves in place:
    /// `x_embedder`, `cap_embedder.1`, `t_embedder.{0,2}` weights and the
    /// three embeddings `normal(0.02)`; their biases zero except
    /// `x_embedder.bias` (PyTorch's default `U(±1/√fan_in)`); every >1-D
    /// block parameter `normal(0.02)` — this loop runs after the SwiGLU
    /// Xavier draw and the local-bias constant 1e-3, so those do not
    /// survive; adaLN of the fusion blocks zero; `freq_mlp.0` Xavier-uniform
    /// (default bias), `freq_mlp.2` zero, Fourier gates 0.1; norms one;
    /// `final_layer` zero.
    pub fn init<B: Backend>(&self, device: &Device<B>) -> Result<SingleStreamDiT<B>> {
        self.validate()?;
        let dim = self.hidden_size;
        let sizes = BlockSizes {
            dim,
            heads: self.num_heads,
            ffn_hidden: self.ffn_hidden_size(),
        };
        let zeros = || Some(Initializer::Zeros);
        Ok(SingleStreamDiT {
            x_embedder: linear(
                self.patch_dim(),
                dim,
                normal(),
                Some(torch_default_bias(self.patch_dim())),
                device,
            ),
            cap_embedder: CaptionEmbedder {
                norm: RmsNorm::new(self.text_embed_dim, device),
                linear: linear(self.text_embed_dim, dim, normal(), zeros(), device),
            },
            text_pos_embed: normal().init([1, self.max_token_length, dim], device),
            x_pad_token: normal().init([1, 1, dim], device),
            cap_pad_token: normal().init([1, 1, dim], device),
            t_embedder: TimestepEmbedder {
                linear_in: linear(TIMESTEP_FEATURES, dim, normal(), zeros(), device),
                linear_out: linear(dim, dim, normal(), zeros(), device),
            },
            noise_refiner: (0..self.refiner_depth)
                .map(|_| VisualFusionBlock::new(sizes, self.dropout, device))
                .collect(),
            context_refiner: (0..self.refiner_depth)
                .map(|_| ContextRefinerBlock::new(sizes, device))
                .collect(),
            blocks: (0..self.depth)
                .map(|_| VisualFusionBlock::new(sizes, self.dropout, device))
                .collect(),
            final_norm: RmsNorm::new(dim, device),
            final_layer: linear(dim, self.patch_dim(), Initializer::Zeros, zeros(), device),
            in_channels: self.in_channels,
            patch_size: self.patch_size,
            head_dim: self.head_dim(),
            rope_base: self.rope_base,
            grids: GridCache::default(),
        })
    }

    /// [`init`](Self::init) with the backend RNG seeded first and every
    /// parameter drawn at once, in declaration order, so the same seed gives
    /// the same weights whatever the caller does with the RNG afterwards.
    pub fn init_seeded<B: Backend>(
        &self,
        device: &Device<B>,
        seed: u64,
    ) -> Result<SingleStreamDiT<B>> {
        B::seed(device, seed);
        let model = self.init(device)?;
        model.visit(&mut Materialize);
        Ok(model)
    }
}

/// Draws every lazily initialised parameter.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

impl<B: Backend> SingleStreamDiT<B> {
    /// Predicted velocity for latents `x` at times `t` under caption
    /// embeddings `text`. A caption row that is all zeros (the null/CFG
    /// embedding) is replaced by the learned `cap_pad_token` on every token.
    ///
    /// The inputs may be in any float dtype: the model computes in its
    /// parameters' ([`dtype`](Self::dtype)) and returns `x`'s.
    ///
    /// # Shapes
    /// - x: `[batch, in_channels, H, W]`, `H` and `W` multiples of `patch_size`
    /// - t: `[batch]`
    /// - text: `[batch, tokens ≤ max_token_length, text_embed_dim]`
    /// - output: `[batch, in_channels, H, W]`
    ///
    /// # Panics
    /// When the shapes are not as above; [`try_forward`](Self::try_forward)
    /// returns the reason instead.
    pub fn forward(&self, x: Tensor<B, 4>, t: Tensor<B, 1>, text: Tensor<B, 3>) -> Tensor<B, 4> {
        self.try_forward(x, t, text)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`forward`](Self::forward), with a shape error instead of a panic.
    pub fn try_forward(
        &self,
        x: Tensor<B, 4>,
        t: Tensor<B, 1>,
        text: Tensor<B, 3>,
    ) -> Result<Tensor<B, 4>> {
        self.forward_hooked(x, t, text, |_| {})
    }

    /// [`try_forward`](Self::try_forward) with `before_block` run before
    /// each noise-refiner and fusion block.
    pub(crate) fn forward_hooked(
        &self,
        x: Tensor<B, 4>,
        t: Tensor<B, 1>,
        text: Tensor<B, 3>,
        mut before_block: impl FnMut(BlockAt),
    ) -> Result<Tensor<B, 4>> {
        let Embedded {
            image,
            context,
            c,
            layout,
        } = self.embed(x, t, text)?;
        let image = run_blocks(
            &self.noise_refiner,
            image,
            &c,
            &layout.image_grid(),
            |i, _| before_block(BlockAt::NoiseRefiner(i)),
        );
        let joint = self.join(image, context);
        let joint = run_blocks(&self.blocks, joint, &c, &layout.joint_grid(), |i, _| {
            before_block(BlockAt::Fusion(i))
        }); // [B, L + h·w, D]
        Ok(self.head(joint, &layout))
    }

    /// The forward's embeddings: the latent patches, the captions and the
    /// time, and the grid's tables.
    pub(crate) fn embed(
        &self,
        x: Tensor<B, 4>,
        t: Tensor<B, 1>,
        text: Tensor<B, 3>,
    ) -> Result<Embedded<B>> {
        self.check_inputs(x.dims(), t.dims(), text.dims())?;
        let [_, _, height, width] = x.dims();
        let [_, text_tokens, _] = text.dims();
        let p = self.patch_size;
        let (h, w) = (height / p, width / p);
        let (output_dtype, dtype) = (x.dtype(), self.dtype());

        let image = project(&self.x_embedder, patchify(x.cast(dtype), p)); // [B, h·w, D]
        let context = self.embed_caption(text) // [B, L, D]
            + self.text_pos_embed.val().narrow(1, 0, text_tokens);
        let c = self.t_embedder.forward(t); // [B, D]

        let device = image.device();
        let tables = self.grids.get_or_build(h, w, &device, || GridTables {
            rope: RopeTable::grid(h, w, self.head_dim, self.rope_base, &device),
            dft: DftBases::new(h, w, &device),
        });
        Ok(Embedded {
            image,
            context,
            c,
            layout: Layout {
                h,
                w,
                text_tokens,
                output_dtype,
                joint_rope: tables.rope.with_text_prefix(text_tokens),
                tables,
            },
        })
    }

    /// The refined caption tokens and the refined image tokens as one
    /// `[text, image]` sequence.
    pub(crate) fn join(&self, image: Tensor<B, 3>, context: Tensor<B, 3>) -> Tensor<B, 3> {
        let context = self
            .context_refiner
            .iter()
            .fold(context, |x, block| block.forward(x));
        Tensor::cat(vec![context, image], 1)
    }

    /// The forward after the fusion blocks: the image tokens projected back
    /// to latent patches, in the dtype the latents came in.
    pub(crate) fn head(&self, joint: Tensor<B, 3>, layout: &Layout<B>) -> Tensor<B, 4> {
        let Layout {
            h,
            w,
            text_tokens,
            output_dtype,
            ..
        } = *layout;
        let image = joint.narrow(1, text_tokens, h * w);
        let patches = project(&self.final_layer, self.final_norm.forward(image)); // [B, h·w, C·p²]
        unpatchify(patches, h, w, self.patch_size, self.in_channels).cast(output_dtype)
    }

    /// This model without its noise-refiner and fusion blocks: what the
    /// forward runs between them.
    pub(crate) fn without_visual_blocks(&self) -> Self {
        Self {
            noise_refiner: Vec::new(),
            blocks: Vec::new(),
            ..self.clone()
        }
    }

    /// Caption embeddings in the model's dtype, with all-zero rows (as
    /// given, before any cast) replaced by `cap_pad_token`.
    ///
    /// # Shapes
    /// - text: `[batch, tokens, text_embed_dim]`
    /// - output: `[batch, tokens, hidden]`
    fn embed_caption(&self, text: Tensor<B, 3>) -> Tensor<B, 3> {
        let is_null = text.clone().abs().sum_dims(&[1, 2]).equal_elem(0.0); // [B, 1, 1]
        let context = self.cap_embedder.forward(text.cast(self.dtype()));
        let shape = context.shape();
        context.mask_where(
            is_null.expand(shape.clone()),
            self.cap_pad_token.val().expand(shape),
        )
    }

    /// Checks forward input shapes against the model, naming the input at fault.
    pub fn check_inputs(&self, x: [usize; 4], t: [usize; 1], text: [usize; 3]) -> Result<()> {
        let input = |input: &'static str, reason: String| Err(Error::Input { input, reason });
        let [batch, channels, height, width] = x;
        let p = self.patch_size;
        if channels != self.in_channels {
            return input(
                "x",
                format!(
                    "has {channels} channels, the model takes {}",
                    self.in_channels
                ),
            );
        }
        if height == 0 || width == 0 || height % p != 0 || width % p != 0 {
            return input(
                "x",
                format!(
                    "latent {height}×{width} is not a non-empty multiple of the patch size {p}"
                ),
            );
        }
        if t[0] != batch {
            return input("t", format!("has {} times for a batch of {batch}", t[0]));
        }
        let [text_batch, tokens, text_dim] = text;
        if text_batch != batch {
            return input(
                "text",
                format!("has {text_batch} captions for a batch of {batch}"),
            );
        }
        if text_dim != self.text_embed_dim() {
            return input(
                "text",
                format!(
                    "embeddings are {text_dim} wide, the model takes {}",
                    self.text_embed_dim()
                ),
            );
        }
        let max = self.max_token_length();
        if tokens == 0 || tokens > max {
            return input(
                "text",
                format!("has {tokens} tokens, the model takes 1 to {max}"),
            );
        }
        Ok(())
    }

    /// Transformer width.
    pub fn hidden_size(&self) -> usize {
        self.final_norm.weight.lazy_shape()[0]
    }

    /// Width of the caption embeddings the model takes.
    pub fn text_embed_dim(&self) -> usize {
        self.cap_embedder.norm.weight.lazy_shape()[0]
    }

    /// Longest caption the model takes, in tokens.
    pub fn max_token_length(&self) -> usize {
        self.text_pos_embed.lazy_shape()[1]
    }

    /// Latent channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Latent pixels per token side.
    pub fn patch_size(&self) -> usize {
        self.patch_size
    }

    /// The raw gate of every Fourier filter (before `tanh`), noise refiner
    /// first, in the seed's module order.
    pub fn fourier_gates(&self) -> Vec<f32> {
        self.noise_refiner
            .iter()
            .chain(&self.blocks)
            .map(|block| block.fourier_filter.gate_value())
            .collect()
    }

    /// The mean raw Fourier gate, which the seed logs while training
    /// (`get_average_gate_value`); 0 for a model without fusion blocks.
    pub fn mean_fourier_gate(&self) -> f32 {
        let gates = self.fourier_gates();
        if gates.is_empty() {
            return 0.0;
        }
        gates.iter().sum::<f32>() / gates.len() as f32
    }

    /// How many grid sizes have cached RoPE and DFT tables.
    pub fn cached_grids(&self) -> usize {
        self.grids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    fn tiny() -> SingleStreamDiT<B> {
        SingleStreamDiTConfig::new()
            .with_hidden_size(16)
            .with_num_heads(2)
            .with_depth(1)
            .with_refiner_depth(1)
            .with_text_embed_dim(8)
            .with_max_token_length(4)
            .init(&Default::default())
            .unwrap()
    }

    #[test]
    fn parameters_are_named_by_checkpoint_and_module_path() {
        let params = tiny().named_params();
        let find = |name: &str| {
            params
                .iter()
                .find(|p| p.name == name)
                .unwrap_or_else(|| panic!("no {name}"))
        };
        let linear = find("cap_embedder.1.weight");
        assert_eq!(linear.path, "cap_embedder.linear.weight");
        assert!(linear.transposed);
        assert_eq!(
            (linear.shape.clone(), linear.torch_shape()),
            (vec![8, 16], vec![16, 8])
        );
        let norm = find("cap_embedder.0.weight");
        assert_eq!(norm.path, "cap_embedder.norm.weight");
        assert!(!norm.transposed);
        assert_eq!(norm.torch_shape(), vec![8]);
        assert!(!find("cap_embedder.1.bias").transposed);
    }

    fn rows(model: &SingleStreamDiT<B>, text: Tensor<B, 3>) -> Vec<Vec<f32>> {
        let [batch, ..] = text.dims();
        let context = model.embed_caption(text);
        (0..batch)
            .map(|b| {
                context
                    .clone()
                    .narrow(0, b, 1)
                    .into_data()
                    .to_vec()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn all_zero_caption_rows_and_only_those_become_the_pad_token() {
        let device = Default::default();
        let model = tiny();
        let mut values = vec![0.0f32; 3 * 4 * 8];
        for (i, v) in values[32..64].iter_mut().enumerate() {
            *v = (i as f32 * 0.37).sin(); // row 1: an ordinary caption
        }
        values[64 + 5] = -1e-3; // row 2: zeros but for one value
        let text = Tensor::<B, 3>::from_data(TensorData::new(values, [3, 4, 8]), &device);
        let got = rows(&model, text.clone());

        let pad: Vec<f32> = model.cap_pad_token.val().into_data().to_vec().unwrap();
        let padded: Vec<f32> = pad.iter().cycle().take(4 * 16).copied().collect();
        assert_eq!(got[0], padded, "null row: cap_pad_token on every token");

        let embedded = model.cap_embedder.forward(text);
        for b in [1, 2] {
            let want: Vec<f32> = embedded
                .clone()
                .narrow(0, b, 1)
                .into_data()
                .to_vec()
                .unwrap();
            assert_eq!(got[b], want, "row {b} is embedded, not replaced");
            assert_ne!(got[b], padded);
        }
    }

    #[test]
    fn bad_shapes_are_errors_naming_the_input() {
        let model = tiny();
        let reason = |x, t, text| match model.check_inputs(x, t, text) {
            Err(Error::Input { input, reason }) => format!("{input}: {reason}"),
            other => panic!("expected an input error, got {other:?}"),
        };
        assert!(reason([1, 3, 4, 4], [1], [1, 2, 8]).starts_with("x: has 3 channels"));
        assert!(reason([1, 16, 5, 4], [1], [1, 2, 8]).starts_with("x: latent 5×4"));
        assert!(reason([2, 16, 4, 4], [1], [2, 2, 8]).starts_with("t: has 1 times"));
        assert!(reason([1, 16, 4, 4], [1], [2, 2, 8]).starts_with("text: has 2 captions"));
        assert!(reason([1, 16, 4, 4], [1], [1, 2, 9]).starts_with("text: embeddings are 9 wide"));
        assert!(reason([1, 16, 4, 4], [1], [1, 5, 8]).starts_with("text: has 5 tokens"));
        model.check_inputs([1, 16, 4, 6], [1], [1, 4, 8]).unwrap();
    }

    #[test]
    fn grid_tables_are_built_once_per_grid_and_are_not_parameters() {
        let device = Default::default();
        let model = tiny();
        let count = model.parameter_count();
        let run = |h: usize, w: usize| {
            let x = Tensor::<B, 4>::zeros([1, 16, h, w], &device);
            let t = Tensor::<B, 1>::zeros([1], &device);
            let text = Tensor::<B, 3>::ones([1, 2, 8], &device);
            model.forward(x, t, text)
        };
        assert_eq!(run(6, 10).dims(), [1, 16, 6, 10]);
        run(6, 10);
        assert_eq!(model.cached_grids(), 1);
        run(4, 4);
        assert_eq!(model.cached_grids(), 2);
        assert_eq!(model.clone().cached_grids(), 2, "clones share the cache");
        assert_eq!(model.parameter_count(), count);
        assert!(
            model
                .named_shapes()
                .iter()
                .all(|(n, _)| !n.contains("grid"))
        );
    }
}
