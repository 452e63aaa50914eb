//! The product on matrixmultiply, for CPUs without AVX2 and FMA.
//!
//! matrixmultiply is built with its `threading` feature (burn-ndarray turns
//! it on), and hands any product with `m·k + k·n ≥ 2¹⁵` to its own thread
//! pool: called from rayon tasks that already keep every core busy, that
//! puts two threads on each core (forward −9 % with it off, docs/benchmarks.md).
//! So a larger product is computed in blocks below that size.

use ndarray::{ArrayView2, ArrayViewMut2, s};

/// matrixmultiply's size (`m·k + k·n`) from which it uses more than one thread.
const THREADED_SIZE: usize = 1 << 15;
/// The longest stretch of the inner dimension in one block.
const MAX_BLOCK_INNER: usize = 128;
/// Block rows and columns are multiples of this (matrixmultiply's f32 kernels are 8 wide).
const BLOCK_ALIGN: usize = 8;

/// `c ← alpha·a·b + beta·c`; the shapes chain (checked by the caller).
pub(super) fn gemm(
    alpha: f32,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let block = Block::for_product(m, k, n);
    if block.covers(m, k, n) {
        sgemm(alpha, a, b, beta, c);
        return;
    }
    for rows in (0..m).step_by(block.rows) {
        let rows = rows..(rows + block.rows).min(m);
        for cols in (0..n).step_by(block.cols) {
            let cols = cols..(cols + block.cols).min(n);
            let mut c_block = c.slice_mut(s![rows.clone(), cols.clone()]);
            for inner in (0..k).step_by(block.inner) {
                let beta = if inner == 0 { beta } else { 1.0 };
                let inner = inner..(inner + block.inner).min(k);
                let a_block = a.slice(s![rows.clone(), inner.clone()]);
                let b_block = b.slice(s![inner, cols.clone()]);
                sgemm(alpha, a_block, b_block, beta, &mut c_block);
            }
        }
    }
}

/// The extent of one block of a product: `rows × inner` of `a` times
/// `inner × cols` of `b`, small enough that matrixmultiply keeps it on the
/// calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    rows: usize,
    inner: usize,
    cols: usize,
}

impl Block {
    fn for_product(m: usize, k: usize, n: usize) -> Self {
        if (m + n) * k < THREADED_SIZE {
            return Self {
                rows: m,
                inner: k,
                cols: n,
            };
        }
        let inner = k.min(MAX_BLOCK_INNER);
        let budget = (THREADED_SIZE - 1) / inner; // rows + cols may not exceed it
        let half = budget / 2 / BLOCK_ALIGN * BLOCK_ALIGN;
        let (rows, cols) = if m + n <= budget {
            (m, n)
        } else if m <= half {
            (m, budget - m)
        } else if n <= half {
            (budget - n, n)
        } else {
            (half, half)
        };
        Self { rows, inner, cols }
    }

    fn covers(&self, m: usize, k: usize, n: usize) -> bool {
        self.rows >= m && self.inner >= k && self.cols >= n
    }
}

/// One call of matrixmultiply's SGEMM on the views as they are.
fn sgemm(
    alpha: f32,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
) {
    let (m, k) = a.dim();
    let n = b.dim().1;
    let [rsa, csa] = [a.strides()[0], a.strides()[1]];
    let [rsb, csb] = [b.strides()[0], b.strides()[1]];
    let [rsc, csc] = [c.strides()[0], c.strides()[1]];
    // SAFETY: each view covers every element its shape and strides address
    // from its pointer; `c` is borrowed mutably, so it aliases neither input.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            rsc,
            csc,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_stays_on_the_calling_thread() {
        for m in [1, 7, 64, 100, 320, 1000, 4096] {
            for k in [0, 1, 64, 127, 128, 129, 512, 3000] {
                for n in [1, 8, 64, 320, 1000] {
                    let block = Block::for_product(m, k, n);
                    let (rows, inner, cols) = (block.rows, block.inner, block.cols);
                    assert!(
                        (rows + cols) * inner < THREADED_SIZE,
                        "{m}×{k}×{n}: {block:?}"
                    );
                    assert!(rows >= 1 && cols >= 1, "{m}×{k}×{n}: {block:?}");
                    assert!(
                        rows <= m && inner <= k.max(1) && cols <= n,
                        "{m}×{k}×{n}: {block:?}"
                    );
                    assert_eq!(block.covers(m, k, n), (m + n) * k < THREADED_SIZE);
                }
            }
        }
    }
}
