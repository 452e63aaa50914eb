//! Scaled dot-product attention `softmax(scale·QKᵀ)·V`, one (batch, head)
//! pair per task: its scores (`queries × keys`, a few hundred KiB) stay in
//! cache from the product through the softmax to the product with `V`.

use ndarray::{Array4, ArrayView2, ArrayView4, ArrayViewMut2, s};
use rayon::prelude::*;

use super::exp::exp;
use super::gemm::gemm;
use super::reduce;

/// The attention output and, for the backward pass, the probabilities.
pub(crate) struct Forward {
    /// `[batch, heads, queries, value_dim]`
    pub output: Array4<f32>,
    /// `[batch, heads, queries, keys]`, when asked for.
    pub probs: Option<Array4<f32>>,
}

/// The gradients of the three inputs, in their shapes.
pub(crate) struct Gradients {
    pub q: Array4<f32>,
    pub k: Array4<f32>,
    pub v: Array4<f32>,
}

/// The inputs of one attention, `[batch, heads, tokens, features]`, any strides.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a> {
    pub q: ArrayView4<'a, f32>,
    pub k: ArrayView4<'a, f32>,
    pub v: ArrayView4<'a, f32>,
    pub scale: f32,
}

impl Inputs<'_> {
    fn heads(&self) -> usize {
        self.q.dim().1
    }

    /// `(q, k, v)` of the `pair`-th (batch, head) pair, batch-major.
    fn pair(&self, pair: usize) -> [ArrayView2<'_, f32>; 3] {
        let (b, h) = (pair / self.heads(), pair % self.heads());
        [self.q, self.k, self.v].map(|t| t.slice_move(s![b, h, .., ..]))
    }
}

/// `softmax(scale·QKᵀ)·V`; keeps the probabilities when `keep_probs`.
pub(crate) fn forward(inputs: Inputs<'_>, keep_probs: bool) -> Forward {
    let (batch, heads, queries, _) = inputs.q.dim();
    let (_, _, keys, value_dim) = inputs.v.dim();
    let mut output = Array4::zeros((batch, heads, queries, value_dim));
    let mut probs = keep_probs.then(|| Array4::zeros((batch, heads, queries, keys)));
    let outputs = fresh_slice(&mut output).par_chunks_mut(queries * value_dim);
    let one_pair = |pair: usize, out: &mut [f32], scores: &mut [f32]| {
        let [q, k, v] = inputs.pair(pair);
        let mut scores = matrix(scores, queries, keys);
        gemm(inputs.scale, q, k.t(), 0.0, &mut scores);
        scores
            .as_slice_mut()
            .expect("fresh matrix")
            .chunks_exact_mut(keys)
            .for_each(softmax);
        gemm(
            1.0,
            scores.view(),
            v,
            0.0,
            &mut matrix(out, queries, value_dim),
        );
    };
    match probs.as_mut() {
        Some(probs) => outputs
            .zip(fresh_slice(probs).par_chunks_mut(queries * keys))
            .enumerate()
            .for_each(|(pair, (out, scores))| one_pair(pair, out, scores)),
        None => outputs.enumerate().for_each_init(
            || vec![0.0; queries * keys],
            |scores, (pair, out)| one_pair(pair, out, scores),
        ),
    }
    Forward { output, probs }
}

/// The gradients of `q`, `k` and `v` from the output's gradient and the
/// forward's probabilities `P`: `dV = Pᵀ·dO`, `dS = P ⊙ (dO·Vᵀ − rowsum(P ⊙ dO·Vᵀ))`,
/// `dQ = scale·dS·K`, `dK = scale·dSᵀ·Q`.
pub(crate) fn backward(
    inputs: Inputs<'_>,
    probs: ArrayView4<'_, f32>,
    grad_output: ArrayView4<'_, f32>,
) -> Gradients {
    let (batch, heads, queries, dim) = inputs.q.dim();
    let (_, _, keys, value_dim) = inputs.v.dim();
    let mut grads = Gradients {
        q: Array4::zeros((batch, heads, queries, dim)),
        k: Array4::zeros((batch, heads, keys, dim)),
        v: Array4::zeros((batch, heads, keys, value_dim)),
    };
    fresh_slice(&mut grads.q)
        .par_chunks_mut(queries * dim)
        .zip(fresh_slice(&mut grads.k).par_chunks_mut(keys * dim))
        .zip(fresh_slice(&mut grads.v).par_chunks_mut(keys * value_dim))
        .enumerate()
        .for_each_init(
            || vec![0.0; queries * keys],
            |scratch, (pair, ((dq, dk), dv))| {
                let [q, k, v] = inputs.pair(pair);
                let (b, h) = (pair / heads, pair % heads);
                let p = probs.slice(s![b, h, .., ..]);
                let d_out = grad_output.slice(s![b, h, .., ..]);
                gemm(1.0, p.t(), d_out, 0.0, &mut matrix(dv, keys, value_dim));
                let mut d_scores = matrix(scratch, queries, keys);
                gemm(1.0, d_out, v.t(), 0.0, &mut d_scores);
                for (mut d_row, p_row) in d_scores.rows_mut().into_iter().zip(p.rows()) {
                    let d_row = d_row.as_slice_mut().expect("fresh matrix");
                    let p_row = p_row.as_slice().expect("probabilities are contiguous");
                    softmax_backward(d_row, p_row);
                }
                let scale = inputs.scale;
                gemm(
                    scale,
                    d_scores.view(),
                    k,
                    0.0,
                    &mut matrix(dq, queries, dim),
                );
                gemm(scale, d_scores.t(), q, 0.0, &mut matrix(dk, keys, dim));
            },
        );
    grads
}

/// Softmax of one row, in place.
fn softmax(row: &mut [f32]) {
    let max = reduce::max(row);
    row.iter_mut().for_each(|x| *x = exp(*x - max));
    let inv_sum = reduce::sum(row).recip();
    row.iter_mut().for_each(|x| *x *= inv_sum);
}

/// `grad ← p ⊙ (grad − Σ p ⊙ grad)`: the gradient through one softmax row.
fn softmax_backward(grad: &mut [f32], p: &[f32]) {
    let weighted = reduce::dot(grad, p);
    grad.iter_mut()
        .zip(p)
        .for_each(|(g, p)| *g = p * (*g - weighted));
}

fn fresh_slice(array: &mut Array4<f32>) -> &mut [f32] {
    array.as_slice_mut().expect("a fresh array is contiguous")
}

fn matrix(values: &mut [f32], rows: usize, cols: usize) -> ArrayViewMut2<'_, f32> {
    ArrayViewMut2::from_shape((rows, cols), values).expect("the slice holds rows × cols values")
}

#[cfg(test)]
mod tests {
    use ndarray::Array;

    use super::*;

    fn values(shape: (usize, usize, usize, usize), seed: u32) -> Array4<f32> {
        let count = shape.0 * shape.1 * shape.2 * shape.3;
        Array::from_shape_vec(shape, crate::cpu::test_values(count, seed)).expect("count matches")
    }

    /// The textbook formula, one score at a time, in f64.
    fn naive(q: &Array4<f32>, k: &Array4<f32>, v: &Array4<f32>, scale: f64) -> Array4<f64> {
        let (batch, heads, queries, dim) = q.dim();
        let (_, _, keys, value_dim) = v.dim();
        Array4::from_shape_fn((batch, heads, queries, value_dim), |(b, h, i, c)| {
            let scores: Vec<f64> = (0..keys)
                .map(|j| {
                    let dot: f64 = (0..dim)
                        .map(|d| (q[[b, h, i, d]] * k[[b, h, j, d]]) as f64)
                        .sum();
                    dot * scale
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = weights.iter().sum();
            (0..keys)
                .map(|j| weights[j] / total * v[[b, h, j, c]] as f64)
                .sum()
        })
    }

    #[test]
    fn the_output_is_the_textbook_formula_on_strided_inputs() {
        let (batch, heads, queries, keys, dim) = (2, 3, 5, 7, 4);
        let q = values((batch, queries, heads, dim), 1);
        let k = values((batch, keys, heads, dim), 2);
        let v = values((batch, keys, heads, 6), 3);
        let [q, k, v] = [q, k, v].map(|t| t.permuted_axes([0, 2, 1, 3])); // strided, as after swap_dims
        let inputs = Inputs {
            q: q.view(),
            k: k.view(),
            v: v.view(),
            scale: 0.5,
        };
        let out = forward(inputs, true);
        let want = naive(&q, &k, &v, 0.5);
        for (got, want) in out.output.iter().zip(want.iter()) {
            assert!((*got as f64 - want).abs() < 1e-5, "{got} vs {want}");
        }
        let probs = out.probs.expect("asked for");
        for row in probs.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-5);
        }
        assert_eq!(forward(inputs, false).output, out.output);
    }
}
