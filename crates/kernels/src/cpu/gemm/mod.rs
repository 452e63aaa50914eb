//! Matrix products of strided f32 views, single-threaded: the kernels run
//! many independent products at once, one per rayon task. On x86-64 CPUs
//! with AVX-512, or AVX2 and FMA, the product is our own ([`broadcast`], in
//! [`x86`]'s registers), elsewhere matrixmultiply's ([`blocked`]).

mod blocked;
#[cfg(target_arch = "x86_64")]
mod broadcast;
#[cfg(target_arch = "x86_64")]
mod x86;

use ndarray::{ArrayView2, ArrayViewMut2};

/// `c ← alpha·a·b + beta·c` on the fastest [`MatrixProduct`] this CPU runs.
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
    MatrixProduct::fastest().run(alpha, a, b, beta, c);
}

/// One implementation of the single-threaded matrix product under the
/// attention kernels, which run many independent products at once, one per
/// rayon task. Public for the products' benchmark, which compares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatrixProduct {
    /// matrixmultiply's, in blocks small enough to stay on one thread.
    Blocked,
    /// Ours, in 256-bit registers (x86-64 with AVX2 and FMA).
    Avx2,
    /// Ours, in 512-bit registers (x86-64 with AVX-512F).
    Avx512,
}

impl MatrixProduct {
    /// The implementations this CPU runs, slowest first.
    pub fn available() -> Vec<Self> {
        [Self::Blocked, Self::Avx2, Self::Avx512]
            .into_iter()
            .filter(|product| product.runs_here())
            .collect()
    }

    /// The fastest implementation this CPU runs: the kernels' choice.
    pub fn fastest() -> Self {
        [Self::Avx512, Self::Avx2]
            .into_iter()
            .find(|product| product.runs_here())
            .unwrap_or(Self::Blocked)
    }

    /// Whether this CPU has the instructions this implementation needs.
    fn runs_here(self) -> bool {
        match self {
            Self::Blocked => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => x86::has_avx2(),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => x86::has_avx512(),
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx2 | Self::Avx512 => false,
        }
    }

    /// `c ← alpha·a·b + beta·c`; with `beta = 0`, `c` is not read.
    ///
    /// # Panics
    /// When the shapes do not chain (`a: m×k`, `b: k×n`, `c: m×n`), or when
    /// this CPU cannot run this implementation (see [`available`](Self::available)).
    pub fn run(
        self,
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
        assert!(
            self.runs_here(),
            "{self:?} needs instructions this CPU lacks"
        );
        match self {
            Self::Blocked => blocked::gemm(alpha, a, b, beta, c),
            // SAFETY: this CPU has AVX2 and FMA (checked above).
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => unsafe { x86::gemm_avx2(alpha, a, b, beta, c) },
            // SAFETY: this CPU has AVX-512F (checked above).
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => unsafe { x86::gemm_avx512(alpha, a, b, beta, c) },
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx2 | Self::Avx512 => unreachable!("checked above"),
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::cpu::test_matrix as matrix;

    fn assert_product(
        product: MatrixProduct,
        got: &Array2<f32>,
        want: &Array2<f32>,
        shape: (usize, usize, usize),
    ) {
        for (got, want) in got.iter().zip(want.iter()) {
            assert!(
                (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                "{product:?} {shape:?}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn the_kernels_take_the_widest_registers_this_cpu_has() {
        let available = MatrixProduct::available();
        assert_eq!(available[0], MatrixProduct::Blocked);
        assert_eq!(Some(&MatrixProduct::fastest()), available.last());
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
            (12, 9, 64),
            (6, 3, 33),
            (0, 5, 7),
        ];
        for product in MatrixProduct::available() {
            for (m, k, n) in shapes {
                let a = matrix(k, m, 1); // transposed: a column-major view of m×k
                let b = matrix(k, n, 2);
                let start = matrix(m, n, 3);
                let mut c = start.clone();
                product.run(0.5, a.t(), b.view(), -2.0, &mut c.view_mut());
                assert_product(
                    product,
                    &c,
                    &(a.t().dot(&b) * 0.5 - &start * 2.0),
                    (m, k, n),
                );
                let (a, b) = (matrix(m, k, 4), matrix(n, k, 5)); // row-major a, transposed b
                let mut c = Array2::from_elem((m, n), f32::NAN); // not read with beta = 0
                product.run(0.125, a.view(), b.t(), 0.0, &mut c.view_mut());
                assert_product(product, &c, &(a.dot(&b.t()) * 0.125), (m, k, n));
            }
        }
    }

    #[test]
    fn every_product_reads_row_major_b_inside_a_wider_matrix() {
        // Whole panels of either register width, read in place, and a last
        // partial panel, packed; the rows of `b` lie 96 columns apart.
        for product in MatrixProduct::available() {
            for (m, k, n) in [(13, 21, 64), (7, 5, 32), (6, 0, 32), (9, 11, 40)] {
                let a = matrix(m, k, 6);
                let wide = matrix(k, 96, 7);
                let b = wide.slice(ndarray::s![.., 16..16 + n]);
                let mut c = Array2::from_elem((m, n), f32::NAN);
                product.run(1.0, a.view(), b, 0.0, &mut c.view_mut());
                assert_product(product, &c, &a.dot(&b), (m, k, n));
            }
        }
    }
}
