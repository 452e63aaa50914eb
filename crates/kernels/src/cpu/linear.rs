//! The products of a linear layer and of its backward pass, on OpenBLAS
//! through ndarray: the transposed operands of the backward pass are passed
//! as transposed views, which BLAS reads in place.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2};

/// `x·w`.
pub(crate) fn forward(x: ArrayView2<'_, f32>, w: ArrayView2<'_, f32>) -> Array2<f32> {
    product(x, w)
}

/// The gradients of `x` (`g·wᵀ`) and `w` (`xᵀ·g`).
pub(crate) fn backward(
    grad: ArrayView2<'_, f32>,
    x: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
) -> (Array2<f32>, Array2<f32>) {
    (product(grad, w.t()), product(x.t(), grad))
}

/// `a·b` into a zeroed matrix, accumulated with `β = 1`: OpenBLAS runs a
/// pass of its own over the output whenever `β ≠ 1` (for `β = 0`, zeroing
/// it a second time), and the product added to zero has the same values.
fn product(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut out = Array2::zeros((a.nrows(), b.ncols()));
    general_mat_mul(1.0, &a, &b, 1.0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_matrix as matrix;

    /// `Σ_jk a[j,·]·b[·,k]` one element at a time, in f64.
    fn naive(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, k)| {
            (0..a.ncols())
                .map(|j| a[[i, j]] as f64 * b[[j, k]] as f64)
                .sum()
        })
    }

    fn assert_close(got: &Array2<f32>, want: &Array2<f64>) {
        assert_eq!(got.dim(), want.dim());
        for (got, want) in got.iter().zip(want) {
            assert!((*got as f64 - want).abs() < 1e-4, "{got} vs {want}");
        }
    }

    #[test]
    fn products_and_gradients_follow_the_formulas() {
        let (rows, d_in, d_out) = (37, 19, 23);
        let (x, w, g) = (
            matrix(rows, d_in, 1),
            matrix(d_in, d_out, 2),
            matrix(rows, d_out, 3),
        );
        assert_close(&forward(x.view(), w.view()), &naive(x.view(), w.view()));
        let (dx, dw) = backward(g.view(), x.view(), w.view());
        assert_close(&dx, &naive(g.view(), w.t()));
        assert_close(&dw, &naive(x.t(), g.view()));
    }
}
