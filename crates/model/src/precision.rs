//! Compute precision. The model computes in its parameters' dtype: f32 as
//! built and loaded, bf16 (or f16) once [`SingleStreamDiT::with_dtype`] has
//! cast them. What autocast keeps in f32 stays there: RMSNorm statistics,
//! the timestep features and the Fourier filter's transforms run in at least
//! f32 ([`ssdit_kernels::widened`]); the tables built from the grid (RoPE, DFT bases) are
//! cast to the dtype of the tensors they meet.
//!
//! Under autodiff the casts of [`SingleStreamDiT::with_dtype`] are part of
//! the graph, so a step that casts the f32 model, runs the forward in bf16
//! and takes the loss in f32 gets f32 gradients for the f32 parameters:
//! mixed-precision training with f32 master weights.

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::DType;

use crate::SingleStreamDiT;

/// Casts every float parameter to one dtype, keeping its id (and, under
/// autodiff, its place in the graph).
struct CastParams(DType);

impl<B: Backend> ModuleMapper<B> for CastParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.map(|tensor| tensor.cast(self.0))
    }
}

impl<B: Backend> SingleStreamDiT<B> {
    /// The dtype the model computes in: its parameters'.
    pub fn dtype(&self) -> DType {
        self.x_embedder.weight.val().dtype()
    }

    /// This model computing in `dtype` (a float dtype the backend supports:
    /// bf16 or f16 on CUDA). On an autodiff backend, gradients through the
    /// cast model reach this model's parameters in their own dtype.
    pub fn with_dtype(self, dtype: DType) -> Self {
        cast(self, dtype)
    }
}

/// `module` computing in `dtype` (see [`SingleStreamDiT::with_dtype`]).
pub(crate) fn cast<B: Backend, M: Module<B>>(module: M, dtype: DType) -> M {
    module.map(&mut CastParams(dtype))
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::module::ModuleVisitor;
    use burn::optim::GradientsParams;
    use burn::tensor::{Distribution, Tolerance};

    use super::*;
    use crate::SingleStreamDiTConfig;

    type B = NdArray<f32>;
    type AB = Autodiff<B>;

    /// Draws every parameter from N(0, 0.2²): the seed's zero-initialised
    /// layers (adaLN, final layer, `freq_mlp.2`) would hide most of the model.
    struct Randomize;

    impl<B: Backend> ModuleMapper<B> for Randomize {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            param.map(|t| {
                let random = t.random_like(Distribution::Normal(0.0, 0.2));
                if t.is_require_grad() {
                    random.require_grad()
                } else {
                    random
                }
            })
        }
    }

    fn model<B: Backend>(device: &Device<B>) -> SingleStreamDiT<B> {
        B::seed(device, 7);
        SingleStreamDiTConfig::new()
            .with_hidden_size(16)
            .with_num_heads(2)
            .with_depth(2)
            .with_refiner_depth(1)
            .with_text_embed_dim(8)
            .with_max_token_length(4)
            .with_dropout(0.0)
            .init(device)
            .unwrap()
            .map(&mut Randomize)
    }

    /// Latents on a 3×2-token grid (odd, non-square), times, and captions
    /// whose second row is the null caption.
    fn inputs<B: Backend>(device: &Device<B>) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 3>) {
        let x = Tensor::random([2, 16, 6, 4], Distribution::Normal(0.0, 1.0), device);
        let t = Tensor::from_floats([0.3, 0.8], device);
        let text = Tensor::cat(
            vec![
                Tensor::random([1, 3, 8], Distribution::Normal(0.0, 1.0), device),
                Tensor::zeros([1, 3, 8], device),
            ],
            0,
        );
        (x, t, text)
    }

    // NdArray computes in f32 and f64 and panics on a binary op that mixes
    // them: f64 stands in for bf16 here, so a table or input left in f32
    // anywhere in the forward fails these tests.

    #[test]
    fn a_cast_model_computes_in_its_dtype_and_returns_the_latents_dtype() {
        let device = Default::default();
        let model = model::<B>(&device);
        let (x, t, text) = inputs::<B>(&device);
        let want = model.forward(x.clone(), t.clone(), text.clone());

        let wide = model.with_dtype(DType::F64);
        assert_eq!(wide.dtype(), DType::F64);
        let got = wide.forward(x.clone(), t.clone(), text.clone());
        assert_eq!(got.dtype(), DType::F32, "the output takes x's dtype");
        got.into_data()
            .assert_approx_eq::<f32>(&want.clone().into_data(), Tolerance::absolute(1e-4));

        let got = wide.forward(x.cast(DType::F64), t, text);
        assert_eq!(got.dtype(), DType::F64);
        got.cast(DType::F32)
            .into_data()
            .assert_approx_eq::<f32>(&want.into_data(), Tolerance::absolute(1e-4));
    }

    /// Every parameter's gradient, in visiting order (`None` for
    /// `x_pad_token`, which the forward never reads).
    struct Grads<'a> {
        grads: &'a GradientsParams,
        found: Vec<Option<TensorData>>,
    }

    impl ModuleVisitor<AB> for Grads<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
            let grad = self.grads.get::<B, D>(param.id);
            self.found.push(grad.map(Tensor::into_data));
        }
    }

    fn gradients(
        model: &SingleStreamDiT<AB>,
        compute: SingleStreamDiT<AB>,
    ) -> Vec<Option<TensorData>> {
        let device = Default::default();
        let (x, t, text) = inputs::<AB>(&device);
        let loss = compute.forward(x, t, text).square().mean();
        assert_eq!(loss.dtype(), DType::F32);
        let grads = GradientsParams::from_grads(loss.backward(), model);
        let mut visitor = Grads {
            grads: &grads,
            found: Vec::new(),
        };
        model.visit(&mut visitor);
        visitor.found
    }

    #[test]
    fn mixed_precision_gradients_reach_the_master_weights_in_their_dtype() {
        let device = Default::default();
        let master = model::<AB>(&device);
        AB::seed(&device, 11);
        let want = gradients(&master, master.clone());
        AB::seed(&device, 11);
        let got = gradients(&master, master.clone().with_dtype(DType::F64));

        assert_eq!(got.len(), want.len());
        let mut nonzero = 0;
        for (got, want) in got.iter().zip(&want) {
            let (got, want) = match (got, want) {
                (Some(got), Some(want)) => (got, want),
                (None, None) => continue,
                _ => panic!("a parameter has a gradient in one precision only"),
            };
            assert_eq!(got.dtype, DType::F32, "master gradients stay f32");
            got.assert_approx_eq::<f32>(want, Tolerance::rel_abs(1e-3, 1e-5));
            nonzero += usize::from(want.iter::<f32>().any(|g| g != 0.0));
        }
        assert!(
            nonzero > want.len() / 2,
            "{nonzero} of {} nonzero",
            want.len()
        );
        assert_eq!(
            want.iter().filter(|g| g.is_none()).count(),
            1,
            "x_pad_token only"
        );
    }
}
