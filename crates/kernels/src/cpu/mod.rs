//! The kernels themselves, on f32 ndarray arrays: forward and backward of
//! each operation, parallel over independent work items (rayon), each item
//! one cache-sized pass. Results do not depend on the number of threads.

pub(crate) mod adamw;
pub(crate) mod attention;
pub(crate) mod basis;
pub(crate) mod depthwise;
pub(crate) mod dropout;
mod exp;
pub(crate) mod gemm;
pub(crate) mod linear;
mod reduce;
pub(crate) mod rms_norm;
pub(crate) mod rope;
pub(crate) mod scale_add;
pub(crate) mod silu;
pub(crate) mod swiglu;
pub(crate) mod transpose;

/// Deterministic values in `[−1, 1)` from a small LCG, for the kernels' unit tests.
#[cfg(test)]
pub(crate) fn test_values(n: usize, seed: u32) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

/// A `rows × cols` matrix of [`test_values`], for the kernels' unit tests.
#[cfg(test)]
pub(crate) fn test_matrix(rows: usize, cols: usize, seed: u32) -> ndarray::Array2<f32> {
    ndarray::Array2::from_shape_vec((rows, cols), test_values(rows * cols, seed))
        .expect("as many values as the shape holds")
}
