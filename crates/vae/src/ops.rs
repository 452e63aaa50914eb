//! Tensor operations the blocks share, with the reference's precision rules:
//! statistics (GroupNorm) and softmax are computed in at least f32 even when
//! the model runs in bf16/f16, as PyTorch does.

use burn::nn::GroupNorm;
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

/// The float type to compute reductions in: f32 for half types, else the
/// tensor's own (f32 stays f32, f64 stays f64).
pub(crate) fn reduction_dtype(dtype: DType) -> FloatDType {
    match dtype {
        DType::F16 | DType::BF16 => FloatDType::F32,
        other => other.into(),
    }
}

/// `torch.nn.GroupNorm` over `[B, C, …]`: per-sample, per-group mean and
/// biased variance, computed in [`reduction_dtype`], then the affine map; the
/// result has the input's float type.
///
/// # Shapes
/// - input: `[batch, channels, ...]`, output: the same.
pub(crate) fn group_norm<B: Backend, const D: usize>(
    norm: &GroupNorm<B>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    let dtype = x.dtype();
    let wide = reduction_dtype(dtype);
    let shape = x.shape();
    let [batch, channels] = [shape[0], shape[1]];
    let groups = norm.num_groups;
    let per_group = shape.num_elements() / (batch * groups);
    let x = x.cast(wide).reshape([batch, groups, per_group]); // [B, G, C/G·spatial]
    let centred = x.clone() - x.mean_dim(2);
    let var = centred.clone().square().mean_dim(2);
    let normalised = (centred / (var + norm.epsilon).sqrt()).reshape(shape);
    let mut affine = [1; D];
    affine[1] = channels;
    let normalised = match (&norm.gamma, &norm.beta) {
        (Some(gamma), Some(beta)) => {
            normalised * gamma.val().cast(wide).reshape(affine)
                + beta.val().cast(wide).reshape(affine)
        }
        _ => normalised,
    };
    normalised.cast(FloatDType::from(dtype))
}

/// Nearest-neighbour ×2 upsampling (`F.interpolate(scale_factor=2,
/// mode="nearest")`): every value repeated into a 2×2 square.
///
/// # Shapes
/// - input: `[B, C, H, W]`, output: `[B, C, 2H, 2W]`.
pub(crate) fn upsample_nearest_2x<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2]) // [B, C, H, 2, W, 2]
        .reshape([b, c, 2 * h, 2 * w])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::nn::GroupNormConfig;

    type B = NdArray<f32>;

    #[test]
    fn group_norm_matches_burn_and_torch_semantics() {
        let device = Default::default();
        let norm = GroupNormConfig::new(2, 4)
            .with_epsilon(1e-6)
            .init::<B>(&device);
        let x = Tensor::<B, 4>::random(
            [2, 4, 3, 5],
            burn::tensor::Distribution::Normal(1.0, 3.0),
            &device,
        );
        let ours = group_norm(&norm, x.clone());
        let burns = norm.forward(x);
        ours.into_data()
            .assert_approx_eq::<f32>(&burns.into_data(), Default::default());
    }

    #[test]
    fn nearest_upsampling_repeats_each_value() {
        let device = Default::default();
        let x = Tensor::<B, 4>::from_floats([[[[1.0, 2.0], [3.0, 4.0]]]], &device);
        let up = upsample_nearest_2x(x);
        let want = Tensor::<B, 4>::from_floats(
            [[[
                [1.0, 1.0, 2.0, 2.0],
                [1.0, 1.0, 2.0, 2.0],
                [3.0, 3.0, 4.0, 4.0],
                [3.0, 3.0, 4.0, 4.0],
            ]]],
            &device,
        );
        up.into_data().assert_eq(&want.into_data(), true);
    }
}
