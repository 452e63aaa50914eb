//! A constant basis applied to every matrix of a batch, `out[b] = basis·x[b]`,
//! one batch entry per task on the single-threaded product the attention
//! kernels use; its backward pass is the same with the basis transposed.

use ndarray::{Array3, ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;

use super::gemm::gemm;

/// `basis·x[b]` for every `b`: `[m, k]` and `[batch, k, n]` give `[batch, m, n]`.
pub(crate) fn apply(basis: ArrayView2<'_, f32>, x: ArrayView3<'_, f32>) -> Array3<f32> {
    let (batch, _, n) = x.dim();
    let mut out = Array3::zeros((batch, basis.nrows(), n));
    let outputs: Vec<_> = out.axis_iter_mut(Axis(0)).collect();
    outputs
        .into_par_iter()
        .zip(x.axis_iter(Axis(0)).collect::<Vec<_>>())
        .for_each(|(mut out, x)| gemm(1.0, basis, x, 0.0, &mut out));
    out
}

#[cfg(test)]
mod tests {
    use ndarray::Array3;

    use super::*;
    use crate::cpu::{test_matrix as matrix, test_values};

    #[test]
    fn every_matrix_is_multiplied_by_the_basis_and_its_transpose() {
        let (batch, m, k, n) = (5, 7, 4, 33);
        let basis = matrix(m, k, 1);
        let x = Array3::from_shape_vec((batch, k, n), test_values(batch * k * n, 2))
            .expect("as many values as the shape holds");
        let out = apply(basis.view(), x.view());
        let back = apply(basis.t(), out.view());
        for b in 0..batch {
            let want = basis.dot(&x.index_axis(Axis(0), b));
            let want_back = basis.t().dot(&want);
            for (got, want) in out.index_axis(Axis(0), b).iter().zip(&want) {
                assert!((got - want).abs() < 1e-5, "{got} vs {want}");
            }
            for (got, want) in back.index_axis(Axis(0), b).iter().zip(&want_back) {
                assert!((got - want).abs() < 1e-4, "{got} vs {want}");
            }
        }
    }
}
