//! Matrix products of strided f32 views, single-threaded: the kernels run
//! many independent products at once, one per rayon task. On x86-64 CPUs
//! with AVX2 and FMA the product is our own ([`fma`]), elsewhere
//! matrixmultiply's ([`blocked`]).

mod blocked;
#[cfg(target_arch = "x86_64")]
mod fma;

use ndarray::{ArrayView2, ArrayViewMut2};

/// `c ← alpha·a·b + beta·c`.
///
/// # Panics
/// When the shapes do not chain (`a: m×k`, `b: k×n`, `c: m×n`).
pub(crate) fn gemm(
    alpha: f32,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
) {
    let (m, k) = a.dim();
    let (k_b, n) = b.dim();
    assert_eq!(k, k_b, "gemm: inner sizes differ");
    assert_eq!(c.dim(), (m, n), "gemm: output shape");
    #[cfg(target_arch = "x86_64")]
    if fma::available() {
        // SAFETY: this CPU has AVX2 and FMA.
        unsafe { fma::gemm(alpha, a, b, beta, c) };
        return;
    }
    blocked::gemm(alpha, a, b, beta, c);
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::cpu::test_matrix as matrix;

    type Product =
        fn(f32, ArrayView2<'_, f32>, ArrayView2<'_, f32>, f32, &mut ArrayViewMut2<'_, f32>);

    /// The products this CPU can run, by name.
    fn products() -> Vec<(&'static str, Product)> {
        let mut products: Vec<(&'static str, Product)> = vec![("blocked", blocked::gemm)];
        #[cfg(target_arch = "x86_64")]
        if fma::available() {
            // SAFETY: this CPU has AVX2 and FMA.
            products.push(("fma", |alpha, a, b, beta, c| unsafe {
                fma::gemm(alpha, a, b, beta, c)
            }));
        }
        products
    }

    fn assert_product(
        name: &str,
        got: &Array2<f32>,
        want: &Array2<f32>,
        shape: (usize, usize, usize),
    ) {
        for (got, want) in got.iter().zip(want.iter()) {
            assert!(
                (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                "{name} {shape:?}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn every_product_equals_ndarrays_on_strided_views() {
        let shapes = [
            (5, 3, 4),
            (300, 200, 150),
            (40, 700, 90),
            (320, 64, 320),
            (9, 0, 6),
            (1, 17, 33),
            (7, 1, 16),
        ];
        for (name, product) in products() {
            for (m, k, n) in shapes {
                let a = matrix(k, m, 1); // transposed: a column-major view of m×k
                let b = matrix(k, n, 2);
                let start = matrix(m, n, 3);
                let mut c = start.clone();
                product(0.5, a.t(), b.view(), -2.0, &mut c.view_mut());
                assert_product(name, &c, &(a.t().dot(&b) * 0.5 - &start * 2.0), (m, k, n));
                let (a, b) = (matrix(m, k, 4), matrix(n, k, 5)); // row-major a, transposed b
                let mut c = Array2::from_elem((m, n), f32::NAN); // not read with beta = 0
                product(0.125, a.view(), b.t(), 0.0, &mut c.view_mut());
                assert_product(name, &c, &(a.dot(&b.t()) * 0.125), (m, k, n));
            }
        }
    }
}
